"""The trials screen (T while a search runs, t after): the search's trials in a table, the best above
it, their dev losses in a chart, updated live from what the worker posts (tui.messages.SearchUpdated,
SearchEnded; core.search_view's immutable views).

It holds no trainer and no study: the app forwards the views, and the screen sends what its keys ask
for (stop the search, open a trial's run) through the functions the app gives it. Names and notes are
shown as text, never markup. Rows are updated cell by cell, so the cursor and the scroll stay put while
trials come in; a cursor left on the last row follows the newest trial.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Container
from textual.content import Content
from textual.events import Resize
from textual.widgets import DataTable, Footer, Label, Static

from core.reading import printable
from core.search_space import DIMS, Dimension
from tui.keys import TRIALS_KEYS, bindings
from tui.messages import OpenRun
from tui.screens import Dialog
from tui.tune_chart import TrialsChart

if TYPE_CHECKING:
    from core.search_view import SearchView, TrialView
    from tui.messages import Command, SearchEnded

RUN_WIDTH, NOTE_WIDTH = 16, 34  # longer names and notes are cut in the table (the line under it has them whole)
CHART_BESIDE = 40  # the chart's columns at the least beside the table, where the screen is that wide
STATE_STYLES = {"complete": "green", "pruned": "dim", "failed": "red", "running": "bold yellow", "waiting": "dim"}
Cell = tuple[str, str, bool]  # text, style, right-justified


def seconds(value: float | None) -> str:
    """A trial's time: tenths of a second while short (small trials take under a second)."""
    if value is None:
        return "—"
    if value < 60:
        return f"{value:.1f}s" if value < 10 else f"{value:.0f}s"
    s = round(value)
    return f"{s // 60}m{s % 60:02d}s" if s < 3600 else f"{s // 3600}h{s % 3600 // 60:02d}m"


