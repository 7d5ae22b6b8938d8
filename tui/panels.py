"""The status panel (data and model on top, where training stands below; where the panel is tall,
the latest samples, the snapshots and the store's other recent runs under them) and the progress
row, from the latest status.

The two parts are separate widgets so that the 5 Hz statuses during a run re-render only the
few lines that change: every redraw on the UI thread takes the GIL from the training thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.events import Resize
from textual.widgets import Label, ProgressBar, Static

from core.diagnostics import short_reading
from core.reading import printable
from tui.keys import DEFAULT_STEPS_PER_RUN

TALL = 26  # rows of its own from which the panel shows the samples, snapshots and recent runs too
RECENT_RUNS = 8  # the store's other runs shown, the latest saved first
RUN_NAME_WIDTH = 12  # a longer name is cut: the panel has 32 columns

if TYPE_CHECKING:
    from core.store import RunRow
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
        self.steps_per_run = DEFAULT_STEPS_PER_RUN
        self._about: list[tuple[str, str]] = []
        self.samples: tuple[tuple[str, ...], int] | None = None  # the latest names drawn, and the step
        self.recent: tuple[RunRow, ...] = ()  # the store's other runs, the latest saved first
        self._more: Content | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="about")
        yield Static(id="state")
        yield Static(id="more")

    def on_resize(self, event: Resize) -> None:
        self.set_class(event.size.height >= TALL, "tall")

    def show_samples(self, names: tuple[str, ...], step: int) -> None:
        self.samples = (names, step)
        self.show()

    def show_runs(self, runs: tuple[RunRow, ...], open_run: str | None) -> None:
        """The store's runs but the open one (whose figures are the panel's own), as last listed."""
        others = sorted((r for r in runs if r.name != open_run), key=lambda r: r.updated, reverse=True)
        self.recent = tuple(others[:RECENT_RUNS])
        self.show()

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
        if (more := self._more_lines()) != self._more:  # changes with a sample, a snapshot or a listing, not a step
            self._more = more
            self.query_one("#more", Static).update(more, layout=False)

    def _more_lines(self) -> Content:
        """The snapshots, the store's other recent runs and the latest samples: shown where the panel is
        tall (app.tcss)."""
        assert self.status is not None
        parts: list[str | tuple[str, str]] = []
        if snapshots := self.status.snapshots:
            parts.append(("snapshots (Z)\n", "bold"))
            for row in snapshots:
                parts += [(f"{row.name:<6} ", "dim"), f"step {row.step:,}, dev {_loss(row.dev_loss)}\n"]
            parts.append("\n")
        if self.recent:
            parts.append(("recent runs (R)\n", "bold"))
            for run in self.recent:
                name = printable(run.name)
                name = name if len(name) <= RUN_NAME_WIDTH else name[:RUN_NAME_WIDTH - 1] + "…"
                parts += [(f"{name:<{RUN_NAME_WIDTH}} ", "dim"), f"{run.steps:>7,} dev {_loss(run.dev_loss)}\n"]
            parts.append("\n")
        if self.samples is not None:  # last: the one list that may be cut where the panel ends
            names, step = self.samples
            parts += [(f"samples at step {step:,}\n", "bold"), "\n".join(map(printable, names))]
        return Content.assemble(*parts).rstrip()

    def _about_rows(self) -> list[tuple[str, str]]:
        assert self.status is not None
        f = self.status.facts
        m = f.model
        return [
            ("data", f.source),
            ("words", f"{f.n_words:,}, vocab {len(f.vocab)}"),
            ("examples", "/".join(f"{n:,}" for n in f.examples)),
            # the init only when it is not the lecture's: the panel is 16 columns of values at 80x24
            ("model", f"block {m.block_size} emb {m.emb_dim} hid {m.hidden}"
                      + ("" if m.init == "lecture" else f" {m.init}")),
            ("params", f"{f.n_params:,}"),
            ("bigram dev", _loss(f.bigram_dev)),
            ("run", f.run),
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
        # the running job is the progress row's: this row reads the step size (D: the diagnostics screen)
        return rows + [("run N", f"{self.steps_per_run:,} steps"), ("steps", s.engine),
                       ("updates", short_reading(dict(s.update_ratios)))]


class ProgressRow(Horizontal):
    """The running job's bar, steps/s and time left; after it, where it ended."""

    def compose(self) -> ComposeResult:
        yield ProgressBar(id="progress", total=1, show_eta=False)
        yield Label("", id="rate")

    def show(self, s: TrainingStatus, previous: TrainingStatus | None) -> None:
        bar = self.query_one(ProgressBar)
        rate = self.query_one("#rate", Label)
        if s.job:
            if not bar.visible:  # setting it restyles the bar and its parts, every time
                bar.visible = True
            bar.update(total=s.total, progress=s.done)
            left = f", {(s.total - s.done) / s.rate:,.0f} s left" if s.rate else ""
            rate.update(f"{s.job}: {s.rate:,.0f} steps/s{left}" if s.rate else s.job, layout=False)
        elif s.last_job and (previous is None or previous.job or previous.last_job != s.last_job):
            job, done, total = s.last_job
            if not bar.visible:  # a job over before a status showed it running: where it ended, all the same
                bar.visible = True
            bar.update(total=total or None, progress=done)
            # a run that blew up ends where it last reported; the log line says what happened
            rate.update(f"{job}: refused (see the log)" if not total else f"done: {job}" if done == total
                        else f"stopped: {job} after {done:,}")
