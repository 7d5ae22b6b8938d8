"""Executing actions (core.actions) on a Trainer: one line of summary for each."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.actions import Action
from core.errors import ScriptError
from core.grid import GridResult
from core.sweep import SweepResult, flat_from_start
from core.trainer import ProgressFn, RunResult, StopFn, Trainer, ignore_progress, never_stop


@dataclass
class Outcome:
    """What an action did: a one-line summary and whatever it produced."""

    summary: str
    run: RunResult | None = None
    sweep: SweepResult | None = None
    grid: GridResult | None = None
    samples: list[str] = field(default_factory=list)


def execute(trainer: Trainer, action: Action, on_progress: ProgressFn = ignore_progress, should_stop: StopFn = never_stop,
            force: bool = False) -> Outcome:
    """Apply one parsed action to the trainer."""
    verb, args = action.verb, action.args
    if verb == "reset":
        trainer.reset()
        return Outcome(f"reset: new parameters from seed {trainer.model_config.seed}")
    if verb == "lr":
        trainer.set_lr_exponent(args[0])
        return Outcome(f"lr: exponent {trainer.lr_exponent:g} (lr {trainer.lr:.4g})")
    if verb == "decay":
        trainer.decay(*args)
        return Outcome(f"decay: exponent {trainer.lr_exponent:.3g} (lr {trainer.lr:.4g})")
    if verb == "undo":
        undone = trainer.step
        trainer.undo_last_run()
        return Outcome(f"undo: back from step {undone} to step {trainer.step}, lr exponent {trainer.lr_exponent:g}")
    if verb == "snapshot":
        saved = trainer.take_snapshot(args[0])
        return Outcome(f"snapshot {saved.name}: step {saved.step}, lr exponent {saved.lr_exponent:g}, "
                       f"dev loss {_loss(saved.dev_loss)}")
    if verb == "restore":
        saved = trainer.restore_snapshot(args[0])
        return Outcome(f"restore {saved.name}: back to step {saved.step}, lr exponent {saved.lr_exponent:g}")
    if verb == "run":
        result = trainer.run(args[0], on_progress, should_stop)
        text = f"run {args[0]}: step {trainer.step}, minibatch loss {result.last_loss:.4f}, {result.steps_per_s:,.0f} steps/s"
        if result.divergence:
            d = result.divergence
            text = (f"run {args[0]}: loss blew up at step {d.at_step} (minibatch loss {d.loss:.4g}, lr {trainer.lr:.4g}); "
                    f"stopped and rolled back to step {d.restored_step}")
        elif result.stopped:
            text += f" (stopped after {result.steps} steps)"
        return Outcome(text, run=result)
    if verb == "sweep":
        result = trainer.sweep(*args, on_progress=on_progress, should_stop=should_stop)
        suggested = "none" if result.suggested_exponent is None else f"{result.suggested_exponent:g}"
        if flat_from_start(result):
            suggested += " (the loss is flat from the sweep's start, as from a trained model: grid compares rates over many steps)"
        end = " (stopped early)" if result.stopped_early else ""
        repeats = ""
        if result.repeats > 1:
            spread = result.suggestion_spread
            repeats = f" (mean of {result.repeats}" + (f"; each alone: {spread[0]:g} to {spread[1]:g})" if spread else ")")
        return Outcome(f"sweep: {len(result.losses)} steps{end}; suggested lr exponent {suggested}{repeats}", sweep=result)
    if verb == "grid":
        result = trainer.grid(*args, on_progress=on_progress, should_stop=should_stop)
        best = "none" if result.best_exponent is None else f"{result.best_exponent:g}"
        finite = [v for v in result.losses if v != float("inf")]
        low = f", its loss {min(finite):.4f}" if finite else ""
        return Outcome(f"grid: {len(result.exponents)} models x {result.steps} steps; best lr exponent {best}{low}",
                       grid=result)
    if verb == "eval":
        point = trainer.evaluate()
        return Outcome(f"eval at step {point.step}: train {_loss(point.train)}, dev {_loss(point.dev)}")
    if verb == "sample":
        names = trainer.sample(args[0])
        return Outcome("sample: " + " ".join(names), samples=names)
    if verb == "save":
        path = trainer.save(Path(args[0]), force=force)
        return Outcome(f"save: wrote {path} (step {trainer.step})")
    if verb == "load":
        trainer.load(Path(args[0]))
        return Outcome(f"load: {args[0]} (step {trainer.step}, lr exponent {trainer.lr_exponent:g})")
    if verb == "engine":
        return Outcome(f"engine: {trainer.use_engine(args[0])}")
    raise ScriptError(f"unknown action {verb!r}")


def _loss(value: float | None) -> str:
    return "n/a (empty split)" if value is None else f"{value:.4f}"
