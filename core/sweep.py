"""The LR sweep: one step per learning rate up a ramp from the current parameters, the
suggested exponent, and several sweeps over different minibatches combined."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from core.dataset import Split
from core.jobs import Progress, ProgressFn, StopFn
from core.losswatch import LossWatch
from core.model import Params
from core.smoothing import centred_mean
from core.step import Stepper

BASIN_TOLERANCE = 0.10  # "near the minimum" = within 10% of it
FLAT_START = 0.05  # a basin reaching back into the first 5% of a sweep: flat from its start (the EMA warms up there)
RISE_WINDOW = 0.025  # the rise is found on the losses' centred mean over 2.5% of the sweep either side
REPEAT_SEED_STRIDE = 7919  # repeat r of a sweep draws its minibatches from seed + 7919 r


@dataclass(frozen=True)
class SweepResult:
    at_step: int  # the model's step when the sweep ran (parameters are restored afterwards)
    exponents: list[float]  # lr exponent of each step taken
    losses: list[float]  # minibatch loss of each step (measured before its update)
    smoothed: list[float]  # bias-corrected EMA of losses
    suggested_exponent: float | None
    stopped_early: bool  # the loss blew up (core.losswatch) before the last exponent
    requested_steps: int
    repeats: int = 1  # sweeps over different minibatches; losses and smoothed are then their means
    band: list[float] = field(default_factory=list)  # with repeats: std of the smoothed loss across them
    suggestions: list[float | None] = field(default_factory=list)  # with repeats: each one's own suggestion

    @property
    def flat_from_start(self) -> bool:
        """Whether the sweep found no suggestion because its loss was flat from the first exponent."""
        return self.suggested_exponent is None and len(self.smoothed) >= 2

    @property
    def rise_exponent(self) -> float | None:
        """Where the loss starts to rise (core.sweep.rise_edge): the edge of stability."""
        return rise_edge(self.exponents, self.losses)

    @property
    def suggestion_spread(self) -> tuple[float, float] | None:
        """Lowest and highest of the repeats' own suggestions."""
        found = [s for s in self.suggestions if s is not None]
        return (min(found), max(found)) if len(found) > 1 else None


def combine_repeats(at_step: int, exponents: list[float], runs: list[tuple[list[float], list[float]]],
                    requested_steps: int) -> SweepResult:
    """One result from several sweeps over the same exponents: the mean curves up to where the
    shortest one stopped, the band of their smoothed losses, and each one's suggestion."""
    n = min(len(losses) for losses, _ in runs)
    mean_losses = [statistics.fmean(losses[i] for losses, _ in runs) for i in range(n)]
    mean_smoothed = [statistics.fmean(smoothed[i] for _, smoothed in runs) for i in range(n)]
    band = [statistics.pstdev(smoothed[i] for _, smoothed in runs) for i in range(n)] if len(runs) > 1 else []
    suggestions = [suggest_exponent(exponents[: len(smoothed)], smoothed) for _, smoothed in runs] if len(runs) > 1 else []
    return SweepResult(at_step, exponents[:n], mean_losses, mean_smoothed, suggest_exponent(exponents[:n], mean_smoothed),
                       n < requested_steps, requested_steps, len(runs), band, suggestions)


def suggest_exponent(exponents: list[float], smoothed: list[float]) -> float | None:
    """The left edge of the basin around the smoothed minimum.

    Walk left from the minimum while the smoothed loss stays within 10% of it: every learning
    rate in that basin reaches nearly the lowest loss, and its left edge is the one furthest from
    the blow-up on the right. On makemore's names.txt from the lecture's init this gives
    -0.93 .. -1.10 over five seeds (the lecture picked -1). Why not the "steepest slope" rule:
    one step per LR makes the slope a difference of noisy losses, and here it points at the
    very first exponent every time, because the sweep itself is training the model down from 20.

    None where the basin reaches back into the sweep's first 5% of steps: the loss is flat from
    the start, as in a sweep from a trained model, and that edge would be no finding, just where
    the sweep began (the LR grid compares rates over many steps instead).
    """
    if len(smoothed) < 2:
        return None
    low = min(range(len(smoothed)), key=smoothed.__getitem__)
    edge = low
    while edge > 0 and smoothed[edge - 1] <= (1 + BASIN_TOLERANCE) * smoothed[low]:
        edge -= 1
    return round(exponents[edge], 2) if edge >= FLAT_START * len(smoothed) else None


