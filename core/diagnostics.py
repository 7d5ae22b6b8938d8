"""Is the step size right, while training? makemore part 3's statistics of a model as it trains.

The update-to-data ratio of each parameter tensor, log10(std(lr·grad) / std(param)): how large a step
is beside what it changes. Karpathy's rule of thumb (makemore part 3) is about 10^-3: much above it
the learning rate is too high for that tensor, much below it the tensor learns slowly. And the health
of the tanh layer: the fraction of its outputs saturated (|h| > 0.97, where tanh passes under 6% of
the gradient), the units dead across the whole minibatch (|h| > 0.99 for every example: no gradient
reaches their weights), the pre-activations' std and a histogram of h; and the output layer's
confidence, its top softmax probability averaged over the minibatch.

What they are and how they read; free of torch, so the app's screen loads none. core.diagnose
measures them and keeps the log a run records.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

SATURATED = 0.97  # |h| above this counts as saturated (makemore part 3's saturation plots)
DEAD = 0.99  # a unit past this for every example of the minibatch is dead (part 3's white columns)
GUIDE = -3.0  # log10 of the update-to-data ratio the rule of thumb aims at
FAR = 1.0  # decades from the guide where the reading says "too high" or "slowly"
WEIGHTS = ("C", "W1", "W2")  # what the reading judges: part 3 plots the 2-D tensors only (a bias may start at 0)
HISTOGRAM_BINS = 40  # of h over [-1, 1]
EVERY_STEPS = 1000  # a run records a measurement at the chunk boundary past each multiple
STEADY = 5  # the last measurements whose median the reading goes by
SCALARS = ("saturation", "dead_units", "preact_std", "max_prob")  # a history row: step, lr exponent, these, stds


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
    tensors: tuple[str, ...]  # the parameter tensors' names (core.model.PARAM_NAMES)
    grad_std: tuple[float, ...]  # per tensor (population std: the ratio is the same as with .std())
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
                for name, g, p in zip(self.tensors, self.grad_std, self.param_std)}

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


def judge(ratios: dict[str, float]) -> tuple[str, str, float] | None:
    """The weights' ratios against the guide: ("high" or "low", the tensor furthest outside GUIDE ± FAR,
    its ratio), or ("near", "", their median); None where no weight has a finite ratio yet."""
    weights = {name: r for name, r in ratios.items() if name in WEIGHTS and math.isfinite(r)}
    if not weights:
        return None
    high = max(weights, key=lambda name: weights[name])
    low = min(weights, key=lambda name: weights[name])
    if weights[high] - GUIDE > FAR and weights[high] - GUIDE >= GUIDE - weights[low]:
        return "high", high, weights[high]
    if GUIDE - weights[low] > FAR:
        return "low", low, weights[low]
    return "near", "", statistics.median(weights.values())


def reading(ratios: dict[str, float]) -> str:
    """The judgement in words, as a rule of thumb, not a verdict."""
    judged = judge(ratios)
    if judged is None:
        return "no update ratio yet (a tensor with no spread)"
    kind, name, value = judged
    rule = f"(rule of thumb ~10^{GUIDE:g}, makemore part 3)"
    if kind == "high":
        return f"{name} updates 10^{value:.1f}: LR likely too high for it {rule}"
    if kind == "low":
        return f"{name} updates 10^{value:.1f}: it likely learns slowly at this LR {rule}"
    return f"updates ≈ 10^{value:.1f} of the weights: near the guide {rule}"


def short_reading(ratios: dict[str, float]) -> str:
    """The same in at most 21 characters: a row of the app's status panel ("W2 10^-1.4: LR high?")."""
    judged = judge(ratios)
    if judged is None:
        return "—"
    kind, name, value = judged
    return {"high": f"{name} 10^{value:.1f}: LR high?", "low": f"{name} 10^{value:.1f}: slow?",
            "near": f"10^{value:.1f}: near guide"}[kind]


@dataclass(frozen=True)
class DiagnosticsHistory:
    """The measurements up to one moment, never changed afterwards (as core.history.HistoryView):
    rows of (step, lr exponent, *SCALARS, grad stds, param stds), in core.diagnose.DiagnosticsLog's order."""

    tensors: tuple[str, ...]
    rows: torch.Tensor  # (n, 2 + len(SCALARS) + 2 * len(tensors)) float64

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    @property
    def steps(self) -> list[int]:
        return [int(s) for s in self.rows[:, 0].tolist()]

    def column(self, name: str) -> list[float]:
        """One of SCALARS, one value per measurement."""
        values: list[float] = self.rows[:, 2 + SCALARS.index(name)].tolist()
        return values

    def recent_ratios(self, lr_exponent: float, last: int = STEADY) -> dict[str, float]:
        """Each tensor's ratio at `lr_exponent`, steadied: the median over the last measurements, each
        moved by the decades between its LR and this one (at fixed parameters the ratio moves exactly
        so). One minibatch of 32 scatters a ratio by a few tenths of a decade; {} where none was made."""
        rows = self.rows[-last:]
        if not len(rows):
            return {}
        lrs = rows[:, 1].tolist()
        return {name: statistics.median(r - lr + lr_exponent for r, lr in zip(self._ratios(rows, name), lrs))
                for name in self.tensors}

    def ratios(self, name: str) -> list[float]:
        """The log10 update-to-data ratio of tensor `name` at each measurement."""
        return self._ratios(self.rows, name)

    def _ratios(self, rows: torch.Tensor, name: str) -> list[float]:
        i, n, first = self.tensors.index(name), len(self.tensors), 2 + len(SCALARS)
        lr, grad, param = rows[:, 1], rows[:, first + i], rows[:, first + n + i]
        return [update_ratio(e, g, p) for e, g, p in zip(lr.tolist(), grad.tolist(), param.tolist())]
