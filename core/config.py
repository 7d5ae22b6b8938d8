"""Configuration dataclasses: what the model is, what it trains on, how it trains.

Every field is checked when the object is built, so a bad flag fails before any work starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from core.errors import ConfigError

LECTURE_SEED = 2147483647  # the seed of the makemore lecture's torch.Generator
LR_EXPONENT_RANGE = (-8.0, 3.0)  # 1e-8 .. 1e3: beyond this no experiment is meaningful
MAX_RUN_STEPS = 100_000_000
MAX_SWEEP_STEPS = 100_000
MAX_SWEEP_REPEATS = 20
MAX_GRID_MODELS = 128


def _check_int(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name} must be a whole number from {low} to {high}, got {value!r}")


def check_lr_exponent(value: float, name: str = "lr exponent") -> float:
    """Return value as a float if it is a usable learning-rate exponent, else raise ConfigError."""
    low, high = LR_EXPONENT_RANGE
    if not isinstance(value, (int, float)) or not math.isfinite(value) or not low <= value <= high:
        raise ConfigError(f"{name} must be a number from {low:g} to {high:g} (lr = 10**exp), got {value!r}")
    return float(value)


@dataclass(frozen=True)
class ModelConfig:
    block_size: int = 3  # characters of context used to predict the next one
    emb_dim: int = 2  # width of each character's embedding (columns of C)
    hidden: int = 100  # neurons in the tanh hidden layer
    seed: int = LECTURE_SEED  # seeds the initial parameters (and, derived from it, the minibatches)

    def __post_init__(self) -> None:
        _check_int("block size", self.block_size, 1, 64)
        _check_int("embedding size", self.emb_dim, 1, 1024)
        _check_int("hidden size", self.hidden, 1, 16384)
        _check_int("seed", self.seed, 0, 2**63 - 1)

    def n_params(self, vocab_size: int) -> int:
        """C + W1 + b1 + W2 + b2."""
        e, t, h, v = self.emb_dim, self.block_size, self.hidden, vocab_size
        return v * e + t * e * h + h + h * v + v


@dataclass(frozen=True)
class DataConfig:
    path: Path | None = None  # a UTF-8 file with one word per line; None = the built-in SSA names
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train/dev/test fractions of the words
    shuffle_seed: int = 42  # random.seed(42); random.shuffle(words), as in the lecture

    def __post_init__(self) -> None:
        if len(self.split) != 3:
            raise ConfigError(f"split needs three fractions train,dev,test, got {len(self.split)}")
        if any(not math.isfinite(f) or f < 0 for f in self.split):
            raise ConfigError(f"split fractions must be finite and >= 0, got {self.split}")
        if not math.isclose(sum(self.split), 1.0, abs_tol=1e-6):
            raise ConfigError(f"split fractions must add up to 1, got {self.split} (sum {sum(self.split):g})")
        if self.split[0] <= 0:
            raise ConfigError("split needs a non-empty train fraction (the first number)")


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 32  # examples per minibatch
    lr_exponent: float = -1.0  # learning rate is 10**lr_exponent (the lecture's 0.1)
    chunk_steps: int = 200  # steps between callbacks: the granularity of progress, commands and cancel

    def __post_init__(self) -> None:
        _check_int("batch size", self.batch_size, 1, 65536)
        check_lr_exponent(self.lr_exponent)
        _check_int("chunk steps", self.chunk_steps, 1, 100_000)
