"""The fault suite, files: what is not a plain text file, line ends and characters, and writing.

Part of the fault suite (tests/test_faults.py holds the rest and its conventions): each bad input
gets one clear line naming the file (and line), exit code 2 in headless mode, and loses nothing.
- Reading (core.reading): only regular files, bounded; a FIFO, a device, a socket or a file over
  the bound is refused at once, without blocking and without reading it.
- Characters (core.words, the script file): \\r\\n, \\r and \\n all end a line; a word (or a
  script line) with a character that is not printable is refused with the file, the line and its
  code point; a file name is shown with such characters escaped. Nothing read from outside
  reaches the terminal raw.
- Writing (core.files): never over what is not a regular file, never over a file the session
  reads, --force or not; a failed save leaves the previous file and no temporary file; a killed
  save's temporary file is removed by the next save to the same place.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import deadline
from core.errors import CheckpointError, ConfigError, DataError
from core.files import check_target, protect, remove_orphans, replace_atomically
from core.reading import printable, read_regular_file, shown_path
from core.recording import write_script
from core.words import WORDS_MAX_BYTES, load_words
from tui.settings import SCRIPT_MAX_BYTES

NAMES = b"emma\nolivia\nava\nisabella\nsophia\nmia\ncharlotte\namelia\nharper\nevelyn\n"


def one_clear_line(err: str) -> str:
    """One line, no traceback, and nothing a terminal would act on (an ESC, a BEL, a CR...)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].isprintable(), repr(lines[0])
    return lines[0]


@pytest.fixture
def names(tmp_path) -> Path:
    path = tmp_path / "names.txt"
    path.write_bytes(NAMES * 3)
    return path


@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


def refused(headless, *args: str, expected: str) -> str:
    """Headless refuses, exit 2, nothing on stdout, one line that says `expected`."""
    with deadline(20):
        code, out, err = headless(*args)
    assert code == 2 and out == "", (code, out, err)
    line = one_clear_line(err)
    assert expected in line, line
    return line


def tmp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# ---- 3. files that are not plain text files --------------------------------------------------------
def test_a_fifo_as_data_or_script_is_refused_at_once(headless, fifo, names):
    line = refused(headless, "--data", str(fifo), "--script", "run 1", expected="is a named pipe (FIFO)")
    assert "pipe" in line and "give a regular file" in line and "data:" not in line
    refused(headless, "--data", str(names), "--script-file", str(fifo), expected="is a named pipe (FIFO)")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_a_device_as_data_or_script_is_refused_unread(headless, names, device):
    refused(headless, "--data", device, "--script", "run 1", expected=f"{device}: is a character device")
    refused(headless, "--data", str(names), "--script-file", device, expected="is a character device")


def test_a_socket_or_a_directory_is_refused(headless, tmp_path, names):
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "sock"))
        refused(headless, "--data", str(tmp_path / "sock"), "--script", "run 1", expected="is a socket")
    finally:
        sock.close()
    refused(headless, "--data", str(names), "--script-file", str(tmp_path), expected="is a directory")


def sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)  # no disk used: the bound is checked on the size before anything is read
    return path


def test_a_file_just_over_the_bound_is_refused_before_it_is_read(headless, tmp_path, names):
    big = sparse(tmp_path / "big.txt", WORDS_MAX_BYTES + 1)
    line = refused(headless, "--data", str(big), "--script", "run 1", expected="more than a words file may be")
    assert "16.0 MiB" in line and f"{WORDS_MAX_BYTES + 1:,} bytes" in line
    script = sparse(tmp_path / "script.txt", SCRIPT_MAX_BYTES + 1)
    refused(headless, "--data", str(names), "--script-file", str(script), expected="more than a script file may be")


def test_the_bound_holds_when_the_size_lies_or_the_file_grows(tmp_path):
    path = tmp_path / "exact.txt"
    path.write_bytes(b"x" * 100)
    assert read_regular_file(path, 100, DataError, "words file") == b"x" * 100
    with pytest.raises(DataError, match="more than a words file may be"):
        read_regular_file(path, 99, DataError, "words file")
    # /proc files say size 0 and are read in chunks: the bound stops the read itself
    with pytest.raises(DataError, match="more than a words file may be"):
        read_regular_file(Path("/proc/self/maps"), 10, DataError, "words file")


def test_a_nul_or_an_overlong_name_to_read_is_one_line(headless, tmp_path):
    refused(headless, "--data", str(tmp_path / "a\0b.txt"), "--script", "run 1", expected="NUL byte")
    refused(headless, "--data", str(tmp_path / ("n" * 300)), "--script", "run 1", expected="cannot be read")


