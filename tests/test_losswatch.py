"""core.losswatch over a whole chunk at once gives exactly what the step-by-step loop it replaced
gave: the same first bad step, the same last normal one, the same averages, bit for bit."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from core.losswatch import BLOWUP_FACTOR, EMA_BETA, NORMAL_FACTOR, LossWatch


class LoopWatch:
    """The loop as it was (one Python iteration a step): the reference."""

    def __init__(self) -> None:
        self.beta, self.factor = EMA_BETA, BLOWUP_FACTOR
        self._avg, self._n = 0.0, 0
        self.best = math.inf
        self.smoothed: list[float] = []
        self.last_ok: int | None = None

    def first_bad(self, losses: list[float]) -> int | None:
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


def same_state(fast: LossWatch, loop: LoopWatch) -> None:
    assert (fast._avg, fast._n, fast.best, fast.last_ok) == (loop._avg, loop._n, loop.best, loop.last_ok)
    assert fast.smoothed == loop.smoothed


# minibatch losses as float32 gives them: calm ones, spikes, a climb, and the odd inf or nan
loss_values = st.one_of(
    st.floats(1.5, 3.5, width=32),
    st.floats(0.0, 40.0, width=32),
    st.floats(0.0, allow_infinity=False, width=32),
    st.sampled_from([math.inf, math.nan, 0.0, 2.0, 8.0]),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.lists(loss_values, max_size=60), max_size=8))
def test_the_chunk_at_once_equals_the_step_loop(chunks):
    fast, loop = LossWatch(), LoopWatch()
    for chunk in chunks:
        bad = fast.first_bad(chunk)
        assert bad == loop.first_bad(chunk)
        same_state(fast, loop)
        if bad is not None:
            break


@settings(max_examples=50, deadline=None)
@given(st.floats(1.0, 4.0, width=32), st.integers(1, 400), st.floats(1.0, 30.0))
def test_a_long_calm_run_then_a_climb(level, chunk, climb):
    """Past ~1850 steps the bias correction is exactly 1.0: the cached corrections end there."""
    losses = [level * (1 + 0.01 * math.sin(i)) for i in range(2500)] + [level * climb] * 300
    fast, loop = LossWatch(), LoopWatch()
    for lo in range(0, len(losses), chunk):
        bad = fast.first_bad(losses[lo : lo + chunk])
        assert bad == loop.first_bad(losses[lo : lo + chunk])
        same_state(fast, loop)
        if bad is not None:
            break
