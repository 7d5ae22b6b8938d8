"""bench_core.py's rows on the engines: each ISA level eager vs compiled, the size scan, a busy core.

Every time is shown as wall time and the process's CPU time: on a shared machine the wall time
alone cannot tell a slow engine from a busy neighbour.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from core import environment, native
from core.config import DataConfig, ModelConfig, TrainConfig
from core.dataset import make_dataset
from core.model import init_params
from core.native.calibration import calibrate
from core.step import SGDStep
from core.trainer import Trainer

X86_LEVELS = ("x86-64", "x86-64-v2", "x86-64-v3", "native")
Row = tuple[str, str, str, float | None]


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds of fn."""
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def wall_cpu(wall: float, cpu: float, scale: float = 1e6, unit: str = "µs") -> str:
    return f"{wall * scale:,.1f} {unit} (CPU {cpu * scale:,.1f})"


@contextlib.contextmanager
def target(arch: str) -> Iterator[None]:
    before = os.environ.get(environment.NATIVE_ARCH)
    os.environ[environment.NATIVE_ARCH] = arch
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(environment.NATIVE_ARCH)
        else:
            os.environ[environment.NATIVE_ARCH] = before


def isa_rows(words: list[str], steps: int, repeats: int) -> list[Row]:
    """The lecture's model through Trainer.run on the eager step and on the kernel built for each
    x86 level (CHARMLP_NATIVE_ARCH), with what the calibration chose there."""
    ds = make_dataset(words, 3, DataConfig())
    levels = X86_LEVELS if platform.machine().lower() in ("x86_64", "amd64") else ("native",)
    eager = Trainer(ds, ModelConfig(), TrainConfig())
    eager.set_lr_exponent(-1)
    eager.run(1000)
    e_wall, e_cpu = timed(lambda: eager.run(steps), repeats)
    rows: list[Row] = [("run, eager step, emb 2 / hidden 100 / batch 32", wall_cpu(e_wall / steps, e_cpu / steps), "", None)]
    for arch in levels:
        with target(arch):
            kernel, how = native.build()
        trainer = Trainer(ds, ModelConfig(), TrainConfig())
        trainer.set_lr_exponent(-1)
        with target(arch):
            trainer.start_compiling(switch=False).join()
        trainer.use_engine("compiled")
        trainer.run(1000)
        c_wall, c_cpu = timed(lambda: trainer.run(steps), repeats)
        chosen = calibrate(kernel, trainer.params, 32, None).engine
        rows.append((f"  compiled, -march={arch} ({kernel.vector_floats}-float vectors), calibration: {chosen}",
                     wall_cpu(c_wall / steps, c_cpu / steps), f"eager {e_wall / steps * 1e6:,.1f} µs", e_wall / c_wall))
    return rows


def _per_mac_ns(stepper_run: Callable[[torch.Tensor, torch.Tensor, list[float]], torch.Tensor], B: int, T: int, V: int,
                macs: int, repeats: int) -> tuple[float, float]:
    """ns per multiply-add (wall, CPU) over chunks of ~20 ms."""
    gen = torch.Generator().manual_seed(0)
    k = max(2, min(2000, int(20e6 / max(macs * 0.05, 1))))  # at ~0.05 ns per multiply-add
    X, Y = torch.randint(0, V, (k, B, T), generator=gen), torch.randint(0, V, (k, B), generator=gen)
    stepper_run(X[:2], Y[:2], [0.01] * 2)
    wall, cpu = timed(lambda: stepper_run(X, Y, [0.01] * k), repeats)
    return wall / k / macs * 1e9, cpu / k / macs * 1e9


SCAN = {  # (block, emb, hidden, batch): each axis around emb 10 / hidden 200 / batch 32 / block 3
    "hidden": [(3, 10, h, 32) for h in (100, 200, 256, 333, 496, 500, 512, 700, 1000)],
    "emb": [(3, e, 200, 32) for e in (2, 5, 10, 16, 24, 30)],
    "batch": [(3, 10, 200, b) for b in (32, 64, 100, 128, 256, 512)],
    "block": [(t, 10, 200, 32) for t in (3, 4, 5, 6, 7, 8)],
}


def size_scan(repeats: int) -> tuple[list[Row], float]:
    """ns per multiply-add of the compiled kernel (and the eager step) along each axis; each shape's
    ratio to its slower-per-MAC neighbour flags a cliff. Returns the rows and the worst ratio."""
    kernel, _ = native.build()
    rows: list[Row] = []
    worst = 0.0
    V = 27
    for axis, shapes in SCAN.items():
        compiled: list[float] = []
        for T, E, H, B in shapes:
            params = init_params(ModelConfig(block_size=T, emb_dim=E, hidden=H), V)
            params.W2.mul_(0.1)
            macs = 3 * B * (T * E * H + H * V)
            c_wall, c_cpu = _per_mac_ns(lambda X, Y, lrs: kernel.run(params, X, Y, lrs), B, T, V, macs, repeats)
            eager = SGDStep(params.clone(), B)
            e_wall, _ = _per_mac_ns(eager.run, B, T, V, macs, max(1, repeats // 2))
            compiled.append(c_cpu)
            rows.append((f"  {axis}: block {T} / emb {E} / hidden {H} / batch {B} ({macs / 1e6:.2f}M MACs)",
                         f"{c_wall:.3f} ns/MAC (CPU {c_cpu:.3f})", f"eager {e_wall:.3f} ns/MAC", e_wall / c_wall))
        for i, value in enumerate(compiled):  # per MAC, against the better neighbour
            near = [compiled[j] for j in (i - 1, i + 1) if 0 <= j < len(compiled)]
            worst = max(worst, value / min(near))
    return rows, worst


@contextlib.contextmanager
def busy_core() -> Iterator[None]:
    """Another process holding a core for the duration (a spin loop)."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)
        yield
    finally:
        spinner.kill()
        spinner.wait()


def busy_rows(words: list[str], repeats: int) -> list[Row]:
    """Each long action quiet and with one core held by another process: wall and CPU time."""
    ds = make_dataset(words, 3, DataConfig())
    actions: dict[str, Callable[[Trainer], object]] = {
        "run 20,000": lambda t: t.run(20_000),
        "sweep 1000 steps": lambda t: t.sweep(-3, 0, 1000),
        "grid 32 models x 500 steps": lambda t: t.grid(-3, 0, 32, 500),
    }
    rows: list[Row] = []
    for engine in ("eager", "compiled"):
        trainer = Trainer(ds, ModelConfig(), TrainConfig())
        if engine == "compiled":
            trainer.start_compiling(switch=False).join()
        trainer.use_engine(engine)
        for what, action in actions.items():
            action(trainer)
            quiet = timed(lambda: action(trainer), repeats)
            with busy_core():
                busy = timed(lambda: action(trainer), repeats)
            rows.append((f"{what}, {engine}, quiet / one core busy", f"{wall_cpu(*quiet, 1e3, 'ms')}",
                         f"{wall_cpu(*busy, 1e3, 'ms')}", busy[0] / quiet[0]))
    return rows


def cpu_line() -> str:
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or platform.machine()
    return f"{model}, {os.cpu_count()} cores"
