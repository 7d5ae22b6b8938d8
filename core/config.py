"""Configuration dataclasses: what the model is, what it trains on, how it trains.

Every field is checked when the object is built, so a bad flag fails before any work starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from core import ranges
from core.errors import ConfigError

LECTURE_SEED = 2147483647  # the seed of the makemore lecture's torch.Generator


@dataclass(frozen=True)
class ModelConfig:
    block_size: int = 3  # characters of context used to predict the next one
    emb_dim: int = 2  # width of each character's embedding (columns of C)
    hidden: int = 100  # neurons in the tanh hidden layer
    seed: int = LECTURE_SEED  # the init seed: the initial parameters (and, unless batch_seed is given, the minibatches)
    init: str = "lecture"  # how they are drawn: core.ranges.INITS (core.model.init_params)

    def __post_init__(self) -> None:
        ranges.BLOCK_SIZE.check(self.block_size)
        ranges.EMB_DIM.check(self.emb_dim)
        ranges.HIDDEN.check(self.hidden)
        ranges.SEED.check(self.seed)
        ranges.INIT.check(self.init)

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
    batch_seed: int | None = None  # seeds the minibatch order; None: derived from the init seed (ModelConfig.seed + 1)

    def __post_init__(self) -> None:
        ranges.BATCH_SIZE.check(self.batch_size)
        if self.batch_seed is not None:
            ranges.SEED.check(self.batch_seed)
        ranges.LR_EXPONENT.check(self.lr_exponent)
        ranges.CHUNK_STEPS.check(self.chunk_steps)
