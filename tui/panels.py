"""The status panel: data and model on top, where training stands below, from the latest status.

The two parts are separate widgets so that the 5 Hz statuses during a run re-render only the
few lines that change: every redraw on the UI thread takes the GIL from the training thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Static

if TYPE_CHECKING:
    from tui.messages import TrainingStatus


def _loss(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _rows(rows: list[tuple[str, str]]) -> Content:
    """Label/value lines as Textual Content: a rich Table, or rich Text, cost several times more."""
    parts: list[str | tuple[str, str]] = []
    for label, value in rows:
        parts += [(f"{label:<10} ", "dim"), f"{value}\n"]
    return Content.assemble(*parts).rstrip()


class StatusPanel(Vertical):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.border_title = "status"
        self.status: TrainingStatus | None = None
        self.steps_per_run = 1000
        self._about: list[tuple[str, str]] = []

    def compose(self) -> ComposeResult:
        yield Static(id="about")
        yield Static(id="state")

    def show(self, status: TrainingStatus | None = None, steps_per_run: int | None = None) -> None:
        if status is not None:
            self.status = status
        if steps_per_run is not None:
            self.steps_per_run = steps_per_run
        if self.status is None:
            return
        if (about := self._about_rows()) != self._about:  # changes only when a checkpoint is loaded
            self._about = about
            self.query_one("#about", Static).update(_rows(about))
        # fixed size (app.tcss): no layout pass
        self.query_one("#state", Static).update(_rows(self._state_rows()), layout=False)

    def _about_rows(self) -> list[tuple[str, str]]:
        assert self.status is not None
        f = self.status.facts
        m = f.model
        return [
            ("data", f.source),
            ("words", f"{f.n_words:,}, vocab {len(f.vocab)}"),
            ("examples", "/".join(f"{n:,}" for n in f.examples)),
            ("model", f"block {m.block_size} emb {m.emb_dim} hid {m.hidden}"),
            ("params", f"{f.n_params:,}"),
            ("bigram dev", _loss(f.bigram_dev)),
        ]

    def _state_rows(self) -> list[tuple[str, str]]:
        s = self.status
        assert s is not None
        rows = [
            ("step", f"{s.step:,}"),
            ("lr", f"10^{s.lr_exponent:.2f} = {10 ** s.lr_exponent:.4g}"),
            ("batch loss", _loss(s.last_loss)),
        ]
        if s.last_eval is not None:
            rows += [("train loss", f"{_loss(s.last_eval.train)} @{s.last_eval.step:,}"),
                     ("dev loss", f"{_loss(s.last_eval.dev)} @{s.last_eval.step:,}")]
        else:
            rows += [("train loss", "— (press e)"), ("dev loss", "—")]
        return rows + [("run N", f"{self.steps_per_run:,} steps"), ("steps", s.engine), ("now", s.job or "idle")]
