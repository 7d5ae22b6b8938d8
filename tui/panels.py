"""The status panel: data, model, and where training stands, from the latest snapshot."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
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
        self.update(self._table())

    def _table(self) -> Table:
        table = Table.grid(padding=(0, 1))
        table.add_column(style="dim", no_wrap=True, min_width=10)
        table.add_column(no_wrap=True, overflow="ellipsis")
        t, s = self.trainer, self.snapshot
        if t is None or s is None:
            return table
        ds, m = t.dataset, t.model_config
        sizes = ds.sizes()
        table.add_row("data", ds.source)
        table.add_row("words", f"{ds.n_words:,}, vocab {ds.vocab.size}")
        table.add_row("examples", f"{sizes['train']:,}/{sizes['dev']:,}/{sizes['test']:,}")
        table.add_row("model", f"block {m.block_size} emb {m.emb_dim} hid {m.hidden}")
        table.add_row("params", f"{t.n_params:,}")
        table.add_row("step", f"{s.step:,}")
        table.add_row("lr", f"10^{s.lr_exponent:.2f} = {10 ** s.lr_exponent:.4g}")
        table.add_row("batch loss", _loss(s.last_loss))
        if s.last_eval is not None:
            table.add_row("train loss", f"{_loss(s.last_eval.train)} @{s.last_eval.step:,}")
            table.add_row("dev loss", f"{_loss(s.last_eval.dev)} @{s.last_eval.step:,}")
        else:
            table.add_row("train/dev", "— (press e)")
        table.add_row("bigram dev", _loss(self.bigram))
        table.add_row("run N", f"{self.steps_per_run:,} steps")
        table.add_row("now", s.job or "idle")
        return table
