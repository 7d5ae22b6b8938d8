"""The LR sweep's result and its suggested exponent."""

from __future__ import annotations

from dataclasses import dataclass

BASIN_TOLERANCE = 0.10  # "near the minimum" = within 10% of it
SUGGESTION_RULE = "left edge of the basin: smallest exponent whose smoothed loss stays within 10% of the minimum"


@dataclass(frozen=True)
class SweepResult:
    at_step: int  # the model's step when the sweep ran (parameters are restored afterwards)
    exponents: list[float]  # lr exponent of each step taken
    losses: list[float]  # minibatch loss of each step (measured before its update)
    smoothed: list[float]  # bias-corrected EMA of losses
    suggested_exponent: float | None
    stopped_early: bool  # the loss blew up (core.losswatch) before the last exponent
    requested_steps: int


def suggest_exponent(exponents: list[float], smoothed: list[float]) -> float | None:
    """The left edge of the basin around the smoothed minimum.

    Walk left from the minimum while the smoothed loss stays within 10% of it: every learning
    rate in that basin reaches nearly the lowest loss, and its left edge is the one furthest from
    the blow-up on the right. On makemore's names.txt from the lecture's init this gives
    -0.93 .. -1.10 over five seeds (the lecture picked -1). Why not the "steepest slope" rule:
    one step per LR makes the slope a difference of noisy losses, and here it points at the
    very first exponent every time, because the sweep itself is training the model down from 20.
    """
    if len(smoothed) < 2:
        return None
    low = min(range(len(smoothed)), key=smoothed.__getitem__)
    edge = low
    while edge > 0 and smoothed[edge - 1] <= (1 + BASIN_TOLERANCE) * smoothed[low]:
        edge -= 1
    return round(exponents[edge], 2)
