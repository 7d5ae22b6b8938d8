"""The new-run dialog (n): another shape, init, batch size or seeds, as the `new` action (core.verbs).

Prefilled with the current run's values (Facts); each field is checked as you type with the
range its flag has (core.ranges), the range's one line shown under it; the parameter count the
shape would have is shown live. Enter starts the run (refused while a field is invalid), escape
cancels. The action names only what changed: the rest `new` keeps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Input, Label

from core import ranges
from core.actions import Action
from core.config import ModelConfig
from core.errors import ConfigError
from core.verbs import VERBS
from tui.screens import Dialog

if TYPE_CHECKING:
    from tui.messages import Facts

# (the `new` action's keyword, the field's name as its messages say it, its range)
FIELDS = (
    ("block", "block size", ranges.BLOCK_SIZE),
    ("emb", "embedding size", ranges.EMB_DIM),
    ("hidden", "hidden size", ranges.HIDDEN),
    ("init", "init", ranges.INIT),
    ("batch", "batch size", ranges.BATCH_SIZE),
    ("init-seed", "init seed", ranges.SEED),
    ("batch-seed", "batch seed", ranges.SEED),
)


def _span(r: ranges.IntRange | ranges.Words) -> str:
    """'1 to 64'; a seed's '0 to 2^63-1'; 'lecture or scaled'."""
    if isinstance(r, ranges.Words):
        return " or ".join(r.choices)
    power = r.high.bit_length()
    high = f"2^{power}-1" if r.high > 10**6 and r.high == 2**power - 1 else f"{r.high:,}"
    return f"{r.low:,} to {high}"


class NewRunScreen(Dialog[Action | None]):
    DEFAULT_CSS = """
    NewRunScreen .dialog {
        width: 66;
        max-width: 100%;
        padding: 0 2;
    }
    NewRunScreen .title {
        text-style: bold;
    }
    NewRunScreen #fields {
        height: auto;
        margin-top: 1;
    }
    NewRunScreen .field {
        height: 1;
    }
    NewRunScreen .field-name {
        width: 16;
    }
    NewRunScreen Input {
        width: 22;
        margin-right: 2;
    }
    NewRunScreen .field-error {
        color: $text-error;
        width: 1fr;
        display: none;
    }
    NewRunScreen #params, NewRunScreen #new-run-hint {
        margin-top: 1;
    }
    NewRunScreen .hint, NewRunScreen #params {
        width: 1fr;
    }
    """

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, facts: Facts) -> None:
        super().__init__()
        m = facts.model
        self.current: dict[str, int | str] = {"block": m.block_size, "emb": m.emb_dim, "hidden": m.hidden,
                                              "init": m.init, "batch": facts.batch_size, "init-seed": m.seed,
                                              "batch-seed": facts.batch_seed}
        self.vocab_size, self.n_params = len(facts.vocab), facts.n_params

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("New run", classes="title")
            yield Label("Step, history and snapshots start over, the learning rate stays; this run stays in the "
                        "store (R lists the runs).", classes="hint")
            with Vertical(id="fields"):
                for key, name, span in FIELDS:
                    with Horizontal(classes="field"):
                        yield Label(name, classes="field-name")
                        yield Input(str(self.current[key]), id=f"field-{key}", compact=True)
                        yield Label(_span(span), classes="hint")
                    yield Label("", id=f"error-{key}", classes="field-error", markup=False)
            yield Label("", id="params")
            yield Label("enter: start it · tab: next field · escape: cancel", id="new-run-hint",
                        classes="hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        self._check()

    def values(self) -> tuple[dict[str, int | str], dict[str, str]]:
        """Each field's value, and for each field that has none the range's one line saying why."""
        out: dict[str, int | str] = {}
        errors: dict[str, str] = {}
        for key, name, span in FIELDS:
            try:
                out[key] = span.parse(self.query_one(f"#field-{key}", Input).value.strip(), name)
            except ConfigError as e:
                errors[key] = str(e)
        return out, errors

    def _check(self) -> tuple[dict[str, int | str], dict[str, str]]:
        values, errors = self.values()
        for key, _, _ in FIELDS:
            error = self.query_one(f"#error-{key}", Label)
            error.update(Content(errors.get(key, "")))
            error.display = key in errors
        block, emb, hidden = values.get("block"), values.get("emb"), values.get("hidden")
        if isinstance(block, int) and isinstance(emb, int) and isinstance(hidden, int):
            n = ModelConfig(block, emb, hidden).n_params(self.vocab_size)
            text = f"parameters: {n:,} (this run: {self.n_params:,})"
            if block != self.current["block"]:
                text += "; a new block size rebuilds the dataset"
        else:
            text = "parameters: — (fix the shape)"
        self.query_one("#params", Label).update(Content(text))
        return values, errors

    def on_input_changed(self, event: Input.Changed) -> None:
        self._check()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        values, errors = self._check()
        wrong = [key for key, _, _ in FIELDS if key in errors]
        if wrong:  # refused: the first field to fix gets the cursor; its line says why
            self.query_one(f"#field-{wrong[0]}", Input).focus()
            self.app.bell()
            return
        changed = [f"{key}={value}" for key, value in values.items() if value != self.current[key]]
        self.answer(VERBS.parse_action(" ".join(["new", *changed])))

    def action_cancel(self) -> None:
        self.answer(None)
