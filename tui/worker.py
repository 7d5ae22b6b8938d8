"""The one thread that owns the Trainer. The UI sends it commands and renders what it posts back.

Commands queue up while the worker is idle; while a run or sweep is going, the cheap ones (LR
changes, decay, evaluation, samples, save) are applied at the next chunk boundary, which is the
point of the tool: decay mid-run. The worker posts a Snapshot at most 5 times a second, never
once per step, and never touches a widget.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.message import Message

from core.actions import Action
from core.errors import CharMLPError
from core.recording import SessionRecord, write_script

if TYPE_CHECKING:
    from textual.app import App

    from core.trainer import Progress, Trainer
    from tui.cli import Settings

# 5 Hz: each UI refresh holds the GIL for ~5 ms, time the training thread loses (bench_app.py:
# 90% of the core's rate at 10 Hz, 93% at 5 Hz). The step counter still looks live.
SNAPSHOT_INTERVAL_S = 0.2
BOUNDARY_VERBS = {"lr", "decay", "eval", "sample", "save", "snapshot"}  # cheap: applied mid-run at a chunk boundary


@dataclass(frozen=True)
class LrStep:
    delta: float  # change of the LR exponent, applied to whatever it is when the command arrives


@dataclass(frozen=True)
class Save:
    path: Path
    force: bool


@dataclass(frozen=True)
class Export:
    path: Path
    force: bool


@dataclass(frozen=True)
class Refresh:
    """Post a snapshot now (something outside the queue changed, e.g. a compile finished)."""


@dataclass(frozen=True)
class Snapshot:
    """What the status panel and progress bar show; built on the worker thread."""

    step: int
    lr_exponent: float
    last_loss: float | None  # latest minibatch loss
    last_eval: Any  # core.history.EvalPoint | None
    job: str | None  # the action running now, e.g. "run 10000"
    last_job: tuple | None = None  # (action, steps done, of total) of the latest job that ended
    done: int = 0
    total: int = 0
    rate: float = 0.0  # steps per second of the running job
    history_len: int = 0
    long_started: int = 0  # long commands (run, sweep, reset, load) the worker has taken up
    engine: str = "eager"  # what runs the training steps: "eager", "eager, compiling…" or "compiled"
    can_undo: bool = False  # a run has happened since the start, the last reset, load or undo
    embedding: Any = None  # (V, 2) tensor: the characters' embeddings as drawn (core.model.embedding_2d)
    embedding_kind: str = ""  # how they were projected to 2-D
    snapshots: tuple = ()  # (name, step, lr exponent, dev loss) of each kept state, oldest first


class TrainerReady(Message):
    def __init__(self, trainer: Trainer, bigram: float | None) -> None:
        super().__init__()
        self.trainer, self.bigram = trainer, bigram


class TrainerFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class StateChanged(Message):
    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StateChanged)  # only the newest state matters


class Logged(Message):
    def __init__(self, text: str, error: bool = False) -> None:
        super().__init__()
        self.text, self.error = text, error


class SweepFinished(Message):
    pass


class GridFinished(Message):
    pass


class TrainerWorker:
    def __init__(self, app: App, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.eval_every_s = settings.eval_every_s
        self.commands: queue.Queue = queue.Queue()
        self.stop_job = threading.Event()
        self.trainer: Trainer | None = None
        self._job: str | None = None
        self._job_progress: Progress | None = None  # where the running job last reported
        self._last_job: tuple[str, int, int] | None = None  # see Snapshot.last_job
        self._long_started = 0
        self.working = False  # applying a command taken from the queue (read by tests and benchmarks)
        self.compiling = False  # a background compile of the training steps is under way
        self.exit_note: str | None = None  # a line for the terminal after the app has gone (the autosave)
        self.record = SessionRecord()  # every action applied, as a replayable script (ctrl+e exports it)
        self._written: set[Path] = set()  # session scripts written: safe to overwrite
        self._last_post = 0.0
        self._last_eval = 0.0
        self._eval_cost = 0.0
        self.thread = threading.Thread(target=self._main, name="charmlp-trainer", daemon=True)

    # ---- UI thread side ----------------------------------------------------------------------
    def start(self) -> None:
        self.thread.start()

    def send(self, command: Action | LrStep | Save | Export) -> None:
        self.commands.put(command)

    def stop(self) -> None:
        """Stop the running job at its next chunk boundary."""
        self.stop_job.set()

    def shutdown(self, timeout: float = 10.0) -> None:
        self.stop_job.set()
        self.commands.put(None)
        if self.thread.is_alive():
            self.thread.join(timeout)

    # ---- worker thread -------------------------------------------------------------------------
    def _main(self) -> None:
        import torch

        from core.session import open_trainer

        torch.set_num_threads(self.settings.threads)
        s = self.settings
        try:
            self.trainer = open_trainer(s.data, s.model, s.train, s.load)
        except CharMLPError as e:
            self.app.post_message(TrainerFailed(str(e)))
            return
        self.trainer.counts("train"), self.trainer.counts("dev")  # precompute evaluation once, here
        self.app.post_message(TrainerReady(self.trainer, self.trainer.bigram_dev_loss()))
        self.record.engine_switched("eager", self.trainer.step)
        if s.compile:
            self.compiling = True
            self.trainer.start_compiling(self._compiled, on_switch=self._switched)
        self._post_state(force=True)
        while (command := self.commands.get()) is not None:
            if isinstance(command, Refresh):
                self._post_state(force=True)
                continue
            self.working = True
            self.stop_job.clear()
            self._apply(command)
            self.working = False
            self._post_state(force=True)
        self._autosave()

    def _autosave(self) -> None:
        """On the way out, however the app ends (quit, a signal): the model to --autosave."""
        path = self.settings.autosave
        if path is None or self.trainer is None:
            return
        try:
            self.trainer.save(path, force=True)
            self.exit_note = f"saved the model to {path} (step {self.trainer.step})"
        except CharMLPError as e:
            self.exit_note = f"error: autosave failed: {e}"

    def _apply(self, command: Action | LrStep | Save | Export, during_job: bool = False) -> None:
        from core.script import execute

        trainer, force = self.trainer, False
        if isinstance(command, Export):
            self._export(command)
            return
        if isinstance(command, LrStep):
            command = Action("lr", (round(trainer.lr_exponent + command.delta, 6),))
        elif isinstance(command, Save):
            command, force = Action("save", (str(command.path),)), command.force
        if command.verb not in BOUNDARY_VERBS:
            self._long_started += 1
        if during_job and command.verb not in BOUNDARY_VERBS:
            self._log(f"{command}: ignored, {self._job} is running (press escape to stop it)", error=True)
            return
        long = command.verb in ("run", "sweep", "grid")
        if long:
            self._job, self._job_progress = str(command), None
        if during_job:
            self.record.split_run(trainer.step)
        if command.verb == "run":
            self.record.run_started(command.args[0], trainer.step)
        try:
            outcome = execute(trainer, command, self._on_progress, self.stop_job.is_set, force=force)
        except CharMLPError as e:
            self._log(f"{command}: {e}", error=True)
            return
        except Exception as e:  # a bug must not kill the thread that owns the model
            self._log(f"{command}: internal error {type(e).__name__}: {e}", error=True)
            return
        finally:
            if long:
                p = self._job_progress
                self._job, self._last_job = None, (self._job, p.done if p else 0, p.total if p else 0)
        if outcome.run is not None:
            self.record.run_ended(outcome.run.stopped, trainer.step)
        else:
            self.record.applied(command)
        self._log(outcome.summary, error=bool(outcome.run and outcome.run.divergence))
        if outcome.sweep is not None:
            self.app.post_message(SweepFinished())
        if outcome.grid is not None:
            self.app.post_message(GridFinished())
        if command.verb == "run" and outcome.run and outcome.run.steps:
            self._evaluate_now()

    def _on_progress(self, progress: Progress) -> None:
        """At every chunk boundary: apply waiting commands, evaluate now and then, post state."""
        while True:
            try:
                command = self.commands.get_nowait()
            except queue.Empty:
                break
            if command is None:  # quitting: stop the job, then leave the loop
                self.stop_job.set()
                self.commands.put(None)
                break
            if not isinstance(command, Refresh):  # a snapshot follows below anyway
                self._apply(command, during_job=True)
        self._job_progress = progress
        if progress.kind == "run" and self.eval_every_s > 0:
            # evaluation costs at most ~5% of the time: never sooner than 20x its own duration
            if time.monotonic() - self._last_eval >= max(self.eval_every_s, 20 * self._eval_cost):
                self._evaluate_now()
        self._post_state(progress=progress)

    def _export(self, command: Export) -> None:
        s = self.settings
        flags = [f"--data {s.data.path.resolve()}" if s.data.path else "",
                 f"--split {','.join(f'{f:g}' for f in s.data.split)}",
                 f"--block-size {s.model.block_size} --emb-dim {s.model.emb_dim} --hidden {s.model.hidden}",
                 f"--seed {s.model.seed} --batch-size {s.train.batch_size} --lr-exp {s.train.lr_exponent:g}",
                 f"--load {s.load.resolve()}" if s.load else ""]
        header = ["charmlp-tui session: every action the app applied. The `engine` lines say where the app ran",
                  "its eager and its compiled steps (they differ in float rounding). On this machine this replays",
                  "it to the same losses, exactly:",
                  f"  charmlp-tui --headless {' '.join(f for f in flags if f)} --script-file {command.path.name} --json"]
        try:
            path = write_script(command.path, self.record.script(header, self.trainer.step), command.force,
                                         self._written)
        except CharMLPError as e:
            self._log(f"export: {e}", error=True)
            return
        self._log(f"export: wrote {path} ({len(self.record.lines)} actions)")

    def _switched(self, at_step: int) -> None:
        """On this thread, from the trainer: the compiled steps run from at_step (recorded for a replay)."""
        self.record.engine_switched("compiled", at_step)

    def _compiled(self, line: str) -> None:
        """From the compile thread: one line for the log; the next snapshot shows the engine."""
        self.compiling = False
        self._log(line, error="failed" in line)
        self.commands.put(Refresh())

    def _evaluate_now(self) -> None:
        t0 = time.monotonic()
        self.trainer.evaluate()
        self._eval_cost = time.monotonic() - t0
        self._last_eval = time.monotonic()

    def _post_state(self, progress: Progress | None = None, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_post < SNAPSHOT_INTERVAL_S:
            return
        self._last_post = now
        from core.model import embedding_2d

        t = self.trainer
        evals = t.evals
        points, kind = embedding_2d(t.params.C)  # a copy: the UI never reads the live parameters
        snapshot = Snapshot(
            step=t.step, lr_exponent=t.lr_exponent,
            last_loss=progress.loss if progress else t.history.last(),
            last_eval=evals[-1] if evals else None, job=self._job, last_job=self._last_job,
            done=progress.done if progress else 0, total=progress.total if progress else 0,
            rate=progress.done / progress.elapsed_s if progress and progress.elapsed_s > 0 else 0.0,
            history_len=len(t.history), long_started=self._long_started,
            engine="compiled" if t.compiled else "eager, compiling…" if self.compiling else "eager",
            can_undo=t.can_undo, embedding=points, embedding_kind=kind,
            snapshots=tuple((k.name, k.step, k.lr_exponent, k.dev_loss) for k in t.snapshots),
        )
        self.app.post_message(StateChanged(snapshot))

    def _log(self, text: str, error: bool = False) -> None:
        self.app.post_message(Logged(text, error))
