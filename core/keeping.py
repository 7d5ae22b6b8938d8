"""Keeping the trainer's current run in the run store (core.store) while it trains.

Called on the trainer's own thread by whoever drives it (headless mode, the app's worker): at chunk
boundaries (on_chunk: at most every FLUSH_INTERVAL_S), after every action (after), and at the end
(close). Each save is one transaction holding the history rows since the last one (with the
diagnostics measured in them), the latest state (parameters, step, LR, minibatch generator,
evaluations) and the runs row, so a crash or `kill -9` loses at most the last FLUSH_INTERVAL_S of
training and never leaves a run whose history and state disagree. `reset`, `load` and `new` start a
new run; `undo` and `restore` rewrite the history from where it changed.

A store that fails (a full disk, a file made read-only) turns keeping off with one line; training
goes on, and `line` says so for the status panel. A lock held by another process past the store's
wait costs only that write (one line; a save is tried again at the next one, a run's last save
at once), and turns keeping off only BUSY_TRIES writes in a row: two processes keeping their runs
in one store wait for each other.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from core.actions import Action, Outcome
from core.config import DataConfig, ModelConfig, TrainConfig
from core import ranges
from core.errors import StoreBusyError, StoreError
from core.history import EvalPoint
from core.recording import SessionRecord
from core.run_blobs import Segments, history_chunks, read_evals, schedule, segments, snapshot_blobs
from core.state import ModelSnapshot, TrainingState
from core.store import RunRow, RunStore
from core.stored_runs import progress_summary, resume_configs, run_values, stored_progress, stored_state

if TYPE_CHECKING:
    from core.trainer import Trainer

FLUSH_INTERVAL_S = 2.0  # during a run: what a crash may lose, and the store's write rate
NEW_RUN_VERBS = ("reset", "load", "new")  # after these the model is another run's
BUSY_TRIES = 3  # writes in a row that may find the store locked past its wait before keeping turns off

Stored = tuple[RunRow, TrainingState, list[ModelSnapshot], str]  # a run as read back: row, state, snapshots, engine
# the flags that rebuild a model from scratch (tui.settings.Settings.argv_for): kept with each run
ArgvFn = Callable[[ModelConfig, TrainConfig, "Path | None"], list[str]]


class RunKeeper:
    def __init__(self, store: RunStore | None, off_reason: str | None, data: DataConfig, argv_for: ArgvFn) -> None:
        self.store, self.off_reason = store, off_reason
        self.data, self.argv_for = data, argv_for
        self.record = SessionRecord()  # the current run's actions in this session (its script goes on from `_base`)
        self.argv: list[str] = []  # the flags that rebuild the current run's model from scratch
        self.run: RunRow | None = None
        self._pending: dict[str, object] | None = None  # the run to make at its first step (what it is)
        self._pending_name: str | None = None
        self._base = ""  # the script of the run's earlier sessions
        self._base_wall = self._base_train = 0.0
        self._started = time.monotonic()
        self._train_s = 0.0  # in this session: runs that ended, plus the one under way
        self._job_s = 0.0
        self._stored = 0  # history rows in the store
        self._generation = -1  # the history's generation they were written from (-1: none yet)
        self._schedule: Segments = []  # of the rows stored: each save adds its new rows' only
        self._flushed_at = 0.0
        self._busy = 0  # writes in a row that found the store locked (each run starts at 0: _reset_clock)

    @property
    def on(self) -> bool:
        return self.store is not None

    def line(self) -> str:
        """For the status panel: where the run is kept, or why not."""
        if self.store is None:
            return f"not saved: {self.off_reason}"
        return f"{self.run.name if self.run else 'a new run, kept from its first step'} in {self.store.shown}"

    def label(self) -> str:
        """The run in a few words, for the status panel's run row."""
        if self.store is None:
            return "not saved"
        if self.run is not None:
            return self.run.name
        return f"{self._pending_name or 'new'}: kept from step 1"

    # ---- runs ------------------------------------------------------------------------------
    def start(self, trainer: Trainer, name: str | None = None, load: Path | None = None) -> str | None:
        """A new run for the trainer's model as it is now; returns a line to show if the store failed."""
        self.record, self.argv = SessionRecord(), self.argv_for(trainer.model_config, trainer.train_config, load)
        self.run, self._base, self._base_wall, self._base_train = None, "", 0.0, 0.0
        self._reset_clock()
        if self.store is None:
            return None
        self._pending, self._pending_name = run_values(trainer, self.data, self.argv), name
        return self._create_if_trained(trainer)

    def _create_if_trained(self, trainer: Trainer, again: bool = True) -> str | None:
        """The run is made in the store at its first step (a loaded model: at once), so opening
        the app, looking and quitting keeps no empty run."""
        if self.store is None or self.run is not None or self._pending is None or trainer.step == 0:
            return None
        values, name = self._pending, self._pending_name
        line = self._try(lambda store: self._created(store.create(values, name), trainer), "run", again)
        if self.run is not None or self.store is None:  # made, or never will be: a lock leaves it to the next save
            self._pending = None
        if self.run is not None and name is not None and self.run.name != name:
            taken = f"run name {name!r} was taken by another run meanwhile; this run is kept as {self.run.name!r}"
            return taken if line is None else f"{taken}; {line}"
        return line

    def _created(self, run: RunRow, trainer: Trainer) -> None:
        self.run = run
        self._flush(trainer)

    def resume(self, trainer: Trainer, run: RunRow) -> None:
        """Continue `run` on a trainer built from resume_configs(run): its state, snapshots and
        script put back. StoreError if it cannot be: refused before the store is written, unless
        another process saved the run between its read and the claim and the run as it is now is
        refused (then it is released again)."""
        store = self._need_store()
        state, snapshots, engine = stored_state(store, trainer, run)
        self._install(trainer, run, state, snapshots, engine)  # all that can be refused, before the store is written
        store.claim(run)
        try:
            if (again := self._saved_since(store, trainer, run)) is not None:
                self._install(trainer, *again)
        except BaseException:
            self._try(lambda s: s.release(run.id), "the run's release", again=False)
            raise

    @staticmethod
    def _saved_since(store: RunStore, trainer: Trainer, run: RunRow) -> Stored | None:
        """Just claimed: the run as it stands now if another process saved it after `run` was read
        (it trained it and let go in between), else None."""
        now = store.get_by_id(run.id)
        if (now.updated, now.steps) == (run.updated, run.steps):
            return None
        return (now, *stored_state(store, trainer, now))

    def switch_to(self, trainer: Trainer, name: str) -> RunRow:
        """Open another stored run in this session (the app's runs screen): the current run is
        saved and released, the other one resumed. It must be on the same words and split; its
        shape may differ (Trainer.new_model). Refused in one line with nothing changed."""
        store = self._need_store()
        run = store.get(name)
        if self.run is not None and run.id == self.run.id:
            raise StoreError(f"run {name!r} is the one open now")
        data, model, train = resume_configs(run)
        here = self.data.path.resolve() if self.data.path else None
        if data.split != self.data.split or data.path != here:
            raise StoreError(f"run {name!r} was trained on {run.data_source} with split {run.split}; to continue it, "
                             f"start charmlp-tui --resume {name}")
        state, snapshots, engine = stored_state(store, trainer, run)
        if (line := self._save(trainer, again=False)) is not None:
            raise StoreError(line)
        store.claim(run)
        try:
            if (again := self._saved_since(store, trainer, run)) is not None:
                run, state, snapshots, engine = again
            trainer.new_model(model, train)  # refused whole (memory): the current run stays open
        except BaseException:
            self._try(lambda s: s.release(run.id), "the run's release", again=False)
            raise
        self._release()
        self._install(trainer, run, state, snapshots, engine)
        return run

    def _install(self, trainer: Trainer, run: RunRow, state: TrainingState, snapshots: list[ModelSnapshot],
                 engine: str) -> None:
        trainer.apply_checkpoint(state, Path(f"run {run.name!r}"))
        trainer.snapshots = snapshots
        if engine in ranges.ENGINES:
            trainer.use_engine(engine)
        self.run, self._base, self.argv = run, run.script, json.loads(run.argv)
        self._base_wall, self._base_train = run.wall_s, run.train_s
        self.record = SessionRecord()
        self.record.lines.append(f"# resumed at step {state.step}")
        self._reset_clock()
        self._stored, self._generation = state.step, trainer.history.generation
        self._schedule = segments(trainer.history.view().lr)

    # ---- the store's other runs (the app's runs screen) -------------------------------------
    def _need_store(self) -> RunStore:
        if self.store is None:
            raise StoreError(f"runs are not saved in this session ({self.off_reason})")
        return self.store

    def runs(self) -> list[RunRow]:
        return self._need_store().runs()

    def curves(self, names: list[str]) -> list[tuple[str, tuple[EvalPoint, ...]]]:
        """Each named run's exact evaluations (step, train, dev): what the chart overlays."""
        store = self._need_store()
        return [(name, read_evals(store.evals(store.get(name).id))) for name in names]

    def rename(self, name: str, new: str) -> None:
        ranges.RUN_NAME.check(new)
        self._need_store().rename(name, new)
        if self.run is not None and self.run.name == name:
            self.run = self._need_store().get(new)

    def delete(self, name: str) -> None:
        if self.run is not None and self._need_store().get(name).id == self.run.id:  # by id: renamed elsewhere
            raise StoreError(f"run {name!r} is the one open now; open or start another run first")
        self._need_store().delete(name)

    def _reset_clock(self) -> None:
        self._started, self._train_s, self._job_s = time.monotonic(), 0.0, 0.0
        self._stored, self._generation, self._flushed_at, self._schedule = 0, -1, 0.0, []
        self._busy = 0

    def script(self, header: list[str], now_at_step: int | None = None) -> str:
        """The run's whole script: its earlier sessions' actions, then this one's."""
        text = self.record.script(header, now_at_step)
        if not self._base:
            return text
        lines = text.splitlines()
        n_header = sum(len(line.splitlines() or [""]) for line in header)
        return "\n".join([*lines[:n_header], *self._base.splitlines(), *lines[n_header:]]) + "\n"

    # ---- during training -------------------------------------------------------------------
    def on_chunk(self, trainer: Trainer, job_elapsed_s: float) -> str | None:
        self._job_s = job_elapsed_s
        if time.monotonic() - self._flushed_at < FLUSH_INTERVAL_S:  # a run made or saved, or a lock met, lately
            return None
        return self._save(trainer)

    def before(self, trainer: Trainer, action: Action, mid_run: bool = False) -> None:
        """An action is about to be applied (mid_run: at a running job's chunk boundary): the record
        closes the run's segment so far, or opens a run."""
        if mid_run:
            self.record.split_run(trainer.step)
        if action.verb == "run":
            self.record.run_started(int(action.args[0]), trainer.step)

    def after(self, trainer: Trainer, action: Action, outcome: Outcome, mid_run: bool = False) -> str | None:
        """An action was applied: recorded, then saved (at once, unless mid-run), or a new run started
        after reset, load, new. Returns a line to show if the store failed."""
        if action.verb == "tune":  # each trial was kept as its own run; the best one is open now
            return None
        if outcome.run is not None:
            self.record.run_ended(outcome.run.stopped, trainer.step)
        else:
            self.record.applied(action)
        if outcome.run is not None:
            self._train_s += outcome.run.train_seconds
            self._job_s = 0.0
        if action.verb in NEW_RUN_VERBS:
            load = Path(str(action.args[0])).expanduser() if action.verb == "load" else None
            self._release()
            return self.start(trainer, load=load)
        if self.store is None or self.run is None:
            return self._create_if_trained(trainer)
        run_id, store = self.run.id, self.store
        if action.verb == "test":
            return self._try(lambda s: store.mark_test(run_id, trainer.step, trainer.test_loss()), "the test loss",
                             again=False)
        if action.verb == "snapshot":
            kept = next(k for k in reversed(trainer.snapshots) if k.name == action.args[0])
            keep = [k.name for k in trainer.snapshots]
            if (line := self._try(lambda s: store.save_snapshot(run_id, snapshot_blobs(kept), keep),
                                  f"snapshot {kept.name!r}", again=False)) is not None:
                return line
        if mid_run and time.monotonic() - self._flushed_at < FLUSH_INTERVAL_S:
            return None
        return self._save(trainer)

    def finish(self, trainer: Trainer) -> tuple[RunRow | None, str | None]:
        """The current run ends here (a search's trial is over, another is about to start): saved,
        released. Returns the run as kept (None: never made) and a line if the store failed."""
        line = self._last_save(trainer)
        kept = self.run
        self.run = self._pending = self._pending_name = None
        return kept, line

    def close(self, trainer: Trainer) -> str | None:
        """The session ends: a last save, and the run released for another process to resume."""
        line = self._last_save(trainer)
        if self.store is not None:
            self.store.close()
        return line

    def _save(self, trainer: Trainer, again: bool = True) -> str | None:
        """Save the run (make it, at its first step); `again`: a lock met is tried again at the next save."""
        if self.run is None:
            return self._create_if_trained(trainer, again)
        return self._try(lambda store: self._flush(trainer), "run", again)

    def _last_save(self, trainer: Trainer) -> str | None:
        """A run's last save (it ends, or the session does): a lock met is waited for once more, and
        the run released only once saved (one left claimed frees itself when this process ends)."""
        line = self._save(trainer, again=False)
        if line is not None and self.store is not None:  # locked, not turned off: once more
            line = self._save(trainer, again=False)
        return self._release() if line is None else line

    def _release(self) -> str | None:
        if self.store is None or self.run is None:
            return None
        run_id = self.run.id
        return self._try(lambda store: store.release(run_id), "the run's release", again=False)

    def _try(self, write: Callable[[RunStore], None], what: str, again: bool) -> str | None:
        """Run one store write; a failure turns keeping off and returns the line that says so. A
        store locked past its wait only says `what` was not saved (`again`: tried at the next save),
        BUSY_TRIES writes in a row."""
        if self.store is None:
            return None
        try:
            write(self.store)
        except StoreError as e:
            if isinstance(e, StoreBusyError) and self._busy + 1 < BUSY_TRIES:
                self._busy += 1
                self._flushed_at = time.monotonic()  # the next try waits its turn: the lock already cost a wait
                then = f"; tried again in {FLUSH_INTERVAL_S:g} s (training goes on)" if again else ""
                return f"{what} not saved this time: {e}{then}"
            self.store.close()
            self.store, self.off_reason = None, str(e)
            return f"runs are {'no longer' if self.run is not None else 'not'} saved: {e} (training goes on)"
        self._busy = 0
        return None

    def _flush(self, trainer: Trainer) -> None:
        assert self.store is not None and self.run is not None
        history = trainer.history.view()
        n = len(history)
        fresh = trainer.history.generation != self._generation or n < self._stored
        start = 0 if fresh else self._stored
        plan = segments(history.lr[start:], None if fresh else self._schedule)
        summary = progress_summary(trainer, schedule(plan), wall_s=self._base_wall + time.monotonic() - self._started,
                                   train_s=self._base_train + self._train_s + self._job_s,
                                   script=self.script([], trainer.step).rstrip("\n"))
        name = self.store.save_progress(self.run.id, summary, stored_progress(trainer), history_chunks(
            history.lr[start:], history.loss[start:], trainer.diagnostics.view().rows, start), start)
        if name != self.run.name:  # renamed by `runs rename` while it trains
            self.run = dataclasses.replace(self.run, name=name)
        self._stored, self._generation, self._flushed_at = n, trainer.history.generation, time.monotonic()
        self._schedule = plan

