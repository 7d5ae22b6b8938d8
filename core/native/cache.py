"""The native library's cache files: each library with a record of its SHA-256 and size beside it,
written through temporary names and renames, and read back only as regular files of a bounded
size (a FIFO, link or directory put there cannot hang or fool the start). A build writes its
library into a folder of its own, named for its machine and process, so a later build removes
what a killed one left."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import stat
import tempfile
import uuid
from pathlib import Path


def record_path(library: Path) -> Path:
    """The record beside a library: its SHA-256 and size."""
    return library.with_name(library.name + ".sha256")


MAX_LIBRARY_BYTES = 64 << 20  # far above the ~100 KB a build makes: a record claiming more is not believed
MAX_RECORD_BYTES = 256
BUILD_LIBRARY = "library.so"  # what a build writes in its folder, before the rename
BUILD_FOLDER = re.compile(r"\.building\.([A-Za-z0-9_-]{1,64})\.([0-9]{1,10})\.[0-9a-f]{8}")  # host, pid


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


def new_build_folder(folder: Path) -> Path:
    """A new folder in `folder` for a build to write its library into before the rename, named
    for this machine and process (BUILD_FOLDER) so a later build can tell a killed one's. Made
    now, so a folder that cannot be written raises OSError here rather than as a compiler error."""
    path = folder / f".building.{_host()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    path.mkdir(mode=0o700)
    return path


def remove_build_folder(path: Path) -> None:
    """Remove a build's folder and its library; anything else in it keeps it there. Never raises."""
    try:
        (path / BUILD_LIBRARY).unlink(missing_ok=True)
        path.rmdir()
    except OSError:
        pass


def remove_abandoned_builds(folder: Path) -> None:
    """Remove the build folders in `folder` of this machine's processes that are gone: a build
    killed midway left its library (~74 KB) forever. A folder and not a file because the killed
    process's compiler runs on and writes its output later; with the folder gone it cannot.
    Only that pattern, never a link; what cannot be removed stays. Never raises."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        match = BUILD_FOLDER.fullmatch(entry.name)
        try:
            abandoned = match is not None and match[1] == _host() and _gone(int(match[2]))
            if abandoned and entry.is_dir(follow_symlinks=False):
                remove_build_folder(Path(entry.path))
        except OSError:
            pass


def _host() -> str:
    """This machine's name as a build folder carries it: a home directory shared by machines
    holds their builds too, whose processes cannot be seen from here. (Containers sharing a
    name and a cache but not process ids may take a live build for a killed one: that build
    then fails in one line or builds for itself; the cache stays sound.)"""
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:64] or "_"


def _gone(pid: int) -> bool:
    """Whether no process has this id here; where that cannot be told, False (its files stay)."""
    if os.name != "posix":  # on Windows os.kill(pid, 0) would end the process
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):  # PermissionError: another user's live process
        return False
    return False
