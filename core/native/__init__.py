"""The training steps as native code: sgd_chunk.cpp beside this file, built on this machine, called through ctypes.

A chunk of steps is one call (no Python, no torch dispatch per step) whose small matrix products
are written for these shapes and this CPU (-march=native): several times the eager step's
rate for the lecture's small model (benchmarks/bench_core.py measures it). The build takes about
a second with the machine's C++ compiler (g++ or clang++, $CXX to choose) and is cached by
source, compiler, flags and CPU, so a later start only loads it. core.native.engine builds it in
a background thread and switches at a chunk boundary; where there is no compiler, or the build
fails, the eager step stays.

A cached library is loaded only after its SHA-256 and size match the record written beside it
(`<library>.sha256`, written after the library, both through a temporary name and a rename): a
library cut short by a crash or a full disk would otherwise be mapped and kill the process with
SIGBUS, leaving the terminal in the app's state. Anything else there (no record, a record that
disagrees, a directory, a FIFO, a link) is built again, and the build's one line says why.

Same math as core.step within float noise (tests/test_native.py). ctypes releases the GIL for
the call, so the UI thread and a second training thread run alongside it.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from core.errors import CharMLPError
from core.model import Params

SOURCE = Path(__file__).with_name("sgd_chunk.cpp")
FLAGS = ("-O3", "-std=c++17", "-fPIC", "-shared", "-fno-math-errno")
# tried in order: x86 compilers take -march=native, some ARM ones (Apple's clang) only -mcpu=native;
# with neither, the vectors fall back to the baseline instruction set (SSE2, NEON)
ARCH_FLAGS = (("-march=native",), ("-mcpu=native",), ())
BUILD_TIMEOUT_S = 120


class BuildError(CharMLPError):
    """The native steps could not be built or loaded here."""


def default_cache_dir() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "charmlp-tui" / "native"


def _compiler() -> str:
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return name
    raise BuildError("no C++ compiler found (g++ or clang++; set CXX to choose one)")


def _cpu_identity() -> str:
    """What -march=native depends on: a library built for one CPU may not run on another
    (a home directory shared between machines)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return f"{platform.machine()} {platform.processor()}"
    wanted = ("model name", "flags", "Features", "CPU part")
    return "\n".join(sorted({line for line in lines if line.split(":")[0].strip() in wanted}))


