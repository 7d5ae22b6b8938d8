"""Words in, vocabulary out: reading a names file and mapping characters to integer ids."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from core.errors import DataError
from core.files import protect
from core.reading import describe_char, first_unprintable, read_regular_file, shown_path, text_lines

BOUNDARY = "."  # start/end-of-word token, index 0, as in the lecture
BUILTIN_NAME = "built-in SSA names"
# The most a words file may hold. A file gives at most one example per byte (each character of
# a word is one, its line end the closing one), and building the dataset peaks at about 130 bytes
# of memory per example at block size 3 (measured: the int64 windows and their copies, the Python
# list of words), about 200 at block size 8. 16 MiB is about 2.3 million names, 70x makemore's
# names.txt (1M names build in ~3 s), and a build of at most ~2.2 GB at block size 3 (~3.4 GB at
# 8); a multi-GB file is refused in one line instead of read until memory runs out.
WORDS_MAX_BYTES = 16 << 20


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


def words_digest(words: list[str]) -> str:
    """sha256 of the words as read (one per line): what a run store keeps to know its data again,
    whatever the file's line ends or blank lines."""
    return hashlib.sha256("\n".join(words).encode("utf-8")).hexdigest()


def builtin_words_path() -> Path:
    """The names list shipped inside the package (see scripts/make_builtin_names.py)."""
    return Path(str(resources.files("core") / "assets" / "ssa_names.txt"))


def load_words(path: Path | None = None) -> list[str]:
    """Read one word per line (a line ends at \\r\\n, \\r or \\n). Blank lines and surrounding
    whitespace are ignored. The file is read only if it is a regular file of at most
    WORDS_MAX_BYTES (core.reading), and it is registered as an input this session never writes
    over (core.files.protect).

    Every word must be printable text (str.isprintable): a control character (ESC, BEL, the C0
    and C1 ranges, DEL, a tab inside a word), an invisible format character (zero-width spaces and
    joiners, bidi overrides, a BOM inside the text), a private-use or unassigned code point or a
    separator other than ' ' is refused with the file, the line and the code point. Words are
    drawn on the screen, sampled names are made of their characters, and such a character would
    reach the terminal raw (an ESC sequence can set the window title or switch screens) or make
    a name that looks like another; no escaping could show it as the name it is.

    Raises DataError with the file (and line, where there is one) for anything unusable.
    """
    shown = BUILTIN_NAME if path is None else shown_path(path)
    path = builtin_words_path() if path is None else Path(path)
    raw = read_regular_file(path, WORDS_MAX_BYTES, DataError, "words file", shown,
                            missing="no such file; give --data a UTF-8 text file, one word per line")
    protect(path, "words file")
    lines = text_lines(raw, shown, DataError, "a UTF-8 text file, one word per line")
    words = [w for w in (line.strip() for line in lines) if w]
    if not words:
        raise DataError(f"{shown}: no words (the file is empty or has only blank lines)")
    joined = "".join(words)
    if BOUNDARY in joined or not joined.isprintable():  # rare: find the first bad line
        for number, line in enumerate(lines, start=1):
            _check_word(line.strip(), shown, number)
    return words


def _check_word(word: str, shown: str, number: int) -> None:
    if BOUNDARY in word:
        raise DataError(f"{shown}:{number}: the word {word[:40]!r} contains {BOUNDARY!r}, "
                        "which is reserved as the start/end-of-word token; remove it")
    bad = first_unprintable(word)
    if bad is not None:  # repr escapes what is not printable
        raise DataError(f"{shown}:{number}: the word {word[:40]!r} contains {describe_char(bad)}; "
                        "words must be printable text, remove it")
