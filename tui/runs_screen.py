"""The runs screen (R): the run store's runs in a table, to compare, select, open, rename, delete
and export; on closing, the selected runs' curves are overlaid on the training chart.

It holds no run itself: it sends commands (tui.messages: ListRuns, OpenRun, …) through the
function the app gives it, and shows the RunsListed the worker answers with. Everything from the
store is shown as text (printable, never markup): a run may be named "[/]".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import DataTable, Footer, Label, Static

from core import ranges
from core.files import resolved
from core.reading import printable
from tui.keys import RUNS_KEYS, bindings
from tui.messages import DeleteRun, ExportRuns, ListRuns, OpenRun, RenameRun, RunsListed
from tui.screens import ConfirmScreen, Dialog, NameScreen, ask_where

if TYPE_CHECKING:
    from core.store import RunRow
    from tui.messages import Command

NAME_WIDTH = 16  # a longer name is cut in the table (the line under it has it whole)


def duration(seconds: float) -> str:
    """Training time as people read it, rounded: 42s, 3m04s, 1h02m."""
    s = round(seconds)
    return f"{s}s" if s < 60 else f"{s // 60}m{s % 60:02d}s" if s < 3600 else f"{s // 3600}h{s % 3600 // 60:02d}m"


def _loss(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


@dataclass(frozen=True)
class Column:
    label: str
    key: Callable[[RunRow], Any]  # what it sorts by (None: last)
    cell: Callable[[RunRow], str]
    right: bool = False


COLUMNS = (
    Column("name", lambda r: r.name, lambda r: r.name),
    Column("shape", lambda r: (r.block_size, r.emb_dim, r.hidden), lambda r: r.shape),
    Column("params", lambda r: r.params, lambda r: f"{r.params:,}", right=True),
    Column("steps", lambda r: r.steps, lambda r: f"{r.steps:,}", right=True),
    Column("train", lambda r: r.train_loss, lambda r: _loss(r.train_loss)),
    Column("dev", lambda r: r.dev_loss, lambda r: _loss(r.dev_loss)),
    Column("best dev", lambda r: r.best_dev_loss, lambda r: _loss(r.best_dev_loss)),
    Column("T", lambda r: r.test_step is not None, lambda r: "T" if r.test_step is not None else ""),
    Column("time", lambda r: r.train_s, lambda r: duration(r.train_s), right=True),
    Column("LR schedule", lambda r: r.schedule, lambda r: r.schedule or "—"),
)


class RunsScreen(Dialog[tuple[str, ...]]):
    """Answers the selected runs' names (in the order selected) when it closes."""

    DEFAULT_CSS = """
    RunsScreen {
        background: $background;
        align: left top;
    }
    RunsScreen #runs-title {
        text-style: bold;
        padding: 0 1;
        width: 1fr;
    }
    RunsScreen DataTable {
        height: 1fr;
    }
    RunsScreen #runs-detail {
        height: 2;
        padding: 0 1;
        color: $text-muted;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    RunsScreen #runs-note {
        padding: 0 1;
        width: 1fr;
    }
    RunsScreen #runs-note.error {
        color: $text-error;
    }
    """

    BINDINGS = bindings(RUNS_KEYS)

    def __init__(self, send: Callable[[Command], None], busy: Callable[[], bool], written: set[Path],
                 selected: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.send, self.busy, self.written = send, busy, written
        self.runs: tuple[RunRow, ...] = ()
        self.order: list[RunRow] = []  # as the table shows them
        self.open_run: str | None = None
        self.selected = list(selected)  # the runs overlaid now start selected
        self.sort: int | None = None  # a column of COLUMNS; None: oldest first
        self.reverse = False
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield Label("Runs", id="runs-title")
        yield DataTable(id="runs-table", cursor_type="row")
        yield Static(id="runs-detail")
        yield Label(Content("loading the runs…"), id="runs-note")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self.send(ListRuns())

    # ---- what the worker answers -------------------------------------------------------------
    def show(self, message: RunsListed) -> None:
        self.runs, self.open_run, self.loaded = message.runs, message.open_run, True
        names = {r.name for r in message.runs}
        self.selected = [n for n in self.selected if n in names]
        self.note(message.line or ("" if message.runs else "No runs kept yet."), message.error)
        self._fill()
        if message.opened is not None:
            self.action_close()

    def note(self, line: str, error: bool = False) -> None:
        label = self.query_one("#runs-note", Label)
        label.update(Content(printable(line)))
        label.set_class(error, "error")

    # ---- the table ---------------------------------------------------------------------------
    def _ordered(self) -> list[RunRow]:
        if self.sort is None:
            return list(self.runs)
        key = COLUMNS[self.sort].key
        known = sorted((r for r in self.runs if key(r) is not None), key=key, reverse=self.reverse)
        return known + [r for r in self.runs if key(r) is None]  # no value yet: last either way

    def _fill(self) -> None:
        table = self.query_one(DataTable)
        at = self.current()
        at_name, at_row = (at.name, table.cursor_row) if at is not None else (self.open_run, 0)
        table.clear(columns=True)
        self.order = self._ordered()
        rows = [self._cells(run) for run in self.order]
        for i, column in enumerate(COLUMNS):
            label = Text(column.label + (("▼" if self.reverse else "▲") if i == self.sort else ""),
                         justify="right" if column.right else "left")
            # widths measured here, not left to the table: it measures on idle, and a frame drawn before
            # (a toast coming up) stayed in its cache with the headers' widths
            width = max([label.cell_len, *(row[i].cell_len for row in rows)])
            table.add_column(label, key=str(i), width=width)
        for run, cells in zip(self.order, rows):
            table.add_row(*cells, key=run.name)
        names = [r.name for r in self.order]
        # the same run, or where it was (renamed, deleted): the next one takes its place
        table.move_cursor(row=names.index(at_name) if at_name in names else min(at_row, len(names) - 1))
        self._titles()

    def _cells(self, run: RunRow) -> list[Text]:
        cells = []
        for column in COLUMNS:
            text = printable(column.cell(run))
            if column.label == "name":
                text = text if len(text) <= NAME_WIDTH else text[: NAME_WIDTH - 1] + "…"
                mark = ("▶" if run.name == self.open_run else " ") + ("✓" if run.name in self.selected else " ")
                cells.append(Text(f"{mark} {text}", style="bold" if run.name in self.selected else ""))
            else:
                cells.append(Text(text, justify="right" if column.right else "left"))
        return cells

    def _titles(self) -> None:
        order = "oldest first" if self.sort is None else (
            f"by {COLUMNS[self.sort].label} {'▼' if self.reverse else '▲'}")
        self.query_one("#runs-title", Label).update(Content(
            f"Runs: {len(self.runs)} · {order} · {len(self.selected)} selected · ▶ open · ✓ selected · T: test looked at"))
        self._detail()

    def _detail(self) -> None:
        run = self.current()
        if run is None:
            self.query_one("#runs-detail", Static).update("")
            return
        speed = f" · {run.steps_per_s:,.0f} steps/s" if run.steps_per_s else ""
        test = (f" · test {run.test_loss:.4f} at step {run.test_step:,}"
                if run.test_step is not None and run.test_loss is not None else "")
        init = "" if run.init == "lecture" else f" {run.init} init"  # said when not the lecture's (80 columns)
        lines = [f"{run.name}: block {run.block_size} emb {run.emb_dim} hidden {run.hidden}{init} · batch {run.batch_size} · "
                 f"lr 10^{run.lr_exponent:.2f}{speed}",
                 f"LR schedule {run.schedule or '—'}{test} · seeds {run.init_seed}/{run.batch_seed} · {run.data_source}"]
        self.query_one("#runs-detail", Static).update(Content("\n".join(printable(line) for line in lines)))

    def current(self) -> RunRow | None:
        """The run under the cursor."""
        table = self.query_one(DataTable)
        return self.order[table.cursor_row] if self.order and 0 <= table.cursor_row < len(self.order) else None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()  # a click on the highlighted row (enter is the screen's own key)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        index = int(str(event.column_key.value))
        self.reverse = not self.reverse if self.sort == index else False
        self.sort = index
        self._fill()

    # ---- keys (tui.keys.RUNS_KEYS) -----------------------------------------------------------
    def action_select(self) -> None:
        if (run := self.current()) is None:
            return
        if run.name in self.selected:
            self.selected.remove(run.name)
        else:
            self.selected.append(run.name)
        self.query_one(DataTable).update_cell(run.name, "0", self._cells(run)[0])
        self._titles()

    def action_sort(self) -> None:
        self.sort = None if self.sort == len(COLUMNS) - 1 else 0 if self.sort is None else self.sort + 1
        self.reverse = False
        self._fill()

    def action_open(self) -> None:
        if (run := self.current()) is None:
            return
        if run.name == self.open_run:
            self.note(f"run {run.name!r} is the one open now")
        elif self.busy():
            self.note(f"open {run.name!r}: refused, a job is running (close this screen and press escape to stop it)",
                      error=True)
        else:
            self.note(f"opening run {run.name!r}…")
            self.send(OpenRun(run.name))

    def action_rename(self) -> None:
        if (run := self.current()) is None:
            return

        def renamed(new: str | None) -> None:
            if new is not None:
                self.selected = [new if n == run.name else n for n in self.selected]
                self.send(RenameRun(run.name, new))

        self.app.push_screen(NameScreen(f"Rename run {run.name!r} to:", run.name, ranges.RUN_NAME.check), renamed)

    def action_delete(self) -> None:
        if (run := self.current()) is None:
            return
        if run.name == self.open_run:
            self.note(f"delete: run {run.name!r} is the one open now; open or start another run first", error=True)
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.send(DeleteRun(run.name))

        self.app.push_screen(ConfirmScreen(f"Delete run {run.name!r}: its history, state and snapshots? "
                                           "This cannot be undone."), confirmed)

    def action_export(self) -> None:
        names = tuple(self.selected) or ((run.name,) if (run := self.current()) is not None else ())
        if not names:
            return

        def export(path: Path, force: bool) -> None:
            self.written.add(resolved(path))
            self.send(ExportRuns(names, path, force))

        n = len(names)
        ask_where(self.app, f"Export {n} run{'s' * (n != 1)} (summaries and evaluations, JSON) to:",
                  "charmlp-runs.json", self.written, export)

    def action_close(self) -> None:
        self.answer(tuple(self.selected))
