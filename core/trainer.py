"""The Trainer: the one owner of a model's state and every action on it.

A single thread (the headless runner, or the app's worker) calls its methods. Long actions
(run, sweep) report progress and check for cancellation at chunk boundaries; those boundaries
are also where a caller's progress callback may change the learning rate mid-run.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

from core import native
from core.checkpoint import CheckpointState, load_checkpoint, save_checkpoint
from core.config import MAX_GRID_MODELS, MAX_RUN_STEPS, MAX_SWEEP_REPEATS, MAX_SWEEP_STEPS, ModelConfig, TrainConfig, check_lr_exponent
from core.dataset import Dataset
from core.errors import CheckpointError, ConfigError
from core.evaluate import ContextCounts, bigram_loss, count_contexts, mean_loss
from core.files import check_target
from core.grid import AVERAGE_LAST, BatchedSGD, GridResult, NativeGrid
from core.history import EvalPoint, LossHistory
from core.losswatch import LossWatch
from core.model import Params, init_params
from core.sampling import sample_names
from core.step import SGDStep
from core.sweep import SweepResult, combine_repeats

SWEEP_REPEAT_SEED_STRIDE = 7919  # repeat r of a sweep draws its minibatches from seed + 2 + step + 7919 r


@dataclass(frozen=True)
class Progress:
    """Where a long action stands; passed to on_progress at every chunk boundary."""

    kind: str  # "run" or "sweep"
    done: int  # steps done in this action
    total: int
    step: int  # the model's step count
    loss: float  # the last minibatch loss
    lr_exponent: float
    elapsed_s: float


@dataclass(frozen=True)
class Divergence:
    at_step: int  # the step whose minibatch loss blew up (core.losswatch)
    loss: float  # that loss (may be inf or nan)
    restored_step: int  # the step whose parameters were restored (the last good loss)


@dataclass(frozen=True)
class RunResult:
    steps: int  # steps kept (after any rollback)
    stopped: bool  # cancelled by should_stop
    divergence: Divergence | None
    train_seconds: float  # time spent in training steps only (no evaluations)
    last_loss: float | None

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.train_seconds if self.train_seconds > 0 else 0.0


ProgressFn = Callable[[Progress], None]
StopFn = Callable[[], bool]


@dataclass(frozen=True)
class _Chunk:
    """One chunk of a run, kept so that a rollback can replay it."""

    start: int  # the step the chunk started at
    params: Params  # a copy of the parameters at that step
    X: torch.Tensor  # (k, B, T) its minibatches
    Y: torch.Tensor  # (k, B)
    lr: float
    stepper: SGDStep | native.NativeSteps  # what ran it: a replay must use the same, to land exactly


@dataclass(frozen=True)
class SavedState:
    """Everything training changes, copied: what undo and snapshots put back. Memory: the
    parameters plus 8 bytes per step of history (8 MB at 1M steps)."""

    name: str
    params: Params
    step: int
    lr_exponent: float
    history_lr: torch.Tensor
    history_loss: torch.Tensor
    evals: list[EvalPoint]
    batch_rng: torch.Tensor
    dev_loss: float | None  # at the time it was taken, for the snapshots list


GRID_THREADS = 2  # torch threads for the LR grid's batched ops, where the machine has them
MAX_SNAPSHOTS = 10  # taking one more drops the oldest: memory stays bounded (see SavedState)


def _lr_range(start: float, end: float, what: str) -> tuple[float, float]:
    start, end = check_lr_exponent(start, f"{what} start"), check_lr_exponent(end, f"{what} end")
    if not start < end:
        raise ConfigError(f"{what} start must be below its end, got {start:g} .. {end:g}")
    return start, end


def _whole(value: int, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{what} must be a whole number from {low:,} to {high:,}, got {value!r}")
    return value


def never_stop() -> bool:
    return False


def ignore_progress(_: Progress) -> None:
    pass


class Trainer:
    def __init__(self, dataset: Dataset, model: ModelConfig = ModelConfig(), train: TrainConfig = TrainConfig()) -> None:
        if model.block_size != dataset.block_size:
            raise ConfigError(f"model block size {model.block_size} != dataset block size {dataset.block_size}")
        self.dataset = dataset
        self.model_config = model
        self.train_config = train
        self.lr_exponent = train.lr_exponent
        self.history = LossHistory()
        self.evals: list[EvalPoint] = []
        self.sweeps: list[SweepResult] = []
        self.grids: list[GridResult] = []
        self._counts: dict[str, ContextCounts] = {}
        self.snapshots: list[SavedState] = []  # oldest first
        self._written: set[Path] = set()  # checkpoints this trainer wrote: safe to overwrite
        self._native: native.NativeKernel | None = None  # the native steps, once a background thread has built them
        self._build: threading.Thread | None = None  # that thread
        self._build_failure = "compiling is off"  # why _native is None once a build has ended, or none was started
        # Runs use the native steps only once this thread has switched to them, at a job's start or a
        # run's chunk boundary, never mid-chunk: a session's engine changes then sit at known steps
        # (on_switch reports them), which is what lets a recorded session replay exactly.
        self._native_on = False
        self._switch_when_built = False
        self._on_switch: Callable[[int], None] = lambda step: None
        self._sample_gen = torch.Generator().manual_seed(model.seed + 10)  # the lecture's sampling seed
        self.reset()

    # ---- state -------------------------------------------------------------------------------
    def reset(self) -> None:
        """New parameters from the seed; step, history, evaluations and generators start over."""
        self._install(init_params(self.model_config, self.dataset.vocab.size))
        self._before_run: SavedState | None = None
        self.step = 0
        self.history = LossHistory()
        self.evals = []
        self._batch_gen = torch.Generator().manual_seed(self.model_config.seed + 1)
        self._sample_gen.manual_seed(self.model_config.seed + 10)

    def _install(self, params: Params) -> None:
        self.params = params
        self._sgd = SGDStep(params, self.train_config.batch_size)

    def _stepper(self) -> SGDStep | native.NativeSteps:
        """The native steps where they are on and suit the model; else the eager step."""
        self._switch_if_due()
        return native.NativeSteps(self._native, self.params) if self.compiled else self._sgd

    @property
    def compiled(self) -> bool:
        """Whether runs use the native (compiled) steps from their next chunk on (see start_compiling):
        once built and switched to (or due to be), for float32 models up to core.native.MAX_MACS."""
        return ((self._native_on or self._switch_when_built) and self._native is not None
                and native.suits(self.params, self.train_config.batch_size))

    def start_compiling(self, on_done: Callable[[str], None] = lambda message: None, cache_dir: Path | None = None,
                        switch: bool = True, on_switch: Callable[[int], None] = lambda step: None) -> threading.Thread:
        """Build the native training steps (core.native) in a background thread. With switch, the
        training thread takes them up at its next job or chunk boundary (_switch_if_due) and
        calls on_switch with the step; without, they wait for use_engine("compiled"). on_done gets
        one line either way, from the build thread; a failure leaves the eager step in place."""

        def compile_in_background() -> None:
            try:
                kernel, how = native.build(cache_dir)
            except Exception as e:  # BuildError, or anything the loader raises on an odd platform
                first_line = (str(e).strip().splitlines() or [""])[0][:200]
                self._build_failure = f"the build failed ({type(e).__name__}: {first_line})"
                on_done(f"compiling the training steps failed ({type(e).__name__}: {first_line}); staying on the eager path")
                return
            self._native = kernel
            if not native.suits(self.params, self.train_config.batch_size):
                on_done(f"compiled training steps ready ({how}), but this model is big enough for torch's own "
                        "matrix products to be as fast: runs stay on the eager step")
            elif switch:
                on_done(f"compiled training steps ready ({how}); runs use them from the next chunk")
            else:
                on_done(f"compiled training steps ready ({how})")

        self._switch_when_built, self._on_switch = switch, on_switch
        self._build = threading.Thread(target=compile_in_background, name="charmlp-compile", daemon=True)
        self._build.start()
        return self._build

    def _switch_if_due(self) -> None:
        """On the training thread: take up the native steps if a build asked to switch has finished."""
        if self._switch_when_built and self._native is not None:
            self._switch_when_built, self._native_on = False, True
            self._on_switch(self.step)

    def use_engine(self, engine: str) -> str:
        """Run on "eager" or "compiled" steps from now on, as a script says (automatic switching ends).
        "compiled" waits for a build under way; where there is none to use, runs stay eager. Returns
        what runs use now, in words."""
        self._switch_when_built = False
        if engine == "eager":
            self._native_on = False
            return "eager (torch's step)"
        if engine != "compiled":
            raise ConfigError(f"engine must be eager or compiled, got {engine!r}")
        if self._build is not None:
            self._build.join()
        if self._native is None:
            return f"eager: the compiled steps are not available ({self._build_failure})"
        self._native_on = True
        if not self.compiled:
            return "eager: the compiled steps do not suit this model (too big to gain from them)"
        return "compiled (native steps)"

    @property
    def lr(self) -> float:
        return 10.0**self.lr_exponent

    @property
    def n_params(self) -> int:
        return self.params.count()

    def set_lr_exponent(self, exponent: float) -> None:
        self.lr_exponent = round(check_lr_exponent(exponent), 6)

    def decay(self, factor: float = 10.0) -> None:
        """Divide the learning rate by factor (> 1)."""
        if not isinstance(factor, (int, float)) or not math.isfinite(factor) or not 1 < factor <= 1e6:
            raise ConfigError(f"decay factor must be a number above 1 and at most 1e6, got {factor!r}")
        self.set_lr_exponent(self.lr_exponent - math.log10(factor))

    # ---- training ----------------------------------------------------------------------------
    def run(self, n_steps: int, on_progress: ProgressFn = ignore_progress, should_stop: StopFn = never_stop,
            eval_every: int | None = None) -> RunResult:
        """Train n_steps minibatch SGD steps at the current learning rate.

        on_progress runs on this thread at every chunk boundary and may change the learning rate;
        should_stop is checked there too. A loss that blows up (non-finite, or its average past 4x
        its best in this run) stops the run and restores the parameters of the last good step.
        """
        _whole(n_steps, 1, MAX_RUN_STEPS, "steps")
        self._before_run = self._capture("before the last run")
        train = self.dataset.train
        B, chunk = self.train_config.batch_size, self.train_config.chunk_steps
        start_step, done, busy, last = self.step, 0, 0.0, None
        watch = LossWatch()
        kept: list[_Chunk] = []  # the last two chunks, to replay a rollback from
        t_start = time.perf_counter()
        while done < n_steps:
            k = min(chunk, n_steps - done)
            t0 = time.perf_counter()
            X, Y = train.get_batch(k, B, self._batch_gen)  # (k, B, T), (k, B)
            current = _Chunk(self.step, self.params.clone(), X, Y, self.lr, self._stepper())
            losses = current.stepper.run(current.X, current.Y, [current.lr] * k)
            kept = [*kept[-1:], current]
            bad = watch.first_bad(losses.tolist())
            if bad is not None:
                target = start_step if watch.last_ok is None else start_step + watch.last_ok
                self.history.append(current.lr, losses[:bad])
                restored = self._restore(target, kept)
                busy += time.perf_counter() - t0
                last = self.history.last()
                return RunResult(self.step - start_step, False, Divergence(current.start + bad, float(losses[bad]), restored),
                                 busy, last)
            self.history.append(current.lr, losses)
            self.step += k
            done += k
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

    def take_snapshot(self, name: str) -> SavedState:
        """Keep the current state under `name` (replacing one of that name); at most MAX_SNAPSHOTS,
        the oldest dropped first."""
        if not name or any(c.isspace() or c in ";#" for c in name) or len(name) > 40:
            raise ConfigError(f"a snapshot name is 1 to 40 characters without spaces, ';' or '#', got {name!r}")
        self.snapshots = [s for s in self.snapshots if s.name != name][-(MAX_SNAPSHOTS - 1) :]
        saved = self._capture(name, dev_loss=self.split_loss("dev"))
        self.snapshots.append(saved)
        return saved

    def restore_snapshot(self, name: str) -> SavedState:
        saved = next((s for s in self.snapshots if s.name == name), None)
        if saved is None:
            have = ", ".join(s.name for s in self.snapshots) or "none taken yet"
            raise ConfigError(f"no snapshot named {name!r} (snapshots: {have})")
        self._put_back(saved)
        self._before_run = None
        return saved

    def _capture(self, name: str, dev_loss: float | None = None) -> SavedState:
        lr, loss = self.history.tensors()
        return SavedState(name, self.params.clone(), self.step, self.lr_exponent, lr, loss, list(self.evals),
                          self._batch_gen.get_state(), dev_loss)

    def _put_back(self, saved: SavedState) -> None:
        self.params.copy_(saved.params)
        self.step, self.lr_exponent = saved.step, saved.lr_exponent
        self.history.restore(saved.history_lr, saved.history_loss)
        self.evals = list(saved.evals)
        self._batch_gen.set_state(saved.batch_rng)

    def _restore(self, target: int, kept: list[_Chunk]) -> int:
        """Put the parameters back to those of step `target` by replaying from a kept chunk.

        A chunk's steps are deterministic given its starting parameters and minibatches, so the
        replay lands exactly on step `target`. If target is older than what is kept, the oldest
        kept start is used instead. History is cut to the restored step; returns it.
        """
        source = next((c for c in reversed(kept) if c.start <= target), kept[0])
        target = max(target, source.start)
        self.params.copy_(source.params)
        n = target - source.start
        source.stepper.run(source.X[:n], source.Y[:n], [source.lr] * n)
        self.step = target
        self.history.truncate(target)
        return target

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

    def evaluate(self) -> EvalPoint:
        """Full train and dev loss now; recorded in evals."""
        point = EvalPoint(self.step, self.split_loss("train"), self.split_loss("dev"))
        if self.evals and self.evals[-1].step == self.step:
            self.evals[-1] = point
        else:
            self.evals.append(point)
        return point

    def bigram_dev_loss(self) -> float | None:
        ds = self.dataset
        return bigram_loss(ds.train.X, ds.train.Y, ds.dev.X, ds.dev.Y, ds.vocab.size)

    def sample(self, n: int) -> list[str]:
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 1000:
            raise ConfigError(f"number of samples must be from 1 to 1000, got {n!r}")
        return sample_names(self.params, self.dataset.vocab, self.model_config.block_size, n, self._sample_gen)

    # ---- learning-rate sweep ----------------------------------------------------------------
    def sweep(self, start: float = -3.0, end: float = 0.0, steps: int = 1000, repeats: int = 1,
              on_progress: ProgressFn = ignore_progress, should_stop: StopFn = never_stop) -> SweepResult:
        """One step per learning rate at 10**linspace(start, end, steps), from the current parameters.

        Stops once the loss blows up (core.losswatch). With repeats > 1 the sweep is done that
        many times over different minibatches and the result holds their mean, their band and
        each one's suggestion (core.sweep.combine_repeats). Parameters, step and the training
        minibatch generator are untouched afterwards, bit for bit.
        """
        start, end = _lr_range(start, end, "sweep")
        _whole(steps, 10, MAX_SWEEP_STEPS, "sweep steps")
        _whole(repeats, 1, MAX_SWEEP_REPEATS, "sweep repeats")
        exponents = torch.linspace(start, end, steps).tolist()
        saved = self.params.clone()
        stepper = self._stepper()  # one engine for the whole sweep: its result must not depend on when a build ended
        runs: list[tuple[list[float], list[float]]] = []
        t_start = time.perf_counter()
        try:
            for r in range(repeats):
                # each repeat its own minibatches; the first as a single sweep has always drawn them
                gen = torch.Generator().manual_seed(self.model_config.seed + 2 + self.step + SWEEP_REPEAT_SEED_STRIDE * r)

                def progress(done: int, loss: float, exponent: float) -> None:
                    on_progress(Progress("sweep", r * steps + done, repeats * steps, self.step, loss, exponent,
                                         time.perf_counter() - t_start))

                losses, smoothed, cancelled = self._sweep_once(stepper, exponents, gen, progress, should_stop)
                self.params.copy_(saved)
                runs.append((losses, smoothed))
                if cancelled:
                    break
        finally:
            self.params.copy_(saved)
        result = combine_repeats(self.step, exponents, runs, steps)
        self.sweeps.append(result)
        return result

    def _sweep_once(self, stepper: SGDStep | native.NativeSteps, exponents: list[float], gen: torch.Generator,
                    progress: Callable[[int, float, float], None], should_stop: StopFn) -> tuple[list[float], list[float], bool]:
        """One ramp from the current parameters (left changed): (losses, smoothed, cancelled)."""
        train, B, chunk = self.dataset.train, self.train_config.batch_size, self.train_config.chunk_steps
        watch = LossWatch()
        losses: list[float] = []
        for lo in range(0, len(exponents), chunk):
            exps = exponents[lo : lo + chunk]
            X, Y = train.get_batch(len(exps), B, gen)
            chunk_losses = stepper.run(X, Y, [10.0**e for e in exps]).tolist()
            bad = watch.first_bad(chunk_losses)
            losses += chunk_losses[:bad]
            progress(lo + len(exps), chunk_losses[-1], exps[-1])
            if bad is not None:
                break
            if should_stop():
                return losses, watch.smoothed, True
        return losses, watch.smoothed, False

    def grid(self, start: float = -3.0, end: float = 0.0, models: int = 32, steps: int = 500,
             on_progress: ProgressFn = ignore_progress, should_stop: StopFn = never_stop) -> GridResult:
        """Train `models` copies of the current model for `steps` steps on the same minibatches, at
        exponents evenly spaced in [start, end], side by side (core.grid). The model itself is untouched."""
        start, end = _lr_range(start, end, "grid")
        _whole(models, 2, MAX_GRID_MODELS, "grid models")
        _whole(steps, 10, MAX_SWEEP_STEPS, "grid steps")
        exponents = torch.linspace(start, end, models).tolist()
        lrs = [10.0**e for e in exponents]
        # K models are work enough for a second core, unlike the single model at batch 32, where
        # handing each op to another thread costs more than it gains
        threads = min(GRID_THREADS, os.cpu_count() or 1)
        self._switch_if_due()
        if self.compiled:
            with ThreadPoolExecutor(threads, thread_name_prefix="charmlp-grid") as pool:
                return self._grid(NativeGrid(self._native, self.params, lrs, pool), exponents, steps, on_progress,
                                  should_stop)
        torch_threads = torch.get_num_threads()
        torch.set_num_threads(max(torch_threads, threads))
        try:
            return self._grid(BatchedSGD(self.params, lrs, self.train_config.batch_size), exponents, steps,
                              on_progress, should_stop)
        finally:
            torch.set_num_threads(torch_threads)

    def _grid(self, batched: BatchedSGD | NativeGrid, exponents: list[float], steps: int, on_progress: ProgressFn,
              should_stop: StopFn) -> GridResult:
        train, B, chunk = self.dataset.train, self.train_config.batch_size, self.train_config.chunk_steps
        gen = torch.Generator().manual_seed(self.model_config.seed + 3 + self.step)  # own minibatches
        chunks: list[torch.Tensor] = []  # (k, models) losses
        done, t_start = 0, time.perf_counter()
        while done < steps:
            k = min(chunk, steps - done)
            chunks.append(batched.run(*train.get_batch(k, B, gen)))
            done += k
            best = float(chunks[-1][-1].nan_to_num(math.inf).min())
            on_progress(Progress("grid", done, steps, self.step, best, self.lr_exponent, time.perf_counter() - t_start))
            if should_stop():
                break
        losses = torch.cat(chunks)  # (done, models)
        tail = losses[-max(1, int(AVERAGE_LAST * done)) :].mean(0)
        result = GridResult(self.step, exponents, tail.nan_to_num(math.inf, math.inf, math.inf).tolist(), done)
        self.grids.append(result)
        return result

    # ---- checkpoints ------------------------------------------------------------------------
    def save(self, path: Path, force: bool = False) -> Path:
        """Write a checkpoint. An existing file this trainer did not write is kept unless force."""
        path = check_target(path, force, self._written, CheckpointError, "model.pt", "overwrite it with --force")
        lr, loss = self.history.tensors()
        save_checkpoint(path, CheckpointState(self.model_config, self.dataset.vocab.chars, self.params, self.step,
                                              float(self.lr_exponent), lr, loss, list(self.evals),
                                              self._batch_gen.get_state()))
        self._written.add(path.resolve())
        return path

    def load(self, path: Path) -> CheckpointState:
        """Replace the model by a checkpoint's. Nothing changes if it is refused."""
        state = load_checkpoint(Path(path).expanduser())
        self.apply_checkpoint(state, path)
        return state

    def apply_checkpoint(self, state: CheckpointState, path: Path) -> None:
        if state.vocab_chars != self.dataset.vocab.chars:
            raise CheckpointError(f"{path}: its vocabulary ({len(state.vocab_chars) + 1} tokens) differs from the data's "
                                  f"({self.dataset.vocab.size}); load it with the words file it was trained on")
        if state.model.block_size != self.dataset.block_size:
            raise CheckpointError(f"{path}: block size {state.model.block_size} differs from the data's "
                                  f"{self.dataset.block_size}; start with --load to use its block size")
        self.model_config = state.model
        self._install(state.params)
        self._before_run = None
        self.snapshots = []  # they belong to the model they were taken from
        self.step = state.step
        self.lr_exponent = state.lr_exponent
        self.history.restore(state.history_lr, state.history_loss)
        self.evals = list(state.evals)
        self._batch_gen.set_state(state.batch_rng_state)