def _value(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else "—" if value is None else str(value)


def _cut(text: str, width: int) -> str:
    text = printable(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _width(dim: Dimension) -> int:
    """A dimension's column: its name, or its widest value."""
    return max(len(dim.key), dim.width)


# (header, its width, right-justified); the space's columns come from its declaration
COLUMNS: tuple[tuple[str, int, bool], ...] = (
    ("#", 4, True), ("state", 8, False), ("dev", 6, True),
    *((d.key, _width(d), True) for d in DIMS),
    ("time", 6, True), ("run", RUN_WIDTH, False), ("note", NOTE_WIDTH, False),
)
TABLE_WIDTH = sum(width + 2 for _, width, _ in COLUMNS) + 2  # each cell padded by one on each side; the scrollbar


def cells(trial: TrialView, best: int | None) -> tuple[Cell, ...]:
    bold = "bold " if trial.number == best else ""
    params = dict(trial.params)
    dev = trial.last_dev
    return (
        (f"★ {trial.number}" if trial.number == best else str(trial.number), bold, True),
        (trial.state, bold + STATE_STYLES.get(trial.state, ""), False),
        ("—" if dev is None else f"{dev:.4f}", bold if trial.value is not None else "dim", True),
        *((_value(params.get(d.key)), bold, True) for d in DIMS),
        (seconds(trial.seconds), bold, True),
        (_cut(trial.run or "—", RUN_WIDTH), bold, False),
        (_cut(trial.note, NOTE_WIDTH), "dim", False),
    )


def best_line(view: SearchView | None) -> str:
    best = view.best if view is not None else None
    if best is None or best.value is None:
        return "best: none yet (a trial counts once it has trained all its steps)"
    run = f" · run {best.run}" if best.run else ""
    return f"★ best: trial {best.number} · dev {best.value:.4f}{run} · {best.describe()}"


class TrialsScreen(Dialog[None]):
    DEFAULT_CSS = """
    TrialsScreen {
        background: $background;
        align: left top;
    }
    TrialsScreen #trials-title {
        text-style: bold;
        padding: 0 1;
        width: 1fr;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    TrialsScreen #trials-best {
        padding: 0 1;
        color: $text-success;
        text-style: bold;
        height: 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    TrialsScreen #trials-body {
        layout: vertical;
        height: 1fr;
    }
    TrialsScreen #trials-body.beside {
        layout: horizontal;
    }
    TrialsScreen DataTable {
        height: 1fr;
        min-height: 4;
    }
    TrialsScreen #trials-chart {
        height: 45%;
        min-height: 7;
    }
    TrialsScreen #trials-body.beside DataTable {
        width: auto;
    }
    TrialsScreen #trials-body.beside #trials-chart {
        height: 1fr;
        width: 1fr;
    }
    TrialsScreen #trials-detail, TrialsScreen #trials-note {
        padding: 0 1;
        width: 1fr;
    }
    TrialsScreen #trials-detail {
        color: $text-muted;
        height: 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    TrialsScreen #trials-note {
        height: auto;
        max-height: 2;
    }
    TrialsScreen #trials-note.error {
        color: $text-error;
    }
    """

    BINDINGS = bindings(TRIALS_KEYS)

    def __init__(self, view: SearchView | None, ended: SearchEnded | None, stop: Callable[[], None],
                 send: Callable[[Command], None], busy: Callable[[], bool], open_run: Callable[[], str | None]) -> None:
        super().__init__()
        self.view, self.ended = view, ended
        self.stop, self.send, self.busy, self.open_run = stop, send, busy, open_run
        self.shown: dict[int, tuple[Cell, ...]] = {}  # each row's cells as the table has them
        self.stopping = False

    def compose(self) -> ComposeResult:
        yield Label("", id="trials-title")
        yield Static("", id="trials-best")
        with Container(id="trials-body"):
            yield DataTable(id="trials-table", cursor_type="row")
            yield TrialsChart(id="trials-chart")
        yield Static("", id="trials-detail")
        yield Label("", id="trials-note")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for i, (header, width, right) in enumerate(COLUMNS):
            table.add_column(Text(header, justify="right" if right else "left"), width=width, key=str(i))
        table.focus()
        self.show(self.view)
        if self.ended is not None:
            self.end(self.ended)

    def on_resize(self, event: Resize) -> None:
        self.query_one("#trials-body").set_class(event.size.width >= TABLE_WIDTH + CHART_BESIDE, "beside")

    # ---- what the worker posts (through the app) ---------------------------------------------
    @property
    def running(self) -> bool:
        return self.ended is None

    def show(self, view: SearchView | None) -> None:
        self.view = view
        if view is None:  # the search is starting
            self._titles()
            return
        table = self.query_one(DataTable)
        if any(number not in {t.number for t in view.trials} for number in self.shown):  # another study: anew
            table.clear()
            self.shown = {}
        follow = table.row_count == 0 or table.cursor_row >= table.row_count - 1
        best = view.best.number if view.best is not None else None
        for trial in view.trials:
            new = cells(trial, best)
            old = self.shown.get(trial.number)
            if old is None:
                table.add_row(*(_text(c) for c in new), key=str(trial.number))
            else:
                for i, (before, after) in enumerate(zip(old, new)):
                    if before != after:
                        table.update_cell(str(trial.number), str(i), _text(after))
            self.shown[trial.number] = new
        if follow and table.row_count:
            table.move_cursor(row=table.row_count - 1)
        self.query_one(TrialsChart).show(view)
        self._titles()

    def end(self, ended: SearchEnded) -> None:
        self.ended = ended
        if ended.view is not None:
            self.show(ended.view)
        self._titles()
        self.note(ended.line, ended.error)

    def note(self, line: str, error: bool = False) -> None:
        label = self.query_one("#trials-note", Label)
        label.update(Content(printable(line)))
        label.set_class(error, "error")

    def _titles(self) -> None:
        view = self.view
        if view is None:
            title = "Search: " + ("no trial" if self.ended else "starting…")
        else:
            c = view.counts()
            running = [t.number for t in view.trials if t.state == "running"]
            where = (("stopping" if self.stopping else f"trial {running[0]} running") if self.running and running
                     else "running" if self.running else "ended")
            title = (f"Search {view.study}: {len(view.trials)} trials · {c['complete']} complete · {c['pruned']} "
                     f"pruned · {c['failed']} failed · {where} · {view.storage}")
        self.query_one("#trials-title", Label).update(Content(printable(title)))
        self.query_one("#trials-best", Static).update(Content(printable(best_line(view))))
        self._detail()

    def _detail(self) -> None:
        trial = self.current()
        text = ""
        if trial is not None:
            dev = (f"dev {trial.value:.4f}" if trial.value is not None else
                   f"last dev {trial.dev[-1][1]:.4f} at step {trial.dev[-1][0]:,}" if trial.dev else "no dev loss yet")
            parts = [f"trial {trial.number} {trial.state}", dev, trial.describe(), seconds(trial.seconds),
                     f"run {trial.run}" if trial.run else "", trial.note]
            text = " · ".join(p for p in parts if p)
        self.query_one("#trials-detail", Static).update(Content(printable(text)))

    def current(self) -> TrialView | None:
        """The trial under the cursor."""
        table = self.query_one(DataTable)
        if self.view is None or not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((t for t in self.view.trials if str(t.number) == key), None)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()  # a click on the highlighted row (enter is the screen's own key)

    # ---- keys (tui.keys.TRIALS_KEYS) ---------------------------------------------------------
    def action_stop(self) -> None:
        if not self.running:
            self.action_close()
            return
        self.stop()
        self.stopping = True
        self.note("stopping at the next chunk boundary: the running trial fails, the finished ones stay…")
        self._titles()

    def action_close(self) -> None:
        self.answer(None)

    def action_open(self) -> None:
        trial = self.current()
        if trial is None:
            return
        if trial.run is None:
            self.note(f"trial {trial.number} kept no run", error=True)
        elif trial.run == self.open_run():
            self.note(f"run {trial.run!r} is the one open now: close this screen to see it")
        elif self.busy():
            self.note(f"open {trial.run!r}: refused while a job runs (escape stops the search)", error=True)
        else:
            self.send(OpenRun(trial.run))
            self.answer(None)


def _text(cell: Cell) -> Text:
    text, style, right = cell
    return Text(text, style=style, justify="right" if right else "left")
