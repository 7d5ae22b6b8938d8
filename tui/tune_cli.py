"""`charmlp-tui tune`: a hyperparameter search from the command line (core.search), one line per
trial on stdout, a progress bar on stderr, and with --json a last line that sums the study up.
`--worker --study NAME --storage URL` joins a study another process or machine started."""

from __future__ import annotations

import argparse
import json
import signal
from functools import partial
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from core import ranges
from core.actions import Job
from core.config import DataConfig, ModelConfig, TrainConfig
from core.errors import CharMLPError
from core.jobs import Progress as TrainProgress
from core.search_space import DIMS, Space
from core.search_view import SearchView, TrialView
from core.store import default_path, protect_store
from tui.headless import StopFlag
from tui.output import finite_or_null
from tui.settings import (EXIT_INTERRUPTED, EXIT_USAGE, OneLineParser, in_range, name_of, package_version,
                          rebuild_argv, split_fractions)


def build_parser() -> argparse.ArgumentParser:
    space = "\n".join(f"  {d.key:<9} {d.text:<15} {d.help}{' (log scale)' if d.log else ''}" for d in DIMS)
    parser = OneLineParser(
        prog="charmlp-tui tune", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Search for the model that beats the lecture's dev loss 2.17: Optuna's TPE draws each trial's "
                    "block size, widths, batch, learning rate and decay; successive halving prunes the weak ones by "
                    "their exact dev loss; every trial is kept as a run (charmlp-tui runs list). The first trial of a "
                    "new study is the lecture's configuration. The test split is never read.",
        epilog=f"search space (--space KEY=LO:HI narrows one; KEY=V fixes it; init=NAME[,NAME] picks its choices):\n{space}\n\n"
               "examples:\n  charmlp-tui tune --data names.txt --timeout 1200 --steps 200000\n"
               "  charmlp-tui tune --worker --study search --storage postgresql://me@db.lan/optuna   (another machine)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    budget = parser.add_argument_group("budget")
    budget.add_argument("--trials", type=in_range(ranges.TUNE_TRIALS), metavar="N",
                        help="trials this process runs (default 20, or until --timeout)")
    budget.add_argument("--timeout", type=in_range(ranges.TUNE_TIMEOUT_S), metavar="S",
                        help="start no trial after S seconds; the one running then is pruned where it stands")
    budget.add_argument("--steps", type=in_range(ranges.TUNE_STEPS), default=50_000, metavar="N",
                        help="training steps of one trial, the decay included (default %(default)s; the lecture: 200000)")
    budget.add_argument("--no-prune", dest="prune", action="store_false",
                        help="run every trial to its end (by default successive halving stops the weak ones at "
                             "1/27, 1/9 and 1/3 of their steps by their exact dev loss)")
    budget.add_argument("--space", action="append", default=[], metavar="KEY=LO:HI",
                        help="narrow (or fix) one range of the search space; repeatable (the keys are listed below)")
    study = parser.add_argument_group("study")
    study.add_argument("--study", type=name_of(ranges.STUDY_NAME), default="search", metavar="NAME",
                       help="the study's name: a second tune with the same name goes on with it (default %(default)s)")
    study.add_argument("--storage", metavar="URL",
                       help="an Optuna storage URL shared by every worker, e.g. postgresql://USER@HOST/DB "
                            "(default: sqlite, studies.db beside the run store)")
    study.add_argument("--worker", action="store_true", help="join a study that exists already (with --study, --storage)")
    study.add_argument("--sampler-seed", type=in_range(ranges.SEED), metavar="N",
                       help="seed Optuna's sampler (default: fresh draws in each worker)")
    data = parser.add_argument_group("data and runs")
    data.add_argument("--data", type=Path, metavar="PATH", help="UTF-8 words, one per line (default: the built-in names)")
    data.add_argument("--split", type=split_fractions, default=DataConfig().split, metavar="TRAIN,DEV,TEST",
                      help="fractions of the shuffled words per split (default 0.8,0.1,0.1); dev must not be empty")
    data.add_argument("--runs-db", type=Path, metavar="PATH", help="the run store each trial is kept in (default: runs.db "
                      "in the user's data folder)")
    data.add_argument("--no-runs", dest="keep_runs", action="store_false", help="keep no trial as a run")
    data.add_argument("--no-compile", dest="compile", action="store_false",
                      help="train on torch's eager steps, never the native (C++) ones")
    parser.add_argument("--json", action="store_true", help="end stdout with one JSON line: the best trial and the counts")
    return parser


def run_tune(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.keep_runs and args.runs_db is not None:
        parser.error("--no-runs keeps no run: give it without --runs-db")
    try:
        from core.search import StudySpec

        space = Space().with_ranges(args.space)
        if args.keep_runs:
            protect_store(args.runs_db.expanduser() if args.runs_db else default_path())
        trials = args.trials if args.trials is not None or args.timeout is not None else 20
        spec = StudySpec(study=args.study, storage=args.storage, trials=trials, timeout_s=args.timeout,
                         steps=args.steps, space=space, join=args.worker, seed=args.sampler_seed,
                         prune=args.prune)
        data = DataConfig(path=args.data, split=args.split)
    except CharMLPError as e:
        parser.error(str(e))
    import torch

    torch.set_num_threads(1)  # one thread each: workers on one machine share its cores
    err = Console(stderr=True)
    stop = StopFlag()
    previous = {sig: signal.signal(sig, stop.handle) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        return _tune(spec, data, args, err, stop)
    except KeyboardInterrupt:
        _say(err, "charmlp-tui: interrupted")
        return EXIT_INTERRUPTED
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _tune(spec, data: DataConfig, args: argparse.Namespace, err: Console, stop: StopFlag) -> int:
    from core.search import run_search
    from core.search_storage import open_storage
    from core.session import open_session

    try:
        open_storage(spec.storage, args.runs_db, spec.study if spec.join else None)  # one line before the data is read
        with err.status("loading data and building the dataset…"):
            trainer, keeper, lines = open_session(data, ModelConfig(), TrainConfig(), None, args.keep_runs,
                                                  args.runs_db, None, None, partial(rebuild_argv, data))
    except CharMLPError as e:
        _say(err, f"charmlp-tui: error: {e}")
        return EXIT_USAGE
    for line in lines:
        _say(err, f"charmlp-tui: {line}")
    if args.compile:
        trainer.start_compiling(lambda line: _say(err, line)).join()
    printed: set[int] = set()
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[dev]}"),
               TimeElapsedColumn()]
    try:
        with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
            task = bar.add_task("trial", total=spec.steps, dev="")

            def on_view(view: SearchView) -> None:
                for t in view.trials:
                    if t.state == "running" and t.run is not None:
                        dev = f"dev {t.dev[-1][1]:.4f}" if t.dev else ""
                        bar.update(task, description=f"trial {t.number}", dev=dev)
                    elif t.state in ("complete", "pruned", "failed") and t.number not in printed:
                        printed.add(t.number)
                        print(trial_line(t), flush=True)  # stdout (above the bar on a terminal: rich redirects it)

            def on_progress(p: TrainProgress) -> None:
                bar.update(task, completed=p.step)

            outcome, view = run_search(trainer, keeper, spec, Job(on_progress, stop), on_view, open_best=False)
            on_view(view)
    except CharMLPError as e:
        _say(err, f"charmlp-tui: error: {e}")
        return EXIT_USAGE
    finally:
        if (closing := keeper.close(trainer)) is not None:
            _say(err, f"charmlp-tui: {closing}")
    print(outcome.summary, flush=True)
    if view.best is not None and view.best.run is not None:
        _say(err, f"charmlp-tui: train the best further: charmlp-tui --resume {view.best.run}")
    if args.json:
        print(json.dumps(finite_or_null(view.json()), allow_nan=False), flush=True)
    if stop.signal is not None:
        _say(err, f"charmlp-tui: stopped by signal {stop.signal}; the finished trials are kept")
        return 128 + stop.signal
    return 0


def trial_line(t: TrialView) -> str:
    dev = f"dev {t.value:.4f}" if t.value is not None else (f"last dev {t.dev[-1][1]:.4f}" if t.dev else "")
    seconds = f"{t.seconds:.1f} s" if t.seconds is not None else ""
    parts = [f"trial {t.number} {t.state}", dev, t.describe(), seconds, f"run {t.run}" if t.run else "", t.note]
    return "  ".join(p for p in parts if p)


def _say(err: Console, line: str) -> None:
    err.print(line, markup=False, highlight=False, soft_wrap=True)
