"""A stored run read back to be trained on (core.keeping resumes and opens runs with these): the
settings it was made with, and its latest state and snapshots, every value checked before use."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from core.checkpoint_fields import first_line
from core.config import DataConfig, ModelConfig, TrainConfig
from core.errors import ConfigError, StoreError
from core.run_blobs import read_state
from core.state import ModelSnapshot, TrainingState
from core.store import History, RunRow, RunStore

if TYPE_CHECKING:
    from core.trainer import Trainer


def resume_configs(run: RunRow) -> tuple[DataConfig, ModelConfig, TrainConfig]:
    """The data, model and training a run was made with: what --resume rebuilds (a StoreError line
    if the stored values are not settings this program takes)."""
    try:
        split = tuple(float(f) for f in run.split.split(","))
        data = DataConfig(path=Path(run.data_path) if run.data_path else None, split=(split[0], split[1], split[2]))
        model = ModelConfig(run.block_size, run.emb_dim, run.hidden, run.init_seed, run.init)
        return data, model, TrainConfig(batch_size=run.batch_size, lr_exponent=run.lr_exponent,
                                        batch_seed=run.batch_seed)
    except (ValueError, IndexError, ConfigError) as e:
        raise StoreError(f"run {run.name!r}: its stored settings are damaged ({first_line(e)}); "
                         "it cannot be resumed") from None


def stored_state(store: RunStore, trainer: Trainer, run: RunRow) -> tuple[TrainingState, list[ModelSnapshot], str]:
    """The run's latest state, its snapshots and the engine it last ran on, all checked against
    the trainer's words (StoreError, one line, if any of it lies)."""
    if trainer.dataset.words_digest != run.data_digest:
        raise StoreError(f"run {run.name!r} was trained on other words than {trainer.dataset.source} holds now "
                         "(the file changed); it cannot be resumed exactly")
    shown = f"run {run.name!r}"
    if run.vocab != trainer.dataset.vocab.chars:  # the same words make the same vocabulary: the row lies
        raise StoreError(f"{shown}: its stored vocabulary differs from its words' (damaged); it cannot be resumed")
    stored = store.state(run.id)
    if stored is None:
        raise StoreError(f"{shown}: has no stored state; it cannot be resumed")
    state = read_state(run, stored, store.history(run.id), shown)
    snapshots = [ModelSnapshot(k.name, read_state(run, k.state, [History(0, k.lr, k.loss, k.diagnostics)],
                                                  f"{shown} snapshot {k.name!r}"), k.dev_loss)
                 for k in store.snapshots(run.id)]
    return state, snapshots, stored.engine
