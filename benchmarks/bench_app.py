"""Training driven through the app (headless App.run_test) against the core alone, same process.

    python benchmarks/bench_app.py [--data ../shared/data/names.txt] [--steps 100000] [--repeats 3]

The app's figure is the rate its worker reports for one `run` pressed with space, with the UI
live: snapshots at 5 Hz, charts redrawn, periodic evaluation every second. Both sides use the
eager step, or with --compiled both on the native steps of core.native (the app's run starts once its
background build is done). The app keeps its runs in a scratch run store (the user's own is never
touched), as a user's app does; --no-runs compares without. A second row runs the same with the
diagnostics screen (D) open from before the run: its charts redraw every 2 s. Beside each rate,
the training thread's CPU time as a share of the run's wall time (under 100%: the machine gave it
less than a core, as a shared one does) and, for the app, the UI thread's. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import torch
from textual.widgets import RichLog

from core.config import DataConfig, ModelConfig, TrainConfig
from core.session import open_trainer
from tui.app import CharMLPApp
from tui.diagnostics_screen import DiagnosticsScreen
from tui.keys import STEPS_PER_RUN
from tui.settings import parse_settings

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "names.txt"


class Rate(NamedTuple):
    steps_per_s: float
    train_cpu: float  # the training thread's CPU time / the run's wall time
    ui_cpu: float = 0.0  # the UI thread's (the app's event loop: this thread)


async def app_rate(data: Path | None, steps: int, compiled: bool, store: Path | None, diagnostics: bool = False) -> Rate:
    flags = ([] if compiled else ["--no-compile"]) + (["--data", str(data)] if data else [])
    flags += ["--runs-db", str(store)] if store else ["--no-runs"]
    app = CharMLPApp(parse_settings(flags))
    async with app.run_test(size=(160, 48)) as pilot:
        while app.status is None or (compiled and app.status.engine != "compiled"):
            await asyncio.sleep(0.1)
        app.steps_index = STEPS_PER_RUN.index(steps)
        if diagnostics:
            await pilot.press("D")
            while not isinstance(app.screen, DiagnosticsScreen) or app.screen.report is None:
                await asyncio.sleep(0.1)
        t0, cpu0, ui0 = time.perf_counter(), time.process_time(), time.thread_time()
        await pilot.press("space")
        while app.busy:  # poll slowly: the harness's own wake-ups would take the GIL from training too
            await asyncio.sleep(0.25)
        wall, ui = time.perf_counter() - t0, time.thread_time() - ui0
        train = time.process_time() - cpu0 - ui  # the worker's: the app's other threads sit idle
        # the run's own rate (steps over time in training steps) is in its log line
        line = next(line.text for line in reversed(app.query_one(RichLog).lines) if "steps/s" in line.text)
        await pilot.press("q")
    return Rate(_rate(line), train / wall, ui / wall)


def _rate(line: str) -> float:
    """'run 100000: step 100000, minibatch loss 2.3, 12,345 steps/s' -> 12345.0"""
    return float(line.split(" steps/s")[0].rsplit(" ", 1)[1].replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA if DEFAULT_DATA.exists() else None)
    parser.add_argument("--steps", type=int, default=100_000, choices=STEPS_PER_RUN)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compiled", action="store_true", help="both sides on the native (compiled) steps, once they are built")
    parser.add_argument("--no-runs", dest="keep_runs", action="store_false", help="the app keeps no run (no store)")
    args = parser.parse_args()
    scratch = tempfile.TemporaryDirectory()
    store = Path(scratch.name) / "runs.db" if args.keep_runs else None
    torch.set_num_threads(1)
    trainer = open_trainer(DataConfig(path=args.data), ModelConfig(), TrainConfig())
    if args.compiled:
        trainer.start_compiling().join()
    core_rates, app_rates, diagnosed_rates = [], [], []
    for _ in range(args.repeats):
        trainer.reset()
        t0, cpu0 = time.perf_counter(), time.process_time()
        result = trainer.run(args.steps)
        wall = time.perf_counter() - t0
        core_rates.append(Rate(result.steps / wall, (time.process_time() - cpu0) / wall))
        app_rates.append(asyncio.run(app_rate(args.data, args.steps, args.compiled, store)))
        diagnosed_rates.append(asyncio.run(app_rate(args.data, args.steps, args.compiled, store, diagnostics=True)))
    core, app, diagnosed = (_median(r) for r in (core_rates, app_rates, diagnosed_rates))
    engine = "compiled" if args.compiled else "eager"
    print(f"run {args.steps:,} steps, emb 2 / hidden 100 / batch 32, {engine} step, median of {args.repeats}, "
          f"run store {'on' if store else 'off'}; CPU: the training thread's time / wall time")
    print(f"core alone      {core.steps_per_s:>10,.0f} steps/s                 CPU {core.train_cpu:.0%}")
    for name, r in (("through the app", app), ("  with D open", diagnosed)):
        print(f"{name:<15} {r.steps_per_s:>10,.0f} steps/s ({r.steps_per_s / core.steps_per_s:>4.0%} of core)  "
              f"CPU {r.train_cpu:.0%}, UI thread {r.ui_cpu:.0%}")


def _median(rates: list[Rate]) -> Rate:
    """Each figure's median over the repeats."""
    return Rate(*(statistics.median(column) for column in zip(*rates)))

if __name__ == "__main__":
    main()
