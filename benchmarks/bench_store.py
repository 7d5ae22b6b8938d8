"""What keeping runs costs training: a headless `run N` with the run store on and with --no-runs.

    python benchmarks/bench_store.py [--data ../shared/data/names.txt] [--steps 1000000] [--repeats 3] [--compiled]

Each repeat runs both, one after the other, in fresh processes (the order alternates, so a
machine that slows down over time is not blamed on one side), and reads the steps/s of the
headless JSON summary (training time only: the dataset build and the last save are outside
it). Prints the medians and their ratio. The issue's goal: the store on is within 3 % of off.
Not a test: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "names.txt"


def headless(data: Path | None, steps: int, store: Path | None, compiled: bool) -> tuple[float, float]:
    """(steps/s while training, wall seconds of the whole process)."""
    argv = [sys.executable, "-m", "tui", "--headless", "--json", "--script", f"run {steps}"]
    argv += ["--data", str(data)] if data else []
    argv += ["--runs-db", str(store)] if store else ["--no-runs"]
    argv += [] if compiled else ["--no-compile"]
    t0 = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - t0
    return float(json.loads(out.splitlines()[-1])["steps_per_s"]), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA if DEFAULT_DATA.exists() else None)
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compiled", action="store_true", help="on the native steps (built before the run, as "
                        "headless does for 50k+ steps); default eager, whose rate varies less")
    args = parser.parse_args()
    rates: dict[str, list[float]] = {"on": [], "off": []}
    walls: dict[str, list[float]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["XDG_DATA_HOME"] = scratch  # never the user's own store
        db = Path(scratch) / "runs.db"
        for k in range(args.repeats):
            for side in (("on", "off") if k % 2 == 0 else ("off", "on")):
                rate, wall = headless(args.data, args.steps, db if side == "on" else None, args.compiled)
                rates[side].append(rate)
                walls[side].append(wall)
                print(f"  repeat {k + 1} store {side:>3}: {rate:,.0f} steps/s, process {wall:.1f} s", flush=True)
        size = db.stat().st_size
    on, off = statistics.median(rates["on"]), statistics.median(rates["off"])
    print(f"run {args.steps:,} ({'compiled' if args.compiled else 'eager'}), medians of {args.repeats}:")
    print(f"  store off : {off:,.0f} steps/s, process {statistics.median(walls['off']):.1f} s")
    print(f"  store on  : {on:,.0f} steps/s, process {statistics.median(walls['on']):.1f} s "
          f"(database {size / 1e6:.1f} MB for {args.repeats} runs)")
    print(f"  on / off  : {on / off:.3f}")


if __name__ == "__main__":
    main()
