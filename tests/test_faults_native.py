"""The compiled-steps cache under damage: a cached library is loaded only once its checksum and
size match the record beside it; anything else there is built again and the steps still match.

One real build makes the good library. The damaged caches are rebuilt by a stand-in compiler that
copies it (a real compile takes a second or more), except one real rebuild end to end. Each case
has a cache folder of its own: the dynamic loader hands back a library already loaded from the
same path without reading the file again, so a shared folder could not show that the rebuilt
file loads and runs.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest
import torch

from core import native
from core.config import ModelConfig
from core.model import init_params


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> tuple[native.NativeKernel, Path]:
    """A real build in a fresh cache: the kernel and its library file."""
    cache = tmp_path_factory.mktemp("good")
    kernel, how = native.build(cache)
    assert "built with" in how and "not used" not in how, how
    return kernel, native._library_path(cache, native._compiler(), native.target_arch())


@pytest.fixture
def copying_compiler(good, monkeypatch) -> list[Path]:
    """Stands in for the compiler: writes the good library's bytes; the outputs it wrote, listed."""
    outputs: list[Path] = []

    def copy(compiler: str, arch: str, output: Path) -> None:
        outputs.append(output)
        shutil.copyfile(good[1], output)

    monkeypatch.setattr(native, "_run_compiler", copy)
    return outputs


def cache_with_good_library(good, folder: Path) -> Path:
    """A cache folder holding a copy of the good library and its record; returns the library's path."""
    library = native._library_path(folder, native._compiler(), native.target_arch())
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(good[1], library)
    shutil.copyfile(native.record_path(good[1]), native.record_path(library))
    return library


def same_steps(kernel: native.NativeKernel, other: native.NativeKernel) -> bool:
    params = init_params(ModelConfig(), 27)
    gen = torch.Generator().manual_seed(1)
    X, Y = torch.randint(0, 27, (20, 32, 3), generator=gen), torch.randint(0, 27, (20, 32), generator=gen)
    mine, theirs = params.clone(), params.clone()
    ok = torch.equal(kernel.run(mine, X, Y, [0.1] * 20), other.run(theirs, X, Y, [0.1] * 20))
    return ok and all(torch.equal(a, b) for a, b in zip(mine.tensors(), theirs.tensors()))


def assert_rebuilt(good, cache: Path, reason: str) -> native.NativeKernel:
    kernel, how = native.build(cache)
    assert "built with" in how and f"the cached library was not used: {reason}" in how, how
    library = native._library_path(cache, native._compiler(), native.target_arch())
    assert native.check_cached(library) is None  # a whole library and its record now
    assert same_steps(kernel, good[0])
    return kernel


def test_the_record_beside_a_build_matches_it_and_a_cached_load_builds_nothing(good, copying_compiler):
    library = good[1]
    data = library.read_bytes()
    assert native.record_path(library).read_text() == native.fingerprint(data)
    assert native.check_cached(library) is None
    kernel, how = native.build(library.parent)
    assert "from the cache" in how and not copying_compiler


