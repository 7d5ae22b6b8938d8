"""The search space of `tune`, declared once: each dimension's name, bounds, scale and meaning.

The flags (`--space KEY=LO:HI`), the app's dialog, --help and the README read this list; a trial's
recipe (model, batch, learning rate, when to decay and by how much) is drawn from it by Optuna.
Free of optuna: core.search suggests values through the small `Suggest` protocol below.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from core import ranges
from core.config import ModelConfig, TrainConfig
from core.errors import ConfigError


@dataclass(frozen=True)
class Dim:
    """A numeric dimension: a range, drawn on a linear or a log scale."""

    key: str  # the trial parameter's name (and the flag's KEY)
    low: float
    high: float
    integer: bool  # drawn as an int (block, widths, batch) or a float
    log: bool  # drawn on a log scale: widths and factors spread over decades
    help: str
    limit: ranges.IntRange | ranges.FloatRange  # what the bounds themselves may be

    def check(self) -> Dim:
        self.limit.check(self.low)
        self.limit.check(self.high)
        if self.low > self.high:
            raise ConfigError(f"{self.key}: the low end {self.low:g} is above the high end {self.high:g}")
        if self.log and self.low <= 0:
            raise ConfigError(f"{self.key}: a log-scale range must be above 0, got {self.low:g}")
        return self

    @property
    def text(self) -> str:
        return f"{self.low:g}:{self.high:g}"

    @property
    def scale(self) -> str:
        return "log" if self.log else "linear"

    @property
    def width(self) -> int:
        """The widest value a table shows: a whole number up to its limit, or 3 digits."""
        return len(str(self.limit.high)) if self.integer else len("-0.123")

    def narrowed(self, bounds: str) -> Dim:
        """LO:HI, or V (fixed), each within the dimension's limit."""
        low, _, high = bounds.partition(":")
        lo = self.limit.parse(low.strip(), self.key)
        hi = self.limit.parse(high.strip(), self.key) if high.strip() else lo
        return replace(self, low=lo, high=hi).check()

    def draw(self, trial: Suggest) -> float | str:
        log = self.log and self.low < self.high
        if self.integer:
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=log)
        return trial.suggest_float(self.key, self.low, self.high, log=log)

    def holds(self, value: float | str) -> bool:
        return isinstance(value, (int, float)) and self.low <= value <= self.high


@dataclass(frozen=True)
class Choice:
    """A dimension of named alternatives, drawn as a category."""

    key: str
    choices: tuple[str, ...]
    help: str
    log = False  # for the tables that say a dimension's scale

    @property
    def text(self) -> str:
        return ",".join(self.choices)

    @property
    def scale(self) -> str:
        return "choice"

    @property
    def width(self) -> int:
        return max(map(len, self.choices))

    def narrowed(self, bounds: str) -> Choice:
        """NAME, or NAME,NAME,…: the alternatives a trial may take, each one of the declared."""
        given = tuple(dict.fromkeys(c.strip().lower() for c in bounds.split(",")))
        if not all(given) or any(c not in self.choices for c in given):
            raise ConfigError(f"{self.key} takes {' or '.join(self.choices)} (several joined by ','), "
                              f"got {bounds.strip()[:60]!r}")
        return replace(self, choices=given)

    def draw(self, trial: Suggest) -> float | str:
        return trial.suggest_categorical(self.key, self.choices)

    def holds(self, value: float | str) -> bool:
        return value in self.choices


Dimension = Dim | Choice
DECAY_AT = ranges.FloatRange(0.0, 1.0, "decay point", hint="(a fraction of the trial's steps)")

# the defaults: around the lecture's model (block 3, emb 10, hidden 200, batch 32, lr 0.1, /10 at half-way)
DIMS: tuple[Dimension, ...] = (
    Dim("block", 3, 8, True, False, "characters of context", ranges.BLOCK_SIZE),
    Dim("emb", 2, 32, True, True, "embedding width", ranges.EMB_DIM),
    Dim("hidden", 50, 600, True, True, "hidden neurons", ranges.HIDDEN),
    Choice("init", ranges.INITS, "plain randn (the lecture's) or scaled (part 3's)"),
    Dim("batch", 32, 256, True, True, "minibatch size", ranges.BATCH_SIZE),
    Dim("lr", -2.0, -0.3, False, False, "learning-rate exponent (lr = 10**lr)", ranges.LR_EXPONENT),
    Dim("decay_at", 0.3, 0.9, False, False, "when the LR is decayed, as a fraction of the steps", DECAY_AT),
    Dim("decay", 2.0, 100.0, False, True, "what the LR is divided by then", ranges.DECAY_FACTOR),
)
KEYS = tuple(d.key for d in DIMS)

# the lecture's configuration: a study's first trial, so its chart starts from the number to beat
LECTURE: dict[str, float | str] = {"block": 3, "emb": 10, "hidden": 200, "init": "lecture", "batch": 32, "lr": -1.0,
                                   "decay_at": 0.5, "decay": 10.0}


class Suggest(Protocol):
    """What core.search hands over for one trial (an Optuna trial's two methods)."""

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int: ...
    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float: ...
    def suggest_categorical(self, name: str, choices: Sequence[str]) -> str: ...


@dataclass(frozen=True)
class Recipe:
    """One trial's training: a model, its batch, the LR, and one decay at a fraction of the steps."""

    model: ModelConfig
    batch: int
    lr_exponent: float
    decay_at: float
    decay: float

    def train_config(self, chunk_steps: int) -> TrainConfig:
        return TrainConfig(batch_size=self.batch, lr_exponent=self.lr_exponent, chunk_steps=chunk_steps)

    def decay_step(self, steps: int) -> int:
        """Steps before the decay (the rest after it); at least one on each side when there are two."""
        return min(max(1, round(steps * self.decay_at)), steps - 1) if steps > 1 else steps


@dataclass(frozen=True)
class Space:
    dims: tuple[Dimension, ...] = DIMS

    def with_ranges(self, given: list[str]) -> Space:
        """`KEY=LO:HI` (or `KEY=V`, fixed) for each given; the rest keep their defaults."""
        dims = {d.key: d for d in self.dims}
        for text in given:
            key, sep, bounds = text.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or key not in dims:
                raise ConfigError(f"--space {text!r}: give KEY=LO:HI with KEY one of {', '.join(KEYS)}")
            dims[key] = dims[key].narrowed(bounds)
        return Space(tuple(dims[k] for k in KEYS))

    def suggest(self, trial: Suggest, seed: int) -> Recipe:
        return recipe({d.key: d.draw(trial) for d in self.dims}, seed)

    def holds(self, point: dict[str, float | str]) -> bool:
        """Whether the point lies inside every range (the lecture's is enqueued only then)."""
        return all(d.holds(point[d.key]) for d in self.dims)

    def describe(self) -> str:
        return ", ".join(f"{d.key} {d.text}" for d in self.dims)


def recipe(v: dict[str, float | str], seed: int) -> Recipe:
    model = ModelConfig(int(v["block"]), int(v["emb"]), int(v["hidden"]), seed, str(v["init"]))
    return Recipe(model, int(v["batch"]), round(float(v["lr"]), 6), float(v["decay_at"]), float(v["decay"]))


def describe_params(params: dict[str, object]) -> str:
    """A trial's parameters in one short line."""
    parts = []
    for key in KEYS:
        value = params.get(key)
        if isinstance(value, float) and not math.isnan(value):
            parts.append(f"{key} {value:.3g}")
        elif value is not None:
            parts.append(f"{key} {value}")
    return ", ".join(parts)
