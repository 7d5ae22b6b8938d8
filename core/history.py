"""Per-step training history, appended by the training thread; readers get immutable views."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class EvalPoint:
    step: int
    train: float | None  # full-split losses at this step
    dev: float | None


@dataclass(frozen=True)
class HistoryView:
    """The history up to one moment, never changed afterwards: safe to read on another thread
    while training goes on (LossHistory only writes rows past it, or into new storage)."""

    lr: torch.Tensor  # (n,) learning rate of every step
    loss: torch.Tensor  # (n,) minibatch loss of every step

    def __len__(self) -> int:
        return int(self.loss.shape[0])

    def downsampled(self, max_points: int) -> tuple[list[int], list[float]]:
        """(steps, mean loss) over at most max_points equal buckets: what a chart needs."""
        n, loss = len(self), self.loss
        if n == 0:
            return [], []
        width = -(-n // max(1, max_points))  # ceil
        usable = n - n % width
        means: list[float] = loss[:usable].view(-1, width).mean(1).tolist()
        steps = [i * width + width // 2 for i in range(len(means))]
        if usable < n:
            means.append(float(loss[usable:].mean()))
            steps.append((usable + n) // 2)
        return steps, means


class LossHistory:
    """Learning rate and minibatch loss of every step taken, in growable float tensors.

    Step i (0-based) of the model's life is row i. Only the training thread calls its methods;
    view() hands out the rows so far. Appends write only past every view handed out (growth
    moves to new storage); truncating and restoring start new storage, so no view ever changes.
    """

    def __init__(self) -> None:
        self._lr = torch.empty(1024)
        self._loss = torch.empty(1024)
        self._n = 0
        self.generation = 0  # counts truncations and restores: rows below len() changed when it moves

    def __len__(self) -> int:
        return self._n

    def append(self, lr: float | torch.Tensor, losses: torch.Tensor) -> None:
        k = losses.shape[0]
        if self._n + k > self._lr.shape[0]:
            cap = max(2 * self._lr.shape[0], self._n + k)
            self._lr = torch.cat([self._lr[: self._n], torch.empty(cap - self._n)])
            self._loss = torch.cat([self._loss[: self._n], torch.empty(cap - self._n)])
        self._lr[self._n : self._n + k] = lr
        self._loss[self._n : self._n + k] = losses
        self._n += k

    def truncate(self, n: int) -> None:
        if n < self._n:
            lr, loss = self.tensors()
            self.restore(lr[:n], loss[:n])

    def last(self) -> float | None:
        """The latest minibatch loss, or None before the first step."""
        return float(self._loss[self._n - 1]) if self._n else None

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Copies of (lr, loss) for every step so far."""
        return self._lr[: self._n].clone(), self._loss[: self._n].clone()

    def view(self) -> HistoryView:
        return HistoryView(self._lr[: self._n], self._loss[: self._n])

    def restore(self, lr: torch.Tensor, loss: torch.Tensor) -> None:
        n = int(lr.shape[0])
        cap = max(1024, n)
        self._lr, self._loss = torch.empty(cap), torch.empty(cap)
        self._lr[:n], self._loss[:n] = lr, loss
        self._n = n
        self.generation += 1
