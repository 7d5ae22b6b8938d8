"""The Trainer: the one owner of a model's state and every action on it.

A single thread (the headless runner, or the app's worker) calls its methods. Long actions
(run, sweep, grid) report progress and check for cancellation at chunk boundaries; those
boundaries are also where a caller's progress callback may change the learning rate mid-run.
Arguments are checked against core.ranges, the same ranges the script parser uses.
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch

from core import budget, ranges
from core.checkpoint import load_checkpoint, save_checkpoint
from core.config import ModelConfig, TrainConfig
from core.dataset import Dataset
from core.diagnose import DiagnosticsLog, measure, measuring_batch
from core.diagnostics import EVERY_STEPS, Diagnostics
from core.errors import CheckpointError, ConfigError
from core.evaluate import ContextCounts, bigram_loss, count_contexts, mean_loss
from core.files import check_target, expand, resolved
from core.grid import GridResult, train_grid
from core.reading import printable, shown_path
from core.history import EvalPoint, LossHistory
from core.jobs import Divergence, Progress, ProgressFn, RunResult, StopFn, chunk_for, ignore_progress, never_stop
from core.losswatch import LossWatch
from core.rollback import Chunk, KeptChunks
from core.model import Params, init_params
from core.native import NativeSteps
from core.native.engine import Engine, OnSwitch
from core.sampling import sample_names
from core.state import ModelSnapshot, TrainingState
from core.step import SGDStep, Stepper
from core.sweep import Ramp, SweepResult, sweep

class Trainer:
    def __init__(self, dataset: Dataset, model: ModelConfig = ModelConfig(), train: TrainConfig = TrainConfig(),
                 rebuild: Callable[[int], Dataset] | None = None) -> None:
        if model.block_size != dataset.block_size:
            raise ConfigError(f"model block size {model.block_size} != dataset block size {dataset.block_size}")
        # the parameters and their copies, the step's buffers, a run's chunk: refused before any is made
        budget.check("the model", budget.trainer_needs(model, dataset.vocab.size, train))
        self.dataset = dataset
        self.model_config = model
        self.train_config = train
        self.lr_exponent = train.lr_exponent
        self.engine = Engine()
        self._counts: dict[str, ContextCounts] = {}
        self.snapshots: list[ModelSnapshot] = []  # oldest first
        self._written: set[Path] = set()  # checkpoints this trainer wrote: safe to overwrite
        self._sample_gen = torch.Generator()
        self._rebuild = rebuild  # the dataset from the same words for another block size (core.session's)
        self.diagnose_every = EVERY_STEPS  # runs record core.diagnostics every this many steps (0: never)
        self.reset()

    # ---- state -------------------------------------------------------------------------------
    def reset(self) -> None:
        """New parameters from the seed; step, history, evaluations and generators start over."""
        params = init_params(self.model_config, self.dataset.vocab.size)
        self._start(params, SGDStep(params, self.train_config.batch_size))

    def _start(self, params: Params, sgd: SGDStep) -> None:
        self.params, self._sgd = params, sgd
        self._before_run: TrainingState | None = None
        self.step = 0
        self.history = LossHistory()
        self.evals: list[EvalPoint] = []
        self.diagnostics = DiagnosticsLog()
        self._batch_gen = torch.Generator().manual_seed(self.batch_seed)
        self._sample_gen.manual_seed(self.model_config.seed + 10)  # the lecture's sampling seed

    def new_model(self, model: ModelConfig, train: TrainConfig) -> None:
        """reset() with another model and train's batch size, seed and LR (chunk_steps stays);
        snapshots go; a new block size rebuilds the dataset. All or nothing: memory is checked and
        all is built before anything is replaced, so a refusal leaves the trainer as it was."""
        train = dataclasses.replace(self.train_config, batch_size=train.batch_size, batch_seed=train.batch_seed,
                                    lr_exponent=train.lr_exponent)
        dataset, vocab = self.dataset, self.dataset.vocab.size
        if model.block_size == dataset.block_size:
            budget.check("the new model", budget.trainer_needs(model, vocab, train))
        elif self._rebuild is None:
            raise ConfigError(f"block {model.block_size}: a new block size needs the words to rebuild the data; keep block {dataset.block_size}")
        else:  # the new splits at rest, the model, evaluation; the build's own peak: make_dataset
            budget.check("the new model and its dataset", budget.opening_needs(model, vocab, train,
                                                                               list(dataset.sizes().values())))
            dataset = self._rebuild(model.block_size)
        params = init_params(model, vocab)
        sgd = SGDStep(params, train.batch_size)
        if dataset is not self.dataset:
            self.dataset, self._counts = dataset, {}
        self.model_config, self.train_config, self.snapshots = model, train, []
        self.lr_exponent = train.lr_exponent
        self._start(params, sgd)

    def batch_rng_state(self) -> torch.Tensor:
        """The minibatch generator's state (uint8): where the minibatch stream stands."""
        return self._batch_gen.get_state()

    def state(self) -> TrainingState:
        """A copy of everything training changes (undo, snapshots and checkpoints hold one)."""
        lr, loss = self.history.tensors()
        return TrainingState(self.model_config, self.dataset.vocab.chars, self.params.clone(), self.step,
                             float(self.lr_exponent), lr, loss, tuple(self.evals), self._batch_gen.get_state(),
                             self.diagnostics.view().rows)

    def _put_back(self, state: TrainingState) -> None:
        self.params.copy_(state.params)
        self.step, self.lr_exponent = state.step, state.lr_exponent
        self.history.restore(state.history_lr, state.history_loss)
        self.evals = list(state.evals)
        self.diagnostics.restore(state.diagnostics)
        self._batch_gen.set_state(state.batch_rng)

    @property
    def batch_seed(self) -> int:
        """The seed of the minibatch order: --batch-seed, else derived from the init seed."""
        given = self.train_config.batch_seed
        return self.model_config.seed + 1 if given is None else given

    @property
    def lr(self) -> float:
        return float(10.0**self.lr_exponent)  # float ** float is typed Any (a negative base gives a complex)

    @property
    def n_params(self) -> int:
        return self.params.count()

    def set_lr_exponent(self, exponent: float) -> None:
        self.lr_exponent = round(ranges.LR_EXPONENT.check(exponent), 6)

    def decay(self, factor: float) -> None:
        """Divide the learning rate by factor (> 1)."""
        self.set_lr_exponent(self.lr_exponent - math.log10(ranges.DECAY_FACTOR.check(factor)))

    # ---- engines (core.native.engine) --------------------------------------------------------
    @property
    def compiled(self) -> bool:
        """Whether runs use the native (compiled) steps from their next chunk on (in automatic
        mode, where measured faster on this model: a new shape is measured here, tens of ms)."""
        return self.engine.wanted(self.params, self.train_config.batch_size)

    def start_compiling(self, on_done: Callable[[str], None] = lambda message: None, cache_dir: Path | None = None,
                        switch: bool = True, on_switch: OnSwitch = lambda engine, step, why: None) -> threading.Thread:
        """Build the native steps in the background (core.native.engine.Engine.start_compiling)."""
        return self.engine.start_compiling(lambda: (self.params, self.train_config.batch_size), on_done, cache_dir,
                                           switch, on_switch)

    def use_engine(self, engine: str) -> str:
        """Run on "eager" or "compiled" steps from now on; returns what runs use now, in words."""
        if engine not in ranges.ENGINES:
            raise ConfigError(f"engine must be {' or '.join(ranges.ENGINES)}, got {engine!r}")
        return self.engine.use(engine, self.params)

    def _stepper(self) -> Stepper:
        """The native steps where they are on and chosen for the model; else the eager step."""
        self.engine.switch_if_due(self.step, self.params, self.train_config.batch_size)
        if self.compiled and self.engine.kernel is not None:
            return NativeSteps(self.engine.kernel, self.params)
        return self._sgd

    # ---- training ----------------------------------------------------------------------------
    def run(self, n_steps: int, on_progress: ProgressFn = ignore_progress, should_stop: StopFn = never_stop,
            eval_every: int | None = None) -> RunResult:
        """Train n_steps minibatch SGD steps at the current learning rate.

        on_progress runs on this thread at every chunk boundary and may change the learning rate;
        should_stop is checked there too. A loss that blows up (non-finite, or its average past 4x
        its best in this run) stops the run and restores the parameters of the last good step.
        """
        ranges.RUN_STEPS.check(n_steps)
        self._before_run = self.state()
        train = self.dataset.train
        B = self.train_config.batch_size
        chunk = chunk_for(self.train_config.chunk_steps, self.n_params, B)
        start_step, done, busy, last = self.step, 0, 0.0, None
        watch = LossWatch()
        kept = KeptChunks()
        t_start = time.perf_counter()
        while done < n_steps:
            k = min(chunk, n_steps - done)
            t0 = time.perf_counter()
            batches = train.draw(k, B, self._batch_gen)
            current = kept.add(Chunk(self.step, self.params.clone(), batches, self.lr, self._stepper()))
            losses = current.stepper.run_batches(batches, [current.lr] * k)
            bad = watch.first_bad(losses.tolist())
            if bad is not None:
                target = start_step if watch.last_ok is None else start_step + watch.last_ok
                self.history.append(current.lr, losses[:bad])
                self.step = restored = kept.restore(self.params, target)
                self.history.truncate(restored)
                self.evals = [e for e in self.evals if e.step <= restored]  # those of steps undone go too
                self.diagnostics.truncate(restored)
                busy += time.perf_counter() - t0
                return RunResult(self.step - start_step, False, Divergence(current.start + bad, float(losses[bad]), restored),
                                 busy, self.history.last())
            self.history.append(current.lr, losses)
            self.step += k
            done += k
            if self.diagnostics.due(self.step, k, self.diagnose_every):  # counted in the run's time: it is its cost
                self.diagnostics.append(self.diagnose())
            busy += time.perf_counter() - t0
            last = float(losses[-1])
            if eval_every and self.step // eval_every != (self.step - k) // eval_every:
                self.evaluate()
            on_progress(Progress("run", done, n_steps, self.step, last, self.lr_exponent, time.perf_counter() - t_start))
            if should_stop():
                return RunResult(done, True, None, busy, last)
        return RunResult(done, False, None, busy, last)

    @property
    def can_undo(self) -> bool:
        return self._before_run is not None

    def undo_last_run(self) -> None:
        """Put parameters, step, learning rate, history, evaluations and the minibatch stream back
        as they were before the last run (one level: a second undo has nothing to undo)."""
        if self._before_run is None:
            raise ConfigError("nothing to undo: no run since the start, the last reset or the last load")
        self._put_back(self._before_run)
        self._before_run = None

    def take_snapshot(self, name: str) -> ModelSnapshot:
        """Keep the current state under `name` (replacing one of that name); at most
        ranges.MAX_SNAPSHOTS, the oldest dropped first."""
        ranges.SNAPSHOT_NAME.check(name)
        self.snapshots = [s for s in self.snapshots if s.name != name][-(ranges.MAX_SNAPSHOTS - 1) :]
        kept = ModelSnapshot(name, self.state(), self.split_loss("dev"))
        self.snapshots.append(kept)
        return kept

    def restore_snapshot(self, name: str) -> ModelSnapshot:
        kept = next((s for s in self.snapshots if s.name == name), None)
        if kept is None:
            have = ", ".join(s.name for s in self.snapshots) or "none taken yet"
            raise ConfigError(f"no snapshot named {name!r} (snapshots: {have})")
        self._put_back(kept.state)
        self._before_run = None
        return kept

    # ---- evaluation and sampling ------------------------------------------------------------
    def counts(self, split: str) -> ContextCounts:
        """Distinct-context counts of a split, built on first use (once per dataset)."""
        if split not in self._counts:
            s = self.dataset.split(split)
            self._counts[split] = count_contexts(s.X, s.Y, self.dataset.vocab.size)
        return self._counts[split]

    def split_loss(self, split: str) -> float | None:
        """Exact mean loss over a whole split (None if the split is empty)."""
        return mean_loss(self.params, self.counts(split))

    def diagnose(self) -> Diagnostics:
        """The update-to-data ratios at the current LR and the tanh layer's health, on one minibatch
        from a generator of its own (core.diagnostics): nothing the training uses changes."""
        X, Y = measuring_batch(self.dataset.train, self.train_config.batch_size, self.model_config.seed, self.step)
        return measure(self.params, X, Y, self.step, self.lr_exponent)

    def evaluate(self) -> EvalPoint:
        """Full train and dev loss now; recorded in evals."""
        point = EvalPoint(self.step, self.split_loss("train"), self.split_loss("dev"))
        if self.evals and self.evals[-1].step == self.step:
            self.evals[-1] = point
        else:
            self.evals.append(point)
        return point

    def test_loss(self) -> float | None:
        """Exact loss on the test split (None if it is empty). Not recorded with the evaluations:
        the lecture looks at it once, at the very end."""
        return self.split_loss("test")

    def bigram_dev_loss(self) -> float | None:
        ds = self.dataset
        return bigram_loss(ds.train.X, ds.train.Y, ds.dev.X, ds.dev.Y, ds.vocab.size)

    def sample(self, n: int) -> list[str]:
        n = ranges.SAMPLES.check(n)
        try:
            return sample_names(self.params, self.dataset.vocab, self.model_config.block_size, n, self._sample_gen)
        except RuntimeError as e:  # torch.multinomial refuses inf or nan probabilities
            if "probability" not in str(e):
                raise
            raise ConfigError("the model's next-character probabilities are not finite numbers (its weights are too "
                              "large); reset, undo or load a checkpoint before sampling") from None

    # ---- finding a learning rate (core.sweep, core.grid) -----------------------------------
    def sweep(self, start: float, end: float, steps: int, repeats: int = 1, on_progress: ProgressFn = ignore_progress,
              should_stop: StopFn = never_stop) -> SweepResult:
        """One step per learning rate at 10**linspace(start, end, steps) from the current parameters,
        `repeats` times over different minibatches. Parameters, step and the training minibatch
        generator are untouched afterwards, bit for bit."""
        start, end = ranges.check_span(start, end, "sweep")
        exponents = torch.linspace(start, end, ranges.SWEEP_STEPS.check(steps)).tolist()
        budget.check("the sweep", budget.sweep_needs(self.n_params, self.model_config.block_size, self.dataset.vocab.size,
                                                     self.train_config.batch_size, self.train_config.chunk_steps))
        ramp = Ramp(self.params, self._stepper(), self.dataset.train, self.train_config.batch_size,
                    self.train_config.chunk_steps)
        return sweep(ramp, exponents, ranges.SWEEP_REPEATS.check(repeats), self.model_config.seed + 2 + self.step,
                     self.step, on_progress, should_stop)

    def grid(self, start: float, end: float, models: int, steps: int, on_progress: ProgressFn = ignore_progress,
             should_stop: StopFn = never_stop) -> GridResult:
        """Train `models` copies of the current model for `steps` steps on the same minibatches, at
        exponents evenly spaced in [start, end], side by side (core.grid). The model itself is untouched."""
        start, end = ranges.check_span(start, end, "grid")
        exponents = torch.linspace(start, end, ranges.GRID_MODELS.check(models)).tolist()
        self.engine.switch_if_due(self.step, self.params, self.train_config.batch_size)
        kernel = self.engine.kernel if self.compiled else None
        return train_grid(self.params, kernel, self.dataset.train, self.train_config.batch_size,
                          self.train_config.chunk_steps, self.model_config.seed + 3 + self.step, self.step, exponents,
                          ranges.GRID_STEPS.check(steps), on_progress, should_stop)

    # ---- checkpoints ------------------------------------------------------------------------
    def save(self, path: Path, force: bool = False) -> Path:
        """Write a checkpoint. An existing file this trainer did not write is kept unless force."""
        path = check_target(path, force, self._written, CheckpointError, "model.pt", "overwrite it with --force")
        save_checkpoint(path, self.state(), exclusive=not os.path.lexists(path))
        self._written.add(resolved(path))
        return path

    def load(self, path: Path) -> None:
        """Replace the model by a checkpoint's. Nothing changes if it is refused."""
        self.apply_checkpoint(load_checkpoint(expand(path, CheckpointError)), path)

    def apply_checkpoint(self, state: TrainingState, path: Path) -> None:
        shown = shown_path(path)
        if state.vocab_chars != self.dataset.vocab.chars:
            raise CheckpointError(f"{shown}: its vocabulary ({len(state.vocab_chars) + 1} tokens) differs from the data's "
                                  f"({self.dataset.vocab.size}); load it with the words file it was trained on")
        if state.model.block_size != self.dataset.block_size:
            raise CheckpointError(f"{shown}: block size {state.model.block_size} differs from the data's "
                                  f"{self.dataset.block_size}; start with --load to use its block size")
        # All or nothing: everything that can fail (the memory, the generator state, the step's
        # buffers) is checked or built first, beside the model; then plain assignments swap it in.
        budget.check("the checkpoint's model", budget.trainer_needs(state.model, self.dataset.vocab.size,
                                                                    self.train_config))
        batch_gen = torch.Generator()
        try:
            batch_gen.set_state(state.batch_rng)
            params = Params(*state.params.tensors())  # SGDStep re-homes them into its own buffers
            sgd = SGDStep(params, self.train_config.batch_size)
            history = LossHistory()
            history.restore(state.history_lr, state.history_loss)
            diagnostics = DiagnosticsLog()
            diagnostics.restore(state.diagnostics)  # a stored run's; a checkpoint holds none
        except (RuntimeError, TypeError, ValueError, MemoryError) as e:
            first = (str(e).splitlines() or [type(e).__name__])[0][:120]
            raise CheckpointError(f"{shown}: cannot be applied ({printable(first)}); nothing was loaded") from None
        self.model_config = state.model
        self.params, self._sgd = params, sgd  # as _start, with the step built before the swap
        self.step, self.lr_exponent = state.step, state.lr_exponent
        self.history, self.evals = history, list(state.evals)
        self.diagnostics = diagnostics
        self._batch_gen = batch_gen
        self._before_run = None
        self.snapshots = []  # they belong to the model they were taken from
