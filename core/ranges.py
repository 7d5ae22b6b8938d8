"""Every bounded number in one place: what the flags, the script parser and the Trainer accept.

A range checks a value (from Python or parsed from text) and says, in one line, what was
wanted. The parser, the argument checks of the command line and the Trainer's methods all call
these, so a limit is written once. Free of torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from core.errors import ConfigError


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    what: str  # how a message names the value

    def check(self, value: object, what: str | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not self.low <= value <= self.high:
            raise ConfigError(f"{what or self.what} must be a whole number from {self.low:,} to {self.high:,}, "
                              f"got {value!r}")
        return value

    def parse(self, text: str, what: str | None = None) -> int:
        """From text such as '20000', '20_000' or '2e4' (a whole number is read exactly, however large)."""
        try:
            return self.check(int(text.replace("_", "")), what)
        except ValueError:
            pass
        value = _finite(text.replace("_", ""), what or self.what)
        return self.check(int(value) if value == int(value) else text, what)


@dataclass(frozen=True)
class FloatRange:
    low: float
    high: float
    what: str
    low_open: bool = False  # the low end itself is outside (a decay factor must be above 1)
    hint: str = ""  # said after the range, e.g. "(lr = 10**exp)"

    def check(self, value: object, what: str | None = None) -> float:
        above: Callable[[float], bool] = (lambda v: v > self.low) if self.low_open else (lambda v: v >= self.low)
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                or not above(value) or value > self.high):
            low = "above" if self.low_open else "from"
            raise ConfigError(f"{what or self.what} must be a number {low} {self.low:g} to {self.high:g}"
                              f"{' ' + self.hint if self.hint else ''}, got {value!r}")
        return float(value)

    def parse(self, text: str, what: str | None = None) -> float:
        return self.check(_finite(text, what or self.what), what)


@dataclass(frozen=True)
class Words:
    """One of a few named alternatives."""

    choices: tuple[str, ...]
    what: str

    def check(self, value: object, what: str | None = None) -> str:
        if not isinstance(value, str) or value not in self.choices:
            shown = f"{value[:40]!r}" if isinstance(value, str) else repr(value)
            raise ConfigError(f"{what or self.what} must be {' or '.join(self.choices)}, got {shown}")
        return value

    def parse(self, text: str, what: str | None = None) -> str:
        return self.check(text.strip().lower(), what)


def _finite(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{what} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{what} must be a finite number, got {text!r}")
    return value


@dataclass(frozen=True)
class Name:
    """A name the script language can carry: one word, no ';' or '#' (they separate and comment)."""

    max_length: int
    what: str

    def check(self, value: object, what: str | None = None) -> str:
        if (not isinstance(value, str) or not 1 <= len(value) <= self.max_length
                or any(c.isspace() or c in ";#" or not c.isprintable() for c in value)):
            shown = f"{value[:60]!r}… ({len(value):,} characters)" if isinstance(value, str) and len(value) > 60 \
                else repr(value)
            raise ConfigError(f"{what or self.what} is 1 to {self.max_length} printable characters without spaces, "
                              f"';' or '#', got {shown}")
        return value

    def parse(self, text: str, what: str | None = None) -> str:
        return self.check(text, what)

    def beside(self, name: str, k: int) -> str:
        """name.k, for a name another one has: cut short so it stays within max_length."""
        suffix = f".{k}"
        return name[: self.max_length - len(suffix)] + suffix


def check_span(start: float, end: float, what: str) -> tuple[float, float]:
    """Two learning-rate exponents, start below end (a sweep's or a grid's)."""
    start, end = LR_EXPONENT.check(start, f"{what} START"), LR_EXPONENT.check(end, f"{what} END")
    if not start < end:
        raise ConfigError(f"{what} START must be below END, got {start:g} .. {end:g}")
    return start, end


# ---- the model, the data, training (flags and checkpoints) ---------------------------------------
BLOCK_SIZE = IntRange(1, 64, "block size")
EMB_DIM = IntRange(1, 1024, "embedding size")
HIDDEN = IntRange(1, 16384, "hidden size")
SEED = IntRange(0, 2**63 - 1, "seed")
BATCH_SIZE = IntRange(1, 65536, "batch size")
CHUNK_STEPS = IntRange(1, 100_000, "chunk steps")
THREADS = IntRange(1, 256, "--threads")
EVAL_EVERY_S = FloatRange(0, 3600, "--eval-every", hint="seconds")
# 1e-8 .. 1e3: beyond this no experiment is meaningful
LR_EXPONENT = FloatRange(-8.0, 3.0, "lr exponent", hint="(lr = 10**exp)")
# how the parameters start (core.model.init_params): the lecture's plain randn, or makemore part 3's
# scaled randn (the same draws) that keeps the tanh layer out of saturation and the softmax unsure
INIT = Words(("lecture", "scaled"), "init")
INITS = INIT.choices

STEP = IntRange(0, 10**12, "step")  # a model's step count, as a checkpoint records it

# ---- actions (core.verbs) -------------------------------------------------------------------------
RUN_STEPS = IntRange(1, 100_000_000, "steps")
SWEEP_STEPS = IntRange(10, 100_000, "sweep STEPS")
SWEEP_REPEATS = IntRange(1, 20, "sweep repeats")
GRID_MODELS = IntRange(2, 128, "grid K")
GRID_STEPS = IntRange(10, 100_000, "grid STEPS")
SAMPLES = IntRange(1, 1000, "number of samples")
SNAPSHOT_NAME = Name(40, "a snapshot name")
RUN_NAME = Name(60, "a run name")
MAX_SNAPSHOTS = 10  # taking one more drops the oldest: memory stays bounded (see core.state.TrainingState)
DECAY_FACTOR = FloatRange(1.0, 1e6, "decay FACTOR", low_open=True, hint="(the LR is divided by it)")
# ---- the search (core.search) ---------------------------------------------------------------------
TUNE_TRIALS = IntRange(1, 100_000, "trials")
TUNE_STEPS = IntRange(100, 10_000_000, "steps per trial")
TUNE_TIMEOUT_S = FloatRange(0.0, 7 * 86400.0, "timeout", low_open=True, hint="seconds")
STUDY_NAME = Name(40, "a study name")
ENGINES = ("eager", "compiled")  # what runs the training steps (core.native.engine)