def test_a_fifo_with_a_writer_that_never_stops_is_refused_unread(headless, fifo):
    """Opened non-blocking and checked before any read: the writer's endless stream is never read."""
    writer = subprocess.Popen(["sh", "-c", f"exec yes emma > '{fifo}'"], stderr=subprocess.DEVNULL)
    try:
        refused(headless, "--data", str(fifo), "--script", "run 1", expected="is a named pipe (FIFO)")
    finally:
        writer.kill()
        writer.wait()


# ---- 4. line ends and characters ------------------------------------------------------------------
LINE_ENDS = [  # (case, file contents, the words)
    ("CR only (old Mac)", b"emma\rava\rmia\r", ["emma", "ava", "mia"]),
    ("CR only, no final line end", b"emma\rava\rmia", ["emma", "ava", "mia"]),
    ("mixed CR, LF, CRLF", b"emma\r\nava\rmia\nzoe\r\r\nleo", ["emma", "ava", "mia", "zoe", "leo"]),
    ("LF CR (not one line end: two)", b"emma\n\rava", ["emma", "ava"]),
    ("BOM then CR", b"\xef\xbb\xbfemma\rava", ["emma", "ava"]),
]


@pytest.mark.parametrize(("case", "content", "words"), LINE_ENDS, ids=[c[0] for c in LINE_ENDS])
def test_cr_lf_and_crlf_all_end_a_line(tmp_path, case, content, words):
    path = tmp_path / "words.txt"
    path.write_bytes(content)
    assert load_words(path) == words


def test_cr_only_file_trains_and_counts_lines(headless, tmp_path):
    path = tmp_path / "mac.txt"
    path.write_bytes(NAMES.replace(b"\n", b"\r") * 3)
    code, out, err = headless("--data", str(path), "--script", "run 20")
    assert code == 0 and "30 words" in err, err
    path.write_bytes(b"emma\rava\r\nmr.x\rmia\r")
    refused(headless, "--data", str(path), "--script", "run 1", expected="mac.txt:3: the word 'mr.x'")
    path.write_bytes(b"emma\rava\r\nzo\xe9\r")
    refused(headless, "--data", str(path), "--script", "run 1", expected="mac.txt:3: not UTF-8")
    path.write_bytes(b"emma\r\r\nav\x00a\r")
    refused(headless, "--data", str(path), "--script", "run 1", expected="mac.txt:3: binary data")


BAD_CHARACTERS = [  # (case, the bad line, the code point named)
    ("ESC: an OSC that sets the window title", b"ava\x1b]0;pwned\x07", "U+001B"),
    ("ESC: switch to the alternate screen", b"\x1b[?1049hava", "U+001B"),
    ("BEL", b"av\x07a", "U+0007"),
    ("backspace", b"ava\x08\x08x", "U+0008"),
    ("DEL", b"av\x7fa", "U+007F"),
    ("C1 CSI (U+009B)", "av\u009b2Ja".encode(), "U+009B"),
    ("C1 NEL inside a word", "av\u0085a".encode(), "U+0085"),
    ("tab inside a word", b"mary\tann", "U+0009"),
    ("vertical tab inside", b"av\x0ba", "U+000B"),
    ("zero-width space", "a\u200bva".encode(), "U+200B"),
    ("zero-width joiner", "a\u200dva".encode(), "U+200D"),
    ("right-to-left override (bidi)", "a\u202eva".encode(), "U+202E"),
    ("first strong isolate (bidi)", "a\u2068va".encode(), "U+2068"),
    ("a BOM inside the text", "a\ufeffva".encode(), "U+FEFF"),
    ("line separator U+2028", "a\u2028va".encode(), "U+2028"),
    ("no-break space inside", "a\u00a0va".encode(), "U+00A0"),
    ("private use", "a\ue000va".encode(), "U+E000"),
    ("unassigned code point", "a\U000e0080va".encode(), "U+E0080"),
]


@pytest.mark.parametrize(("case", "line", "code_point"), BAD_CHARACTERS, ids=[c[0] for c in BAD_CHARACTERS])
def test_a_word_with_a_character_that_is_not_printable_is_refused(headless, tmp_path, case, line, code_point):
    path = tmp_path / "words.txt"
    path.write_bytes(NAMES + line + b"\n" + NAMES)
    message = refused(headless, "--data", str(path), "--script", "run 1", expected="words.txt:11: the word ")
    assert code_point in message and "printable" in message


