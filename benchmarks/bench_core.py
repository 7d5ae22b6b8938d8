"""Core vs the lecture's loop, side by side in one process, on the same data and config.

    python benchmarks/bench_core.py [--data ../shared/data/names.txt] [--steps 20000] [--repeats 5]

Prints one table (medians of repeats): training steps/s, full-split evaluation time and LR
sweep time, each with its ratio. Not a test: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch

from core.config import DataConfig, ModelConfig, TrainConfig
from core.dataset import make_dataset
from core.evaluate import count_contexts, mean_loss, naive_mean_loss
from core.reference import lecture_params, lecture_step
from core.trainer import Trainer
from core.words import load_words

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "names.txt"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA if DEFAULT_DATA.exists() else None)
    parser.add_argument("--steps", type=int, default=20_000, help="training steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    words = load_words(args.data)
    ds = make_dataset(words, 3, DataConfig())
    trainer = Trainer(ds, ModelConfig(), TrainConfig())
    X, Y = ds.train.X, ds.train.Y
    rows = []

    trainer.run(1000)  # warm-up
    core_s = median_time(lambda: trainer.run(args.steps), args.repeats)
    params = lecture_params(trainer.params)
    lecture_loop(params, X, Y, 500, 32)
    lecture_s = median_time(lambda: lecture_loop(params, X, Y, args.steps // 4, 32), args.repeats) * 4
    rows.append(("train step, emb 2 / hidden 100 / batch 32", f"{args.steps / core_s:,.0f} steps/s",
                 f"{args.steps / lecture_s:,.0f} steps/s", lecture_s / core_s))

    allX, allY = torch.cat([ds.train.X, ds.dev.X, ds.test.X]), torch.cat([ds.train.Y, ds.dev.Y, ds.test.Y])
    build_s = median_time(lambda: count_contexts(allX, allY, ds.vocab.size), args.repeats)
    counts = count_contexts(allX, allY, ds.vocab.size)
    fast_s = median_time(lambda: mean_loss(trainer.params, counts), args.repeats)
    naive_s = median_time(lambda: naive_mean_loss(trainer.params, allX, allY), args.repeats)
    diff = abs(mean_loss(trainer.params, counts) - naive_mean_loss(trainer.params, allX, allY))
    rows.append((f"full loss, {len(allY):,} examples (|diff| {diff:.1e})", f"{fast_s * 1e3:.1f} ms",
                 f"{naive_s * 1e3:.1f} ms (no_grad)", naive_s / fast_s))
    rows.append(("  context counts, built once per dataset", f"{build_s * 1e3:.1f} ms", "", None))

    sweep_s = median_time(lambda: trainer.sweep(-3, 0, 1000), args.repeats)
    rows.append(("LR sweep, 1000 steps", f"{sweep_s * 1e3:.0f} ms", f"{1000 * lecture_s / args.steps * 1e3:.0f} ms (1000 lecture steps)",
                 1000 * lecture_s / args.steps / sweep_s))

    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch thread(s), torch {torch.__version__}, "
          f"data {args.data or 'built-in'}, median of {args.repeats}")
    print(f"{'what':<48} {'core':>16} {'lecture':>26} {'ratio':>7}")
    for what, core, lecture, ratio in rows:
        print(f"{what:<48} {core:>16} {lecture:>26} {'' if ratio is None else f'{ratio:.1f}x':>7}")


if __name__ == "__main__":
    main()
