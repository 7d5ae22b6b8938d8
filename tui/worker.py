"""The one thread that owns the Trainer. The UI sends it commands and renders what it posts back.

Commands queue up while the worker is idle; while a run or sweep is going, the ones whose verb
may apply mid-run (Verb.mid_run in core.verbs) are applied at the next chunk boundary, which is
the point of the tool: decay mid-run. The worker posts the training
status at most 5 times a second, never once per step, and never touches a widget.
"""

from __future__ import annotations

import itertools
import queue
import shlex
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.actions import Action, Job, Outcome
from core.errors import CharMLPError
from core.jobs import Progress
from core.reading import shown_path
from core.recording import write_script
from core.verbs import VERBS
from tui.messages import (Command, DiagnosticsReport, DiagnosticsUpdated, Export, Facts, GridFinished, Logged, LrStep,
                          Probe, Refresh, RunsCommand, Sampled, Save, StateChanged, SweepFinished,
                          TrainerFailed, TrainerReady, WatchDiagnostics)
from tui.run_commands import apply_runs_command
from tui.settings import Settings
from tui.tune_commands import SearchPosts, refusal, trial_facts
from tui.worker_views import facts_of, status_of

if TYPE_CHECKING:
    from textual.app import App

    from core.keeping import RunKeeper
    from core.trainer import Trainer

# 5 Hz: each UI refresh holds the GIL for several ms, time the training thread loses
# (benchmarks/bench_app.py measures the cost). The step counter still looks live.
STATUS_INTERVAL_S = 0.2
# while the diagnostics screen is open and a job runs: its three charts redraw this often; each redraw
# takes ~40 ms of the UI thread at 160x48, and at 1 s the app kept only 87-91 % of the core's rate
DIAGNOSTICS_INTERVAL_S = 2.0


