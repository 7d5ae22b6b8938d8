"""A model's training state, copied whole: what undo, snapshots and checkpoints hold and put back."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.config import ModelConfig
from core.history import EvalPoint
from core.model import Params


@dataclass(frozen=True)
class TrainingState:
    """Everything training changes, and what it applies to. Memory: the parameters plus 8 bytes
    per step of history (8 MB at 1M steps), and 128 bytes per diagnostics measurement."""

    model: ModelConfig
    vocab_chars: str  # the vocabulary without the boundary token, in index order
    params: Params
    step: int
    lr_exponent: float
    history_lr: torch.Tensor  # (step,) learning rate of every step
    history_loss: torch.Tensor  # (step,) minibatch loss of every step
    evals: tuple[EvalPoint, ...]
    batch_rng: torch.Tensor  # uint8 state of the minibatch generator
    diagnostics: torch.Tensor  # (n, core.diagnose.COLUMNS) float64: the runs' measurements (a checkpoint holds none)


@dataclass(frozen=True)
class ModelSnapshot:
    """A state kept under a name (z in the app, `snapshot NAME` in a script)."""

    name: str
    state: TrainingState
    dev_loss: float | None  # at the time it was taken, for the snapshots list
