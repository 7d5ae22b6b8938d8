"""Core vs the lecture's loop, side by side in one process, on the same data and config.

    python benchmarks/bench_core.py [--data ../shared/data/names.txt] [--steps 20000] [--repeats 5] [--no-compile]
                                    [--only core,isa,scan,busy]

Prints tables (medians of repeats; wall time, and the process's CPU time beside it where it
matters): core: training step time for three model sizes (eager, and compiled: the native steps
of core.native, after a build whose time is shown, from the cache if an earlier run filled it),
full-split evaluation time (also where contexts rarely repeat), LR sweep and grid time (also a headless
script's grid, whole process), the dataset build for 1M words, each with its ratio against the lecture's way; isa: the eager step
against the kernel built for each x86 level (CHARMLP_NATIVE_ARCH) and what the calibration chose
there; scan: ns per multiply-add over hidden 100-1000, emb 2-30, batch 32-512, block 3-8 (a
cliff is a shape much slower per multiply-add than its neighbours); busy: each long action quiet
and with one core held by a spinning process the benchmark starts. Not a test: timings depend on
the machine and its load.
"""

from __future__ import annotations

import argparse
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from core.config import DataConfig, ModelConfig, TrainConfig
from core.dataset import make_dataset
from core.evaluate import count_contexts, mean_loss
from core.trainer import Trainer
from core.words import load_words

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the lecture's yardsticks live with the tests
from reference import lecture_params, lecture_step, naive_mean_loss  # noqa: E402

import engine_rows  # noqa: E402  (beside this file)

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "names.txt"
HEADLESS_PAIRS = 9  # grid and eval processes timed in turn for the headless row
GRID_LINE = re.compile(r"^grid: .* steps in ([0-9.]+) s;", re.M)  # the headless grid's own line (core.verbs)


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def lecture_loop(params, X, Y, steps: int, batch_size: int) -> None:
    """The notebook's loop: a fresh randint per step, F.cross_entropy, backward, p.data update."""
    for _ in range(steps):
        ix = torch.randint(0, X.shape[0], (batch_size,))
        lecture_step(params, X, Y, ix, 0.1)


def _per_step(us: float, cpu_us: float | None = None) -> str:
    return f"{us:,.1f} µs ({1e6 / us:,.0f}/s)" + ("" if cpu_us is None else f", CPU {cpu_us:,.1f}")


