"""Writing the files a user asked for: never over a file we did not write without leave, and
never half a file (a temporary file beside the target, then a rename). Free of torch."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from core.errors import CharMLPError


def check_target(path: Path, force: bool, written: set[Path], error: type[CharMLPError], example: str,
                 overwrite_hint: str) -> Path:
    """The path to write, expanded; refused if it is a folder, or exists and is neither ours nor forced."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise error(f"{path}: is a directory; give a file name such as {path / example}")
    if path.exists() and not force and path.resolve() not in written:
        raise error(f"{path}: already exists; choose another name or {overwrite_hint}")
    return path


def replace_atomically(path: Path, write: Callable[[BinaryIO], object], error: type[CharMLPError], what: str) -> None:
    """Write through a temporary file beside `path`, synced, then renamed over it: a crash leaves
    the old file whole. open() creates it, so the user's umask applies."""
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise error(f"{path}: folder {directory} does not exist")
    tmp = directory / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise error(f"{path}: cannot write {what} ({e.strerror or e})") from None