def rise_edge(exponents: list[float], losses: list[float]) -> float | None:
    """The right edge of the basin: the last exponent, right of the minimum, before the loss
    climbs past 10% above it, on the losses' centred mean (which does not lag as the sweep's
    exponential average does). None where it never climbs that far within the sweep.

    From a trained model the sweep's loss is flat from its start and suggest_exponent finds
    nothing, but this edge is still a finding: rates beyond it make the loss worse at once. It is
    not a rate to train at (the grid compares rates over many steps for that).
    """
    if len(losses) < 2:
        return None
    trend = centred_mean(losses, max(1, round(RISE_WINDOW * len(losses))))
    low = min(range(len(trend)), key=trend.__getitem__)
    edge = low
    while edge + 1 < len(trend) and trend[edge + 1] <= (1 + BASIN_TOLERANCE) * trend[low]:
        edge += 1
    return round(exponents[edge], 2) if edge + 1 < len(trend) else None


@dataclass(frozen=True)
class Ramp:
    """What a sweep runs on: the model's parameters (put back afterwards, bit for bit), one engine
    for the whole sweep (its result must not depend on when a build ended), the training split."""

    params: Params
    stepper: Stepper
    train: Split
    batch_size: int
    chunk_steps: int


def sweep(ramp: Ramp, exponents: list[float], repeats: int, seed: int, at_step: int, on_progress: ProgressFn,
          should_stop: StopFn) -> SweepResult:
    """One step per exponent from the current parameters, `repeats` times over different
    minibatches (repeat r from seed + REPEAT_SEED_STRIDE r); stops a ramp once the loss blows up
    (core.losswatch). The parameters are restored afterwards, whatever happens."""
    saved = ramp.params.clone()
    runs: list[tuple[list[float], list[float]]] = []
    steps, t_start = len(exponents), time.perf_counter()
    try:
        for r in range(repeats):
            gen = torch.Generator().manual_seed(seed + REPEAT_SEED_STRIDE * r)

            def progress(done: int, loss: float, exponent: float) -> None:
                on_progress(Progress("sweep", r * steps + done, repeats * steps, at_step, loss, exponent,
                                     time.perf_counter() - t_start))

            losses, smoothed, cancelled = _ramp_once(ramp, exponents, gen, progress, should_stop)
            ramp.params.copy_(saved)
            runs.append((losses, smoothed))
            if cancelled:
                break
    finally:
        ramp.params.copy_(saved)
    return combine_repeats(at_step, exponents, runs, steps)


def _ramp_once(ramp: Ramp, exponents: list[float], gen: torch.Generator, progress: Callable[[int, float, float], None],
               should_stop: StopFn) -> tuple[list[float], list[float], bool]:
    """One ramp from the current parameters (left changed): (losses, smoothed, cancelled)."""
    watch = LossWatch()
    losses: list[float] = []
    for lo in range(0, len(exponents), ramp.chunk_steps):
        exps = exponents[lo : lo + ramp.chunk_steps]
        X, Y = ramp.train.get_batch(len(exps), ramp.batch_size, gen)
        chunk_losses = ramp.stepper.run(X, Y, [10.0**e for e in exps]).tolist()
        bad = watch.first_bad(chunk_losses)
        losses += chunk_losses[:bad]
        progress(lo + len(exps), chunk_losses[-1], exps[-1])
        if bad is not None:
            break
        if should_stop():
            return losses, watch.smoothed, True
    return losses, watch.smoothed, False
