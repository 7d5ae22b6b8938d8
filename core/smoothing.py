"""A centred moving mean: a noisy curve's trend without the lag an exponential average has."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate


def centred_mean(values: Sequence[float], half: int) -> list[float]:
    """Each value replaced by the mean of the values within `half` places either side (fewer at
    the ends, where the window is cut). Unlike an exponential average it does not lag: a rise or
    a drop stays where it happened."""
    n = len(values)
    if half <= 0 or n == 0:
        return list(values)
    sums = [0.0, *accumulate(values)]
    return [(sums[min(n, i + half + 1)] - sums[max(0, i - half)]) / (min(n, i + half + 1) - max(0, i - half))
            for i in range(n)]