def training_rows(words, block: int, emb: int, hidden: int, batch: int, steps: int, repeats: int, compiled: bool):
    """Eager core vs lecture; with compiled, also the compiled (native) steps over a run 5x longer, after
    its (timed) compile."""
    ds = make_dataset(words, block, DataConfig())
    trainer = Trainer(ds, ModelConfig(block_size=block, emb_dim=emb, hidden=hidden), TrainConfig(batch_size=batch))
    trainer.set_lr_exponent(-1)
    trainer.run(min(1000, steps))  # warm-up
    core_s, core_cpu = engine_rows.timed(lambda: trainer.run(steps), repeats)
    params = lecture_params(trainer.params)
    lecture_steps = max(steps // 4, 10)
    lecture_loop(params, ds.train.X, ds.train.Y, min(200, lecture_steps), batch)
    lecture_s = median_time(lambda: lecture_loop(params, ds.train.X, ds.train.Y, lecture_steps, batch), repeats)
    core_us, lecture_us = core_s / steps * 1e6, lecture_s / lecture_steps * 1e6
    model = f"block {block} / emb {emb} / hidden {hidden} / batch {batch}"
    rows = [(f"train step, eager, {model}", _per_step(core_us, core_cpu / steps * 1e6), _per_step(lecture_us),
             lecture_us / core_us)]
    best_us = core_us
    if compiled:
        how = compile_native(trainer)
        if not trainer.compiled:
            rows.append((f"train step, compiled: {how}", "", "", None))
            return rows, lecture_us, best_us
        long_s, long_cpu = engine_rows.timed(lambda: trainer.run(5 * steps), repeats)
        long_us = long_s / (5 * steps) * 1e6
        rows.append((f"train step, compiled ({how}), run {5 * steps:,}", _per_step(long_us, long_cpu / (5 * steps) * 1e6),
                     "", lecture_us / long_us))
        best_us = min(best_us, long_us)
    return rows, lecture_us, best_us


def compile_native(trainer: Trainer) -> str:
    """Build (or load from the cache) the native steps and use them, whatever the calibration
    chose (its line is shown); what the trainer said, shortened."""
    lines: list[str] = []
    trainer.start_compiling(lines.append).join()
    trainer.use_engine("compiled")
    if not trainer.compiled:
        return lines[0]
    how = lines[0].split("ready (", 1)[1].split(")", 1)[0]
    chose = lines[0].rsplit(": ", 1)[1].split(",", 1)[0] if "calibration: " in lines[0] else "not measured"
    return f"{how}; calibration: {chose}"


def evaluation_rows(words, block: int, repeats: int):
    ds = make_dataset(words, block, DataConfig())
    trainer = Trainer(ds, ModelConfig(block_size=block), TrainConfig())
    trainer.run(1000)
    allX, allY = torch.cat([ds.train.X, ds.dev.X, ds.test.X]), torch.cat([ds.train.Y, ds.dev.Y, ds.test.Y])
    build_s = median_time(lambda: count_contexts(allX, allY, ds.vocab.size), repeats)
    counts = count_contexts(allX, allY, ds.vocab.size)
    fast_s = median_time(lambda: mean_loss(trainer.params, counts), repeats)
    naive_s = median_time(lambda: naive_mean_loss(trainer.params, allX, allY), repeats)
    diff = abs(mean_loss(trainer.params, counts) - naive_mean_loss(trainer.params, allX, allY))
    distinct = counts.contexts.shape[0]
    return [
        (f"full loss, block {block}: {len(allY):,} examples, {distinct:,} contexts (same loss to {diff:.0e})",
         f"{fast_s * 1e3:.1f} ms", f"{naive_s * 1e3:.1f} ms (no_grad)", naive_s / fast_s),
        ("  context counts, once per dataset", f"{build_s * 1e3:.1f} ms", "", None),
    ]


def build_row(n_words: int, repeats: int):
    """Load and split 1M words (made by gluing two real names' halves) into block-3 examples."""
    real = load_words(None)
    rng = random.Random(0)
    glued = [a[: len(a) // 2 + 1] + b[len(b) // 2 :] for a, b in ((rng.choice(real), rng.choice(real)) for _ in range(n_words))]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "words.txt"
        path.write_text("\n".join(glued) + "\n", encoding="utf-8")
        build_s = median_time(lambda: make_dataset(load_words(path), 3, DataConfig()), repeats)
        n_examples = sum(make_dataset(load_words(path), 3, DataConfig()).sizes().values())
    return (f"read + build dataset, {n_words:,} words ({n_examples:,} examples)", f"{build_s:.2f} s", "", None)


def headless_grid_row(data: Path | None, repeats: int, lecture_us: float):
    """The whole process `charmlp-tui --headless --script grid` less the same with `eval` (start-up,
    data, the engine's build or load from the cache, calibration): what a script's grid costs. Each
    process takes ~1.5 s, mostly importing torch, and their difference moves by tens of ms: pairs,
    interleaved, at least HEADLESS_PAIRS, and the grid's own time from its line beside."""
    def whole(script: str) -> tuple[float, str]:
        argv = [sys.executable, "-m", "tui", "--headless", "--no-runs", "--script", script]
        t0 = time.perf_counter()
        done = subprocess.run(argv + (["--data", str(data)] if data else []), capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"headless {script!r} failed: {done.stderr}")
        return time.perf_counter() - t0, done.stdout

    pairs = [(whole("grid"), whole("eval")) for _ in range(max(repeats, HEADLESS_PAIRS))]  # side by side: the machine drifts
    differences = sorted(g - e for (g, _), (e, _) in pairs)
    grid_s = statistics.median(differences)
    quarter = len(differences) // 4
    lines = [GRID_LINE.search(out) for (_, out), _ in pairs]
    if not all(lines):
        sys.exit("headless 'grid' printed no 'grid: … steps in … s;' line: bench_core.GRID_LINE needs updating")
    own = statistics.median(float(line.group(1)) for line in lines if line)
    model_steps = 32 * 500
    return (f"headless `--script grid` less `--script eval`, whole process ({model_steps:,} model-steps; median of "
            f"{len(pairs)} pairs, middle half {differences[quarter] * 1e3:,.0f} to {differences[-1 - quarter] * 1e3:,.0f} ms; "
            f"its grid line: {own * 1e3:,.0f} ms)",
            f"{grid_s * 1e3:,.0f} ms", f"{model_steps * lecture_us * 1e-3:,.0f} ms (lecture steps)",
            model_steps * lecture_us * 1e-6 / grid_s)


def core_rows(words, args) -> list:
    rows, lecture_us, core_us = training_rows(words, 3, 2, 100, 32, args.steps, args.repeats, args.compile)
    rows += training_rows(words, 3, 10, 200, 32, args.steps // 2, args.repeats, args.compile)[0]
    rows += training_rows(words, 8, 24, 512, 256, max(args.steps // 40, 50), args.repeats, False)[0]
    rows += evaluation_rows(words, 3, args.repeats)
    rows += evaluation_rows(words, 8, args.repeats)

    ds = make_dataset(words, 3, DataConfig())
    trainer = Trainer(ds, ModelConfig(), TrainConfig())
    model_steps = 32 * 500
    for engine in ("eager", "compiled") if args.compile else ("eager",):
        if engine == "compiled":
            compile_native(trainer)
            if not trainer.compiled:
                break
        sweep_s, sweep_cpu = engine_rows.timed(lambda: trainer.sweep(-3, 0, 1000), args.repeats)
        rows.append((f"LR sweep, 1000 steps, emb 2 / hidden 100, {engine}", engine_rows.wall_cpu(sweep_s, sweep_cpu, 1e3, "ms"),
                     f"{lecture_us:.0f} ms (1000 lecture steps)", lecture_us * 1e-3 / sweep_s))
        grid_s, grid_cpu = engine_rows.timed(lambda: trainer.grid(-3, 0, 32, 500), args.repeats)
        rows.append((f"LR grid, 32 models x 500 steps ({model_steps:,} model-steps), {engine}",
                     engine_rows.wall_cpu(grid_s, grid_cpu, 1e3, "ms"),
                     f"{model_steps * lecture_us * 1e-3:,.0f} ms (lecture steps)", model_steps * lecture_us * 1e-6 / grid_s))
        rows.append(("  same, against the core's fastest step one model after another", "",
                     f"{model_steps * core_us * 1e-3:,.0f} ms", model_steps * core_us * 1e-6 / grid_s))
    rows.append(headless_grid_row(args.data, args.repeats, lecture_us))
    rows.append(build_row(1_000_000, max(args.repeats // 2, 1)))
    return rows


def print_table(title: str, header: tuple[str, str, str, str], rows: list) -> None:
    print(f"\n{title}")
    print(f"| {header[0]:<66} | {header[1]:>22} | {header[2]:>26} | {header[3]:>6} |")
    print(f"|{'-' * 68}|{'-' * 24}:|{'-' * 28}:|{'-' * 7}:|")
    for what, core, lecture, ratio in rows:
        print(f"| {what:<66} | {core:>22} | {lecture:>26} | {'' if ratio is None else f'{ratio:.1f}x':>6} |", flush=True)


SECTIONS = ("core", "isa", "scan", "busy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA if DEFAULT_DATA.exists() else None)
    parser.add_argument("--steps", type=int, default=20_000, help="training steps per timed repeat (small model)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="skip the compiled rows")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"the tables to print, of {','.join(SECTIONS)}")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    words = load_words(args.data)
    only = set(args.only.split(","))

    print(f"machine: {engine_rows.cpu_line()}, {platform.machine()}, {torch.get_num_threads()} torch thread(s), "
          f"torch {torch.__version__}, data {args.data or 'built-in'}, median of {args.repeats}")
    if "core" in only:
        print_table("core against the lecture's loop (wall time; CPU time of the process beside it)",
                    ("what", "core", "lecture", "ratio"), core_rows(words, args))
    if "isa" in only and args.compile:
        print_table("each ISA level (CHARMLP_NATIVE_ARCH) through Trainer.run, µs a step: wall (CPU)",
                    ("what", "µs/step", "eager", "eager/compiled"), engine_rows.isa_rows(words, args.steps, args.repeats))
    if "scan" in only and args.compile:
        rows, worst = engine_rows.size_scan(max(args.repeats // 2, 1))
        print_table(f"size scan, compiled kernel (ns per multiply-add; worst ratio to the better neighbour, CPU time: "
                    f"{worst:.2f}x)", ("shape", "compiled", "eager", "eager/compiled"), rows)
    if "busy" in only:
        print_table("long actions, quiet and with one core held by another process (ms: wall (CPU))",
                    ("what", "quiet", "one core busy", "busy/quiet"), engine_rows.busy_rows(words, max(args.repeats // 2, 1)))


if __name__ == "__main__":
    main()
