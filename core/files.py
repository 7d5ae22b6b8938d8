"""Writing the files a user asked for: never over a file we did not write without leave, never over
what is not a regular file or over a file this session reads, and never half a file (a temporary
file beside the target, then a rename). Checkpoints, session scripts and the autosave all come
through check_target and replace_atomically, so each rule holds for all of them. Free of torch.

The files a session reads as input (the words file, the script file) are registered with
protect() by their readers (core.words.load_words, tui.settings) and compared by identity
(os.path.samefile: a symlink, a hard link or another spelling of the name is the same file).
Why a registry and not a parameter: the writers (Trainer.save, the app's export, the autosave)
know only the path they were given, and "the files this process reads" is a fact about the
process, so one list kept here puts the rule under every writer, present and future. Entries
are compared by what is at their path now, never by a remembered inode number, which the file
that follows a deleted input may reuse anywhere on the disk.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from core.errors import CharMLPError
from core.reading import file_kind, shown_path

_inputs: dict[str, str] = {}  # absolute path -> what it is ("words file"): files this process reads
_inputs_lock = threading.Lock()
_NAME_MAX = 255  # bytes in one file name on Linux, macOS and Windows file systems
_TMP_SUFFIX = r"\.(\d+)\.[0-9a-f]{8}\.tmp"  # .<name>.<pid>.<8 hex>.tmp: whose it is, so orphans are known


def protect(path: Path, what: str) -> None:
    """Never write over `path` in this process: it is an input (`what`: "words file")."""
    with _inputs_lock:
        _inputs.setdefault(os.path.abspath(path), what)


def input_at(path: Path) -> str | None:
    """What `path` is to this session ("words file") if it is the same file as one it reads."""
    with _inputs_lock:
        inputs = list(_inputs.items())
    for known, what in inputs:
        try:
            if os.path.samefile(known, path):
                return what
        except (OSError, ValueError):  # gone, or unreadable: it cannot be the file at `path`
            continue
    return None


def expand(path: Path | str, error: type[CharMLPError]) -> Path:
    """`~` and `~user` expanded; a user with no home is one line, not a RuntimeError."""
    try:
        return Path(path).expanduser()
    except RuntimeError:  # ~nosuchuser
        user = str(path).split("/", 1)[0]
        raise error(f"{shown_path(path)}: {shown_path(user)} names no user with a home folder") from None


def resolved(path: Path) -> Path:
    """The path made absolute with links followed, or absolute as it is where that fails (a link loop)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return Path(os.path.abspath(path))


def check_target(path: Path, force: bool, written: set[Path], error: type[CharMLPError], example: str,
                 overwrite_hint: str) -> Path:
    """The path to write, expanded; refused (even with force) if it is a folder, not a regular
    file (a device, a FIFO, a socket: a symlink is followed to see), or a file this session reads;
    refused without force if it exists and is not in `written`. Nothing is written here."""
    path = expand(path, error)
    shown = shown_path(path)
    if "\0" in str(path):
        raise error(f"{shown}: a file name cannot contain a NUL byte; give another name")
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):  # a new file (replace_atomically checks its folder)
        return path
    except OSError as e:
        raise error(f"{shown}: cannot be written ({e.strerror or e}); give another name") from None
    kind = file_kind(info.st_mode)
    if kind == "a directory":
        raise error(f"{shown}: is a directory; give a file name such as {shown_path(path / example)}")
    if kind is not None:
        raise error(f"{shown}: is {kind}, not a regular file, and only a regular file is ever replaced; "
                    "give a file name")
    what = input_at(path)
    if what is not None:
        raise error(f"{shown}: is the {what} this session reads, which is never overwritten; choose another name")
    if not force and resolved(path) not in written:
        raise error(f"{shown}: already exists; choose another name or {overwrite_hint}")
    return path


def _tmp_prefix(name: str) -> str:
    """The start of the temporary files' names for target `name`: '.name', or for a name too long
    to carry the suffix as well, a fixed-length digest of it."""
    prefix = f".{name}"
    if len(os.fsencode(prefix)) + 24 > _NAME_MAX:  # 24: .<pid, 7 digits>.<8 hex>.tmp and a margin
        prefix = f".charmlp-{hashlib.sha256(os.fsencode(name)).hexdigest()[:16]}"
    return prefix


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # this process's own (another thread's save under way)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except (OverflowError, ValueError, OSError):
        return False  # no process can have this id
    return True


def remove_orphans(directory: Path, prefix: str) -> list[str]:
    """Remove the temporary files of saves to this target whose process is gone (killed mid-save,
    kill -9 or a power cut); the names removed. Best effort: what cannot be removed stays."""
    pattern = re.compile(re.escape(prefix) + _TMP_SUFFIX)
    removed: list[str] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None or _alive(int(match[1])):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(entry.name)
        except OSError:
            pass
    return removed


def replace_atomically(path: Path, write: Callable[[BinaryIO], object], error: type[CharMLPError], what: str,
                       exclusive: bool = False) -> None:
    """Write through a temporary file beside `path`, synced, then renamed over it: a crash leaves
    the old file whole, and any failure (a full disk, a read-only place, no permission, a name too
    long, an interrupt) leaves no temporary file and one line in `error`. The temporary name
    carries this process's id, so a later save removes what a killed one left. open() creates it,
    so the user's umask applies. exclusive: `path` must not exist (two processes saving to one new
    name: the second is refused, not silently replaced)."""
    path = Path(path)
    shown = shown_path(path)
    if "\0" in str(path):
        raise error(f"{shown}: a file name cannot contain a NUL byte; give another name")
    directory = path.parent if str(path.parent) else Path(".")
    try:
        if not directory.is_dir():
            raise error(f"{shown}: folder {shown_path(directory)} does not exist")
    except OSError as e:
        raise error(f"{shown}: cannot write {what} ({e.strerror or e})") from None
    prefix = _tmp_prefix(path.name)
    remove_orphans(directory, prefix)
    tmp = directory / f"{prefix}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    created = False
    try:
        with open(tmp, "xb") as f:
            created = True
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            os.link(tmp, path)  # fails if the name was taken meanwhile; os.replace would not
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
        created = False
        _sync_folder(directory)
    except FileExistsError:
        raise error(f"{shown}: was written meanwhile by another program; choose another name") from None
    except NotADirectoryError:
        raise error(f"{shown}: {shown_path(directory)} is a file, not a folder") from None
    except OSError as e:
        raise error(f"{shown}: cannot write {what} ({_reason(e)}); the previous file, if any, is unchanged") from None
    except RuntimeError as e:  # torch's zip writer hides the OSError of a full disk behind its own error
        cause = e.__context__ if isinstance(e.__context__, OSError) else None
        why = _reason(cause) if cause else "the write failed part-way"
        raise error(f"{shown}: cannot write {what} ({why}); the previous file, if any, is unchanged") from None
    finally:
        if created:  # any failure, an interrupt included: no temporary file left behind
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _reason(e: OSError) -> str:
    if e.errno == errno.ENOSPC:
        return "no space left on the device"
    if e.errno == errno.EROFS:
        return "the place is read-only"
    if e.errno == errno.ENAMETOOLONG:
        return "the file name is too long"
    return e.strerror or str(e)


def _sync_folder(directory: Path) -> None:
    """Make the rename itself durable (best effort: not every system can open a folder)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
