"""Reading the files a user names: regular files only, bounded, never a read that blocks.

A FIFO would block an open() or read() forever, /dev/zero or /dev/urandom would be read until
memory runs out, and a file of many GB would be read whole: each is refused in one line before
anything is allocated. The file is opened non-blocking and checked with fstat on the open
descriptor, so what is checked is what is read. Free of torch.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from core.errors import CharMLPError

_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))
_CHUNK = 1 << 20


def describe_size(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def file_kind(mode: int) -> str | None:
    """What a non-regular file is, in words (None for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_regular_file(path: Path, max_bytes: int, error: type[CharMLPError], what: str, shown: str | None = None,
                      missing: str = "no such file") -> bytes:
    """The bytes of `path`, or `error` with one line: missing, a directory, a FIFO, a device or a
    socket, more than max_bytes, or unreadable. `what` names the file in messages ("words file")."""
    shown = shown or str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(f"{shown}: {missing}") from None
    except OSError as e:
        raise error(f"{shown}: cannot be read ({e.strerror or e})") from None
    try:
        info = os.fstat(fd)
        kind = file_kind(info.st_mode)
        if kind is not None:
            raise error(f"{shown}: is {kind}, not a {what}; give a regular file")
        if info.st_size > max_bytes:
            raise error(f"{shown}: {describe_size(info.st_size)} is more than a {what} may be "
                        f"({describe_size(max_bytes)})")
        chunks, total = [], 0
        while chunk := os.read(fd, min(_CHUNK, max_bytes + 1 - total)):
            total += len(chunk)
            if total > max_bytes:  # it grew while we read (or /proc says size 0)
                raise error(f"{shown}: more than a {what} may be ({describe_size(max_bytes)})")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as e:
        raise error(f"{shown}: cannot be read ({e.strerror or e})") from None
    finally:
        os.close(fd)
