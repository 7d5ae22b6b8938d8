"""The Textual app: renders what the trainer worker posts, turns keys into worker commands.

It never holds the Trainer: the worker (tui.worker) does, and posts immutable payloads
(tui.messages). Keys, their help and the palette come from tui.keys; what an action does and
whether it may apply mid-run, from core.verbs.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

from textual import events
from textual.app import App, ComposeResult
from textual.containers import Horizontal
from textual.driver import Driver
from textual.drivers.linux_driver import LinuxDriver
from textual.events import Resize
from textual.css.query import NoMatches
from textual.geometry import Size
from textual.widgets import Footer, Label, RichLog

from core.actions import Action
from tui import keys
from tui.charts import EmbeddingChart, TrainingChart
from tui.charts_panel import ChartsPanel
from tui.lr_charts import GridChart, SweepChart
from tui.messages import (GridFinished, ListRuns, Logged, LrStep, Sampled, StateChanged, SweepFinished, TrainerFailed,
                          TrainerReady, TrainingStatus)
from tui.key_states import KeyStates
from tui.palette import TrainerCommands
from tui.panels import ProgressRow, StatusPanel
from tui.screens import clean_paste, printable
from tui.settings import Settings
from tui.terminal import PasteSafeDriver
from tui.worker import TrainerWorker

if TYPE_CHECKING:
    from core.grid import GridResult
    from core.sweep import SweepResult

MIN_SIZE = (40, 12)  # below this the app says so instead of drawing
CHART_INTERVAL_S = 1.0  # during a job: every UI redraw takes the GIL from the training thread


class CharMLPApp(KeyStates):
    TITLE = "charmlp-tui"
    CSS_PATH = "app.tcss"
    COMMANDS = App.COMMANDS | {TrainerCommands}
    BINDINGS = keys.bindings()

    def __init__(self, settings: Settings, actions: list[Action] | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.startup_actions = actions or []
        self.worker = TrainerWorker(self, settings)
        self.status: TrainingStatus | None = None
        self.pending = 0  # the number of the latest command sent that may not apply mid-run
        self.steps_index = keys.STEPS_PER_RUN.index(keys.DEFAULT_STEPS_PER_RUN)
        self.last_path = "charmlp.pt"
        self.snapshots_taken = 0  # names snapshots s1, s2, …
        self.sweeps: list[SweepResult] = []  # the latest last, at most keys.OVERLAID_SWEEPS + 1
        self.grid: GridResult | None = None
        self.last_finder: str | None = None  # "sweep" or "grid": what `a` adopts from
        self.written_paths: set[Path] = set()  # checkpoints and scripts this app wrote: no question to overwrite
        self.chart_drawn_at = 0.0
        self.chart_shows: tuple[int, object] | None = None  # (history length, last evaluation) last drawn

    @property
    def exit_note(self) -> str | None:
        return self.worker.exit_note

    def get_driver_class(self) -> type[Driver]:
        driver = super().get_driver_class()
        return PasteSafeDriver if driver is LinuxDriver else driver

    # ---- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            yield StatusPanel(id="status")
            yield ChartsPanel(id="charts")
        yield ProgressRow(id="progress-row")
        log = RichLog(id="log", max_lines=1000, wrap=True, markup=False)
        log.can_focus = False  # otherwise it takes focus and eats up/down, the LR keys
        yield log
        yield Label("", id="too-small")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(StatusPanel).loading = True
        self.log_line("loading torch and building the dataset…")
        self.worker.start()
        self._check_size(self.size)
        # back from Ctrl+Z / SIGTSTP and `fg`: the terminal was given back to the shell, and the
        # alternate screen Textual enters again is blank; without this only what changes is drawn
        self.app_resume_signal.subscribe(self, self.repaint_all)
        # kill -INT / -TERM, or a lost SSH connection (SIGHUP): stop the run at a step boundary,
        # autosave, restore the terminal, exit 128 + signal. (Ctrl+C in the app is a key, not a signal.)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(signum, self.call_next, self.quit_on_signal, signum)

    def on_unmount(self) -> None:
        self.worker.shutdown()  # whatever ended the app: no training thread left running at exit
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(signum)

    def quit_on_signal(self, signum: int) -> None:
        self.worker.shutdown()
        self.exit(return_code=128 + signum)

    def repaint_all(self, _: object = None) -> None:
        self.refresh(repaint=True, layout=True)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Paste) and not event.is_forwarded:  # as it comes from the terminal
            event.text = clean_paste(event.text)  # for the path prompt (or the palette) that takes it
        await super().on_event(event)

    def on_paste(self, event: events.Paste) -> None:
        """A paste that no text field took (the path prompt's and the palette's take one). Keys are
        pressed one by one; a paste presses none (PasteSafeParser keeps the escapes inside one from
        being read as keys)."""
        if event.text:
            n = len(event.text)
            self.log_line(f"pasted text ignored ({n:,} character{'s' * (n != 1)}): keys are pressed, not pasted")

    def on_resize(self, event: Resize) -> None:
        self._check_size(event.size)  # the charts redraw themselves on their own Resize

    def _check_size(self, size: Size) -> None:
        small = size.width < MIN_SIZE[0] or size.height < MIN_SIZE[1]
        self.screen.set_class(small, "too-small")
        self.query_one("#too-small", Label).update(
            f"Terminal too small ({size.width}x{size.height}); charmlp-tui needs at least {MIN_SIZE[0]}x{MIN_SIZE[1]}."
        )

    # ---- messages from the worker -----------------------------------------------------------
    @property
    def closing(self) -> bool:
        """The widgets are gone: the app is closing, and a message the worker posted before it
        stopped (a status, a log line) has nothing to be shown on."""
        try:
            self.query_one("#main")
        except NoMatches:
            return True
        return False

    def on_trainer_ready(self, message: TrainerReady) -> None:
        if self.closing:
            return
        self.query_one(StatusPanel).loading = False
        f = message.facts
        self.log_line(f"ready: {f.source}, {f.n_words:,} words, {f.n_params:,} parameters. "
                      "Press s to sweep the learning rate, space to run, ? for help.")
        for action in self.startup_actions:
            self.send(action)

    def on_trainer_failed(self, message: TrainerFailed) -> None:
        if self.closing:
            return
        self.query_one(StatusPanel).loading = False
        self.log_line(f"error: {message.error}", error=True)
        self.notify(printable(message.error), title="cannot start", severity="error", timeout=30, markup=False)

    def on_state_changed(self, message: StateChanged) -> None:
        if self.closing:
            return
        try:
            self._show_status(message)
        except NoMatches:  # the app began closing after the check: its widgets are being torn down
            pass

    def _show_status(self, message: StateChanged) -> None:
        previous, self.status = self.status, message.status
        s = message.status
        self.query_one(StatusPanel).show(s, keys.STEPS_PER_RUN[self.steps_index])
        if self.settings.keep_runs and (previous is None or previous.facts != s.facts):
            self.send(ListRuns())  # another run opened or began: the list of the others changed
        self.query_one(ProgressRow).show(s, previous)
        if s.job is None or time.monotonic() - self.chart_drawn_at >= CHART_INTERVAL_S:
            self.draw_charts()
        self.keys_changed()

    def draw_charts(self) -> None:
        """The training and embedding charts, if the latest status has more than they show; not while
        the diagnostics screen covers them (their redraws would take the GIL from training for nothing)."""
        s = self.status
        if s is None or self.diagnostics_open:
            return
        # compare with what the chart shows, not with the previous status: a redraw skipped during a
        # job for the rate limit, or under the diagnostics screen, must still happen afterwards
        shown = (len(s.history), s.last_eval)
        if shown != self.chart_shows:
            self.chart_drawn_at, self.chart_shows = time.monotonic(), shown
            self.query_one(TrainingChart).show(s.history, s.evals)
            self._show_embedding()

    def _show_embedding(self) -> None:
        """Kept by the chart in sight or not (27 points): a tab clicked shows it without asking the app."""
        s = self.status
        if s is not None and s.embedding is not None:
            self.query_one(EmbeddingChart).show_points(s.embedding, list(s.facts.vocab), s.embedding_kind, s.step)

    def on_logged(self, message: Logged) -> None:
        if self.closing:
            return
        self.log_line(message.text, message.error)
        if message.error:
            self.notify(printable(message.text), severity="error", timeout=8, markup=False)

    def on_sweep_finished(self, message: SweepFinished) -> None:
        if self.closing:
            return
        self.sweeps = [*self.sweeps[-keys.OVERLAID_SWEEPS :], message.result]
        self.query_one(ChartsPanel).show("sweep")
        self.query_one(SweepChart).show_result(message.result, self.sweeps[:-1])
        self.last_finder = "sweep"
        self.keys_changed()

    def on_grid_finished(self, message: GridFinished) -> None:
        if self.closing:
            return
        self.grid = message.result
        self.query_one(ChartsPanel).show("grid")
        self.query_one(GridChart).show_grid(message.result)
        self.last_finder = "grid"
        self.keys_changed()

    def on_sampled(self, message: Sampled) -> None:
        if not self.closing:
            self.query_one(StatusPanel).show_samples(message.names, message.step)

    def log_line(self, text: str, error: bool = False) -> None:
        """Text from files and the worker: its control characters are shown as escapes (printable),
        never sent to the terminal, where an ESC would restyle the screen or set its title."""
        text = printable(text)
        self.query_one(RichLog).write(f"✗ {text}" if error else text)

    def action_run(self) -> None:
        if not (panel := self.query_one(ChartsPanel)).wide:  # one chart at a time: the one a run draws
            panel.show("training")
        self.send(Action("run", (keys.STEPS_PER_RUN[self.steps_index],)))

    def action_sweep(self, repeats: int = 1) -> None:
        self.send(Action("sweep", options=(("repeats", repeats),) if repeats > 1 else ()))

    def action_grid(self) -> None:
        self.send(Action("grid"))

    def action_overlay(self) -> None:
        self.query_one(ChartsPanel).show("sweep")
        self.query_one(SweepChart).toggle_overlay()

    def action_adopt(self) -> None:
        if (suggestion := self.suggestion()) is not None:
            self.send(Action("lr", (suggestion,)))

    def action_lr(self, direction: int) -> None:
        self.send(LrStep(direction * keys.LR_STEP))

    def action_steps(self, direction: int) -> None:
        self.steps_index = min(max(self.steps_index + direction, 0), len(keys.STEPS_PER_RUN) - 1)
        self.query_one(StatusPanel).show(steps_per_run=keys.STEPS_PER_RUN[self.steps_index])

    def action_decay(self) -> None:
        self.send(Action("decay"))

    def action_evaluate(self) -> None:
        self.send(Action("eval"))

    def action_sample(self) -> None:
        self.send(Action("sample", (keys.SAMPLES_PER_PRESS,)))

    def action_reset(self) -> None:
        self.send(Action("reset"))

    def action_undo(self) -> None:
        self.send(Action("undo"))

    def action_snapshot(self) -> None:
        taken = {row.name for row in self.status.snapshots} if self.status else set()
        self.snapshots_taken += 1
        while f"s{self.snapshots_taken}" in taken:  # a resumed run's own s1, s2, … are kept
            self.snapshots_taken += 1
        self.send(Action("snapshot", (f"s{self.snapshots_taken}",)))

    def action_toggle_embedding(self) -> None:
        self.query_one(ChartsPanel).toggle_map()

    def action_view(self, view: str) -> None:
        self.query_one(ChartsPanel).show(view)

    def action_stop(self) -> None:
        self.worker.stop()

    async def action_quit(self) -> None:
        self.worker.shutdown()
        self.exit()
