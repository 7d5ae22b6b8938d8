"""Undoing the steps of a run that blew up: replay its last chunks up to the last good step."""

from __future__ import annotations

from dataclasses import dataclass

from core.dataset import Minibatches
from core.model import Params
from core.step import Stepper


@dataclass(frozen=True)
class Chunk:
    """One chunk of a run, kept so that a rollback can replay it."""

    start: int  # the step the chunk started at
    params: Params  # a copy of the parameters at that step
    batches: Minibatches  # its minibatches
    lr: float
    stepper: Stepper  # what ran it: a replay must use the same, to land exactly


class KeptChunks:
    """The last two chunks of a run: enough to go back past a blow-up the loss average noticed late."""

    def __init__(self) -> None:
        self._chunks: list[Chunk] = []

    def add(self, chunk: Chunk) -> Chunk:
        self._chunks = [*self._chunks[-1:], chunk]
        return chunk

    def restore(self, params: Params, target: int) -> int:
        """Put `params` back to those of step `target` by replaying from a kept chunk; returns the
        step restored. A chunk's steps are deterministic given its starting parameters and
        minibatches, so the replay lands exactly on `target`; if target is older than what is
        kept, the oldest kept start is used instead."""
        source = next((c for c in reversed(self._chunks) if c.start <= target), self._chunks[0])
        target = max(target, source.start)
        params.copy_(source.params)
        n = target - source.start
        source.stepper.run_batches(source.batches.head(n), [source.lr] * n)
        return target
