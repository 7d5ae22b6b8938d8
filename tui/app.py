"""The Textual app: renders what the trainer worker posts, turns keys into worker commands."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.geometry import Size
from textual.widgets import Footer, Label, ProgressBar, RichLog

from core.actions import Action
from tui.charts import EmbeddingChart, SweepChart, TrainingChart
from tui.cli import Settings
from tui.palette import TrainerCommands
from tui.panels import StatusPanel
from tui.screens import ConfirmScreen, HelpScreen, PathScreen, SnapshotsScreen
from tui.worker import (BOUNDARY_VERBS, Export, GridFinished, Logged, LrStep, Save, Snapshot, StateChanged, SweepFinished, TrainerFailed, TrainerReady,
                        TrainerWorker)

STEPS_PER_RUN = (100, 1_000, 10_000, 100_000, 1_000_000)
LR_STEP = 0.1
SAMPLES_PER_PRESS = 10
MIN_SIZE = (40, 12)  # below this the app says so instead of drawing
LONG_ACTIONS = {"run", "sweep", "grid", "reset", "load", "undo", "snapshots"}  # not while a job runs
CHART_INTERVAL_S = 1.0  # during a job: every UI redraw takes the GIL from the training thread
ALWAYS = {"help", "quit", "command_palette", "steps", "export", "toggle_embedding", "overlay"}


class CharMLPApp(App):
    TITLE = "charmlp-tui"
    CSS_PATH = "app.tcss"
    COMMANDS = App.COMMANDS | {TrainerCommands}
    BINDINGS = [
        Binding("space,enter", "run", "run N", key_display="space"),
        Binding("s", "sweep", "sweep"),
        Binding("S", "sweep(5)", "5 sweeps", show=False),
        Binding("G", "grid", "LR grid", show=False),
        Binding("o", "overlay", "overlay", show=False),
        Binding("a", "adopt", "adopt"),
        Binding("up,plus", "lr(1)", "LR+", key_display="↑"),
        Binding("down,minus", "lr(-1)", "LR-", key_display="↓"),
        Binding("right_square_bracket", "steps(1)", "N+", key_display="]", show=False),
        Binding("left_square_bracket", "steps(-1)", "N-", key_display="[", show=False),
        Binding("d", "decay", "decay"),
        Binding("e", "evaluate", "eval"),
        Binding("g", "sample", "sample"),
        Binding("u", "undo", "undo"),
        Binding("z", "snapshot", "snapshot", show=False),
        Binding("Z", "snapshots", "snapshots", show=False),
        Binding("r", "reset", "reset"),
        Binding("ctrl+s", "save", "save", show=False),
        Binding("ctrl+o", "load", "load", show=False),
        Binding("ctrl+e", "export", "export", show=False),
        Binding("m", "toggle_embedding", "emb map", show=False),
        Binding("escape", "stop", "stop"),
        Binding("f1,question_mark", "help", "help", key_display="?"),
        Binding("q", "quit", "quit"),
    ]
    HELP = [  # (key, what it does): the help screen and the command palette
        ("space / enter", "run N steps at the current learning rate", "run"),
        ("[ / ]", "N smaller / larger (100, 1k, 10k, 100k, 1M)", "steps(1)"),
        ("↑ / + and ↓ / -", "learning-rate exponent +0.1 / -0.1 (mid-run too)", "lr(1)"),
        ("d", "decay: learning rate / 10 (mid-run too)", "decay"),
        ("s", "LR sweep from the current parameters (restored afterwards)", "sweep"),
        ("S", "five sweeps over different minibatches: their mean, band and the suggestions' spread", "sweep(5)"),
        ("o", "overlay the earlier sweeps (up to three, labelled by step) on the sweep chart", "overlay"),
        ("G", "LR grid: 32 copies of the model, 500 steps each at exponents -3 … 0, side by side", "grid"),
        ("a", "adopt the suggestion of the latest sweep, or the latest grid's best exponent", "adopt"),
        ("e", "exact full train and dev loss now", "evaluate"),
        ("g", f"sample {SAMPLES_PER_PRESS} names", "sample"),
        ("u", "undo the last run: parameters, step, LR and history as before it", "undo"),
        ("z / Z", "take a snapshot of the state (mid-run too) / list them with their dev loss and restore one",
         "snapshot"),
        ("r", "reset: new parameters from the seed, history cleared", "reset"),
        ("ctrl+s / ctrl+o", "save / load a checkpoint", "save"),
        ("ctrl+e", "export this session as a script that --headless --script-file replays", "export"),
        ("m", "show the characters' embeddings instead of the LR sweep, and back", "toggle_embedding"),
        ("escape", "stop the running job at the next chunk boundary", "stop"),
        ("ctrl+p", "command palette", "command_palette"),
        ("? / F1", "this help", "help"),
        ("q", "quit (stops a run cleanly)", "quit"),
    ]

    def __init__(self, settings: Settings, actions: list[Action] | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.startup_actions = actions or []
        self.worker = TrainerWorker(self, settings)
        self.snapshot: Snapshot | None = None
        self.long_sent = 0
        self.steps_index = STEPS_PER_RUN.index(10_000)
        self.last_path = "charmlp.pt"
        self.snapshots_taken = 0  # names snapshots s1, s2, …
        self.last_finder: str | None = None  # "sweep" or "grid": what `a` adopts from
        self.written_paths: set[Path] = set()  # checkpoints and scripts this app wrote: no question to overwrite
        self.chart_drawn_at = 0.0
        self.chart_shows: tuple | None = None  # (history length, last evaluation) last drawn

    # ---- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            yield StatusPanel(id="status")
            with Vertical(id="charts"):
                yield TrainingChart(id="training")
                yield SweepChart(id="sweep")
                yield EmbeddingChart(id="embedding")
        with Horizontal(id="progress-row"):
            yield ProgressBar(id="progress", total=1, show_eta=False)
            yield Label("", id="rate")
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

    def on_resize(self, event: Resize) -> None:
        self._check_size(event.size)  # the charts redraw themselves on their own Resize

    def _check_size(self, size: Size) -> None:
        small = size.width < MIN_SIZE[0] or size.height < MIN_SIZE[1]
        self.screen.set_class(small, "too-small")
        self.query_one("#too-small", Label).update(
            f"Terminal too small ({size.width}x{size.height}); charmlp-tui needs at least {MIN_SIZE[0]}x{MIN_SIZE[1]}."
        )

    # ---- messages from the worker -----------------------------------------------------------
    def on_trainer_ready(self, message: TrainerReady) -> None:
        status = self.query_one(StatusPanel)
        status.trainer, status.bigram = message.trainer, message.bigram
        status.loading = False
        self.query_one(TrainingChart).trainer = message.trainer
        ds = message.trainer.dataset
        self.log_line(f"ready: {ds.source}, {ds.n_words:,} words, {message.trainer.n_params:,} parameters. "
                      "Press s to sweep the learning rate, space to run, ? for help.")
        for action in self.startup_actions:
            self.send(action)

    def on_trainer_failed(self, message: TrainerFailed) -> None:
        self.query_one(StatusPanel).loading = False
        self.log_line(f"error: {message.error}", error=True)
        self.notify(message.error, title="cannot start", severity="error", timeout=30)

    def on_state_changed(self, message: StateChanged) -> None:
        previous, self.snapshot = self.snapshot, message.snapshot
        s = message.snapshot
        self.query_one(StatusPanel).show(s, STEPS_PER_RUN[self.steps_index])
        bar = self.query_one(ProgressBar)
        rate = self.query_one("#rate", Label)
        if s.job:
            bar.visible = True
            bar.update(total=s.total, progress=s.done)
            left = f", {(s.total - s.done) / s.rate:,.0f} s left" if s.rate else ""
            rate.update(f"{s.job}: {s.rate:,.0f} steps/s{left}" if s.rate else s.job, layout=False)
        elif s.last_job and (previous is None or previous.job or previous.last_job != s.last_job):
            job, done, total = s.last_job
            bar.update(total=total or None, progress=done)
            # a run that blew up ends where it last reported; the log line says what happened
            rate.update(f"{job}: refused (see the log)" if not total else f"done: {job}" if done == total
                        else f"stopped: {job} after {done:,}")
        # compare with what the chart shows, not with the previous snapshot: a redraw skipped
        # during a job for the rate limit must still happen when the job ends
        shown = (s.history_len, s.last_eval)
        now = time.monotonic()
        if shown != self.chart_shows and (s.job is None or now - self.chart_drawn_at >= CHART_INTERVAL_S):
            self.chart_drawn_at, self.chart_shows = now, shown
            self.query_one(TrainingChart).redraw()
            self._show_embedding()
        if previous is None or previous.job != s.job or s.long_started != previous.long_started:
            self.refresh_bindings()

    def _show_embedding(self) -> None:
        chart, s, trainer = self.query_one(EmbeddingChart), self.snapshot, self.query_one(StatusPanel).trainer
        if chart.display and s is not None and s.embedding is not None and trainer is not None:
            vocab = trainer.dataset.vocab
            chart.show_points(s.embedding, [vocab.itos(i) for i in range(vocab.size)], s.embedding_kind, s.step)

    def action_toggle_embedding(self) -> None:
        embedding = self.query_one(EmbeddingChart)
        embedding.display = not embedding.display
        self.query_one(SweepChart).display = not embedding.display
        self._show_embedding()

    def on_logged(self, message: Logged) -> None:
        self.log_line(message.text, message.error)
        if message.error:
            self.notify(message.text, severity="error", timeout=8)

    def on_sweep_finished(self, _: SweepFinished) -> None:
        trainer = self.query_one(StatusPanel).trainer
        self.query_one(SweepChart).show_result(trainer.sweeps[-1], trainer.sweeps[:-1])
        self.last_finder = "sweep"
        self.refresh_bindings()

    def on_grid_finished(self, _: GridFinished) -> None:
        self.query_one(SweepChart).show_grid(self.query_one(StatusPanel).trainer.grids[-1])
        self.last_finder = "grid"
        self.refresh_bindings()

    def log_line(self, text: str, error: bool = False) -> None:
        self.query_one(RichLog).write(f"✗ {text}" if error else text)

    # ---- commands to the worker -------------------------------------------------------------
    def send(self, command) -> None:
        if isinstance(command, Action) and command.verb not in BOUNDARY_VERBS:  # as the worker counts them
            self.long_sent += 1
        self.worker.send(command)
        self.refresh_bindings()

    @property
    def busy(self) -> bool:
        """A job runs, or a long command sent is not taken up yet (quick ones just queue before it)."""
        s = self.snapshot
        return s is None or s.job is not None or s.long_started < self.long_sent

    def suggestion(self) -> float | None:
        trainer = self.query_one(StatusPanel).trainer
        if trainer is None or self.last_finder is None:
            return None
        return trainer.grids[-1].best_exponent if self.last_finder == "grid" else trainer.sweeps[-1].suggested_exponent

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ALWAYS:
            return True
        if self.snapshot is None:  # still loading
            return None
        if action in LONG_ACTIONS and self.busy:
            return None
        if action == "undo":
            return True if self.snapshot.can_undo else None
        if action in LONG_ACTIONS:
            return True
        if action == "stop":
            return True if self.snapshot.job else None
        if action == "adopt":
            return True if self.suggestion() is not None else None
        return True

    def action_run(self) -> None:
        self.send(Action("run", (STEPS_PER_RUN[self.steps_index],)))

    def action_sweep(self, repeats: int = 1) -> None:
        self.send(Action("sweep", (-3.0, 0.0, 1000, repeats) if repeats > 1 else ()))

    def action_grid(self) -> None:
        self.send(Action("grid"))

    def action_overlay(self) -> None:
        self.query_one(SweepChart).toggle_overlay()

    def action_adopt(self) -> None:
        if (suggestion := self.suggestion()) is not None:
            self.send(Action("lr", (suggestion,)))

    def action_lr(self, direction: int) -> None:
        self.send(LrStep(direction * LR_STEP))

    def action_steps(self, direction: int) -> None:
        self.steps_index = min(max(self.steps_index + direction, 0), len(STEPS_PER_RUN) - 1)
        self.query_one(StatusPanel).show(steps_per_run=STEPS_PER_RUN[self.steps_index])

    def action_decay(self) -> None:
        self.send(Action("decay"))

    def action_evaluate(self) -> None:
        self.send(Action("eval"))

    def action_sample(self) -> None:
        self.send(Action("sample", (SAMPLES_PER_PRESS,)))

    def action_reset(self) -> None:
        self.send(Action("reset"))

    def action_undo(self) -> None:
        self.send(Action("undo"))

    def action_snapshot(self) -> None:
        self.snapshots_taken += 1
        self.send(Action("snapshot", (f"s{self.snapshots_taken}",)))

    def action_snapshots(self) -> None:
        def chosen(name: str | None) -> None:
            if name is not None:
                self.send(Action("restore", (name,)))

        self.push_screen(SnapshotsScreen(self.snapshot.snapshots), chosen)

    def action_stop(self) -> None:
        self.worker.stop()

    def action_help(self) -> None:
        self.push_screen(HelpScreen([(key, text) for key, text, _ in self.HELP]))

    def palette_commands(self) -> list[tuple[str, str, str]]:
        return [(text[0].upper() + text[1:], action, f"key: {key}") for key, text, action in self.HELP
                if action not in ("command_palette", "help")] + [("Load a checkpoint", "load", "key: ctrl+o")]

    def _ask_where(self, prompt: str, default: str, write) -> None:
        """Ask for a path; a file that exists and was not written by this app needs a yes first."""
        def chosen(path: Path | None) -> None:
            if path is None:
                return
            if path.exists() and path.resolve() not in self.written_paths:
                self.push_screen(ConfirmScreen(f"{path} exists. Overwrite it?"),
                                 lambda yes: write(path, True) if yes else None)
            else:
                write(path, False)

        self.push_screen(PathScreen(prompt, default), chosen)

    def action_save(self) -> None:
        def save(path: Path, force: bool) -> None:
            self.last_path = str(path)
            self.written_paths.add(path.resolve())
            self.send(Save(path, force))

        self._ask_where("Save checkpoint to:", self.last_path, save)

    def action_export(self) -> None:
        def export(path: Path, force: bool) -> None:
            self.written_paths.add(path.resolve())
            self.send(Export(path, force))

        self._ask_where("Export the session as a script to:", "charmlp-session.txt", export)

    def action_load(self) -> None:
        def chosen(path: Path | None) -> None:
            if path is not None:
                self.last_path = str(path)
                self.send(Action("load", (str(path),)))

        self.push_screen(PathScreen("Load checkpoint from:", self.last_path), chosen)

    async def action_quit(self) -> None:
        self.worker.shutdown()
        self.exit()
