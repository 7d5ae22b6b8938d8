"""What `charmlp-tui tune` achieves and costs on this machine, as a user runs it (its command line).

    python benchmarks/bench_tune.py study   [--minutes 20] [--workers 2] [--steps 200000]
    python benchmarks/bench_tune.py pruning [--trials 16] [--steps 30000]
    python benchmarks/bench_tune.py scaling [--seconds 240] [--steps 30000] [--same]

study:   W worker processes search for M minutes on makemore's names.txt; prints the top trials as a
         Markdown table, then retrains the best from scratch with its recorded recipe (the run's flags
         and script, headless) and prints both dev losses.
pruning: the same number of trials from the same sampler seed with successive halving and without
         (--no-prune): training steps and seconds per trial, and the ratio.
scaling: one worker for S seconds, then two at once for S seconds: trials finished (complete or pruned);
         --same: every trial the lecture's recipe, unpruned, so each costs the same.
Every figure comes from a real run; each study lives in a scratch folder.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NAMES = REPO.parent / "shared" / "data" / "names.txt"
sys.path.insert(0, str(REPO))

from core.search_space import LECTURE  # noqa: E402


def tune(home: Path, study: str, *flags: str, worker: bool = False) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "tui", "tune", "--data", str(NAMES), "--study", study, "--runs-db",
            str(home / "runs.db"), "--json", *flags, *(["--worker"] if worker else [])]
    return subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def workers(home: Path, study: str, n: int, *flags: str) -> list[dict]:
    """n processes on one study (the first makes it); their JSON summaries."""
    first = tune(home, study, *flags)
    _wait_for_study(home, study)
    procs = [first, *(tune(home, study, *flags, worker=True) for _ in range(n - 1))]
    outs = []
    for p in procs:
        stdout, stderr = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"a worker failed ({p.returncode}): {stderr.strip()[-500:]}")
        outs.append(json.loads(stdout.splitlines()[-1]))
    return outs


def _wait_for_study(home: Path, study: str) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    for _ in range(600):
        try:
            optuna.load_study(study_name=study, storage=f"sqlite:///{home / 'studies.db'}")
            return
        except (KeyError, Exception):
            time.sleep(0.1)


def trials(home: Path, study: str) -> list:
    import optuna

    return optuna.load_study(study_name=study, storage=f"sqlite:///{home / 'studies.db'}").get_trials(deepcopy=False)


def study(args: argparse.Namespace) -> None:
    home = Path(tempfile.mkdtemp(prefix="bench-tune-"))
    t0 = time.perf_counter()
    workers(home, "bench", args.workers, "--timeout", str(args.minutes * 60), "--steps", str(args.steps))
    wall = time.perf_counter() - t0
    done = trials(home, "bench")
    states = {s: sum(t.state.name == s for t in done) for s in ("COMPLETE", "PRUNED", "FAIL")}
    print(f"{args.workers} workers, {args.minutes} min ({wall:.0f} s wall), {args.steps:,} steps a trial: "
          f"{len(done)} trials, {states}")
    for key in ("block", "init"):
        counts: dict[object, int] = {}
        for t in done:
            counts[t.params.get(key)] = counts.get(t.params.get(key), 0) + 1
        print(f"trials by {key}: " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items(), key=str)))
    complete = sorted((t for t in done if t.state.name == "COMPLETE"), key=lambda t: t.value)
    print("\n| trial | dev loss | block | emb | hidden | init | batch | lr exp | decay at | decay | params | s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for t in complete[:args.top]:
        p = t.params
        print(f"| {t.number} | {t.value:.4f} | {p['block']} | {p['emb']} | {p['hidden']} | {p.get('init', '-')} | "
              f"{p['batch']} | "
              f"{p['lr']:.3f} | {p['decay_at']:.2f} | {p['decay']:.1f} | {t.user_attrs.get('params', 0):,} | "
              f"{t.user_attrs.get('seconds', 0):.0f} |")
    if complete:
        replay(home, complete[0].user_attrs["run"], complete[0].value)


def replay(home: Path, run_name: str, searched: float) -> None:
    """Retrain the best trial from scratch with its recorded recipe: the run's flags and script."""
    from core.store import RunStore

    store = RunStore(home / "runs.db")
    run = store.get(run_name)
    store.close()
    script = run.script.replace("\n", "; ") + "; eval"
    argv = [sys.executable, "-m", "tui", *json.loads(run.argv), "--headless", "--no-runs", "--json", "--script", script]
    out = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=True)
    dev = json.loads(out.stdout.splitlines()[-1])["loss"]["dev"]
    print(f"\nretrained {run_name} from scratch ({script}): dev {dev:.4f}; the search's {searched:.4f} "
          f"(difference {abs(dev - searched):.4f})")


