"""From settings to a ready Trainer: read the words, build the dataset, apply a checkpoint."""

from __future__ import annotations

from pathlib import Path

from core.checkpoint import load_checkpoint
from core.config import DataConfig, ModelConfig, TrainConfig
from core.dataset import make_dataset
from core.trainer import Trainer
from core.words import BUILTIN_NAME, load_words


def open_trainer(data: DataConfig, model: ModelConfig, train: TrainConfig, load: Path | None = None) -> Trainer:
    """A checkpoint given in `load` decides the model's shape (and so the dataset's block size)."""
    state = load_checkpoint(load) if load is not None else None
    if state is not None:
        model = state.model
    words = load_words(data.path)
    source = BUILTIN_NAME if data.path is None else str(data.path)
    trainer = Trainer(make_dataset(words, model.block_size, data, source), model, train)
    if state is not None:
        trainer.apply_checkpoint(state, load)
    return trainer