def test_a_truncated_library_is_built_again_for_real(good, tmp_path):
    """As a crash mid-write or a full disk leaves it: loading it could kill the process with SIGBUS."""
    library = cache_with_good_library(good, tmp_path)
    data = library.read_bytes()
    library.write_bytes(data[: len(data) // 2])  # a file this process never loaded: safe to cut
    assert_rebuilt(good, tmp_path, "its size or checksum differs")
    assert library.stat().st_size == len(data)


@pytest.mark.parametrize("damage, reason", [
    ("flipped byte", "its size or checksum differs"),
    ("no record", "it has no checksum beside it"),
    ("record that lies", "its size or checksum differs"),
    ("empty library", "its size or checksum differs"),
    ("record of garbage", "cannot load"),
    ("empty folder", "it is not a regular file"),
    ("link", "it cannot be read"),
    ("record is a folder", "its checksum file cannot be read"),
])
def test_a_damaged_cache_is_built_again(good, tmp_path, copying_compiler, damage, reason):
    library = cache_with_good_library(good, tmp_path)
    record = native.record_path(library)
    data = bytearray(library.read_bytes())
    if damage == "flipped byte":
        data[len(data) // 2] ^= 0x01
        library.write_bytes(bytes(data))
    elif damage == "no record":  # its record deleted, or never written (an older build wrote it second)
        record.unlink()
    elif damage == "record that lies":
        record.write_text(native.fingerprint(b"something else"))
    elif damage == "empty library":
        library.write_bytes(b"")
    elif damage == "record of garbage":  # checks out, but is no library: the loader refuses it
        library.write_bytes(b"not a shared library")
        record.write_text(native.fingerprint(b"not a shared library"))
    elif damage == "empty folder":
        library.unlink()
        library.mkdir()
    elif damage == "link":  # to a whole library even: only a file the build wrote is loaded
        library.unlink()
        library.symlink_to(good[1])
    elif damage == "record is a folder":
        record.unlink()
        record.mkdir()
    assert_rebuilt(good, tmp_path, reason)
    assert len(copying_compiler) == 1
    assert library.is_file() and not library.is_symlink()


def test_a_folder_with_things_in_it_is_left_and_the_build_goes_elsewhere(good, tmp_path, copying_compiler):
    library = cache_with_good_library(good, tmp_path)
    library.unlink()
    library.mkdir()
    (library / "keep").write_text("not ours to delete")
    kernel, how = native.build(tmp_path)
    assert "the cached library was not used: it is not a regular file" in how
    assert (library / "keep").exists() and same_steps(kernel, good[0])
    assert len(copying_compiler) == 2  # the cache's install failed, then one for this process only
    assert not kernel.path.parent.exists() and kernel.cache_dir is None  # its folder gone, the library still runs


@pytest.mark.parametrize("which", ["library", "record"])
def test_a_fifo_in_the_cache_does_not_hang_the_start(good, tmp_path, copying_compiler, which):
    """Opening a FIFO for reading waits for a writer: the check must not open one blocking."""
    library = cache_with_good_library(good, tmp_path)
    fifo = library if which == "library" else native.record_path(library)
    fifo.unlink()
    os.mkfifo(fifo)
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(native.build(tmp_path)), daemon=True)
    thread.start()
    thread.join(60)
    if thread.is_alive():  # release the blocked reader, so the test fails instead of hanging
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(10)
        pytest.fail(f"build() blocked on the FIFO at the {which}")
    ((kernel, how),) = result
    reason = "it is not a regular file" if which == "library" else "its checksum file cannot be read"
    assert f"the cached library was not used: {reason}" in how and same_steps(kernel, good[0])
    assert native.check_cached(library) is None


def abandoned_build(cache: Path, host: str, pid: int, hex8: str = "0123abcd") -> str:
    """A build's folder with its library, as a build killed midway leaves it; its name."""
    folder = cache / f".building.{host}.{pid}.{hex8}"
    folder.mkdir()
    (folder / "library.so").write_bytes(b"half a library")
    return folder.name


def test_a_build_removes_the_folders_of_killed_builds_and_nothing_else(good, tmp_path, copying_compiler):
    """A build killed mid-compile (SIGKILL) left its temporary library (~74 KB) forever: the next
    build removes what builds of this machine whose process is gone left, and nothing else."""
    host = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:64]
    gone = subprocess.Popen(["true"])
    gone.wait()
    running = subprocess.Popen(["sleep", "60"])
    try:
        dead = [abandoned_build(tmp_path, host, gone.pid)]
        kept = [abandoned_build(tmp_path, host, os.getpid()), abandoned_build(tmp_path, host, running.pid),
                abandoned_build(tmp_path, "another-machine", gone.pid)]  # a home shared by machines
        kept.append(abandoned_build(tmp_path, host, gone.pid, "89abcdef"))
        (tmp_path / kept[-1] / "notes.txt").write_text("not ours to delete")
        others = ["tmpab12cd34.so", f".building.{host}.{gone.pid}.0123abcd.bak", f".building.{host}.{gone.pid}.0123ABCD"]
        for name in others:
            (tmp_path / name).write_bytes(b"not ours")
        os.symlink(tmp_path / kept[0], tmp_path / f".building.{host}.{gone.pid}.0000ffff")  # a link: never followed
        kernel, how = native.build(tmp_path)
    finally:
        running.kill()
        running.wait()
    assert "built with" in how and same_steps(kernel, good[0])
    (output,) = copying_compiler
    assert re.fullmatch(rf"\.building\.{re.escape(host)}\.{os.getpid()}\.[0-9a-f]{{8}}", output.parent.name)
    assert not output.parent.exists()  # its own folder gone too
    library = native._library_path(tmp_path, native._compiler(), native.target_arch())
    left = kept + others + [f".building.{host}.{gone.pid}.0000ffff", library.name, native.record_path(library).name]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(left)
    assert all((tmp_path / name / "library.so").exists() for name in kept[:3])  # live, or another machine's
    assert (tmp_path / kept[3] / "notes.txt").exists()  # a dead build's folder holding more than its library stays
