"""The blow-up rule shared by training runs and LR sweeps.

A loss has blown up when it is not finite, or when its bias-corrected moving average (as fastai /
Lightning lr_find smooth) rises above 4x the lowest average seen so far. At lr 10**0.5 the
lecture's model climbs from 2.7 to 15+ within a few thousand steps and at 10**3 to thousands,
but never to inf (tanh saturates), so non-finite alone would never fire; at lr 1.0 single
minibatches spike to ~14 and recover, which the average rides out.

Because the average lags, the steps just before it fires may already be damaged: `last_ok`
is the last loss that was itself normal (at most 2x the best average; minibatch noise at
batch 32 stays well inside that), the point a rollback should return to.
"""

from __future__ import annotations

import math
from itertools import accumulate

import numpy as np

EMA_BETA = 0.98
BLOWUP_FACTOR = 4.0
NORMAL_FACTOR = 2.0  # a single loss within 2x the best average is ordinary minibatch noise


class LossWatch:
    """The rule over a whole chunk at once: the average's recurrence runs in float64 in the same
    order as a loop over the steps would (itertools.accumulate), everything else as numpy arrays,
    so every comparison sees the very floats a step-by-step loop would (0.45 -> 0.2 µs a step for
    chunks of 200; tests/test_losswatch.py checks it against that loop)."""

    def __init__(self, beta: float = EMA_BETA, factor: float = BLOWUP_FACTOR) -> None:
        self.beta, self.factor = beta, factor
        self._avg, self._n = 0.0, 0
        self.best = math.inf
        self.smoothed: list[float] = []  # the smoothed value of every accepted loss
        self.last_ok: int | None = None  # index (over all losses fed) of the last normal loss
        self._debias: list[float] = []  # 1 - beta**(n+1) for n = 0, 1, … until it rounds to 1.0

    def first_bad(self, losses: list[float]) -> int | None:
        """Feed losses in order; return the index of the first one that blew up (not accepted)."""
        if not losses:
            return None
        beta, weight = self.beta, 1 - self.beta
        avg = np.fromiter(accumulate(losses, lambda a, x: beta * a + weight * x, initial=self._avg), np.float64)[1:]
        smoothed = avg / self._debiasing(len(losses))  # (k,)
        best_before = np.minimum.accumulate(np.concatenate(([self.best], smoothed[:-1])))  # best before each step
        loss = np.asarray(losses, np.float64)
        blown = ~np.isfinite(loss) | (smoothed > self.factor * best_before)
        bad = int(blown.argmax()) if blown.any() else None
        kept = len(losses) if bad is None else bad
        normal = np.flatnonzero(loss[:kept] <= NORMAL_FACTOR * np.minimum(best_before[:kept], smoothed[:kept]))
        if normal.size:
            self.last_ok = self._n + int(normal[-1])
        if kept:
            self._avg, self._n = float(avg[kept - 1]), self._n + kept
            self.best = min(self.best, float(smoothed[:kept].min()))
            self.smoothed += smoothed[:kept].tolist()
        return bad

    def _debiasing(self, k: int) -> np.ndarray:
        """1 - beta**(n+1) for the next k steps (k,), each computed as Python computes it."""
        while len(self._debias) < self._n + k and (not self._debias or self._debias[-1] != 1.0):
            self._debias.append(1 - self.beta ** (len(self._debias) + 1))
        out = np.ones(k)
        known = self._debias[self._n : self._n + k]
        out[: len(known)] = known
        return out
