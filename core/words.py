"""Words in, vocabulary out: reading a names file and mapping characters to integer ids."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from core.errors import DataError

BOUNDARY = "."  # start/end-of-word token, index 0, as in the lecture
BUILTIN_NAME = "built-in SSA names"


@dataclass(frozen=True)
class Vocab:
    chars: str  # the sorted distinct characters of the words; chars[i] has id i + 1

    @classmethod
    def from_words(cls, words: list[str]) -> Vocab:
        return cls("".join(sorted(set("".join(words)))))

    @property
    def size(self) -> int:
        return len(self.chars) + 1  # + the boundary token

    def itos(self, i: int) -> str:
        return BOUNDARY if i == 0 else self.chars[i - 1]

    def decode(self, ids: list[int]) -> str:
        return "".join(self.chars[i - 1] for i in ids if i > 0)


def builtin_words_path() -> Path:
    """The names list shipped inside the package (see scripts/make_builtin_names.py)."""
    return Path(str(resources.files("core") / "assets" / "ssa_names.txt"))


def load_words(path: Path | None = None) -> list[str]:
    """Read one word per line. Blank lines and surrounding whitespace are ignored.

    Raises DataError with the file (and line, where there is one) for anything unusable.
    """
    shown = BUILTIN_NAME if path is None else str(path)
    path = builtin_words_path() if path is None else Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{shown}: no such file; give --data a UTF-8 text file, one word per line") from None
    except IsADirectoryError:
        raise DataError(f"{shown}: is a directory, not a words file") from None
    except OSError as e:
        raise DataError(f"{shown}: cannot be read ({e.strerror or e})") from None
    if b"\x00" in raw:
        line = raw.count(b"\n", 0, raw.index(b"\x00")) + 1
        raise DataError(f"{shown}:{line}: binary data (a NUL byte); expected a UTF-8 text file, one word per line")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise DataError(
            f"{shown}:{line}: not UTF-8 (byte 0x{raw[e.start]:02x}); re-save the file as UTF-8"
        ) from None
    lines = text.split("\n")
    words = [w for w in (line.strip() for line in lines) if w]
    if not words:
        raise DataError(f"{shown}: no words (the file is empty or has only blank lines)")
    if BOUNDARY in text:
        for number, entry in enumerate(lines, start=1):
            if BOUNDARY in entry.strip():
                raise DataError(
                    f"{shown}:{number}: the word {entry.strip()[:40]!r} contains {BOUNDARY!r}, "
                    "which is reserved as the start/end-of-word token; remove it"
                )
    return words
