"""Modal screens: help (F1 / ?), a path prompt for save and load, and a yes/no question; and the
two guards on text from outside (files, the worker, a paste) before it reaches the screen."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.content import Content
from textual.widgets import Button, Input, Label, OptionList, Static

from core.actions import Action
from core.config import TrainConfig
from core.errors import CharMLPError
from core.files import resolved
from core.ranges import MAX_SNAPSHOTS
from core.verbs import VERBS
from tui.keys import DIAGNOSTICS_KEYS, KEYS, RUNS_KEYS, TRIALS_KEYS
from tui.messages import SnapshotRow

ResultType = TypeVar("ResultType")

# C0 and C1 controls but the line feed, lone surrogates (a file name that is not UTF-8), and
# the bidi overrides that would show a line reversed
_UNPRINTABLE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
# a whole terminal sequence: CSI (7- and 8-bit), OSC, DCS/SOS/PM/APC strings, SS2/SS3 and their
# character (a keypad key), or ESC and one character
_SEQUENCE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]?|\x9b[0-?]*[ -/]*[@-~]?|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
                       r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?|\x1b[NO].?|\x1b.?", re.DOTALL)


def printable(text: str) -> str:
    """Text as the screen may show it: control characters written as escapes (ESC as \\x1b), so that
    a line read from a file or a checkpoint cannot move the cursor, restyle the screen or set the
    terminal's title. Line breaks stay."""
    return _UNPRINTABLE.sub(lambda m: ascii(m.group())[1:-1], text)


def clean_paste(text: str) -> str:
    """A paste as a field may take it: terminal sequences and control characters removed, tabs made
    spaces, line breaks kept (a one-line field takes the first line)."""
    text = _SEQUENCE.sub("", text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " "))
    return "\n".join(_UNPRINTABLE.sub("", line) for line in text.split("\n")).strip("\n")


def help_text() -> Content:
    """The help as styled text (a Markdown widget is slow to open over SSH), from tui.keys and core.verbs."""
    keys = [(f"  {key.shown:<16} ", "bold $accent") for key in KEYS]
    runs_keys = [(f"  {key.shown:<16} ", "bold $accent") for key in RUNS_KEYS]
    trials_keys = [(f"  {key.shown:<16} ", "bold $accent") for key in TRIALS_KEYS]
    diagnostics_keys = [(f"  {key.shown:<16} ", "bold $accent") for key in DIAGNOSTICS_KEYS]
    verbs = [(f"  {verb.usage:<24} ", "bold $accent") for verb in VERBS]
    sweep, decay = VERBS["sweep"].values(Action("sweep")), VERBS["decay"].values(Action("decay"))
    return Content.assemble(
        ("charmlp-tui\n\n", "bold"),
        "Train makemore part 2's character-level MLP and find its learning rate. Keys work while a "
        f"run goes on: LR changes and decay apply at the next chunk boundary (every {TrainConfig().chunk_steps} "
        "steps). "
        "Greyed-out keys make no sense right now (e.g. run while running).\n\n",
        ("Keys\n", "bold"),
        *[part for styled, key in zip(keys, KEYS) for part in (styled, f"{key.help}\n")],
        ("\nIn the runs screen (R)\n", "bold"),
        *[part for styled, key in zip(runs_keys, RUNS_KEYS) for part in (styled, f"{key.help}\n")],
        ("\nIn the trials screen of a search (T)\n", "bold"),
        *[part for styled, key in zip(trials_keys, TRIALS_KEYS) for part in (styled, f"{key.help}\n")],
        ("\nIn the diagnostics screen (D)\n", "bold"),
        *[part for styled, key in zip(diagnostics_keys, DIAGNOSTICS_KEYS) for part in (styled, f"{key.help}\n")],
        ("\nFinding a learning rate\n", "bold"),
        f"  1. s sweeps the LR from 10^{sweep['start']:g} to 10^{sweep['end']:g}, one step each, and marks a "
        "suggestion.\n"
        "  2. a adopts it; space runs N steps ([ ] change N); watch the loss.\n"
        f"  3. When the loss flattens, d decays the LR by {decay['factor']:g}; run on; e measures the full loss.\n"
        "  4. u undoes a run that went wrong (a blown-up LR, a decay too early).\n"
        "  5. D: are the steps the right size? Each tensor's update-to-data ratio against the 10^-3 guide.\n",
        ("\nHeadless script actions", "bold"), ' (charmlp-tui --headless --script "…")\n',
        *[part for styled, verb in zip(verbs, VERBS) for part in (styled, f"{verb.help}\n")],
    )


