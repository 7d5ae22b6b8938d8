"""The training steps as native code: sgd_chunk.cpp and sgd_vectors.h beside this file, built here, called through ctypes.

A chunk of steps is one call (no Python, no torch dispatch per step) whose small matrix products
are written for these shapes and this CPU (-march=native, or the target CHARMLP_NATIVE_ARCH names:
a home directory shared by different machines, or a test of another ISA level), with vectors as
wide as that target's registers. The build takes about a second with the machine's C++ compiler
(g++ or clang++, $CXX to choose) and is cached by source, compiler, flags, target and CPU, so a
later start only loads it. core.native.engine builds it in a background thread, measures it
against the eager step on the user's model (core.native.calibration) and switches at a chunk
boundary where it is faster; where there is no compiler, or the build fails, the eager step stays.

A cached library is loaded only after its SHA-256 and size match the record written beside it
(`<library>.sha256`, written before the library, both through a temporary name and a rename): a
library cut short by a crash or a full disk would otherwise be mapped and kill the process with
SIGBUS, leaving the terminal in the app's state. Anything else there (no record, a record that
disagrees, a directory, a FIFO, a link) is built again, and the build's one line says why.

Same math as core.step within float noise (tests/test_native.py). ctypes releases the GIL for
the call, so the UI thread and a second training thread run alongside it.
"""

from __future__ import annotations

import array
import ctypes
import hashlib
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from core import environment
from core.dataset import Minibatches
from core.errors import CharMLPError
from core.model import Params
from core.native.cache import (BUILD_LIBRARY, check_cached, fingerprint, new_build_folder, record_path, remove,
                               remove_abandoned_builds, remove_build_folder, write_replacing)

SOURCE = Path(__file__).with_name("sgd_chunk.cpp")
SOURCES = (SOURCE, SOURCE.with_name("sgd_vectors.h"))  # what a build reads: all in its cache key
FLAGS = ("-O3", "-std=c++17", "-fPIC", "-shared", "-fno-math-errno")
DEFAULT_ARCH = "native"
# for the default, tried in order: x86 compilers take -march=native, some ARM ones (Apple's clang)
# only -mcpu=native; with neither, the vectors fall back to the baseline instruction set (SSE2, NEON)
NATIVE_ARCH_FLAGS = (("-march=native",), ("-mcpu=native",), ())
ARCH_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")  # what a -march value looks like
BUILD_TIMEOUT_S = 120


class BuildError(CharMLPError):
    """The native steps could not be built or loaded here."""


def default_cache_dir() -> Path:
    cache = Path(os.environ.get(environment.XDG_CACHE_HOME) or Path.home() / ".cache")
    return cache / "charmlp-tui" / "native"


def target_arch() -> str:
    """The -march value to build for: $CHARMLP_NATIVE_ARCH, else native. Raises BuildError, in
    one line, for a value that is no -march value (the compiler judges the rest)."""
    arch = os.environ.get(environment.NATIVE_ARCH, "").strip() or DEFAULT_ARCH
    if not ARCH_PATTERN.fullmatch(arch):
        raise BuildError(f"{environment.NATIVE_ARCH}={arch[:40]!r} is not a -march value (such as native, x86-64-v3, "
                         "armv8-a): letters, digits, '.', '_', '+', '-'")
    return arch


def _arch_flags(arch: str) -> tuple[tuple[str, ...], ...]:
    return NATIVE_ARCH_FLAGS if arch == DEFAULT_ARCH else ((f"-march={arch}",),)


def _compiler() -> str:
    for name in (os.environ.get(environment.CXX), "c++", "g++", "clang++"):
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


