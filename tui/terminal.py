"""The terminal side of the app: Textual's Linux driver and input parser, made safe for pastes.

A bracketed paste is taken out whole before Textual's parser sees it (that parser replayed the
escape sequences inside a paste as key presses: a pasted 'x\x1b[Aq' quit the app); bytes that are
not UTF-8 become U+FFFD instead of an exception; a SIGCONT after a SIGSTOP is handled as after
Ctrl+Z. These subclass Textual internals (pinned to Textual 8): tests/test_faults_app.py covers them.
"""

from __future__ import annotations

import os
import selectors
import time
from codecs import getincrementaldecoder
from collections.abc import Iterable

from textual import constants, events
from textual._parser import ParseError
from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver
from textual.message import Message

PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"  # the terminal's brackets around a paste (mode 2004)
MAX_PASTE_CHARS = 1 << 20  # what a paste event keeps; the rest is read and dropped


def _marker_start(data: str, marker: str) -> int:
    """Where a proper prefix of marker ends data (the rest may come in the next read), or len(data)."""
    for n in range(min(len(marker) - 1, len(data)), 0, -1):
        if data.endswith(marker[:n]):
            return len(data) - n
    return len(data)


class PasteSafeParser(XTermParser):
    """Textual's input parser with bracketed pastes taken out before it sees them.

    Textual's own treats an ESC inside a paste as the start of a key sequence and, when the
    sequence is not one it knows, replays its characters as key presses: a pasted "x\x1b[Aq" pressed
    [, A and q, and q quit the app. Here everything between the terminal's brackets becomes one
    Paste event and nothing of it a key. A tail of a read that may be the start of a bracket waits
    for the next read; outside a paste it waits at most Textual's escape delay (a lone ESC is then
    the Escape key, as Textual decides it)."""

    def __init__(self, debug: bool = False) -> None:
        super().__init__(debug)
        self.in_paste = False
        self._pasted: list[str] = []
        self._pasted_chars = 0
        self._held = ""  # the start of a bracket, perhaps: waits for the next read
        self._held_at = 0.0

    def feed(self, data: str) -> Iterable[Message]:
        if not data:  # the end of input: what is held goes to Textual's parser, then the end
            held, self._held = self._held, ""
            return [*(self._keys(held) if not self.in_paste else ()), *super().feed("")]
        out: list[Message] = []
        data, self._held = self._held + data, ""
        while data:
            if self.in_paste:
                end = data.find(PASTE_END)
                if end < 0:
                    cut = _marker_start(data, PASTE_END)
                    self._collect(data[:cut])
                    self._hold(data[cut:])
                    break
                self._collect(data[:end])
                out.append(events.Paste("".join(self._pasted).replace("\x00", "")))
                self.in_paste, self._pasted, self._pasted_chars = False, [], 0
                data = data[end + len(PASTE_END):]
            else:
                start = data.find(PASTE_START)
                if start < 0:
                    cut = _marker_start(data, PASTE_START)
                    out += self._keys(data[:cut])
                    self._hold(data[cut:])
                    break
                out += self._keys(data[:start])
                self.in_paste = True
                data = data[start + len(PASTE_START):]
        return out

    def tick(self) -> Iterable[Message]:
        out: list[Message] = []
        if self._held and not self.in_paste and time.monotonic() - self._held_at >= constants.ESCAPE_DELAY:
            held, self._held = self._held, ""
            out += self._keys(held)
            if self._timeout_time is not None:  # it waited its escape delay here already: Textual's need not wait again
                self._timeout_time = 0.0
        return [*out, *super().tick()]

    def _keys(self, data: str) -> list[Message]:
        return list(super().feed(data)) if data else []

    def _collect(self, text: str) -> None:
        room = MAX_PASTE_CHARS - self._pasted_chars
        if text and room > 0:
            self._pasted.append(text[:room])
            self._pasted_chars += min(len(text), room)

    def _hold(self, tail: str) -> None:
        if tail:
            self._held, self._held_at = tail, time.monotonic()


class PasteSafeDriver(LinuxDriver):
    """Textual's Linux driver reading through PasteSafeParser; bytes that are not UTF-8 (a pasted
    binary) become U+FFFD instead of an exception that ended the app; and a SIGCONT after a SIGSTOP
    handled as after Ctrl+Z."""

    def _sigcont_application(self, *_: object) -> None:
        """After Ctrl+Z (SIGTSTP, which Textual handles by leaving application mode first) Textual's
        own enters it again. After a SIGSTOP, which no handler sees, the app never left it, and
        Textual's would start a second input thread beside the first (keys then split between two
        readers) without drawing anything. Here the app leaves application mode and enters it
        again, which sets the terminal's modes (the shell may have reset them) and, through the
        resume signal, draws the whole screen (the shell may have written on it)."""
        if self._auto_restart and not self._must_signal_resume and self._key_thread is not None \
                and self._key_thread.is_alive():
            self.suspend_application_mode()
            self._must_signal_resume = True
        super()._sigcont_application()

    def run_input_thread(self) -> None:
        selector = selectors.SelectSelector()
        selector.register(self.fileno, selectors.EVENT_READ)
        parser = PasteSafeParser(self._debug)
        decode = getincrementaldecoder("utf-8")(errors="replace").decode

        def read_ready(ready: list[tuple[selectors.SelectorKey, int]], final: bool = False) -> None:
            for n, (_, mask) in enumerate(ready, 1):
                if mask & selectors.EVENT_READ:
                    text = decode(os.read(self.fileno, 1024 * 4), final=final and n == len(ready))
                    if not text:  # stdin is a pipe that ended
                        break
                    for event in parser.feed(text):
                        self.process_message(event)
            for event in parser.tick():
                self.process_message(event)

        try:
            while not self.exit_event.is_set():
                read_ready(selector.select(0.1))
            selector.unregister(self.fileno)
            read_ready(selector.select(0.1), final=True)
        finally:
            selector.close()
            try:
                for _ in parser.feed(""):
                    pass
            except (EOFError, ParseError):
                pass
