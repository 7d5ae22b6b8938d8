"""The native library's cache files: each library with a record of its SHA-256 and size beside it,
written through temporary names and renames, and read back only as regular files of a bounded
size (a FIFO, link or directory put there cannot hang or fool the start)."""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path


def record_path(library: Path) -> Path:
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


def fingerprint(data: bytes) -> str:
    return f"sha256 {hashlib.sha256(data).hexdigest()}\nsize {len(data)}\n"


def check_cached(library: Path) -> str | None:
    """None if the library matches the record beside it, else why not, in a few words."""
    try:
        record = _read_regular(record_path(library), MAX_RECORD_BYTES).decode("ascii")
    except FileNotFoundError:
        return "it has no checksum beside it"
    except (OSError, ValueError) as e:  # UnicodeDecodeError is a ValueError
        return f"its checksum file cannot be read ({getattr(e, 'strerror', None) or e})"
    try:
        data = _read_regular(library, MAX_LIBRARY_BYTES)
    except (OSError, ValueError) as e:
        return f"it {e}" if isinstance(e, ValueError) else f"it cannot be read ({e.strerror or e})"
    if record != fingerprint(data):
        return "its size or checksum differs from the record beside it"
    return None


def remove(path: Path) -> None:
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


def write_replacing(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
