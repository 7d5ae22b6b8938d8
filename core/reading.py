"""Reading the files a user names: regular files only, bounded, never a read that blocks; and
showing what came from outside (a file name, a line) without ever writing it raw to a terminal.

A FIFO would block an open() or read() forever, /dev/zero or /dev/urandom would be read until
memory runs out, and a file of many GB would be read whole: each is refused in one line before
anything is allocated. The file is opened non-blocking and checked with fstat on the open
descriptor, so what is checked is what is read. It is read in chunks of 1 MiB, so a signal's
handler runs between them and may end a long read. Free of torch.
"""

from __future__ import annotations

import os
import stat
import unicodedata
from pathlib import Path

from core.errors import CharMLPError

_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))
_CHUNK = 1 << 20
_CATEGORIES = {"Cc": "a control character", "Cf": "an invisible format character", "Cs": "a surrogate",
               "Co": "a private-use character", "Cn": "an unassigned code point", "Zl": "a line separator",
               "Zp": "a paragraph separator", "Zs": "a space other than ' '"}


def printable(text: str) -> str:
    """`text` with every character that is not printable (str.isprintable: the control, format,
    private-use, unassigned and separator characters, ' ' excepted) escaped as repr escapes it
    (ESC -> \\x1b, U+200B -> \\u200b). Anything read from outside goes through this (or repr) before
    it reaches a terminal: an ESC in a file name would otherwise drive the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def shown_path(path: str | os.PathLike[str]) -> str:
    """A path as messages and the screen show it: printable, its odd characters escaped."""
    return printable(os.fspath(path))


def describe_char(c: str) -> str:
    """'U+001B (a control character)', 'U+200B (an invisible format character, ZERO WIDTH SPACE)'."""
    kind = _CATEGORIES.get(unicodedata.category(c), "not printable")
    name = unicodedata.name(c, "")
    return f"U+{ord(c):04X} ({kind}{', ' + name if name else ''})"


def first_unprintable(text: str, allowed: str = "") -> str | None:
    """The first character of `text` that is neither printable nor in `allowed`, or None."""
    if text.isprintable():
        return None
    return next((c for c in text if not c.isprintable() and c not in allowed), None)


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


def open_regular(path: Path, max_bytes: int, error: type[CharMLPError], what: str, shown: str,
                 missing: str = "no such file") -> tuple[int, int]:
    """(an open descriptor, the size) of `path`, or `error` with one line: missing, a directory, a
    FIFO, a device or a socket, more than max_bytes, or unreadable. Opened non-blocking and checked
    with fstat on that descriptor, so what was checked is what is read. The caller closes it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(f"{shown}: {missing}") from None
    except ValueError:  # a NUL byte in the name
        raise error(f"{shown}: a file name cannot contain a NUL byte; give the {what}'s name") from None
    except OSError as e:  # a socket cannot be opened (ENXIO): say what it is where that can be known
        kind = _kind_at(path)
        if kind is not None:
            raise error(f"{shown}: is {kind}, not a {what}; give a regular file") from None
        raise error(f"{shown}: cannot be read ({e.strerror or e})") from None
    try:
        info = os.fstat(fd)
        kind = file_kind(info.st_mode)
        if kind is not None:
            raise error(f"{shown}: is {kind}, not a {what}; give a regular file")
        if info.st_size > max_bytes:
            raise error(f"{shown}: {describe_size(info.st_size)} ({info.st_size:,} bytes) is more than a {what} may "
                        f"be ({describe_size(max_bytes)}); give a smaller file")
    except OSError as e:
        os.close(fd)
        raise error(f"{shown}: cannot be read ({e.strerror or e})") from None
    except CharMLPError:
        os.close(fd)
        raise
    return fd, int(info.st_size)


def read_regular_file(path: Path, max_bytes: int, error: type[CharMLPError], what: str, shown: str | None = None,
                      missing: str = "no such file") -> bytes:
    """The bytes of `path` (open_regular's checks), read in pieces up to max_bytes. `what` names the
    file in messages ("words file"); `shown` is how the file is named in them (by default the path,
    escaped by shown_path)."""
    shown = shown or shown_path(path)
    fd, _ = open_regular(path, max_bytes, error, what, shown, missing)
    try:
        chunks, total = [], 0
        while chunk := os.read(fd, min(_CHUNK, max_bytes + 1 - total)):
            total += len(chunk)
            if total > max_bytes:  # it grew while we read (or /proc says size 0)
                raise error(f"{shown}: more than a {what} may be ({describe_size(max_bytes)}); give a smaller file")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as e:
        raise error(f"{shown}: cannot be read ({e.strerror or e})") from None
    finally:
        os.close(fd)


def _kind_at(path: Path) -> str | None:
    try:
        return file_kind(os.stat(path).st_mode)
    except (OSError, ValueError):
        return None


def _line_of(raw: bytes, offset: int) -> int:
    """The line number of byte `offset`, line ends being \\r\\n, \\r or \\n."""
    return 1 + raw.count(b"\n", 0, offset) + raw.count(b"\r", 0, offset) - raw.count(b"\r\n", 0, offset)


def text_lines(raw: bytes, shown: str, error: type[CharMLPError], expected: str) -> list[str]:
    """The lines of a UTF-8 text file (a leading BOM dropped; \\r\\n, \\r and \\n each end a line,
    the old Mac's CR-only files included), or `error` with the line of the first NUL byte or
    undecodable byte. `expected` says what the file should be ("a UTF-8 text file, one word per line")."""
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise error(f"{shown}:{_line_of(raw, nul)}: binary data (a NUL byte); expected {expected}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise error(f"{shown}:{_line_of(raw, e.start)}: not UTF-8 (byte 0x{raw[e.start]:02x}); "
                    "re-save the file as UTF-8") from None
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
