"""A run as the store keeps it (core.keeping saves, resumes and opens runs with these): the values
a new run is made with and its progress as saved, and, read back, the settings it was made with
and its latest state and snapshots, every value checked before use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from core.checkpoint_fields import first_line
from core.config import DataConfig, ModelConfig, TrainConfig
from core.errors import ConfigError, StoreError
from core.run_blobs import evals_blob, params_blob, read_state, tensor_bytes
from core.state import ModelSnapshot, TrainingState
from core.store import History, RunRow, RunStore, StoredState

if TYPE_CHECKING:
    from core.trainer import Trainer


def run_values(trainer: Trainer, data: DataConfig, argv: list[str]) -> dict[str, object]:
    """The runs table's columns that say what a new run of the trainer's model is (read back by
    resume_configs); argv: the flags that rebuild it from scratch."""
    ds, m, t = trainer.dataset, trainer.model_config, trainer.train_config
    return {
        "data_source": ds.source, "data_path": str(data.path.resolve()) if data.path else None,
        "data_digest": ds.words_digest, "split": ",".join(f"{f:g}" for f in data.split),
        "block_size": m.block_size, "emb_dim": m.emb_dim, "hidden": m.hidden, "init_seed": m.seed, "init": m.init,
        "batch_size": t.batch_size, "batch_seed": trainer.batch_seed, "vocab": ds.vocab.chars,
        "params": trainer.n_params, "lr_exponent": trainer.lr_exponent, "argv": json.dumps(argv),
    }


def progress_summary(trainer: Trainer, schedule: str, wall_s: float, train_s: float, script: str) -> dict[str, object]:
    """The runs row's figures as they stand: step, LR, schedule, latest and best losses, times, script."""
    evals = trainer.evals
    trains = [e.train for e in evals if e.train is not None]
    devs = [e.dev for e in evals if e.dev is not None]
    last = evals[-1] if evals else None
    return {
        "steps": trainer.step, "lr_exponent": trainer.lr_exponent, "schedule": schedule,
        "train_loss": last.train if last else None, "dev_loss": last.dev if last else None,
        "best_train_loss": min(trains, default=None), "best_dev_loss": min(devs, default=None),
        "wall_s": wall_s, "train_s": train_s, "script": script,
    }


def stored_progress(trainer: Trainer) -> StoredState:
    """The trainer's latest state as the store keeps it (blobs)."""
    return StoredState(trainer.step, trainer.lr_exponent, params_blob(trainer.params),
                       tensor_bytes(trainer.batch_rng_state()), evals_blob(tuple(trainer.evals)),
                       "compiled" if trainer.compiled else "eager")


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