def _library_path(cache_dir: Path, compiler: str) -> Path:
    try:
        version = subprocess.run([compiler, "--version"], check=False, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise BuildError(f"{compiler} --version failed: {e}") from e
    key = hashlib.sha256("\0".join([SOURCE.read_text(), " ".join(FLAGS), repr(ARCH_FLAGS), version, _cpu_identity()]).encode())
    return cache_dir / f"sgd_chunk-{key.hexdigest()[:16]}.so"


def _record_path(library: Path) -> Path:
    """The record beside a library: its SHA-256 and size."""
    return library.with_name(library.name + ".sha256")


MAX_LIBRARY_BYTES = 64 << 20  # far above the ~100 KB a build makes: a record claiming more is not believed
MAX_RECORD_BYTES = 256


def _read_regular(path: Path, limit: int) -> bytes:
    """The bytes of `path` if it is a regular file of at most `limit` bytes. Opened without
    following a link and without blocking, so a FIFO put there cannot hang the start. Raises
    OSError, or ValueError saying what is wrong."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("is not a regular file")
        if info.st_size > limit:
            raise ValueError(f"is {info.st_size:,} bytes, more than {limit:,}")
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read(limit + 1)
    finally:
        os.close(fd)


def _fingerprint(data: bytes) -> str:
    return f"sha256 {hashlib.sha256(data).hexdigest()}\nsize {len(data)}\n"


def _check_cached(library: Path) -> str | None:
    """None if the library matches the record beside it, else why not, in a few words."""
    try:
        record = _read_regular(_record_path(library), MAX_RECORD_BYTES).decode("ascii")
    except FileNotFoundError:
        return "it has no checksum beside it"
    except (OSError, ValueError) as e:  # UnicodeDecodeError is a ValueError
        return f"its checksum file cannot be read ({getattr(e, 'strerror', None) or e})"
    try:
        data = _read_regular(library, MAX_LIBRARY_BYTES)
    except (OSError, ValueError) as e:
        return f"it {e}" if isinstance(e, ValueError) else f"it cannot be read ({e.strerror or e})"
    if record != _fingerprint(data):
        return "its size or checksum differs from the record beside it"
    return None


def _remove(path: Path) -> None:
    """Clear the way for a new library: a file, link or FIFO goes; an empty directory goes; a
    folder with things in it stays (the install then fails and the build goes to a temporary
    folder)."""
    try:
        if path.is_dir() and not path.is_symlink():
            path.rmdir()
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass


def _write_replacing(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _compile(compiler: str, target: Path) -> None:
    """Build into a temporary file next to target, then rename: another process starting at the
    same moment sees either no library or a whole one. The record of its checksum follows, the
    same way: a crash between the two leaves a library without a record, which is built again."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        _run_compiler(compiler, Path(tmp))
        fingerprint = _fingerprint(Path(tmp).read_bytes())
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    _write_replacing(_record_path(target), fingerprint.encode("ascii"))


def _run_compiler(compiler: str, output: Path) -> None:
    """Compile SOURCE into `output`, trying each of ARCH_FLAGS in turn. Raises BuildError."""
    error = f"{compiler} failed"
    try:
        for arch in ARCH_FLAGS:
            done = subprocess.run([compiler, *FLAGS, *arch, "-o", str(output), str(SOURCE)], check=False,
                                  capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
            if done.returncode == 0:
                return
            if arch == ARCH_FLAGS[0]:  # the error worth showing is the first one
                first = next((line for line in done.stderr.splitlines() if "error" in line), done.stderr.strip()[:200])
                error = f"{compiler} failed: {first or f'exit status {done.returncode}'}"
        raise BuildError(error)
    except subprocess.TimeoutExpired as e:
        raise BuildError(f"{compiler} took over {BUILD_TIMEOUT_S} s") from e


class NativeKernel:
    """The loaded library."""

    def __init__(self, path: Path) -> None:
        try:
            self._fn = ctypes.CDLL(str(path)).sgd_chunk
        except (OSError, AttributeError) as e:
            raise BuildError(f"cannot load {path}: {e}") from e
        self._fn.restype = ctypes.c_int
        self._fn.argtypes = [ctypes.c_int] * 6 + [ctypes.c_void_p] * 9

    def run(self, params: Params, X: torch.Tensor, Y: torch.Tensor, lrs: list[float]) -> torch.Tensor:
        """len(lrs) steps on `params` in place (contiguous float32) for minibatches X (k, B, T) and
        Y (k, B); returns the k minibatch losses (k,)."""
        k, B, T = X.shape
        (V, E), H = params.C.shape, params.W1.shape[1]
        X, Y = X.contiguous(), Y.contiguous()
        rates = torch.tensor(lrs, dtype=torch.float32)
        losses = torch.empty(k, dtype=torch.float32)
        tensors = [*params.tensors(), X, Y, rates, losses]
        if self._fn(k, B, T, E, H, V, *(t.data_ptr() for t in tensors)) != 0:
            raise MemoryError("the native training steps could not allocate their buffers")
        return losses


# multiply-adds per step up to which the native steps are used. Measured here against the eager
# step: 3.0x at 0.3M (the lecture's small model), 2.3x at 1.1M (emb 10 / hidden 200), 1.7x at
# 11M (block 3 / emb 30 / hidden 1000 / batch 32); from ~20M to ~90M the two are within ±7%
# either way, and at 86M (block 8 / emb 24 / hidden 512 / batch 256) MKL's large matrix products
# win by 7%
MAX_MACS = 1 << 25


def suits(params: Params, batch_size: int) -> bool:
    """Whether the native steps can run on these parameters (float32, contiguous) and pay there."""
    (V, _), (TE, H) = params.C.shape, params.W1.shape
    macs = 3 * batch_size * (TE * H + H * V)  # forward, and the two products of each layer's backward
    return macs <= MAX_MACS and all(t.dtype == torch.float32 and t.is_contiguous() for t in params.tensors())


def build(cache_dir: Path | None = None) -> tuple[NativeKernel, str]:
    """Build (or find in the cache, checked against its record) and load the library: (kernel, one
    line saying how). Slow the first time (~1 s): run it off the training thread. Raises BuildError."""
    t0 = time.perf_counter()
    compiler = _compiler()
    path = _library_path(cache_dir or default_cache_dir(), compiler)
    why = None
    if os.path.lexists(path):
        why = _check_cached(path)
        if why is None:
            try:
                return NativeKernel(path), f"from the cache in {time.perf_counter() - t0:.1f} s"
            except BuildError as e:  # whole but not loadable here: build it again
                why = str(e).splitlines()[0][:200]
        _remove(_record_path(path))
        _remove(path)
    try:
        _compile(compiler, path)
    except OSError:  # the cache folder cannot be written: build for this process only
        path = Path(tempfile.mkdtemp(prefix="charmlp-native-")) / path.name
        _compile(compiler, path)
    again = f"; the cached library was not used: {why}" if why else ""
    return NativeKernel(path), f"built with {compiler} in {time.perf_counter() - t0:.1f} s{again}"


class NativeSteps:
    """SGDStep's interface for the native kernel: runs chunks of steps on `params` in place."""

    def __init__(self, kernel: NativeKernel, params: Params) -> None:
        self.kernel, self.params = kernel, params

    def run(self, X: torch.Tensor, Y: torch.Tensor, lrs: list[float]) -> torch.Tensor:
        return self.kernel.run(self.params, X, Y, lrs)
