"""Per-step training history, shared between the training thread (appends) and readers (snapshots)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class EvalPoint:
    step: int
    train: float | None  # full-split losses at this step
    dev: float | None


class LossHistory:
    """Learning rate and minibatch loss of every step taken, in growable float tensors.

    Step i (0-based) of the model's life is row i. Thread-safe: the worker appends while the
    UI takes downsampled snapshots.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lr = torch.empty(1024)
        self._loss = torch.empty(1024)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def append(self, lr: float | torch.Tensor, losses: torch.Tensor) -> None:
        k = losses.shape[0]
        with self._lock:
            if self._n + k > self._lr.shape[0]:
                cap = max(2 * self._lr.shape[0], self._n + k)
                self._lr = torch.cat([self._lr[: self._n], torch.empty(cap - self._n)])
                self._loss = torch.cat([self._loss[: self._n], torch.empty(cap - self._n)])
            self._lr[self._n : self._n + k] = lr
            self._loss[self._n : self._n + k] = losses
            self._n += k

    def truncate(self, n: int) -> None:
        with self._lock:
            self._n = min(self._n, n)

    def last(self) -> float | None:
        """The latest minibatch loss, or None before the first step."""
        with self._lock:
            return float(self._loss[self._n - 1]) if self._n else None

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Copies of (lr, loss) for every step so far."""
        with self._lock:
            return self._lr[: self._n].clone(), self._loss[: self._n].clone()

    def downsampled(self, max_points: int) -> tuple[list[int], list[float]]:
        """(steps, mean loss) over at most max_points equal buckets: what a chart needs."""
        with self._lock:
            n = self._n
            loss = self._loss[:n].clone()
        if n == 0:
            return [], []
        width = -(-n // max(1, max_points))  # ceil
        usable = n - n % width
        means = loss[:usable].view(-1, width).mean(1).tolist()
        steps = [i * width + width // 2 for i in range(len(means))]
        if usable < n:
            means.append(float(loss[usable:].mean()))
            steps.append((usable + n) // 2)
        return steps, means

    def restore(self, lr: torch.Tensor, loss: torch.Tensor) -> None:
        with self._lock:
            self._lr = lr.clone().float()
            self._loss = loss.clone().float()
            self._n = lr.shape[0]
            if self._n == 0:
                self._lr, self._loss = torch.empty(1024), torch.empty(1024)
