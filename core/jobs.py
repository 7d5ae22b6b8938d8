"""What long actions (run, sweep, grid) report while they go and when they end. Free of torch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """Where a long action stands; passed to on_progress at every chunk boundary."""

    kind: str  # "run", "sweep" or "grid"
    done: int  # steps done in this action
    total: int
    step: int  # the model's step count
    loss: float  # the last minibatch loss
    lr_exponent: float  # the model's; in a sweep the ramp's current one; nan in a grid (one per model)
    elapsed_s: float


@dataclass(frozen=True)
class Divergence:
    at_step: int  # the step whose minibatch loss blew up (core.losswatch)
    loss: float  # that loss (may be inf or nan)
    restored_step: int  # the step whose parameters were restored (the last good loss)


@dataclass(frozen=True)
class RunResult:
    steps: int  # steps kept (after any rollback)
    stopped: bool  # cancelled by should_stop
    divergence: Divergence | None
    train_seconds: float  # time spent in training steps only (no evaluations)
    last_loss: float | None

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.train_seconds if self.train_seconds > 0 else 0.0


ProgressFn = Callable[[Progress], None]
StopFn = Callable[[], bool]


def never_stop() -> bool:
    return False


def ignore_progress(_: Progress) -> None:
    pass
