"""Which steps are faster on this model and this CPU: measured, never assumed.

The compiled steps are not faster everywhere: built for a narrow ISA a kernel can lose to torch
(16-float vectors on AVX2 ran 6-9x slower than the eager step), and at large sizes MKL's matrix
products catch up. So before the trainer switches, both engines run the user's model shape for a
few hundred steps (tens of milliseconds, in interleaved rounds so that a load that comes and goes
hits both alike) on throwaway parameters and random minibatches, and the faster is kept. Times are
the thread's CPU time where torch runs on the calling thread alone (one thread): another process
on the core, or the GIL held by the UI, then delays both without being counted; with more torch
threads, wall time (their work is not the caller's CPU time). The fastest round counts. The rounds'
length is sized from warm steps: a process's first step of each engine is ~50x slower than the rest.

Results are cached per library (its name holds the source, target, compiler and CPU), model shape,
torch version and thread count, in one small JSON file beside the libraries: a later start with
the same shape decides at once. A new entry is merged into the file as it is then, under a lock
on a file beside it, so processes calibrating at the same moment each keep theirs.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from core.model import Params
from core.native import NativeKernel, NativeSteps
from core.step import SGDStep, Stepper

if sys.platform != "win32":
    import fcntl

ROUNDS = 5  # interleaved rounds per engine; the fastest counts
ROUND_S = 0.004  # aim of one round's length (the slower engine's)
MAX_ROUND_STEPS = 128
WARM_STEPS = 8  # a round after the warm-up, timed to size the others (a process's first step is ~50x slower)
CALIBRATION_LR = 0.01  # small: the throwaway model must stay finite while it is timed
CACHE_NAME = "calibration.json"
CACHE_VERSION = 2  # entries of earlier versions are measured again (1: rounds sized from a cold first step)
KEY_PREFIX = f"v{CACHE_VERSION} "  # every key of this version starts so
MAX_CACHED = 256  # shapes kept; the oldest go first
LOCK_WAIT_S = 0.25  # the lock is held for a read and a write of a small file: a longer wait means a stuck holder


@dataclass(frozen=True)
class Calibration:
    eager_us: float  # one eager step, µs (CPU or wall time: `clock`)
    compiled_us: float
    clock: str  # "CPU" or "wall"
    cached: bool = False  # read from the cache, not measured now

    @property
    def engine(self) -> str:
        """The faster: "compiled" or "eager" (core.ranges.ENGINES)."""
        return "compiled" if self.compiled_us < self.eager_us else "eager"

    def line(self) -> str:
        """Which engine, and why, in one line (the log, a comment in the exported session)."""
        ratio = self.eager_us / self.compiled_us
        faster = f"{ratio:.1f}x faster" if ratio >= 1 else f"{1 / ratio:.1f}x slower"
        how = "from the cache" if self.cached else f"{self.clock} time, fastest of {ROUNDS} rounds"
        return (f"calibration: compiled {self.compiled_us:,.1f} µs/step, eager {self.eager_us:,.1f} "
                f"({how}): compiled {faster}, runs use the {self.engine} steps")


Shape = tuple[int, int, int, int, int]  # batch, block, emb, hidden, vocab


def shape_of(params: Params, batch_size: int) -> Shape:
    (V, E), (TE, H) = params.C.shape, params.W1.shape
    return batch_size, TE // E, E, H, V


def measure(kernel: NativeKernel, params: Params, batch_size: int) -> Calibration:
    """Time both engines on copies of `params` (left untouched) for random minibatches."""
    B, T, _, _, V = shape_of(params, batch_size)
    one_thread = torch.get_num_threads() == 1
    clock = time.thread_time if one_thread else time.perf_counter
    eager_params, compiled_params = params.clone(), params.clone()
    engines: dict[str, Stepper] = {"eager": SGDStep(eager_params, B), "compiled": NativeSteps(kernel, compiled_params)}
    gen = torch.Generator().manual_seed(0)

    def round_of(stepper: Stepper, k: int) -> float:
        X, Y = torch.randint(0, V, (k, B, T), generator=gen), torch.randint(0, V, (k, B), generator=gen)
        t0 = clock()
        stepper.run(X, Y, [CALIBRATION_LR] * k)
        return (clock() - t0) / k

    for s in engines.values():
        round_of(s, 1)  # warm-up: buffers, caches, torch's first call (~2 ms where a step takes 36 µs)
    warm = max(round_of(s, WARM_STEPS) for s in engines.values())  # the rounds' length is sized from this
    k = max(1, min(MAX_ROUND_STEPS, int(ROUND_S / max(warm, 1e-7))))
    best = dict.fromkeys(engines, float("inf"))
    for _ in range(ROUNDS):
        for name, s in engines.items():
            best[name] = min(best[name], round_of(s, k))
    return Calibration(best["eager"] * 1e6, best["compiled"] * 1e6, "CPU" if one_thread else "wall")


def _key(kernel: NativeKernel, shape: Shape) -> str:
    shape_text = "x".join(map(str, shape))
    return f"{KEY_PREFIX}{kernel.path.name} {shape_text} torch {torch.__version__} threads {torch.get_num_threads()}"


def calibrate(kernel: NativeKernel, params: Params, batch_size: int, cache_dir: Path | None,
              measure_fn: Callable[[NativeKernel, Params, int], Calibration] = measure) -> Calibration:
    """The cached calibration of this library and shape, else a new measurement (then cached;
    a cache that cannot be read or written is measured around and left alone)."""
    folder = None if kernel.cache_dir is None else cache_dir or kernel.cache_dir
    if folder is None:  # a library built for this process only: measured, not kept
        return measure_fn(kernel, params, batch_size)
    path = folder / CACHE_NAME
    key = _key(kernel, shape_of(params, batch_size))
    cached = _read(path)
    if isinstance(entry := cached.get(key), dict):
        try:
            return Calibration(float(entry["eager_us"]), float(entry["compiled_us"]), str(entry["clock"]), cached=True)
        except (KeyError, TypeError, ValueError):
            pass
    found = measure_fn(kernel, params, batch_size)
    _store(path, key, {k: v for k, v in asdict(found).items() if k != "cached"})
    return found


def _store(path: Path, key: str, entry: dict[str, object]) -> None:
    """Our entry merged into the file as it is now, under a lock: processes calibrating other
    shapes at the same moment each keep theirs (written back from a read taken before the
    measurement, the last writer's dropped the others')."""
    with _locked(path.with_name(path.name + ".lock")):
        cached = {k: v for k, v in _read(path).items() if k.startswith(KEY_PREFIX) and k != key}  # older kinds go
        cached[key] = entry
        _write(path, dict(list(cached.items())[-MAX_CACHED:]))


@contextmanager
def _locked(lock: Path) -> Iterator[None]:
    """An exclusive lock on the file `lock` for the block, waited for up to LOCK_WAIT_S. Without
    fcntl, with a lock file that cannot be opened or locked, or after the wait, the block runs
    unlocked: a cache is never worth failing or stalling a run for."""
    fd = _open_lock(lock)
    try:
        if fd is not None:
            _lock(fd)
        yield
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


def _open_lock(lock: Path) -> int | None:
    if sys.platform == "win32":
        return None
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        return os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError:
        return None


def _lock(fd: int) -> None:
    if sys.platform == "win32":
        return
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                return
            time.sleep(0.005)
        except OSError:  # a file system without locks
            return


def _read(path: Path) -> dict[str, object]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.loads(f.read(1 << 20))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(path: Path, data: dict[str, object]) -> None:
    """Through a temporary name and a rename: a reader sees the old file or the new one."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError:
        pass