class TrainerWorker:
    """The UI thread's handle: start, send, stop, shut down. The Trainer lives in _Session, on the thread."""

    def __init__(self, app: App[Any], settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.commands: queue.Queue[tuple[int, Command] | None] = queue.Queue()
        self.stop_job = threading.Event()
        self._numbers = itertools.count(1)  # each command is numbered; the status says which was taken last
        self._sending = threading.Lock()  # numbers reach the queue in order: the compile thread sends too
        self.working = False  # applying a command taken from the queue (read by tests and benchmarks)
        self.exit_note: str | None = None  # a line for the terminal after the app has gone (the autosave)
        self.thread = threading.Thread(target=self._main, name="charmlp-trainer", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def send(self, command: Command) -> int:
        """Queue a command; returns its number (TrainingStatus.taken reaches it once taken up)."""
        with self._sending:
            number = next(self._numbers)
            self.commands.put((number, command))
        return number

    def stop(self) -> None:
        """Stop the running job at its next chunk boundary."""
        self.stop_job.set()

    def shutdown(self, timeout: float = 10.0) -> None:
        self.stop_job.set()
        self.commands.put(None)
        if self.thread.is_alive():
            self.thread.join(timeout)

    def _main(self) -> None:
        import torch

        from core.session import autosave, open_session

        torch.set_num_threads(self.settings.threads)
        s = self.settings
        try:
            trainer, keeper, lines = open_session(s.data, s.model, s.train, s.load, s.keep_runs, s.runs_db,
                                                  s.run_name, s.resume, s.argv_for)
            session = _Session(self, trainer, keeper)
        except CharMLPError as e:
            self.app.post_message(TrainerFailed(str(e)))
            return
        except MemoryError:
            self.app.post_message(TrainerFailed("not enough memory to build the dataset and the model; try a smaller "
                                                "words file, --block-size or model"))
            return
        except Exception as e:  # a bug: say so instead of "loading…" for ever
            self.app.post_message(TrainerFailed(f"internal error {type(e).__name__}: {e}"))
            return
        if s.keep_runs and not keeper.on:  # the store failed: training goes on, the log says why
            lines.append(f"runs are {keeper.line()} (training goes on)")
        for line in lines:
            self.app.post_message(Logged(line, error="not saved" in line))
        try:
            session.serve()
        finally:
            if (closing := keeper.close(trainer)) is not None:
                self.exit_note = closing
            if s.autosave is not None:  # however the app ends: quit, a signal
                _, self.exit_note = autosave(trainer, s.autosave)


class _Session:
    """The worker thread's side: the Trainer, the session record, the job under way."""

    def __init__(self, worker: TrainerWorker, trainer: Trainer, keeper: RunKeeper) -> None:
        self.worker, self.trainer, self.app = worker, trainer, worker.app
        self.settings = worker.settings
        self.keeper = keeper  # keeps the run in the store; its record: every action applied (ctrl+e exports it)
        self._written: set[Path] = set()  # session scripts written: safe to overwrite
        self._taken = 0  # the number of the latest command taken up
        self._job: str | None = None
        self._job_progress: Progress | None = None  # where the running job last reported
        self._last_job: tuple[str, int, int] | None = None  # see TrainingStatus.last_job
        self._compiling = False  # a background compile of the training steps is under way
        self._decisions = 0  # engine choices taken up (core.native.engine)
        self._search: SearchPosts | None = None  # a search (tune) runs: its views go to the app through this
        self._last_post = self._last_eval = self._eval_cost = self._last_diagnostics = 0.0
        self._watching = False  # the diagnostics screen is open: post DiagnosticsUpdated
        self._diagnostics_posted = -1  # measurements in the last report posted during a job
        self._dataset: object = None  # the dataset the evaluation counts and the bigram loss are of
        self._bigram: float | None = None
        self.facts = self._facts()

    def serve(self) -> None:
        self.app.post_message(TrainerReady(self.facts))
        self.keeper.record.engine_switched("eager", self.trainer.step)
        if self.settings.compile:
            self._compiling = True
            self.trainer.start_compiling(self._compiled, on_switch=self._switched)
        self._post_status(force=True)
        while (item := self.worker.commands.get()) is not None:
            self._taken, command = item
            if isinstance(command, WatchDiagnostics):
                self._watching = command.on
            elif not isinstance(command, (Refresh, Probe)):
                self.worker.working = True
                self.worker.stop_job.clear()
                self._apply(command)
                self.facts = self._facts()  # load, new, or another run opened change the model
                self.worker.working = False
            elif isinstance(command, Probe):
                _answer(command, self.trainer)
            self._post_status(force=True)

    def _facts(self) -> Facts:
        """What the status panel shows on top; the evaluation counts and the bigram baseline are
        computed once per dataset, here (`new` with another block size, or another run opened, brings a new one)."""
        t = self.trainer
        if t.dataset is not self._dataset:
            t.counts("train"), t.counts("dev")
            self._dataset, self._bigram = t.dataset, t.bigram_dev_loss()
        return facts_of(t, self._bigram, self.keeper.label())

    def _apply(self, command: Command, during_job: bool = False) -> None:
        trainer, force = self.trainer, False
        if isinstance(command, Export):
            self._export(command)
            return
        if isinstance(command, RunsCommand):
            apply_runs_command(command, self.keeper, trainer, self.app.post_message, self._job if during_job else None,
                               self._written)
            return
        if isinstance(command, LrStep):
            command = Action("lr", (round(trainer.lr_exponent + command.delta, 6),))
        elif isinstance(command, Save):
            force = command.force
            command = Action("save", (str(command.path),))
        assert isinstance(command, Action)
        verb = VERBS[command.verb]
        if during_job and self._search is not None:  # a trial trains as the sampler drew it
            self._log(refusal(command, str(self._job)), error=True)
            return
        if during_job and not verb.mid_run:
            self._log(f"{command}: ignored, {self._job} is running (press escape to stop it)", error=True)
            return
        if verb.long:
            self._job, self._job_progress = str(command), None
        search = self._search = SearchPosts(self.app.post_message) if command.verb == "tune" else None
        self.keeper.before(trainer, command, mid_run=during_job)
        job = Job(self._on_progress, self.worker.stop_job.is_set, force, self.keeper, search or (lambda view: None))
        outcome: Outcome | None = None
        failed = ""  # why it failed: the log's line
        try:
            outcome = VERBS.execute(trainer, command, job)
        except CharMLPError as e:
            failed = f"{command}: {e}"
        except Exception as e:  # a bug must not kill the thread that owns the model
            failed = f"{command}: internal error {type(e).__name__}: {e}"
        finally:
            if verb.long:
                p, job_text = self._job_progress, str(command)
                self._job, self._last_job = None, (job_text, p.done if p else 0, p.total if p else 0)
            if search is not None:  # its end, once: with the outcome, or why it failed; counted in trials
                self._search = None
                self._last_job = search.end(str(command), outcome, failed, self.worker.stop_job.is_set())
        if outcome is None:
            self._log(failed, error=True)
            return
        self._log(outcome.summary, error=bool(outcome.run and outcome.run.divergence))
        if outcome.run is not None and outcome.run.steps:
            self._evaluate_now()  # before the save: the run's last evaluation is kept with it
        if (line := self.keeper.after(trainer, command, outcome, mid_run=during_job)) is not None:
            self._log(line, error=True)
        if outcome.sweep is not None:
            self.app.post_message(SweepFinished(outcome.sweep))
        if outcome.grid is not None:
            self.app.post_message(GridFinished(outcome.grid))
        if outcome.samples:
            self.app.post_message(Sampled(tuple(outcome.samples), trainer.step))

    def _on_progress(self, progress: Progress) -> None:
        """At every chunk boundary: apply waiting commands, evaluate now and then, post the status."""
        while True:
            try:
                item = self.worker.commands.get_nowait()
            except queue.Empty:
                break
            if item is None:  # quitting: stop the job, then leave the loop
                self.worker.stop_job.set()
                self.worker.commands.put(None)
                break
            self._taken, command = item
            if isinstance(command, Probe):
                _answer(command, self.trainer)
            elif isinstance(command, WatchDiagnostics):
                self._watching, self._diagnostics_posted = command.on, -1
            elif not isinstance(command, Refresh):  # a status follows below anyway
                self._apply(command, during_job=True)
        self._job_progress = progress
        if self._search is not None:  # core.search keeps each trial's run and evaluates it at its rungs only
            self.facts = trial_facts(self.facts, self.trainer, self.keeper.label())
        elif progress.kind == "run" and (line := self.keeper.on_chunk(self.trainer, progress.elapsed_s)) is not None:
            self._log(line, error=True)
        if progress.kind == "run" and self.settings.eval_every_s > 0 and self._search is None:
            # evaluation costs at most ~5% of the time: never sooner than 20x its own duration
            if time.monotonic() - self._last_eval >= max(self.settings.eval_every_s, 20 * self._eval_cost):
                self._evaluate_now()
        self._post_status(progress=progress)

    def _export(self, command: Export) -> None:
        replay = ["charmlp-tui", "--headless", "--no-runs", *self.keeper.argv, "--script-file", command.path.name, "--json"]
        header = ["charmlp-tui session: every action the app applied. The `engine` lines say where the app ran",
                  "its eager and its compiled steps (they differ in float rounding). On this machine this replays",
                  "it to the same losses, exactly:", f"  {shlex.join(replay)}"]
        try:
            path = write_script(command.path, self.keeper.script(header, self.trainer.step), command.force,
                                self._written)
        except CharMLPError as e:
            self._log(f"export: {e}", error=True)
            return
        self._log(f"export: wrote {shown_path(path)} ({len(self.keeper.record.lines)} actions)")

    def _switched(self, engine: str, at_step: int, why: str) -> None:
        """On this thread, from the trainer: a measurement chose `engine` from at_step (recorded for a
        replay, with why); the first one the build's line has said already."""
        if self._decisions:
            self._log(f"step {at_step:,}: {why}")
        self._decisions += 1
        self.keeper.record.engine_chosen(engine, at_step, why)

    def _compiled(self, line: str) -> None:
        """From the compile thread: one line for the log; the next status shows the engine."""
        self._compiling = False
        self._log(line, error="failed" in line)
        self.worker.send(Refresh())

    def _evaluate_now(self) -> None:
        t0 = time.monotonic()
        self.trainer.evaluate()
        self._eval_cost = time.monotonic() - t0
        self._last_eval = time.monotonic()

    def _post_status(self, progress: Progress | None = None, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_post < STATUS_INTERVAL_S:
            return
        self._last_post = now
        status = status_of(self.trainer, self.facts, progress, taken=self._taken, job=self._job,
                           last_job=self._last_job, compiling=self._compiling)
        self.app.post_message(StateChanged(status))
        if self._watching:
            self._post_diagnostics(force)

    def _post_diagnostics(self, force: bool) -> None:
        """For the diagnostics screen: between jobs, a measurement at the parameters and LR now (a
        forward and backward on one minibatch); during one, what the run recorded, at most every DIAGNOSTICS_INTERVAL_S."""
        t, now = self.trainer, time.monotonic()
        log = t.diagnostics
        if not force and (now - self._last_diagnostics < DIAGNOSTICS_INTERVAL_S or len(log) == self._diagnostics_posted):
            return
        self._last_diagnostics = now
        self._diagnostics_posted = len(log)
        current = log.latest if self._job is not None else t.diagnose()
        self.app.post_message(DiagnosticsUpdated(DiagnosticsReport(log.view(), current, t.step, t.diagnose_every,
                                                                   self._job)))

    def _log(self, text: str, error: bool = False) -> None:
        self.app.post_message(Logged(text, error))


def _answer(probe: Probe, trainer: Trainer) -> None:
    try:
        probe.answer.set_result(probe.read(trainer))
    except Exception as e:  # the test that asked sees it
        probe.answer.set_exception(e)
