"""Measuring core.diagnostics' statistics, and the log of them a run records.

Measured on one minibatch drawn from a generator of its own (seeded by the init seed and the step,
never the trainer's minibatch generator) by a hand-written forward and backward that writes nothing:
a run with or without them takes the same steps, bit for bit. The Trainer records one every
core.diagnostics.EVERY_STEPS steps, at the chunk boundary that crosses the multiple. Checked against
float64 autograd in tests/test_diagnostics.py.
"""

from __future__ import annotations

import torch

from core.dataset import Split
from core.diagnostics import HISTOGRAM_BINS, DEAD, SATURATED, SCALARS, Diagnostics, DiagnosticsHistory
from core.model import PARAM_NAMES, Params

SEED_OFFSET = 4  # the measuring minibatch's seed: init seed + 4 + step (the sweep's is +2, the grid's +3)
COLUMNS = 2 + len(SCALARS) + 2 * len(PARAM_NAMES)


def _std(t: torch.Tensor) -> float:
    return float(t.std(correction=0))


@torch.inference_mode()
def measure(params: Params, X: torch.Tensor, Y: torch.Tensor, step: int, lr_exponent: float) -> Diagnostics:
    """The statistics of minibatch X (B, T), Y (B,) at `params`, which it only reads.

    The lecture's forward (mean cross-entropy) and its gradient by hand: softmax − onehot, then back
    through W2, tanh (1 − h²), W1 and the embedding rows the minibatch used."""
    C, W1, b1, W2, b2 = params.tensors()
    B, E = X.shape[0], C.shape[1]
    emb = C[X].view(B, -1)  # (B, T·E)
    pre = torch.addmm(b1, emb, W1)
    h = torch.tanh(pre)
    probs = torch.softmax(torch.addmm(b2, h, W2), 1)
    dlogits = probs.clone()
    dlogits[torch.arange(B), Y] -= 1.0
    dlogits /= B
    dpre = (dlogits @ W2.T) * (1.0 - h * h)
    dC = torch.zeros_like(C).index_add_(0, X.reshape(-1), (dpre @ W1.T).view(-1, E))
    grads = (dC, emb.T @ dpre, dpre.sum(0), h.T @ dlogits, dlogits.sum(0))
    magnitude = h.abs()
    return Diagnostics(
        step=step, lr_exponent=lr_exponent, tensors=PARAM_NAMES,
        grad_std=tuple(_std(g) for g in grads), param_std=tuple(_std(p) for p in (C, W1, b1, W2, b2)),
        saturation=int((magnitude > SATURATED).sum()) / magnitude.numel(),
        dead_units=int((magnitude > DEAD).all(0).sum()), hidden=int(h.shape[1]),
        preact_std=_std(pre), max_prob=float(probs.max(1).values.mean()),
        histogram=tuple(int(c) for c in torch.histc(h, HISTOGRAM_BINS, -1.0, 1.0).tolist()),
    )


def measuring_batch(train: Split, batch_size: int, seed: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The minibatch a measurement at `step` uses: from a generator of its own, so the trainer's
    minibatch stream is untouched, and the same at that step whenever it is measured."""
    gen = torch.Generator().manual_seed(seed + SEED_OFFSET + step)
    X, Y = train.get_batch(1, batch_size, gen)
    return X[0], Y[0]


class DiagnosticsLog:
    """The measurements a model's runs recorded, oldest first, and the latest whole (its histogram).

    Only the training thread writes; view() hands out the rows so far, which later appends never
    touch (they write past them, or into new storage); truncating starts new storage."""

    def __init__(self) -> None:
        self._rows = torch.empty(64, COLUMNS, dtype=torch.float64)
        self._n = 0
        self.latest: Diagnostics | None = None

    def __len__(self) -> int:
        return self._n

    def append(self, d: Diagnostics) -> None:
        if self._n == self._rows.shape[0]:
            self._rows = torch.cat([self._rows, torch.empty_like(self._rows)])
        self._rows[self._n] = _row(d)
        self._n += 1
        self.latest = d

    @staticmethod
    def due(step: int, k: int, every: int) -> bool:
        """A chunk of k steps that ended at `step` crossed a multiple of `every` (0: never)."""
        return every > 0 and step // every != (step - k) // every

    def truncate(self, step: int) -> None:
        """Forget the measurements after `step` (an undo, a rollback, a snapshot restored)."""
        keep = int((self._rows[: self._n, 0] <= step).sum())
        if keep < self._n:
            self._rows = torch.cat([self._rows[:keep], torch.empty(64, COLUMNS, dtype=torch.float64)])
            self._n = keep
            if self.latest is not None and self.latest.step > step:
                self.latest = None

    def restore(self, rows: torch.Tensor) -> None:
        """The log becomes `rows` (a TrainingState's: undo, a snapshot, a stored run), copied into new
        storage so later appends never write into them. The latest stays only if it is their last."""
        self._rows = torch.cat([rows, torch.empty(64, COLUMNS, dtype=torch.float64)])
        self._n = int(rows.shape[0])
        if self.latest is not None and not (self._n and torch.equal(rows[-1], _row(self.latest))):
            self.latest = None

    def view(self) -> DiagnosticsHistory:
        return DiagnosticsHistory(PARAM_NAMES, self._rows[: self._n])


def no_rows() -> torch.Tensor:
    """The rows of no measurement (a checkpoint holds none)."""
    return torch.empty(0, COLUMNS, dtype=torch.float64)


def _row(d: Diagnostics) -> torch.Tensor:
    values = [d.step, d.lr_exponent, *(getattr(d, name) for name in SCALARS), *d.grad_std, *d.param_std]
    return torch.tensor(values, dtype=torch.float64)
