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

EMA_BETA = 0.98
BLOWUP_FACTOR = 4.0
NORMAL_FACTOR = 2.0  # a single loss within 2x the best average is ordinary minibatch noise


class LossWatch:
    def __init__(self, beta: float = EMA_BETA, factor: float = BLOWUP_FACTOR) -> None:
        self.beta, self.factor = beta, factor
        self._avg, self._n = 0.0, 0
        self.best = math.inf
        self.smoothed: list[float] = []  # the smoothed value of every accepted loss
        self.last_ok: int | None = None  # index (over all losses fed) of the last normal loss

    def first_bad(self, losses: list[float]) -> int | None:
        """Feed losses in order; return the index of the first one that blew up (not accepted)."""
        for i, loss in enumerate(losses):
            if not math.isfinite(loss):
                return i
            avg = self.beta * self._avg + (1 - self.beta) * loss
            smoothed = avg / (1 - self.beta ** (self._n + 1))
            if smoothed > self.factor * self.best:
                return i
            if loss <= NORMAL_FACTOR * min(self.best, smoothed):
                self.last_ok = self._n
            self._avg, self._n = avg, self._n + 1
            self.best = min(self.best, smoothed)
            self.smoothed.append(smoothed)
        return None
