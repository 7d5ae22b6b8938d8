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


# A slow CPU's training rate, conservatively (one core, no wide vectors): what bounds a chunk's work.
SLOW_FLOPS_PER_S = 1e9
CHUNK_WORK_S = 2.0  # a chunk of a huge model ends within about this much work on such a CPU


def chunk_for(chunk_steps: int, n_params: int, batch_size: int) -> int:
    """Steps per chunk: chunk_steps, fewer for a model so large that those steps would take longer
    than CHUNK_WORK_S (about 6 FLOPs a parameter per example, forward and backward). Chunk
    boundaries are where a stop, a signal or a mid-run key is taken up: a 10^9-parameter model at
    200 steps a chunk would not stop for minutes. Counted, not timed, so a replay splits alike."""
    fit = int(CHUNK_WORK_S * SLOW_FLOPS_PER_S / (6 * n_params * batch_size))
    return max(1, min(chunk_steps, fit))