def _library_path(cache_dir: Path, compiler: str, arch: str) -> Path:
    try:
        version = subprocess.run([compiler, "--version"], check=False, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise BuildError(f"{compiler} --version failed: {e}") from e
    sources = [source.read_text() for source in SOURCES]
    key = hashlib.sha256("\0".join([*sources, " ".join(FLAGS), repr(_arch_flags(arch)), version, _cpu_identity()]).encode())
    return cache_dir / f"sgd_chunk-{arch}-{key.hexdigest()[:16]}.so"


def _compile(compiler: str, arch: str, target: Path) -> None:
    """Build into a folder of its own next to target, then rename: another process starting at
    the same moment sees either no library or a whole one. The record of its checksum goes first,
    the same way, so a library is never seen without its record (another process would take it
    for a damaged one and remove it); a crash between the two leaves a record alone, built again.
    The folders of builds killed midway go first (core.native.cache.remove_abandoned_builds)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_builds(target.parent)
    building = new_build_folder(target.parent)
    tmp = building / BUILD_LIBRARY
    try:
        _run_compiler(compiler, arch, tmp)
        write_replacing(record_path(target), fingerprint(tmp.read_bytes()).encode("ascii"))
        os.replace(tmp, target)
    finally:
        remove_build_folder(building)


def _run_compiler(compiler: str, arch: str, output: Path) -> None:
    """Compile SOURCE into `output` for arch, trying each of its flags in turn. Raises BuildError."""
    error = f"{compiler} failed"
    tries = _arch_flags(arch)
    try:
        for flags in tries:
            done = subprocess.run([compiler, *FLAGS, *flags, "-o", str(output), str(SOURCE)], check=False,
                                  capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
            if done.returncode == 0:
                return
            if flags == tries[0]:  # the error worth showing is the first one
                first = next((line for line in done.stderr.splitlines() if "error" in line), done.stderr.strip()[:200])
                error = f"{compiler} failed: {first or f'exit status {done.returncode}'}"
        raise BuildError(error if arch == DEFAULT_ARCH else f"{environment.NATIVE_ARCH}={arch}: {error}")
    except subprocess.TimeoutExpired as e:
        raise BuildError(f"{compiler} took over {BUILD_TIMEOUT_S} s") from e


class NativeKernel:
    """The loaded library, built for `arch` (a -march value)."""

    def __init__(self, path: Path, arch: str) -> None:
        try:
            library = ctypes.CDLL(str(path))
            self._fn, self._rows_fn = library.sgd_chunk, library.sgd_chunk_rows
            vector_floats, runs_here = library.sgd_vector_floats, library.sgd_runs_here
        except (OSError, AttributeError) as e:
            raise BuildError(f"cannot load {path}: {e}") from e
        if runs_here() != 1:  # its instructions would kill the process (SIGILL)
            raise BuildError(f"built for {arch}, whose instructions this CPU lacks; set {environment.NATIVE_ARCH} "
                             "to a target it has (or unset it for native)")
        self.path, self.arch, self.vector_floats = path, arch, int(vector_floats())
        self.cache_dir: Path | None = path.parent  # where its calibration is kept (None: nowhere)
        for fn in (self._fn, self._rows_fn):
            fn.restype = ctypes.c_int
            fn.argtypes = [ctypes.c_int] * 6 + [ctypes.c_void_p] * 9

    def run(self, params: Params, X: torch.Tensor, Y: torch.Tensor, lrs: list[float]) -> torch.Tensor:
        """len(lrs) steps on `params` in place (contiguous float32) for minibatches X (k, B, T) and
        Y (k, B); returns the k minibatch losses (k,)."""
        _, B, T = X.shape
        return self._call(self._fn, params, B, T, X.contiguous(), Y.contiguous(), lrs)

    def run_rows(self, params: Params, rows: torch.Tensor, ix: torch.Tensor, lrs: list[float]) -> torch.Tensor:
        """The same for the minibatches of a split packed as rows (N, T + 1) uint8 (core.dataset.pack)
        at examples ix (k, B): the kernel reads them there, no int64 X and Y are made."""
        return self._call(self._rows_fn, params, ix.shape[1], rows.shape[1] - 1, rows.contiguous(), ix.contiguous(), lrs)

    def _call(self, fn: Callable[..., int], params: Params, B: int, T: int, first: torch.Tensor, second: torch.Tensor,
              lrs: list[float]) -> torch.Tensor:
        (V, E), H = params.C.shape, params.W1.shape[1]
        # the kernel reads k x B ids at these pointers: shapes that disagree would read past them
        if second.shape != (len(lrs), B) or second.dtype != torch.int64 or params.W1.shape[0] != T * E:
            raise ValueError(f"minibatches {tuple(second.shape)} {second.dtype} for {len(lrs)} steps of batch {B}, "
                             f"block {T}, do not fit the model")
        rates = array.array("f", lrs)  # 4 µs for a chunk's 200, where torch.tensor took 12
        losses = torch.empty(len(lrs), dtype=torch.float32)
        pointers = [t.data_ptr() for t in (*params.tensors(), first, second)]
        if fn(len(lrs), B, T, E, H, V, *pointers, rates.buffer_info()[0], losses.data_ptr()) != 0:
            raise MemoryError("the native training steps could not allocate their buffers")
        return losses


def can_run(params: Params) -> bool:
    """Whether the native steps can run on these parameters (float32, contiguous); whether they pay
    there is measured (core.native.calibration)."""
    return all(t.dtype == torch.float32 and t.is_contiguous() for t in params.tensors())


def is_cached(cache_dir: Path | None = None) -> bool:
    """Whether build() would only load a whole library from the cache (milliseconds, not a second)."""
    try:
        path = _library_path(cache_dir or default_cache_dir(), _compiler(), target_arch())
    except BuildError:
        return False
    return os.path.lexists(path) and check_cached(path) is None


def build(cache_dir: Path | None = None) -> tuple[NativeKernel, str]:
    """Build (or find in the cache, checked against its record) and load the library: (kernel, one
    line saying how). Slow the first time (~1 s): run it off the training thread. Raises BuildError."""
    t0 = time.perf_counter()
    arch, compiler = target_arch(), _compiler()
    path = _library_path(cache_dir or default_cache_dir(), compiler, arch)
    why = None
    if os.path.lexists(path):
        why = check_cached(path)
        if why is None:
            try:
                kernel = NativeKernel(path, arch)
                return kernel, f"{_target(kernel)}, from the cache in {time.perf_counter() - t0:.1f} s"
            except BuildError as e:  # whole but not loadable here: build it again
                why = str(e).splitlines()[0][:200]
        remove(record_path(path))
        remove(path)
    try:
        _compile(compiler, arch, path)
    except OSError:  # the cache folder cannot be written: build for this process only
        kernel = _build_uncached(compiler, arch, path.name)
    else:
        kernel = NativeKernel(path, arch)
    again = f"; the cached library was not used: {why}" if why else ""
    return kernel, f"{_target(kernel)}, built with {compiler} in {time.perf_counter() - t0:.1f} s{again}"


def _build_uncached(compiler: str, arch: str, name: str) -> NativeKernel:
    """Built in a temporary folder, loaded, and the folder removed at once: the loaded library stays
    mapped, and no start leaves a folder behind. Its calibration is not cached either."""
    folder = Path(tempfile.mkdtemp(prefix="charmlp-native-"))
    try:
        _compile(compiler, arch, folder / name)
        kernel = NativeKernel(folder / name, arch)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    kernel.cache_dir = None
    return kernel


def _target(kernel: NativeKernel) -> str:
    return f"-march={kernel.arch}, {kernel.vector_floats}-float vectors"


class NativeSteps:
    """SGDStep's interface for the native kernel: runs chunks of steps on `params` in place."""

    def __init__(self, kernel: NativeKernel, params: Params) -> None:
        self.kernel, self.params = kernel, params

    def run(self, X: torch.Tensor, Y: torch.Tensor, lrs: list[float]) -> torch.Tensor:
        return self.kernel.run(self.params, X, Y, lrs)

    def run_batches(self, batches: Minibatches, lrs: list[float]) -> torch.Tensor:
        rows = batches.split.rows
        if rows is None:  # ids past a byte: no packed rows
            return self.run(*batches.tensors(), lrs)
        return self.kernel.run_rows(self.params, rows, batches.ix, lrs)
