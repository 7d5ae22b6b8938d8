"""Every verb of the action language, declared once: usage, help, arguments with their ranges
and defaults, whether it is a long job or may apply mid-run, and what executes it.

Adding a verb is one entry here plus the Trainer method it calls. Headless scripts, the app's
keys and help, the worker's mid-run rule, session recording, --help and the README's table
(`python scripts/make_readme_tables.py` rewrites it; tests/test_readme.py says when) all read this list.
Free of torch (the executors only call the Trainer).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import ranges
from core.actions import Action, Arg, Job, Outcome, Registry, Verb
from core.config import ModelConfig, TrainConfig
from core.errors import ConfigError
from core.reading import shown_path
from core.search_space import DIMS, Dim, Space

if TYPE_CHECKING:
    from core.trainer import Trainer

Values = Mapping[str, Any]
SPACE_KEYS = tuple(d.key for d in DIMS)
DEFAULT_TRIALS = 20  # a `tune` given neither trials= nor timeout=


def _loss(value: float | None) -> str:
    return "n/a (empty split)" if value is None else f"{value:.4f}"


def _reset(t: Trainer, v: Values, job: Job) -> Outcome:
    t.reset()
    return Outcome(f"reset: new parameters from seed {t.model_config.seed}")


def _new(t: Trainer, v: Values, job: Job) -> Outcome:
    m, given = t.model_config, {key: value for key, value in v.items() if value is not None}
    model = ModelConfig(given.get("block", m.block_size), given.get("emb", m.emb_dim), given.get("hidden", m.hidden),
                        given.get("init_seed", m.seed), given.get("init", m.init))
    t.new_model(model, TrainConfig(given.get("batch", t.train_config.batch_size), t.lr_exponent,
                                   t.train_config.chunk_steps, given.get("batch_seed", t.batch_seed)))
    m = t.model_config
    return Outcome(f"new: block {m.block_size}, emb {m.emb_dim}, hidden {m.hidden}, batch {t.train_config.batch_size}, "
                   f"init {m.init}, init seed {m.seed}, batch seed {t.batch_seed}; {t.n_params:,} parameters, "
                   f"step {t.step}")


def _lr(t: Trainer, v: Values, job: Job) -> Outcome:
    t.set_lr_exponent(v["exponent"])
    return Outcome(f"lr: exponent {t.lr_exponent:g} (lr {t.lr:.4g})")


def _decay(t: Trainer, v: Values, job: Job) -> Outcome:
    t.decay(v["factor"])
    return Outcome(f"decay: exponent {t.lr_exponent:.3g} (lr {t.lr:.4g})")


def _run(t: Trainer, v: Values, job: Job) -> Outcome:
    n = v["steps"]
    result = t.run(n, job.on_progress, job.should_stop)
    if result.divergence:
        d = result.divergence
        kept = f"{result.steps:,} steps kept" if result.steps else "no step kept"
        return Outcome(f"run {n}: the loss blew up at step {d.at_step:,} (minibatch loss {d.loss:.4g} at lr {t.lr:.4g}); "
                       f"{kept}, parameters rolled back to step {d.restored_step:,}; lower the learning rate", run=result)
    if result.last_loss is None:  # stopped before its first chunk ended
        return Outcome(f"run {n}: stopped before its first step; nothing changed (step {t.step:,})", run=result)
    text = f"run {n}: step {t.step}, minibatch loss {result.last_loss:.4f}, {result.steps_per_s:,.0f} steps/s"
    return Outcome(text + (f" (stopped after {result.steps} steps)" if result.stopped else ""), run=result)


def _undo(t: Trainer, v: Values, job: Job) -> Outcome:
    undone = t.step
    t.undo_last_run()
    return Outcome(f"undo: back from step {undone} to step {t.step}, lr exponent {t.lr_exponent:g}")


def _snapshot(t: Trainer, v: Values, job: Job) -> Outcome:
    kept = t.take_snapshot(v["name"])
    return Outcome(f"snapshot {kept.name}: step {kept.state.step}, lr exponent {kept.state.lr_exponent:g}, "
                   f"dev loss {_loss(kept.dev_loss)}")


def _restore(t: Trainer, v: Values, job: Job) -> Outcome:
    kept = t.restore_snapshot(v["name"])
    return Outcome(f"restore {kept.name}: back to step {kept.state.step}, lr exponent {kept.state.lr_exponent:g}")


def _sweep(t: Trainer, v: Values, job: Job) -> Outcome:
    result = t.sweep(v["start"], v["end"], v["steps"], v["repeats"], job.on_progress, job.should_stop)
    suggested = "none" if result.suggested_exponent is None else f"{result.suggested_exponent:g}"
    if result.flat_from_start:
        rise = result.rise_exponent
        rises = f"; it rises beyond {rise:g}" if rise is not None else ""
        suggested += (f" (the loss is flat from the sweep's start, as from a trained model{rises}: grid compares rates "
                      "over many steps)")
    end = " (stopped early)" if result.stopped_early else ""
    repeats = ""
    if result.repeats > 1:
        spread = result.suggestion_spread
        repeats = f" (mean of {result.repeats}" + (f"; each alone: {spread[0]:g} to {spread[1]:g})" if spread else ")")
    return Outcome(f"sweep: {len(result.losses)} steps{end}; suggested lr exponent {suggested}{repeats}", sweep=result)


def _grid(t: Trainer, v: Values, job: Job) -> Outcome:
    result = t.grid(v["start"], v["end"], v["models"], v["steps"], job.on_progress, job.should_stop)
    best = "none" if result.best_exponent is None else f"{result.best_exponent:g}"
    finite = [loss for loss in result.losses if loss != float("inf")]
    low = f", its loss {min(finite):.4f}" if finite else ""
    return Outcome(f"grid: {len(result.exponents)} models x {result.steps} steps in {result.seconds:.2f} s; best lr exponent {best}{low}",
                   grid=result)


def _eval(t: Trainer, v: Values, job: Job) -> Outcome:
    point = t.evaluate()
    return Outcome(f"eval at step {point.step}: train {_loss(point.train)}, dev {_loss(point.dev)}")


def _diag(t: Trainer, v: Values, job: Job) -> Outcome:
    return Outcome(t.diagnose().line())


def _test(t: Trainer, v: Values, job: Job) -> Outcome:
    return Outcome(f"test at step {t.step}: {_loss(t.test_loss())} (for the end of an experiment: a model chosen by "
                   "its test loss makes that a dev loss)")


def _sample(t: Trainer, v: Values, job: Job) -> Outcome:
    names = t.sample(v["n"])
    return Outcome("sample: " + " ".join(names), samples=names)


def _save(t: Trainer, v: Values, job: Job) -> Outcome:
    path = t.save(Path(v["path"]), force=job.force)
    return Outcome(f"save: wrote {shown_path(path)} (step {t.step})")


def _load(t: Trainer, v: Values, job: Job) -> Outcome:
    t.load(Path(v["path"]))
    return Outcome(f"load: {shown_path(v['path'])} (step {t.step}, lr exponent {t.lr_exponent:g})")


def _engine(t: Trainer, v: Values, job: Job) -> Outcome:
    return Outcome(f"engine: {t.use_engine(v['engine'])}")


def _space(v: Values) -> Space:
    """The search space with the ranges a `tune` narrowed (ConfigError for a bad one: checked at parse)."""
    return Space().with_ranges([f"{key}={v[key]}" for key in SPACE_KEYS if v[key] is not None])


def _check_space(v: Values) -> None:
    _space(v)


def _tune(t: Trainer, v: Values, job: Job) -> Outcome:
    from core.search import StudySpec, run_search  # optuna loads only for a search

    if job.keeper is None:
        raise ConfigError("tune keeps each trial as a run: it needs the session's run keeper")
    trials = v["trials"] if v["trials"] is not None or v["timeout"] is not None else DEFAULT_TRIALS
    spec = StudySpec(study=v["study"], trials=trials, timeout_s=v["timeout"], steps=v["steps"], space=_space(v))
    outcome, view = run_search(t, job.keeper, spec, job, job.on_search)
    outcome.search = view
    return outcome


def _span(what: str) -> Callable[[Values], None]:
    def check(values: Values) -> None:
        ranges.check_span(values["start"], values["end"], what)

    return check


def _lr_bound(key: str, name: str, default: float) -> Arg:
    return Arg(name, key, ranges.LR_EXPONENT, default)


VERBS = Registry([
    Verb("reset", "new parameters from the seed; step and history start over", _reset),
    Verb("new", "a new model without a restart: parameters from the init seed, minibatches from the batch seed; step, "
         "history and snapshots start over, the learning rate stays; defaults: the current model's values; a new "
         "block size rebuilds the dataset from the same words",
         _new, keywords=(Arg("N", "block", ranges.BLOCK_SIZE), Arg("N", "emb", ranges.EMB_DIM),
                         Arg("N", "hidden", ranges.HIDDEN), Arg("N", "batch", ranges.BATCH_SIZE),
                         Arg("|".join(ranges.INITS), "init", ranges.INITS), Arg("N", "init_seed", ranges.SEED),
                         Arg("N", "batch_seed", ranges.SEED))),
    Verb("lr", f"set the learning rate to 10**EXP (EXP from {ranges.LR_EXPONENT.low:g} to {ranges.LR_EXPONENT.high:g})", _lr, (Arg("EXP", "exponent", ranges.LR_EXPONENT),),
         mid_run=True),
    Verb("run", f"train N minibatch steps (1 to {ranges.RUN_STEPS.high:,})", _run, (Arg("N", "steps", ranges.RUN_STEPS),),
         long=True),
    Verb("decay", "divide the learning rate by FACTOR (default {defaults})", _decay,
         (Arg("FACTOR", "factor", ranges.DECAY_FACTOR, 10.0),), optional=1, mid_run=True),
    Verb("undo", "undo the last run: parameters, step, learning rate and history as they were before it", _undo),
    Verb("snapshot", f"keep the current state (parameters, step, LR, history) under NAME; at most {ranges.MAX_SNAPSHOTS}", _snapshot,
         (Arg("NAME", "name", ranges.SNAPSHOT_NAME),), mid_run=True),
    Verb("restore", "go back to the state kept by 'snapshot NAME'", _restore, (Arg("NAME", "name", ranges.SNAPSHOT_NAME),)),
    Verb("sweep", "LR sweep: one step per LR at 10**linspace(START, END, STEPS), default {defaults}; parameters "
         "restored; --repeats N: N sweeps over different minibatches, their mean, band and the suggestions' spread",
         _sweep, (_lr_bound("start", "START", -3.0), _lr_bound("end", "END", 0.0),
                  Arg("STEPS", "steps", ranges.SWEEP_STEPS, 1000)), optional=3,
         options=(Arg("N", "repeats", ranges.SWEEP_REPEATS, 1),), long=True, check=_span("sweep")),
    Verb("grid", "K copies of the model trained STEPS steps side by side at exponents evenly spaced in [START, END], "
         "default {defaults}; the model itself untouched", _grid,
         (_lr_bound("start", "START", -3.0), _lr_bound("end", "END", 0.0), Arg("K", "models", ranges.GRID_MODELS, 32),
          Arg("STEPS", "steps", ranges.GRID_STEPS, 500)), optional=4, long=True, check=_span("grid")),
    Verb("eval", "exact full train and dev loss now", _eval, mid_run=True),
    Verb("diag", "is the step size right: each tensor's update-to-data ratio at the current LR, log10 std(lr·grad) / "
         "std(param) (rule of thumb ~-3, makemore part 3), the tanh layer's saturation, dead units and pre-activation "
         "std, the top softmax probability; on one minibatch of its own, nothing changes", _diag, mid_run=True),
    Verb("test", "exact loss on the test split: once, at the end of an experiment, never to choose by", _test),
    Verb("sample", f"N names drawn from the model (1 to {ranges.SAMPLES.high:,})", _sample,
         (Arg("N", "n", ranges.SAMPLES),), mid_run=True),
    Verb("save", "write a checkpoint", _save, (Arg("PATH", "path", str),), mid_run=True, replayed=False),
    Verb("load", "replace the model with a checkpoint's", _load, (Arg("PATH", "path", str),)),
    Verb("tune", "a hyperparameter search (Optuna: TPE, successive halving on the exact dev loss): TRIALS trials of "
         "STEPS steps each (default 20 trials of 50,000), or until TIMEOUT seconds; each trial is a run in the store, and the best is opened after; "
         "a space key given as LO:HI narrows that range, init=NAME[,NAME] its choices ("
         + ", ".join(f"{d.key} {d.text}" for d in DIMS) + ")",
         _tune, keywords=(Arg("TRIALS", "trials", ranges.TUNE_TRIALS), Arg("STEPS", "steps", ranges.TUNE_STEPS, 50_000),
                          Arg("S", "timeout", ranges.TUNE_TIMEOUT_S), Arg("NAME", "study", ranges.STUDY_NAME, "search"),
                          *(Arg("LO:HI" if isinstance(d, Dim) else "NAME", d.key, str) for d in DIMS)),
         long=True, check=_check_space),
    Verb("engine", "what runs the training steps from here: torch's eager step or the compiled (native) one; they "
         "differ in float rounding. A session exported from the app says where it switched, so a replay switches "
         "there too", _engine, (Arg("|".join(ranges.ENGINES), "engine", ranges.ENGINES),)),
])


def parse_script(text: str) -> list[Action]:
    return VERBS.parse_script(text)


def execute(trainer: Trainer, action: Action, job: Job = Job()) -> Outcome:
    return VERBS.execute(trainer, action, job)
