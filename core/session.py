"""A session's start and end: from settings to a ready Trainer (read the words, build the dataset,
apply a checkpoint) and the keeper of its run in the store (new or resumed), and the autosave on
the way out."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from core import budget
from core.checkpoint import load_checkpoint
from core.config import DataConfig, ModelConfig, TrainConfig
from core.dataset import Dataset, make_dataset
from core.errors import CharMLPError, ConfigError, StoreError
from core.keeping import ArgvFn, RunKeeper
from core.stored_runs import resume_configs
from core.store import RunStore, default_path
from core.reading import shown_path
from core.trainer import Trainer
from core.words import BUILTIN_NAME, Vocab, load_words, words_digest


def autosave(trainer: Trainer, path: Path) -> tuple[bool, str]:
    """Save the model to --autosave's path, however the session ends: (saved, one line saying what happened)."""
    try:
        trainer.save(path, force=True)
    except CharMLPError as e:
        return False, f"error: autosave failed: {e}"
    return True, f"saved the model to {shown_path(path)} (step {trainer.step})"


def open_trainer(data: DataConfig, model: ModelConfig, train: TrainConfig, load: Path | None = None) -> Trainer:
    """A checkpoint given in `load` decides the model's shape (and so the dataset's block size).

    What the session will hold is estimated before anything is built (core.budget): the dataset's
    build (make_dataset), then the splits at rest beside the model, a run and exact evaluation. Too
    much for the machine (a huge vocabulary, a huge model, words x block) is refused in one line."""
    state = load_checkpoint(load) if load is not None else None
    if state is not None:
        model = state.model
    words = load_words(data.path)
    source = BUILTIN_NAME if data.path is None else shown_path(data.path)  # shown on screen: escaped
    vocab, n_chars = Vocab.from_words(words), sum(map(len, words))
    budget.check(f"the dataset of {source}", budget.dataset_needs(len(words), n_chars, model.block_size, data.split))
    examples = [e for _, e in budget.split_sizes(len(words), n_chars, data.split)]
    budget.check(f"a session on {source}", budget.opening_needs(model, vocab.size, train, examples))
    dataset = make_dataset(words, model.block_size, data, source, vocab=vocab)
    digest = dataset.words_digest  # the closure holds this, not the dataset (a rebuilt one replaces it)

    def rebuild(block_size: int) -> Dataset:
        """For `new` with another block size: the words read again, and refused if they changed."""
        again = load_words(data.path)
        if words_digest(again) != digest:
            raise ConfigError(f"{source}: the words file changed since the session started; restart to use it")
        return make_dataset(again, block_size, data, source, vocab=vocab)

    trainer = Trainer(dataset, model, train, rebuild)
    if state is not None and load is not None:  # state is None without load
        trainer.apply_checkpoint(state, load)
    return trainer


def open_store(path: Path | None) -> tuple[RunStore | None, str | None]:
    """(the store, None), or (None, why runs are not saved): --no-runs (path None) or a store that fails."""
    try:
        return RunStore(default_path() if path is None else path), None
    except StoreError as e:
        return None, str(e)


def open_session(data: DataConfig, model: ModelConfig, train: TrainConfig, load: Path | None, keep: bool,
                 store_path: Path | None, run_name: str | None, resume: str | None,
                 argv_for: ArgvFn) -> tuple[Trainer, RunKeeper, list[str]]:
    """The trainer and the keeper of its run, new or resumed, and lines to show (a store that
    cannot be used: training goes on without it). A run to resume that cannot be, or a --run
    name that is taken, is a CharMLPError: the user asked for that run."""
    store, off = open_store(store_path) if keep else (None, "--no-runs")
    if resume is not None:
        if store is None:
            raise StoreError(f"cannot resume {resume!r}: {off}")
        try:
            run = store.get(resume)
            moved = data.path  # --data: where the run's words are now (resume checks they are the same words)
            data, model, train = resume_configs(run)
            data = dataclasses.replace(data, path=moved) if moved is not None else data
            trainer = open_trainer(data, model, train)
            keeper = RunKeeper(store, None, data, argv_for)
            keeper.resume(trainer, run)
        except BaseException:
            store.close()
            raise
        return trainer, keeper, [f"resumed run {run.name!r} at step {trainer.step:,}"]
    if store is not None and run_name is not None:
        try:
            store.get(run_name)
        except StoreError:
            pass
        else:
            store.close()
            raise StoreError(f"a run named {run_name!r} exists already in {store.shown}; --resume it or give another name")
    trainer = open_trainer(data, model, train, load)
    keeper = RunKeeper(store, off, data, argv_for)
    line = keeper.start(trainer, run_name, load)
    return trainer, keeper, [line] if line else []
