"""The app under hostile input: pastes holding escape bytes, text with control characters from files
and the worker, and a suspend (Ctrl+Z / SIGTSTP) followed by `fg`.

A paste is text, never key presses: the input parser takes a bracketed paste out whole (Textual's
own replayed the escapes inside one as keys: a pasted "x\\x1b[Aq" quit the app), the app ignores a
paste no field takes and says so, and the path prompt takes it without its control characters.
Whatever reaches the screen from outside shows its control characters as escapes. Back from a
suspend, the whole screen is drawn again.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import time

import pexpect
import pytest
from textual import constants, events
from textual.driver import Driver
from textual.widgets import Input, Label, RichLog

from app_helpers import log_text, settle
from conftest import REPO
from tui import terminal as app_module
from tui.terminal import PASTE_END, PASTE_START, PasteSafeParser
from tui.messages import Logged
from tui.screens import ConfirmScreen, PathScreen, clean_paste, printable

HOSTILE = "x\x1b[Aq\x1b[201q\x1bOBe\x1b]0;title\x07 \x9b2J\r\nq"  # keys, a false end, an OSC, a C1 CSI, a line break


def parsed(*reads: str, wait: bool = False) -> list[tuple[str, str]]:
    """What the parser makes of these reads: ("key", name) and ("paste", text), in order."""
    parser = PasteSafeParser()
    out = []
    for data in reads:
        out += parser.feed(data)
        out += parser.tick()
    if wait:  # as the input thread's next ticks, once nothing more came
        time.sleep(constants.ESCAPE_DELAY + 0.02)
        out += parser.tick()
    return [("key", e.key) if isinstance(e, events.Key) else ("paste", e.text) for e in out
            if isinstance(e, (events.Key, events.Paste))]


# ---- the parser --------------------------------------------------------------------------------
def test_a_bracketed_paste_is_one_paste_event_and_no_key():
    stream = "a" + PASTE_START + HOSTILE + PASTE_END + "b"
    assert parsed(stream) == [("key", "a"), ("paste", HOSTILE), ("key", "b")]


def test_the_brackets_split_across_reads_anywhere():
    """A read may end anywhere (a big paste, SSH packets): inside either bracket too."""
    stream = "a" + PASTE_START + HOSTILE + PASTE_END + "b"
    for cut in range(1, len(stream)):
        assert parsed(stream[:cut], stream[cut:]) == [("key", "a"), ("paste", HOSTILE), ("key", "b")], cut
    assert parsed(*stream) == [("key", "a"), ("paste", HOSTILE), ("key", "b")]  # one character a read


def test_keys_outside_a_paste_are_as_textual_reads_them():
    assert parsed("q\x1b[A\x1b[1;5C") == [("key", "q"), ("key", "up"), ("key", "ctrl+right")]
    assert parsed("\x1b", wait=True) == [("key", "escape")]  # held a moment (a bracket may follow), then Escape
    assert parsed("\x1b[", "B") == [("key", "down")]  # the start of a bracket, perhaps, but then an arrow


def test_a_paste_that_never_ends_keeps_at_most_its_bound_and_presses_nothing(monkeypatch):
    monkeypatch.setattr(app_module, "MAX_PASTE_CHARS", 10)
    parser = PasteSafeParser()
    out = [*parser.feed(PASTE_START + "q" * 25), *parser.feed("\x1b[201"), *parser.tick()]
    assert out == [] and parser.in_paste
    paste, key = parser.feed("~q")
    assert isinstance(paste, events.Paste) and paste.text == "q" * 10 and isinstance(key, events.Key)


# ---- the text guards -------------------------------------------------------------------------------
def test_printable_shows_control_characters_as_escapes():
    assert printable("a\x1b[31mb\x07\tc\nd\x9b2J\udcff\u202e") == "a\\x1b[31mb\\x07\\tc\nd\\x9b2J\\udcff\\u202e"
    assert printable("plain, ünïcode and 名前 [b]") == "plain, ünïcode and 名前 [b]"


def test_a_paste_for_a_field_loses_its_sequences_and_control_characters():
    assert clean_paste(HOSTILE) == "xqe \nq"
    assert clean_paste("\x1b[200~my ck.pt\x1b[31m\t(1)\r\n") == "my ck.pt (1)"
    assert clean_paste("\x1bPdcs\x1b\\\x1b_apc\x1b\\ok\x1b") == "ok"


# ---- the app (Pilot) --------------------------------------------------------------------------
async def test_a_paste_outside_a_field_runs_nothing_and_says_so(app):
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        before = (app.status.step, app.status.lr_exponent, app.steps_index, len(app.screen_stack))
        app.post_message(events.Paste(HOSTILE))
        app.post_message(events.Paste("q"))
        await pilot.pause()
        await settle(pilot)
        assert app.is_running and app.worker.thread.is_alive()
        assert (app.status.step, app.status.lr_exponent, app.steps_index, len(app.screen_stack)) == before
        assert log_text(app).count("pasted text ignored") == 2 and "pasted text ignored (1 character)" in log_text(app)
        await pilot.press("q")


async def test_the_path_prompt_takes_a_paste_without_its_control_characters(app, tmp_path):
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, PathScreen)
        field = app.screen.query_one(Input)
        field.value = ""
        app.post_message(events.Paste(f"{tmp_path}/my\x1b[31m ck\x07.pt\x1b]0;t\x07\nrm -rf ~\n"))
        await pilot.pause()
        assert field.value == f"{tmp_path}/my ck.pt"  # the first line, clean
        assert "pasted text ignored" not in log_text(app)
        await pilot.press("enter")
        await settle(pilot)
        assert (tmp_path / "my ck.pt").exists()


async def test_control_characters_in_the_log_and_notices_are_shown_escaped(app):
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.post_message(Logged("load \x1b[2J\x1b]0;pwned\x07[red]x[/].pt: not found", error=True))
        app.log_line("sample: ab\x9bc\rd")
        await pilot.pause()
        lines = [line.text for line in app.query_one(RichLog).lines]
        assert "✗ load \\x1b[2J\\x1b]0;pwned\\x07[red]x[/].pt: not found" in lines
        assert "sample: ab\\x9bc\\rd" in lines
        assert not any(c in line for line in lines for c in "\x1b\x07\x9b\r")
        notices = [n.message for n in app._notifications]
        assert notices == ["load \\x1b[2J\\x1b]0;pwned\\x07[red]x[/].pt: not found"]  # markup off: [red] is text


async def test_a_question_about_a_path_shows_it_as_it_is(app):
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.push_screen(ConfirmScreen("/tmp/[b]odd\x1b[7m.pt exists. Overwrite it?"))
        await pilot.pause()
        assert str(app.screen.query_one("#question", Label).render()) == "/tmp/[b]odd\\x1b[7m.pt exists. Overwrite it?"
        await pilot.press("n")


async def test_back_from_a_suspend_the_whole_screen_is_drawn_again(app, monkeypatch):
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        calls: list[dict] = []
        real_refresh = app.refresh
        monkeypatch.setattr(app, "refresh", lambda **kw: (calls.append(kw), real_refresh(**kw))[1])
        app.post_message(Driver.SignalResume())  # what Textual's driver posts once `fg` brought it back
        await pilot.pause()
        assert {"repaint": True, "layout": True} in calls


@pytest.mark.skipif(sys.platform == "win32" or constants.DRIVER is not None, reason="Textual's Linux driver")
def test_the_app_reads_the_terminal_through_the_paste_safe_parser(app):
    assert app.driver_class is app_module.PasteSafeDriver


# ---- a real terminal -----------------------------------------------------------------------------
@pytest.mark.skipif(sys.platform == "win32", reason="a pty and job-control signals")
def test_in_a_real_terminal_a_paste_presses_nothing_and_fg_repaints(small_file):
    """The app in a pty: bracketed pastes with escapes, a q and bytes that are not UTF-8 leave it
    running with nothing applied; SIGTSTP (what Ctrl+Z sends) and SIGCONT (`fg`) bring back a
    whole screen, and so do SIGSTOP and SIGCONT; q quits."""
    env = {**os.environ, "TERM": "xterm-256color"}
    child = pexpect.spawn(sys.executable, ["-m", "tui", "--data", str(small_file), "--no-compile"], cwd=str(REPO),
                          env=env, dimensions=(30, 100), timeout=60)
    child.logfile_read = everything = io.BytesIO()
    try:
        child.expect("parameters")  # the ready line in the log
        child.send(PASTE_START + "x\x1b[Aq\x1b[201q" + PASTE_END)
        child.expect("pasted text ignored")
        child.send(PASTE_START.encode() + b"q\xff\xfe\x1bOA" + PASTE_END.encode())
        child.expect("pasted text ignored")
        time.sleep(0.5)
        assert child.isalive()
        child.send("e")  # a key pressed is still a key: the status shows the step-0 evaluation
        child.expect("eval at step 0")
        # no key from the pastes: no up-arrow (LR +0.1), no [ (N down to 1,000), no q
        assert b"10^-0.90" not in everything.getvalue() and b"1,000 steps" not in everything.getvalue()

        os.kill(child.pid, signal.SIGTSTP)
        child.expect(r"\x1b\[\?1049l")  # the terminal given back to the shell
        deadline = time.monotonic() + 20
        while not os.WIFSTOPPED(os.waitpid(child.pid, os.WNOHANG | os.WUNTRACED)[1]):  # stopped, not reaped
            assert time.monotonic() < deadline, "SIGTSTP did not stop the app"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGCONT)
        child.expect(r"\x1b\[\?1049h")  # back in the alternate screen, which starts blank
        # a full repaint draws what did not change too: the panel's titles and rows, the footer
        for text in ("status", "examples", "bigram dev", "palette"):
            child.expect(text, timeout=10)

        # SIGSTOP, which no handler sees, then SIGCONT: the same, and no second input thread
        threads = len(os.listdir(f"/proc/{child.pid}/task")) if os.path.isdir("/proc") else 0
        os.kill(child.pid, signal.SIGSTOP)
        time.sleep(0.3)
        os.kill(child.pid, signal.SIGCONT)
        child.expect(r"\x1b\[\?1049h")
        for text in ("status", "examples", "bigram dev", "palette"):
            child.expect(text, timeout=10)
        time.sleep(0.5)
        assert not threads or len(os.listdir(f"/proc/{child.pid}/task")) == threads
        child.send("\x1b[A")  # keys still reach the app, whole: up raises the LR exponent
        child.expect(r"10\^-0\.90")
        child.send("q")
        child.expect(pexpect.EOF, timeout=30)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, child.before