def test_printable_words_outside_ascii_and_a_space_inside_still_work(tmp_path):
    path = tmp_path / "words.txt"
    path.write_bytes("zoé\nstraße\nmary ann\n  chloé  \n\x1c\x1d\n😀ok\nà\u0301\n".encode())
    assert load_words(path) == ["zoé", "straße", "mary ann", "chloé", "😀ok", "à\u0301"]


def test_a_path_with_control_characters_is_shown_escaped(headless, tmp_path):
    good = tmp_path / "na\x1b]0;pwned\x07mes.txt"
    good.write_bytes(NAMES * 3)
    code, out, err = headless("--data", str(good), "--script", "run 10", "--autosave", str(tmp_path / "m\x1b[2J.pt"))
    assert code == 0, err
    assert "\x1b" not in out + err and "\x07" not in out + err
    assert r"na\x1b]0;pwned\x07mes.txt" in err and r"m\x1b[2J.pt" in err
    bad = tmp_path / "two\nlines\r\x1b[31m.txt"
    bad.write_bytes(b"")
    line = refused(headless, "--data", str(bad), "--script", "run 1", expected="no words")
    assert r"two\nlines\r\x1b[31m.txt" in line
    refused(headless, "--data", str(tmp_path / "gone\x1b[2J"), "--script", "run 1", expected=r"gone\x1b[2J: no such file")


def test_printable_and_shown_path():
    assert printable("emma") == "emma" and printable("a\x1bb\u200bc\td") == r"a\x1bb\u200bc\td"
    assert shown_path(Path("/tmp/x\x07y")) == r"/tmp/x\x07y"
    assert shown_path(os.fsdecode(b"/tmp/\xff")) == r"/tmp/\udcff"  # a name that is not UTF-8


def test_a_script_file_with_cr_line_ends_runs_and_with_an_esc_is_refused(headless, tmp_path, names):
    script = tmp_path / "session.txt"
    script.write_bytes(b"run 10\rsample 2\r\neval\r")
    code, out, err = headless("--data", str(names), "--script-file", str(script))
    assert code == 0 and "final: step 10" in out, err
    script.write_bytes(b"run 10\n\x1b]0;pwned\x07\n")
    line = refused(headless, "--data", str(names), "--script-file", str(script), expected="session.txt:2: U+001B")
    assert r"\x1b]0;pwned\x07" in line
    script.write_bytes(b"run 10\r\xff\n")
    refused(headless, "--data", str(names), "--script-file", str(script), expected="session.txt:2: not UTF-8")
    script.write_bytes(b"run 10\n\trun 5\t# a tab is whitespace\n")
    code, out, err = headless("--data", str(names), "--script-file", str(script))
    assert code == 0 and "final: step 15" in out, err


# the reader's contract, for any bytes at all: words that are all usable, or one line naming the file
INTERESTING = st.sampled_from([b"\n", b"\r", b"\r\n", b" ", b"\t", b".", b"\x00", b"\x1b", b"\x07", b"\xc2\x85",
                               b"\xc2\x9b", b"\xe2\x80\x8b", b"\xe2\x80\xae", b"\xef\xbb\xbf", b"\xc3\xa9", b"\xff",
                               b"\xe2\x80\xa8", b"\xc3", b"emma", b"a", b"z", "😀".encode()])
RAW = st.one_of(st.binary(max_size=200), st.lists(INTERESTING, max_size=40).map(b"".join))


@pytest.fixture(scope="module")
def read_file(tmp_path_factory) -> Path:
    """One file that each example of a property overwrites."""
    return tmp_path_factory.mktemp("words") / "words.txt"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=RAW)
def test_any_bytes_give_usable_words_or_one_line_naming_the_file(read_file, raw):
    read_file.write_bytes(raw)
    try:
        words = load_words(read_file)
    except DataError as e:
        message = str(e)
        assert message.startswith(f"{read_file}:") and message.isprintable(), repr(message)
        return
    assert words
    for word in words:
        assert word and word.isprintable() and "." not in word and word == word.strip()


WORD = st.text(st.characters(codec="utf-8", categories=["L", "M", "N", "P", "S"], exclude_characters="."),
               min_size=1, max_size=12).map(str.strip).filter(bool)


@settings(max_examples=150, deadline=None)
@given(entries=st.lists(st.tuples(WORD, st.sampled_from(["\n", "\r", "\r\n", "\n\n", "\r\r\n", " \t\n"])),
                        min_size=1, max_size=30), bom=st.booleans())
def test_printable_words_come_back_whatever_the_line_ends(read_file, entries, bom):
    text = "".join(word + end for word, end in entries)
    read_file.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    assert load_words(read_file) == [word for word, _ in entries]


