"""The search dialog (T): a `tune` action's budget, study and search space, one field each.

The fields are the verb's keywords (core.verbs: trials, steps, timeout, study, then one LO:HI per
dimension of core.search_space.DIMS, prefilled with that dimension's default range and meaning), so
a dimension added there is a field here with nothing written twice. Each field is checked as it is
typed, the first wrong one's line shown under them; enter builds the action's text and hands it to
the action parser: a bad value gets the parser's one line and nothing starts. Escape cancels.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Input, Label

from core.actions import Action, Arg
from core.errors import CharMLPError, ScriptError
from core.reading import printable
from core.search_space import DIMS, Dimension, Space
from core.verbs import DEFAULT_TRIALS, VERBS
from tui.screens import Dialog

# what the budget's and the study's fields mean (the space's come with their dimension)
HINTS = {
    "trials": "trials to run (empty: until the timeout)",
    "steps": "training steps of one trial, its decay included",
    "timeout": "seconds: no trial starts after it (empty: none)",
    "study": "a study of this name goes on where it stopped",
}
ALWAYS_WRITTEN = ("trials", "steps", "timeout")  # the job's line says its budget; the rest only when changed


@dataclass(frozen=True)
class Field:
    arg: Arg  # the `tune` keyword it fills in
    default: str  # what it is prefilled with
    hint: str
    dim: Dimension | None  # a dimension of the search space: its LO:HI (or its choices)

    @property
    def key(self) -> str:
        return self.arg.key

    def error(self, text: str) -> str | None:
        """The one line that says what is wrong with the text, or None (empty: the default)."""
        if not text:
            return None
        try:
            if self.dim is not None:
                Space().with_ranges([f"{self.key}={text}"])
            else:
                self.arg.parse(text, self.arg.word)
        except CharMLPError as e:
            return str(e)
        return None

    def written(self, text: str) -> bool:
        return bool(text) and (self.key in ALWAYS_WRITTEN or text != self.default)


def _fields() -> tuple[Field, ...]:
    dims = {d.key: d for d in DIMS}
    out = []
    for arg in VERBS["tune"].keywords:
        if (dim := dims.get(arg.key)) is not None:
            out.append(Field(arg, dim.text, dim.help + (" (log scale)" if dim.log else ""), dim))
        else:
            default = DEFAULT_TRIALS if arg.key == "trials" else arg.default
            out.append(Field(arg, "" if default is None else str(default), HINTS.get(arg.key, ""), None))
    return tuple(out)


FIELDS = _fields()


def action_text(values: dict[str, str]) -> tuple[str, list[str]]:
    """The `tune` action the fields say, and its words (each field a word, quoted as the parser reads it)."""
    words = ["tune", *(f"{f.arg.word}={values[f.key]}" for f in FIELDS if f.written(values[f.key]))]
    return shlex.join(words), words


def parse(values: dict[str, str]) -> Action:
    """The action, or ScriptError with the parser's line (without the action's text in front: the dialog is it)."""
    text, words = action_text(values)
    try:
        return VERBS.parse_action(text)
    except ScriptError as e:
        line, prefix = str(e), f"action 1 {' '.join(words)!r}: "
        raise ScriptError(line[len(prefix):] if line.startswith(prefix) else line) from None


class TuneDialog(Dialog[Action | None]):
    DEFAULT_CSS = """
    TuneDialog .title {
        text-style: bold;
    }
    TuneDialog .section {
        text-style: bold;
        color: $text-muted;
    }
    TuneDialog .section.space {
        margin-top: 1;
    }
    TuneDialog .field {
        height: 1;
    }
    TuneDialog .field-name {
        width: 9;
    }
    TuneDialog Input {
        width: 14;
        margin-right: 1;
    }
    TuneDialog Input.-invalid {
        color: $text-error;
    }
    TuneDialog .field .hint {
        width: 1fr;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    TuneDialog #tune-about {
        width: 1fr;
    }
    TuneDialog #tune-budget {
        margin-top: 1;
        width: 1fr;
        height: auto;
    }
    TuneDialog #tune-error {
        color: $text-error;
        width: 1fr;
        height: auto;
    }
    """

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, previous: Action | None = None) -> None:
        """Prefilled with the defaults, or with the search this session ran last."""
        super().__init__()
        given = {key: str(value) for key, value in previous.keywords} if previous is not None else {}
        if previous is not None and "trials" not in given:  # it ran until its timeout
            given["trials"] = ""
        self.start = {f.key: given.get(f.key, f.default) for f in FIELDS}

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Hyperparameter search", classes="title")
            yield Label("Each trial is a run in the store, pruned by its exact dev loss; the best is opened at the "
                        "end. A new study starts with the lecture's model.", id="tune-about", classes="hint")
            for i, f in enumerate(FIELDS):
                if i == 0 or (f.dim is not None and FIELDS[i - 1].dim is None):
                    yield Label("budget" if i == 0 else "search space: LO:HI, or one value to fix it",
                                classes="section" if i == 0 else "section space")
                with Horizontal(classes="field"):
                    yield Label(f.arg.word, classes="field-name")
                    yield Input(self.start[f.key], id=f"field-{f.key}", compact=True)
                    yield Label(f.hint, classes="hint")
            yield Label("", id="tune-budget", classes="hint")
            yield Label("", id="tune-error")
            yield Label("enter: start · tab: next field · escape: cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        self._check()

    def values(self) -> dict[str, str]:
        return {f.key: self.query_one(f"#field-{f.key}", Input).value.strip() for f in FIELDS}

    def _check(self) -> list[str]:
        """Mark the wrong fields, say the first one's line and the budget; the wrong fields' keys."""
        values, wrong, first = self.values(), [], ""
        for f in FIELDS:
            error = f.error(values[f.key])
            self.query_one(f"#field-{f.key}", Input).set_class(error is not None, "-invalid")
            if error is not None:
                wrong.append(f.key)
                first = first or error
        self._say(first)
        self.query_one("#tune-budget", Label).update(Content(_budget(values)))
        return wrong

    def _say(self, line: str) -> None:
        error = self.query_one("#tune-error", Label)
        error.update(Content(printable(line)))
        error.display = bool(line)

    def on_input_changed(self, event: Input.Changed) -> None:
        self._check()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        wrong = self._check()
        try:
            action = parse(self.values())
        except ScriptError as e:  # refused: nothing starts; the parser's line says why
            self._say(str(e))
            if wrong:
                self.query_one(f"#field-{wrong[0]}", Input).focus()
            self.app.bell()
            return
        self.answer(action)

    def action_cancel(self) -> None:
        self.answer(None)


def _budget(values: dict[str, str]) -> str:
    """What the budget comes to, in a few words (nothing when a field of it is wrong)."""
    by_key = {f.key: f for f in FIELDS}
    if any(by_key[k].error(values[k]) for k in ALWAYS_WRITTEN):
        return ""
    steps = int(by_key["steps"].arg.parse(values["steps"] or by_key["steps"].default))
    timeout = f"{float(by_key['timeout'].arg.parse(values['timeout'])):g} s" if values["timeout"] else ""
    if not values["trials"]:
        trials = DEFAULT_TRIALS if not timeout else 0
    else:
        trials = int(by_key["trials"].arg.parse(values["trials"]))
    if not trials:
        return f"trials of {steps:,} steps until {timeout} have passed (pruned ones stop sooner)"
    end = f", or until {timeout} have passed" if timeout else ""
    return f"at most {trials:,} trials × {steps:,} steps = {trials * steps:,} steps{end} (pruned ones stop sooner)"
