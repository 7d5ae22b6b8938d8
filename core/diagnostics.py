"""Is the step size right, while training? makemore part 3's statistics of a model as it trains.

The update-to-data ratio of each parameter tensor, log10(std(lr·grad) / std(param)): how large a step
is beside what it changes. Karpathy's rule of thumb (makemore part 3) is about 10^-3: much above it
the learning rate is too high for that tensor, much below it the tensor learns slowly. And the health
of the tanh layer: the fraction of its outputs saturated (|h| > 0.97, where tanh passes under 6% of
the gradient), the units dead across the whole minibatch (|h| > 0.99 for every example: no gradient
reaches their weights), the pre-activations' std and a histogram of h; and the output layer's
confidence, its top softmax probability averaged over the minibatch.

Measured on one minibatch drawn from a generator of its own (seeded by the init seed and the step,
never the trainer's minibatch generator) by a hand-written forward and backward that writes nothing:
a run with or without them takes the same steps, bit for bit. The Trainer records one every
EVERY_STEPS steps, at the chunk boundary that crosses the multiple (DiagnosticsLog). Checked against
float64 autograd in tests/test_diagnostics.py.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import torch

from core.dataset import Split
from core.model import PARAM_NAMES, Params

SATURATED = 0.97  # |h| above this counts as saturated (makemore part 3's saturation plots)
DEAD = 0.99  # a unit past this for every example of the minibatch is dead (part 3's white columns)
GUIDE = -3.0  # log10 of the update-to-data ratio the rule of thumb aims at
FAR = 1.0  # decades from the guide where the reading says "too high" or "slowly"
WEIGHTS = ("C", "W1", "W2")  # what the reading judges: part 3 plots the 2-D tensors only (a bias may start at 0)
HISTOGRAM_BINS = 40  # of h over [-1, 1]
EVERY_STEPS = 1000  # a run records a measurement at the chunk boundary past each multiple
SEED_OFFSET = 4  # the measuring minibatch's seed: init seed + 4 + step (the sweep's is +2, the grid's +3)
COLUMNS = 4 + 2 * len(PARAM_NAMES) + 2  # a history row: see DiagnosticsLog._row


def update_ratio(lr_exponent: float, grad_std: float, param_std: float) -> float:
    """log10(std(lr·grad) / std(param)) = lr exponent + log10(std(grad) / std(param)): one decade per
    decade of LR. +inf for a tensor with no spread yet (b2 at the scaled init), -inf for no gradient."""
    if param_std <= 0:
        return math.inf
    if grad_std <= 0:
        return -math.inf
    return lr_exponent + math.log10(grad_std) - math.log10(param_std)


@dataclass(frozen=True)
class Diagnostics:
    """The statistics of one minibatch at one step's parameters and learning rate."""

    step: int
    lr_exponent: float
    grad_std: tuple[float, ...]  # per tensor, in PARAM_NAMES order (population std: the ratio is the same)
    param_std: tuple[float, ...]
    saturation: float  # fraction of h (all units, all examples) with |h| > SATURATED
    dead_units: int  # units with |h| > DEAD for every example
    hidden: int  # units in the layer
    preact_std: float  # std of the pre-activations x @ W1 + b1
    max_prob: float  # the top softmax probability, averaged over the minibatch
    histogram: tuple[int, ...] = ()  # counts of h in HISTOGRAM_BINS equal bins of [-1, 1]

    @property
    def update_ratio_log10(self) -> dict[str, float]:
        return {name: update_ratio(self.lr_exponent, g, p)
                for name, g, p in zip(PARAM_NAMES, self.grad_std, self.param_std)}

    def reading(self) -> str:
        """The ratios in words, as a rule of thumb, not a verdict."""
        return reading(self.update_ratio_log10)

    def line(self) -> str:
        """One line: what `diag` prints."""
        ratios = " ".join(f"{name} {_decades(r)}" for name, r in self.update_ratio_log10.items())
        return (f"diag at step {self.step:,} (lr 10^{self.lr_exponent:.2f}): log10 update/data {ratios}; tanh "
                f"{self.saturation:.1%} saturated, {self.dead_units} of {self.hidden} dead, pre-activation std "
                f"{self.preact_std:.3g}; max prob {self.max_prob:.3f}; {self.reading()}")

    def as_json(self) -> dict[str, object]:
        """For the JSON summary: non-finite ratios stay floats (tui.output makes them null)."""
        return {"step": self.step, "lr_exponent": self.lr_exponent,
                "update_ratio_log10": {k: round(v, 6) if math.isfinite(v) else v
                                       for k, v in self.update_ratio_log10.items()},
                "saturation": round(self.saturation, 6), "dead_units": self.dead_units, "hidden": self.hidden,
                "preact_std": round(self.preact_std, 6), "max_prob": round(self.max_prob, 6)}