# ---- 7. writing files -----------------------------------------------------------------------------
def test_autosave_onto_what_is_not_a_regular_file_is_refused(headless, tmp_path, names, fifo):
    null = tmp_path / "null-link"
    null.symlink_to("/dev/null")
    for target, kind in [(fifo, "a named pipe (FIFO)"), (null, "a character device"), (Path("/dev/null"),
                                                                                         "a character device")]:
        refused(headless, "--data", str(names), "--script", "run 1", "--autosave", str(target),
                expected=f"--autosave: {target}: is {kind}, not a regular file")
    assert fifo.is_fifo() and null.is_symlink() and os.readlink(null) == "/dev/null"


def test_save_never_replaces_what_is_not_a_regular_file_even_forced(trainer, tmp_path, fifo):
    null = tmp_path / "null-link"
    null.symlink_to("/dev/null")
    for target in (fifo, null):
        with pytest.raises(CheckpointError, match="not a regular file") as e:
            trainer.save(target, force=True)
        assert "\n" not in str(e.value)
    assert fifo.is_fifo() and null.is_symlink()
    with pytest.raises(ConfigError, match="not a regular file"):
        write_script(fifo, "run 1\n", True, set())
    assert tmp_files(tmp_path) == []


def test_autosave_onto_the_data_or_script_file_is_refused(headless, tmp_path, names):
    before = names.read_bytes()
    link = tmp_path / "link.txt"
    link.symlink_to(names)
    hard = tmp_path / "hard.txt"
    os.link(names, hard)
    for target in (names, link, hard, tmp_path / "." / "names.txt"):
        refused(headless, "--data", str(names), "--script", "run 5", "--autosave", str(target),
                expected="is the words file this session reads")
    script = tmp_path / "session.txt"
    script.write_text("run 5\n")
    refused(headless, "--data", str(names), "--script-file", str(script), "--autosave", str(script),
            expected="is the script file this session reads")
    assert names.read_bytes() == before and script.read_text() == "run 5\n"


def test_save_force_onto_the_data_file_is_refused(headless, tmp_path, names):
    before = names.read_bytes()
    code, out, err = headless("--data", str(names), "--force", "--script", f"run 5; save {names}")
    errors = [line for line in err.splitlines() if "error" in line]  # after the data and model lines
    assert code == 2 and len(errors) == 1 and "is the words file this session reads" in errors[0], err
    assert names.read_bytes() == before and tmp_files(tmp_path) == []


def test_a_session_export_onto_an_input_is_refused(tmp_path, names):
    load_words(names)  # reading it registers it, as the app's worker does
    with pytest.raises(ConfigError, match="is the words file this session reads"):
        write_script(names, "run 1\n", True, {names.resolve()})
    assert names.read_bytes() == NAMES * 3


def test_inputs_are_compared_by_what_is_at_their_path_now(tmp_path):
    """Never by a remembered inode number: a deleted input's number may be reused by another file."""
    path = tmp_path / "old.txt"
    path.write_bytes(NAMES)
    protect(path, "words file")
    path.unlink()
    other = tmp_path / "other.pt"
    other.write_bytes(b"a new file, perhaps on the freed inode")
    assert check_target(other, True, set(), ConfigError, "x", "") == other
    path.write_bytes(b"a new file by the input's name")  # the name stays protected
    with pytest.raises(ConfigError, match="is the words file this session reads"):
        check_target(path, True, set(), ConfigError, "x", "")


def test_a_nul_byte_or_an_overlong_name_to_write_is_one_line(trainer, tmp_path, headless, names):
    for name, message in [("a\0b.pt", "NUL byte"), ("n" * 300 + ".pt", "too long")]:
        with pytest.raises(CheckpointError, match=message) as e:
            trainer.save(tmp_path / name)
        assert "\n" not in str(e.value)
    refused(headless, "--data", str(names), "--script", "run 1", "--autosave", str(tmp_path / "a\0b.pt"),
            expected="NUL byte")
    refused(headless, "--data", str(names), "--script", "run 1", "--autosave", str(tmp_path / ("n" * 300)),
            expected="too long")
    assert tmp_files(tmp_path) == []


def test_a_long_name_that_fits_is_saved_through_a_shorter_temporary_name(trainer, tmp_path):
    path = tmp_path / ("n" * 250 + ".pt")  # 253 bytes: '.' + name + '.pid.hex.tmp' would not fit
    assert trainer.save(path) == path and path.is_file() and tmp_files(tmp_path) == []