class Dialog(ModalScreen[ResultType]):
    """A modal screen, centred, that answers once: keys typed faster than the screen closes (two
    enters, enter then escape) would otherwise dismiss it twice, popping the screen beneath it."""

    DEFAULT_CSS = """
    Dialog {
        align: center middle;
    }
    """

    def answer(self, result: ResultType | None) -> None:
        if self.is_active:  # the pop is synchronous, so a second answer finds another screen on top
            self.dismiss(result)


def ask_where(app: App[Any], prompt: str, default: str, written: set[Path],
              write: Callable[[Path, bool], None]) -> None:
    """Ask for a path to write; a file that exists and is not in `written` (what this app wrote)
    needs a yes first."""
    def chosen(path: Path | None) -> None:
        if path is None:
            return
        try:
            path = path.expanduser()
            exists = path.exists()
        except (OSError, RuntimeError, ValueError):  # ~nosuchuser, a name too long, a NUL byte
            write(path, False)  # the worker refuses it in one line, as headless does
            return
        if exists and resolved(path) not in written:
            app.push_screen(ConfirmScreen(f"{path} exists. Overwrite it?"), lambda yes: write(path, True) if yes else None)
        else:
            write(path, False)

    app.push_screen(PathScreen(prompt, default), chosen)


class HelpScreen(Dialog[None]):
    """Scrolls with ↑/↓/PgUp/PgDn: at 80x24 the text is longer than the screen."""

    BINDINGS = [Binding("escape,q,f1,question_mark", "dismiss", "close")]

    def __init__(self) -> None:
        super().__init__()
        self.text = help_text()

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(self.text)

    def on_mount(self) -> None:
        self.query_one("#help").focus()

    async def action_dismiss(self, result: None = None) -> None:  # Screen's signature: the binding's action
        self.answer(result)


class PathScreen(Dialog[Path | None]):
    """Ask for a file path; dismisses with the path, or None on escape."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, prompt: str, default: str) -> None:
        super().__init__()
        self.prompt, self.default = prompt, default

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.prompt)
            yield Input(value=self.default, id="path")
            yield Label("enter: confirm · escape: cancel", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        self.answer(Path(value) if value else None)  # `~` is expanded where it is used, with its errors

    def action_cancel(self) -> None:
        self.answer(None)


class NameScreen(Dialog[str | None]):
    """Ask for a name, checked as it is typed (`check` raises CharMLPError with the line to show);
    dismisses with the new name, or None on escape or when it did not change."""

    DEFAULT_CSS = """
    NameScreen #name-error {
        color: $text-error;
        width: 1fr;
    }
    """

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, prompt: str, value: str, check: Callable[[str], object]) -> None:
        super().__init__()
        self.prompt, self.value, self.check = prompt, value, check

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Content(printable(self.prompt)))
            yield Input(value=self.value, id="name")
            yield Label("", id="name-error")
            yield Label("enter: confirm · escape: cancel", classes="hint")

    def _error(self, text: str) -> str:
        try:
            self.check(text)
        except CharMLPError as e:
            return printable(str(e))
        return ""

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one("#name-error", Label).update(Content(self._error(event.value)))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if error := self._error(event.value):
            self.query_one("#name-error", Label).update(Content(error))
            self.app.bell()
            return
        self.answer(event.value if event.value != self.value else None)

    def action_cancel(self) -> None:
        self.answer(None)


class ConfirmScreen(Dialog[bool]):
    BINDINGS = [Binding("escape,n", "answer(False)", "no"), Binding("y", "answer(True)", "yes")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Grid(classes="dialog confirm"):
            yield Label(printable(self.question), id="question", markup=False)  # a path may hold [ ]
            yield Button("Yes (y)", variant="warning", id="yes")
            yield Button("No (n)", variant="primary", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.answer(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.answer(answer)


class SnapshotsScreen(Dialog[str | None]):
    """The kept states with their dev loss; enter restores the highlighted one."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, snapshots: tuple[SnapshotRow, ...]) -> None:
        super().__init__()
        self.names = [s.name for s in snapshots]
        self.rows = [f"{s.name:<10} step {s.step:>10,}  lr 10^{s.lr_exponent:.2f}  dev "
                     f"{'—' if s.dev_loss is None else f'{s.dev_loss:.4f}'}" for s in snapshots]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(f"Snapshots: z takes one; the newest {MAX_SNAPSHOTS} are kept")
            if self.rows:
                yield OptionList(*(Content(printable(row)) for row in self.rows), id="snapshots")  # no markup
                yield Label("enter: restore · escape: cancel", classes="hint")
            else:
                yield Label("None yet: press z to take one.", classes="hint")

    def on_mount(self) -> None:
        if self.rows:
            options = self.query_one(OptionList)
            options.focus()
            options.highlighted = len(self.rows) - 1  # the newest

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.answer(self.names[event.option_index])

    def action_cancel(self) -> None:
        self.answer(None)
