"""The status panel: data, model, and where training stands, from the latest snapshot."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import Static

if TYPE_CHECKING:
    from core.trainer import Trainer
    from tui.worker import Snapshot


def _loss(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


class StatusPanel(Static):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "status"
        self.trainer: Trainer | None = None
        self.bigram: float | None = None
        self.snapshot: Snapshot | None = None
        self.steps_per_run = 1000

    def show(self, snapshot: Snapshot | None = None, steps_per_run: int | None = None) -> None:
        if snapshot is not None:
            self.snapshot = snapshot
        if steps_per_run is not None:
            self.steps_per_run = steps_per_run
        self.update(self._text())

    def _text(self) -> Text:
        """Label/value lines as plain text: a rich Table costs several times more at 10 Hz."""
        t, s = self.trainer, self.snapshot
        if t is None or s is None:
            return Text()
        ds, m = t.dataset, t.model_config
        sizes = ds.sizes()
        rows = [
            ("data", ds.source),
            ("words", f"{ds.n_words:,}, vocab {ds.vocab.size}"),
            ("examples", f"{sizes['train']:,}/{sizes['dev']:,}/{sizes['test']:,}"),
            ("model", f"block {m.block_size} emb {m.emb_dim} hid {m.hidden}"),
            ("params", f"{t.n_params:,}"),
            ("step", f"{s.step:,}"),
            ("lr", f"10^{s.lr_exponent:.2f} = {10 ** s.lr_exponent:.4g}"),
            ("batch loss", _loss(s.last_loss)),
        ]
        if s.last_eval is not None:
            rows += [("train loss", f"{_loss(s.last_eval.train)} @{s.last_eval.step:,}"),
                     ("dev loss", f"{_loss(s.last_eval.dev)} @{s.last_eval.step:,}")]
        else:
            rows.append(("train/dev", "— (press e)"))
        rows += [("bigram dev", _loss(self.bigram)), ("run N", f"{self.steps_per_run:,} steps"), ("now", s.job or "idle")]
        text = Text(no_wrap=True, overflow="ellipsis")
        for label, value in rows:
            text.append(f"{label:<10} ", style="dim")
            text.append(f"{value}\n")
        text.rstrip()
        return text
