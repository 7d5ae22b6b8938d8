"""`tune`: a hyperparameter search on Optuna, each trial a run in the run store.

A trial draws a recipe from core.search_space (TPE), builds that model on the session's trainer
(Trainer.new_model: same words, the dataset rebuilt for its block size), trains it for the
study's steps with one decay, and reports its exact dev loss at every rung of successive halving,
which prunes the weak ones. The objective is the exact dev loss at the end; the test split is
never read. Several processes (or machines, with a shared storage URL) run one study together:
Optuna's storage hands out the trials, and its heartbeats fail a trial whose worker was killed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.actions import Job, Outcome
from core.checkpoint_fields import first_line
from core.errors import CharMLPError, SearchError
from core.keeping import RunKeeper
from core.ranges import RUN_NAME
from core.search_space import LECTURE, Recipe, Space
from core.search_storage import open_storage
from core.search_view import SearchView, TrialView, view_of
from core.store import RunStore
from core.verbs import VERBS

if TYPE_CHECKING:
    import optuna

    from core.trainer import Trainer

RUNGS = 27  # successive halving by 3: rungs at 1/27, 1/9, 1/3 of a trial's steps, and its end


@dataclass(frozen=True)
class StudySpec:
    """What to search and for how long (the `tune` flags, the app's dialog, the script verb)."""

    study: str = "search"  # the study's name in its storage; several workers share one by name
    storage: str | None = None  # an Optuna storage URL; None: SQLite beside the run store
    trials: int | None = 20  # trials this process runs (None: until the timeout)
    timeout_s: float | None = None  # no new trial after this; the running one is pruned at it
    steps: int = 50_000  # one trial's training steps (a pruned trial stops sooner)
    space: Space = field(default_factory=Space)
    join: bool = False  # a worker joining a study another process made (it does not seed the lecture's trial)
    seed: int | None = None  # the sampler's seed (None: each worker its own draws)
    prune: bool = True  # False: every trial runs to its end (what pruning saves is measured against this)


class _Stopped(Exception):
    """The user stopped the search (escape, Ctrl+C): the running trial fails, the finished stay."""


def run_search(trainer: Trainer, keeper: RunKeeper, spec: StudySpec, job: Job,
               on_view: Callable[[SearchView], None] = lambda view: None,
               open_best: bool = True) -> tuple[Outcome, SearchView]:
    """Run the study's trials on this trainer, then (open_best) open the best trial's run on it
    when it was kept here; returns the outcome and the last view of the study."""
    import optuna

    store = keeper.store
    storage, shown = open_storage(spec.storage, store.path if store is not None else None,
                                  spec.study if spec.join else None)
    study = _open_study(storage, spec)
    if not spec.join and not study.get_trials(deepcopy=False) and spec.space.holds(LECTURE):
        study.enqueue_trial(dict(LECTURE), user_attrs={"note": "the lecture's configuration"})
    search = _Search(trainer, keeper, spec, job, study, shown, on_view)
    search.kept(keeper.finish(trainer)[1])  # the session's own run is saved and released: the trials are new runs
    stopped = False
    hook = threading.excepthook
    threading.excepthook = _quiet_heartbeat(hook)
    try:
        study.optimize(search.objective, n_trials=spec.trials, timeout=spec.timeout_s, catch=(CharMLPError,),
                       gc_after_trial=False)
    except _Stopped:
        stopped = True
    except Exception as e:  # the storage failed mid-search (a server gone, a file removed): one line
        root: BaseException = e
        while root.__context__ is not None:  # Optuna's own assertion stands on the database's error
            root = root.__context__
        raise SearchError(f"the study's storage {shown} failed: {first_line(root)} (the finished trials are kept "
                          "there and as runs)") from None
    finally:
        threading.excepthook = hook
    view = search.view()
    opened = _open_best(trainer, keeper, view) if open_best else None
    if open_best and opened is None:  # no best to open: the last trial's run stays open, kept as before
        _reopen(trainer, keeper, search.last_run)
    summary = view.summary(stopped, opened)
    lost = search.store_lines[-1] if keeper.store is None and search.store_lines else search.lost
    if lost:  # what was lost, not a lock waited out or a name taken
        summary += f"; {lost}"
    return Outcome(summary), view


def _quiet_heartbeat(hook: Callable[[threading.ExceptHookArgs], object]) -> Callable[[threading.ExceptHookArgs], None]:
    """Optuna's heartbeat thread dies with a traceback when the storage goes away; the search
    itself then fails with one line, so that thread's death is not printed."""
    def quiet(args: threading.ExceptHookArgs) -> None:
        if args.thread is None or "heartbeat" not in args.thread.name:
            hook(args)

    return quiet


def _open_study(storage: Any, spec: StudySpec) -> optuna.Study:
    import optuna

    sampler = optuna.samplers.TPESampler(seed=spec.seed, n_startup_trials=8, multivariate=True, constant_liar=True)
    pruner = (optuna.pruners.SuccessiveHalvingPruner(min_resource=rung_steps(spec.steps), reduction_factor=3)
              if spec.prune else optuna.pruners.NopPruner())
    try:
        if spec.join:
            return optuna.load_study(study_name=spec.study, storage=storage, sampler=sampler, pruner=pruner)
        return optuna.create_study(study_name=spec.study, storage=storage, sampler=sampler, pruner=pruner,
                                   direction="minimize", load_if_exists=True)
    except Exception as e:  # the storage's driver errors (SQLAlchemy's): one line
        raise SearchError(f"cannot open study {spec.study!r}: {first_line(e)}") from None


def rung_steps(steps: int) -> int:
    return max(1, steps // RUNGS)


class _Search:
    """The objective and what it saw: trials run here, their runs, the view for the UI."""

    def __init__(self, trainer: Trainer, keeper: RunKeeper, spec: StudySpec, job: Job, study: optuna.Study,
                 storage: str, on_view: Callable[[SearchView], None]) -> None:
        self.trainer, self.keeper, self.spec, self.job, self.study = trainer, keeper, spec, job, study
        self.storage, self.on_view = storage, on_view
        self.deadline = None if spec.timeout_s is None else time.monotonic() + spec.timeout_s
        self.current: TrialView | None = None
        self.last_run: str | None = None  # the run of the latest trial this process started
        self._last: SearchView | None = None  # the latest view read from the storage
        self.store_lines: list[str] = []  # what the run store said when a trial's run could not be kept
        self.lost: str | None = None  # the store's line for a trial whose run was never made in it

    def kept(self, line: str | None) -> None:
        """A line from the keeper (a store that failed or was locked) is kept for the trial and the summary."""
        if line is not None:
            self.store_lines.append(line)

    def view(self, read: bool = True) -> SearchView:
        """The study as the storage has it (read), or the last read with the running trial's new rungs:
        reading every trial at every rung would cost O(trials) a rung, and the storage is shared."""
        if read or self._last is None:
            self._last = view_of(self.spec.study, self.storage, self.study.get_trials(deepcopy=False), self.current)
            return self._last
        return view_of(self.spec.study, self.storage, self._last.trials, self.current)

    def objective(self, trial: optuna.Trial) -> float:
        import optuna

        t, keeper, spec = self.trainer, self.keeper, self.spec
        if self.job.should_stop():
            raise _Stopped
        recipe = spec.space.suggest(trial, t.model_config.seed)
        started = time.monotonic()
        run_name = self._free_name(f"{spec.study}-{trial.number}")
        self.last_run = run_name
        self.current = TrialView(trial.number, "running", tuple(sorted(trial.params.items())), (), None, 0.0,
                                 run_name, "")
        self.on_view(self.view())
        try:
            t.new_model(recipe.model, recipe.train_config(t.train_config.chunk_steps))
        except CharMLPError as e:  # too big for this machine's memory: this trial fails, the study goes on
            trial.set_user_attr("note", str(e))
            self.current = None
            raise
        trial.set_user_attr("run", run_name)
        trial.set_user_attr("params", t.n_params)
        self.kept(keeper.start(t, run_name))
        keeper.record.engine_switched("compiled" if t.compiled else "eager", 0)
        lines_before = len(self.store_lines)
        try:
            outcome = self._train(trial, recipe, started)
        except _Stopped:
            trial.set_user_attr("note", f"stopped by the user at step {t.step:,}")
            raise
        finally:
            run, line = keeper.finish(t)
            self.kept(line)
            self.current = None
            if run is None:  # never made in the store: the trial names no run
                trial.set_user_attr("run", None)
                if self.keeper.store is not None and len(self.store_lines) > lines_before:
                    self.lost = self.store_lines[-1]
            elif run.name != run_name:  # taken by another process meanwhile, or renamed while it trained
                trial.set_user_attr("run", run.name)
                self.last_run = run.name
            if len(self.store_lines) > lines_before:
                trial.set_user_attr("store", self.store_lines[-1])
        trial.set_user_attr("seconds", round(time.monotonic() - started, 3))
        trial.set_user_attr("steps", t.step)
        if outcome == "pruned":
            raise optuna.TrialPruned()
        dev = t.split_loss("dev")
        if dev is None:
            raise SearchError("the dev split is empty: a search needs dev words (see --split)")
        return dev

    def _train(self, trial: optuna.Trial, recipe: Recipe, started: float) -> str:
        """Train the recipe's two phases; "pruned" when pruned, out of time or blown up, else "done"."""
        t, steps = self.trainer, self.spec.steps
        first = recipe.decay_step(steps)
        for n, decay_before in ((first, False), (steps - first, True)):
            if n <= 0:
                continue
            if decay_before:
                self._apply(f"decay {recipe.decay:.10g}")
            why = self._run(trial, n, started)
            if why:
                trial.set_user_attr("note", why)
                return "pruned"
        return "done"

    def _apply(self, text: str) -> None:
        action = VERBS.parse_action(text)
        self.keeper.before(self.trainer, action)
        self.kept(self.keeper.after(self.trainer, action, VERBS.execute(self.trainer, action)))

    def _run(self, trial: optuna.Trial, n: int, started: float) -> str | None:
        """One phase of training, reporting the exact dev loss at every rung; why it stopped, if it did."""
        t, keeper, rung = self.trainer, self.keeper, rung_steps(self.spec.steps)
        action = VERBS.parse_action(f"run {n}")
        why: list[str] = []
        reported = len(t.evals)

        def on_progress(progress: Any) -> None:
            nonlocal reported
            self.job.on_progress(progress)
            self.kept(keeper.on_chunk(t, time.monotonic() - started))
            for point in t.evals[reported:]:
                if point.dev is not None:
                    trial.report(point.dev, point.step)
                    self._show(trial, started)
                    if point.step < self.spec.steps and trial.should_prune():  # not at the end: that is its value
                        why.append(f"pruned at step {point.step:,} (dev {point.dev:.4f})")
            reported = len(t.evals)

        def should_stop() -> bool:
            if self.job.should_stop():
                return True
            if self.deadline is not None and time.monotonic() > self.deadline and not why:
                why.append(f"out of time at step {t.step:,}")
            return bool(why)

        keeper.before(t, action)
        result = t.run(n, on_progress, should_stop, eval_every=rung)
        self.kept(keeper.after(t, action, Outcome(f"run {n}", run=result)))
        if self.job.should_stop() and not why:
            raise _Stopped
        if result.divergence is not None:
            return f"the loss blew up at step {result.divergence.at_step:,}"
        return why[0] if why else None

    def _show(self, trial: optuna.Trial, started: float) -> None:
        if self.current is None:
            return
        points = tuple((p.step, p.dev) for p in self.trainer.evals if p.dev is not None)
        self.current = TrialView(trial.number, "running", tuple(sorted(trial.params.items())), points,
                                 None, time.monotonic() - started, self.current.run, "")
        self.on_view(self.view(read=False))

    def _free_name(self, name: str) -> str | None:
        """The trial's run name, or a free one beside it (another study of that name made the first)."""
        store: RunStore | None = self.keeper.store
        if store is None:
            return None
        taken = {run.name for run in store.runs()}
        candidate, k = name, 1
        while candidate in taken:
            k += 1
            candidate = RUN_NAME.beside(name, k)
        return candidate


def _open_best(trainer: Trainer, keeper: RunKeeper, view: SearchView) -> str | None:
    """The best trial's run, opened on the trainer to train further (when it is in this store)."""
    best = view.best
    if best is None or best.run is None or keeper.store is None:
        return None
    try:
        keeper.switch_to(trainer, best.run)
    except CharMLPError:
        return None  # made on another machine, or deleted: the study still says what it was
    return best.run


def _reopen(trainer: Trainer, keeper: RunKeeper, run: str | None) -> None:
    """The trainer holds the last trial's model: open its run again, so that training on is kept."""
    if run is not None and keeper.store is not None:
        try:
            keeper.switch_to(trainer, run)
            return
        except CharMLPError:
            pass
    keeper.start(trainer)  # a new run of the model as it stands (none if the store is off)