def pruning(args: argparse.Namespace) -> None:
    rows = {}
    for label, flags in (("pruned", []), ("every trial to its end", ["--no-prune"])):
        home = Path(tempfile.mkdtemp(prefix="bench-tune-"))
        t0 = time.perf_counter()
        workers(home, "bench", 1, "--trials", str(args.trials), "--steps", str(args.steps), "--sampler-seed", "7",
                *flags)
        wall = time.perf_counter() - t0
        done = trials(home, "bench")
        steps = sum(t.user_attrs.get("steps", 0) for t in done) / len(done)
        seconds = sum(t.user_attrs.get("seconds", 0) for t in done) / len(done)
        best = min((t.value for t in done if t.state.name == "COMPLETE"), default=float("nan"))
        rows[label] = (steps, seconds)
        print(f"{label}: {len(done)} trials, {steps:,.0f} steps and {seconds:.1f} s per trial on average, "
              f"best dev {best:.4f}, {wall:.0f} s wall")
    (s1, t1), (s2, t2) = rows.values()
    print(f"pruning makes the average trial {s2 / s1:.1f}x cheaper in steps, {t2 / t1:.1f}x in seconds")


def scaling(args: argparse.Namespace) -> None:
    """--same: every trial the lecture's recipe, unpruned, so that each costs the same and the count
    measures the workers (TPE's draws otherwise differ between the runs, and so do their costs)."""
    counts = []
    same = [word for key, value in LECTURE.items() for word in ("--space", f"{key}={value}")] + ["--no-prune"]
    for n in (1, 2):
        home = Path(tempfile.mkdtemp(prefix="bench-tune-"))
        workers(home, "bench", n, "--timeout", str(args.seconds), "--steps", str(args.steps), *(same if args.same else []))
        done = [t for t in trials(home, "bench") if t.state.name in ("COMPLETE", "PRUNED")]
        counts.append(len(done))
        print(f"{n} worker(s), {args.seconds} s: {len(done)} trials finished")
    print(f"two workers finish {counts[1] / max(counts[0], 1):.2f}x the trials of one")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    s = sub.add_parser("study")
    s.add_argument("--minutes", type=float, default=20)
    s.add_argument("--workers", type=int, default=2)
    s.add_argument("--steps", type=int, default=200_000)
    s.add_argument("--top", type=int, default=8)
    p = sub.add_parser("pruning")
    p.add_argument("--trials", type=int, default=16)
    p.add_argument("--steps", type=int, default=30_000)
    c = sub.add_parser("scaling")
    c.add_argument("--seconds", type=int, default=240)
    c.add_argument("--steps", type=int, default=30_000)
    c.add_argument("--same", action="store_true", help="every trial the lecture's recipe, unpruned")
    args = parser.parse_args()
    if not NAMES.exists():
        raise SystemExit(f"{NAMES} is missing: the benchmark reads makemore's names.txt from ../shared/data")
    {"study": study, "pruning": pruning, "scaling": scaling}[args.what](args)


if __name__ == "__main__":
    main()