ERRORS = [  # (what fails, errno, what the one line says)
    ("fsync", errno.ENOSPC, "no space left on the device"),
    ("replace", errno.EROFS, "the place is read-only"),
    ("open", errno.EACCES, "Permission denied"),
    ("open", errno.EROFS, "the place is read-only"),
    ("fsync", errno.EIO, "Input/output error"),
]


@pytest.mark.parametrize(("where", "code", "message"), ERRORS, ids=[f"{w}-{errno.errorcode[c]}" for w, c, _ in ERRORS])
def test_a_failed_save_leaves_the_previous_file_and_no_temporary_file(trainer, tmp_path, monkeypatch, where, code,
                                                                      message):
    import core.files

    path = trainer.save(tmp_path / "model.pt")
    before = path.read_bytes()
    trainer.run(20)

    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    if where == "open":
        monkeypatch.setattr(core.files, "open", fail, raising=False)
    else:
        monkeypatch.setattr(os, where, fail)
    with pytest.raises(CheckpointError, match=message) as e:
        trainer.save(path)
    monkeypatch.undo()
    assert "\n" not in str(e.value) and path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_a_full_disk_at_autosave_is_one_line_and_keeps_the_previous_file(headless, tmp_path, names, monkeypatch):
    saved = tmp_path / "auto.pt"
    code, _, err = headless("--data", str(names), "--script", "run 5", "--autosave", str(saved))
    assert code == 0 and saved.is_file(), err
    before = saved.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    code, _, err = headless("--data", str(names), "--script", "run 10", "--autosave", str(saved))
    monkeypatch.undo()
    assert "autosave failed" in err and "no space left on the device" in err and "Traceback" not in err
    assert saved.read_bytes() == before and tmp_files(tmp_path) == []


def test_autosave_into_a_read_only_folder_is_refused_before_any_work(headless, tmp_path, names, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False)  # root ignores permissions: pretend
    refused(headless, "--data", str(names), "--script", "run 1", "--autosave", str(tmp_path / "m.pt"),
            expected="cannot be written (read-only or no permission)")


def test_an_interrupted_save_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"before")

    def interrupted(f):
        f.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        replace_atomically(path, interrupted, CheckpointError, "checkpoint")
    assert path.read_bytes() == b"before" and tmp_files(tmp_path) == []


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_a_killed_saves_temporary_file_is_removed_by_the_next_save(trainer, tmp_path):
    dead = dead_pid()
    orphan = tmp_path / f".model.pt.{dead}.0123abcd.tmp"
    live = tmp_path / f".model.pt.{os.getppid()}.0123abcd.tmp"  # a save under way in a live process
    other = tmp_path / f".other.pt.{dead}.0123abcd.tmp"  # another target's: not this save's business
    notes = tmp_path / ".model.pt.notes.tmp"
    for p in (orphan, live, other, notes):
        p.write_bytes(b"partial")
    trainer.save(tmp_path / "model.pt")
    assert not orphan.exists() and live.exists() and other.exists() and notes.exists()


def test_a_save_killed_by_sigkill_leaves_a_temporary_file_that_the_next_save_removes(tmp_path):
    """A real kill -9 in the middle of a write, then a save to the same place."""
    code = ("import os, sys, time; from pathlib import Path; from core.errors import ConfigError; "
            "from core.files import replace_atomically\n"
            "def write(f):\n    f.write(b'half'); f.flush(); print('writing', flush=True); time.sleep(60)\n"
            f"replace_atomically(Path({str(tmp_path / 'session.txt')!r}), write, ConfigError, 'the script')\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parent.parent)
    try:
        assert child.stdout.readline().strip() == "writing"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        child.kill()
        child.stdout.close()
    assert len(tmp_files(tmp_path)) == 1  # what the killed save left
    write_script(tmp_path / "session.txt", "run 1\n", False, set())
    assert tmp_files(tmp_path) == [] and (tmp_path / "session.txt").read_text() == "run 1\n"


def test_remove_orphans_only_takes_its_own_pattern(tmp_path):
    dead = dead_pid()
    keep = [f".model.pt.{dead}.0123abcd.tmp.bak", f".model.pt.{dead}.0123ABCD.tmp", f"model.pt.{dead}.0123abcd.tmp",
            f".model.ptx.{dead}.0123abcd.tmp", ".model.pt.x.0123abcd.tmp"]
    for name in keep + [f".model.pt.{dead}.89abcdef.tmp"]:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / f".model.pt.{dead}.00000000.tmp").mkdir()  # a folder by that name: never removed
    assert remove_orphans(tmp_path, ".model.pt") == [f".model.pt.{dead}.89abcdef.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep + [f".model.pt.{dead}.00000000.tmp"])