def _decades(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else "n/a"


def reading(ratios: dict[str, float]) -> str:
    """The weights' ratios against the guide: the one furthest outside GUIDE ± FAR is named, else their median."""
    weights = {name: r for name, r in ratios.items() if name in WEIGHTS and math.isfinite(r)}
    if not weights:
        return "no update ratio yet (a tensor with no spread)"
    rule = f"(rule of thumb ~10^{GUIDE:g}, makemore part 3)"
    high = max(weights, key=lambda name: weights[name])
    low = min(weights, key=lambda name: weights[name])
    if weights[high] - GUIDE > FAR and weights[high] - GUIDE >= GUIDE - weights[low]:
        return f"{high} updates 10^{weights[high]:.1f}: LR likely too high for it {rule}"
    if GUIDE - weights[low] > FAR:
        return f"{low} updates 10^{weights[low]:.1f}: it likely learns slowly at this LR {rule}"
    typical = statistics.median(weights.values())
    return f"updates ≈ 10^{typical:.1f} of the weights: near the guide {rule}"


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
        step=step, lr_exponent=lr_exponent,
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


@dataclass(frozen=True)
class DiagnosticsHistory:
    """The measurements up to one moment, never changed afterwards (as core.history.HistoryView):
    rows of (step, lr exponent, saturation, dead units, pre-activation std, max prob, grad stds, param stds)."""

    rows: torch.Tensor  # (n, COLUMNS) float64

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    @property
    def steps(self) -> list[int]:
        return [int(s) for s in self.rows[:, 0].tolist()]

    def column(self, name: str) -> list[float]:
        """'saturation', 'dead_units', 'preact_std' or 'max_prob', one value per measurement."""
        return self.rows[:, 2 + ("saturation", "dead_units", "preact_std", "max_prob").index(name)].tolist()

    def ratios(self, name: str) -> list[float]:
        """The log10 update-to-data ratio of tensor `name` at each measurement."""
        i, n = PARAM_NAMES.index(name), len(PARAM_NAMES)
        lr, grad, param = self.rows[:, 1], self.rows[:, 6 + i], self.rows[:, 6 + n + i]
        return [update_ratio(e, g, p) for e, g, p in zip(lr.tolist(), grad.tolist(), param.tolist())]


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

    @staticmethod
    def _row(d: Diagnostics) -> list[float]:
        return [d.step, d.lr_exponent, d.saturation, d.dead_units, d.preact_std, d.max_prob, *d.grad_std, *d.param_std]

    def append(self, d: Diagnostics) -> None:
        if self._n == self._rows.shape[0]:
            self._rows = torch.cat([self._rows, torch.empty_like(self._rows)])
        self._rows[self._n] = torch.tensor(self._row(d), dtype=torch.float64)
        self._n += 1
        self.latest = d

    def due(self, step: int, k: int, every: int) -> bool:
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

    def view(self) -> DiagnosticsHistory:
        return DiagnosticsHistory(self._rows[: self._n])
