"""The parallel LR grid: K copies of the model trained side by side, one learning rate each.

A ramp sweep answers "where does the loss blow up" from one noisy step per LR; the grid answers
"which LR is best after N steps" directly. The K models see the same minibatches. Two engines:
- BatchedSGD, with torch alone: the K models advance together with batched ops (one bmm per
  matmul for all K, not a Python loop over models); the step is core.step's math with a batch
  dimension, and each model's learning rate scales its gradient at the source (dloss/dlogits),
  so one update call serves all K.
- NativeGrid, once the native steps are built and chosen (core.native): each model runs a whole
  chunk in one native call. Each model's steps are exactly the single model's native steps.
  The batched ops do more per model-step than the single eager step the calibration timed, so
  the native grid times them too (a few steps on throwaway copies) and hands its models over to
  them after its first DECIDE_STEPS steps where they are faster (a CPU without AVX, its other
  core busy: 393 ms against the eager grid's 319 before this was measured).
Threads: a second one only where measured to pay. The native grid times its chunks on two
threads (the call releases the GIL; the second thread takes models from a queue, so a slow core
only does fewer of them) against a few models of a chunk run alone first, and keeps the faster,
checking again now and then, as the load can change. The batched torch ops keep the caller's torch threads (one by default): torch's
threads wait for each other at every op, and with another process holding one of two cores a
second thread made the grid 20-300x slower (0.15 s quiet, 3.5-51 s; one thread a steady 0.25 s).
"""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import torch

from core import budget
from core.dataset import Split
from core.jobs import Progress, ProgressFn, StopFn
from core.model import Params
from core.native import NativeKernel

TANH_BACKWARD = torch.ops.aten.tanh_backward.grad_input
AVERAGE_LAST = 0.2  # a model's grid loss: its mean minibatch loss over the last 20% of the steps
GRID_THREADS = budget.GRID_THREADS
RECHECK_EVERY = 16  # chunks after which the native grid times the other thread count again
PROBE_MODELS = 2  # models of a pool chunk timed alone first: one thread measured at a few ms, not a whole chunk
PROBE_STEPS = 4  # batched eager steps timed against the native grid's first steps…
PROBE_WARM_STEPS = 2  # …after these (after one, the eager grid read ~25% slow; after two, ~10%)
DECIDE_STEPS = 25  # the native grid's first steps, timed against them: the rest of its first chunk goes to the faster


@dataclass(frozen=True)
class GridResult:
    at_step: int  # the model's step when the grid ran (its parameters are untouched)
    exponents: list[float]  # one learning-rate exponent per model
    losses: list[float]  # each model's mean minibatch loss over the last 20% of its steps (inf: it blew up)
    steps: int  # steps each model took (fewer than asked if cancelled)
    seconds: float  # how long the models trained (wall time)

    @property
    def best_exponent(self) -> float | None:
        finite = [(loss, e) for loss, e in zip(self.losses, self.exponents) if math.isfinite(loss)]
        return round(min(finite)[1], 2) if finite else None


class BatchedSGD:
    """K copies of `params`, trained in place with one learning rate each."""

    def __init__(self, params: Params | list[Params], lrs: list[float], batch_size: int) -> None:
        """`params` copied K times, or K models (one per learning rate) as they stand."""
        K, B = len(lrs), batch_size
        models = params if isinstance(params, list) else [params] * K
        V, E = models[0].C.shape
        TE, H = models[0].W1.shape

        def copies(name: str) -> torch.Tensor:
            return torch.stack([getattr(m, name).detach() for m in models]).contiguous()

        self.C, self.W1, self.W2 = copies("C"), copies("W1"), copies("W2")  # (K, V, E) (K, TE, H) (K, H, V)
        self.b1, self.b2 = copies("b1").unsqueeze(1), copies("b2").unsqueeze(1)  # (K, 1, H) (K, 1, V)
        self.K, self.B, self.T, self.E = K, B, TE // E, E
        dtype = models[0].C.dtype
        self.scale = torch.tensor([-lr / B for lr in lrs], dtype=dtype).view(K, 1, 1)
        self.emb = torch.empty(K, B * self.T, E, dtype=dtype)
        self.z2 = torch.empty(K, B, H, dtype=dtype)
        self.sig = torch.empty(K, B, H, dtype=dtype)
        self.h = torch.empty(K, B, H, dtype=dtype)
        self.minus_ones = torch.full((K, B, H), -1.0, dtype=dtype)
        self.logits = torch.empty(K, B, V, dtype=dtype)
        self.logp = torch.empty(K, B, V, dtype=dtype)
        self.dlogits = torch.empty(K, B, V, dtype=dtype)
        self.minus_one = torch.full((K, B, 1), -1.0, dtype=dtype)
        self.dh = torch.empty(K, B, H, dtype=dtype)
        self.dz = torch.empty(K, B, H, dtype=dtype)
        self.dx = torch.empty(K, B, TE, dtype=dtype)
        self.db1 = torch.empty(K, 1, H, dtype=dtype)
        self.db2 = torch.empty(K, 1, V, dtype=dtype)

    @torch.inference_mode()  # no autograd bookkeeping per call
    def run(self, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        """One step per minibatch of X (k, B, T), Y (k, B) for all K models; (k, K) losses."""
        k, K, B = X.shape[0], self.K, self.B
        picked = torch.empty(k, K, B, 1, dtype=self.C.dtype)
        x = self.emb.view(K, B, -1)  # (K, B, T*E)
        xt, ht, W1t, W2t = x.transpose(1, 2), self.h.transpose(1, 2), self.W1.transpose(1, 2), self.W2.transpose(1, 2)
        for xb, yb, picked_i in zip(X.reshape(k, -1).unbind(0), Y.reshape(k, 1, B, 1).unbind(0), picked.unbind(0)):
            yk = yb.expand(K, B, 1)
            torch.index_select(self.C, 1, xb, out=self.emb)
            torch.baddbmm(self.b1, x, self.W1, beta=2, alpha=2, out=self.z2)  # 2z
            torch.sigmoid(self.z2, out=self.sig)
            torch.add(self.minus_ones, self.sig, alpha=2, out=self.h)  # tanh
            torch.baddbmm(self.b2, self.h, self.W2, out=self.logits)
            torch.log_softmax(self.logits, 2, out=self.logp)
            torch.gather(self.logp, 2, yk, out=picked_i)
            torch.exp(self.logp, out=self.dlogits)
            self.dlogits.scatter_add_(2, yk, self.minus_one)  # softmax - onehot
            self.dlogits.mul_(self.scale)  # each model's -lr/B: every gradient below is its update
            torch.bmm(self.dlogits, W2t, out=self.dh)  # before W2 changes
            self.W2.baddbmm_(ht, self.dlogits)
            torch.sum(self.dlogits, 1, keepdim=True, out=self.db2)
            self.b2.add_(self.db2)
            TANH_BACKWARD(self.dh, self.h, grad_input=self.dz)
            torch.bmm(self.dz, W1t, out=self.dx)  # before W1 changes
            self.W1.baddbmm_(xt, self.dz)
            torch.sum(self.dz, 1, keepdim=True, out=self.db1)
            self.b1.add_(self.db1)
            self.C.index_add_(1, xb, self.dx.view(K, -1, self.E))
        return picked.view(k, K, B).mean(2).neg_()


@dataclass
class ThreadChoice:
    """One thread or the pool's: the time per model-step under each, the faster used, the other
    timed again every RECHECK_EVERY chunks. One thread is timed on PROBE_MODELS models of a pool
    chunk (run alone before the pool takes the rest) where the grid has models enough, else on a
    whole chunk: a first chunk on one thread cost a 500-step grid 0.4 of its steps at half speed."""

    pool_threads: int
    models: int
    seconds: dict[int, float] = field(default_factory=dict)  # threads -> the latest time per model-step
    chunks: int = 0

    def plan(self) -> tuple[int, int]:
        """(threads for this chunk, models of it to time alone first)."""
        pool = self.pool_threads
        if pool < 2:
            return 1, 0
        one_s, pool_s = self.seconds.get(1), self.seconds.get(pool)
        due = self.chunks % RECHECK_EVERY == 0  # the slower one is timed again
        if one_s is None or (due and pool_s is not None and pool_s < one_s):
            probe = PROBE_MODELS if self.models >= 2 * PROBE_MODELS else 0
            return (pool, probe) if probe else (1, 0)
        if pool_s is None or due or pool_s < one_s:
            return pool, 0
        return 1, 0

    def timed(self, threads: int, seconds_per_model_step: float) -> None:
        self.seconds[threads] = seconds_per_model_step


class NativeGrid:
    """K copies of `params`, each trained in place with one learning rate by the native kernel."""

    def __init__(self, kernel: NativeKernel, params: Params, lrs: list[float], pool: ThreadPoolExecutor,
                 pool_threads: int, eager_s: float | None = None) -> None:
        self.kernel, self.lrs, self.pool = kernel, lrs, pool
        self.models = [params.clone() for _ in lrs]
        self.choice = ThreadChoice(pool_threads, len(lrs))
        self.eager_s = eager_s  # the batched eager grid's time per model-step here (None: not an option)
        self.batched: BatchedSGD | None = None  # where the models went, if it was faster

    def run(self, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        """One step per minibatch of X (k, B, T), Y (k, B) for all K models; (k, K) losses. The
        first DECIDE_STEPS of the first chunk decide between these steps and the batched ones."""
        if self.batched is not None:
            return self.batched.run(X, Y)
        if self.eager_s is None or X.shape[0] <= DECIDE_STEPS:
            return self._native(X, Y)
        head = self._native(X[:DECIDE_STEPS], Y[:DECIDE_STEPS])
        if self.eager_s < min(self.choice.seconds.values()):
            self.batched = BatchedSGD(self.models, self.lrs, Y.shape[1])
        self.eager_s = None  # compared once
        return torch.cat([head, self.run(X[DECIDE_STEPS:], Y[DECIDE_STEPS:])])

    def _native(self, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        X, Y = X.contiguous(), Y.contiguous()
        k = X.shape[0]

        def train(model: int) -> torch.Tensor:
            return self.kernel.run(self.models[model], X, Y, [self.lrs[model]] * k)

        threads, alone = self.choice.plan()
        t0 = time.perf_counter()
        losses = [train(m) for m in range(alone if threads > 1 else len(self.models))]
        t1 = time.perf_counter()
        if threads > 1:
            if alone:
                self.choice.timed(1, (t1 - t0) / (k * alone))
            losses += self.pool.map(train, range(alone, len(self.models)))
        self.choice.timed(threads, (time.perf_counter() - (t1 if threads > 1 else t0)) / (k * (len(self.models) - alone)))
        self.choice.chunks += 1
        return torch.stack(losses, 1)


def train_grid(params: Params, kernel: NativeKernel | None, train: Split, batch_size: int, chunk_steps: int, seed: int,
               at_step: int, exponents: list[float], steps: int, on_progress: ProgressFn, should_stop: StopFn) -> GridResult:
    """Train one copy of `params` per exponent for `steps` steps on the same minibatches (drawn from
    seed), on the native kernel where given, else batched torch ops. `params` stay untouched.
    Refused before the copies (core.budget.MemoryBudgetError) if K x the model would not fit."""
    V, E = params.C.shape
    TE, H = params.W1.shape
    budget.check(f"grid K={len(exponents)}", budget.grid_needs(len(exponents), TE // E, E, H, V, batch_size, chunk_steps,
                                                              native=kernel is not None))
    lrs = [10.0**e for e in exponents]
    if kernel is not None:  # K models may be work enough for a second core: measured (ThreadChoice)
        threads = min(GRID_THREADS, os.cpu_count() or 1)
        eager_s = _batched_seconds(params, lrs, train, batch_size, chunk_steps, seed)
        with ThreadPoolExecutor(threads, thread_name_prefix="charmlp-grid") as pool:
            return _train(NativeGrid(kernel, params, lrs, pool, threads, eager_s), train, batch_size, chunk_steps, seed,
                          at_step, exponents, steps, on_progress, should_stop)
    return _train(BatchedSGD(params, lrs, batch_size), train, batch_size, chunk_steps, seed, at_step, exponents,
                  steps, on_progress, should_stop)


def _batched_seconds(params: Params, lrs: list[float], train: Split, batch_size: int, chunk_steps: int,
                     seed: int) -> float | None:
    """The batched eager grid's time per model-step, on throwaway copies and minibatches of their
    own (the grid's stream is untouched); None where it would not fit in memory to take over."""
    V, E = params.C.shape
    TE, H = params.W1.shape
    try:
        budget.check("", budget.grid_needs(len(lrs), TE // E, E, H, V, batch_size, chunk_steps, native=False))
    except budget.MemoryBudgetError:
        return None
    models = BatchedSGD(params, lrs, batch_size)
    X, Y = train.get_batch(PROBE_WARM_STEPS + PROBE_STEPS, batch_size, torch.Generator().manual_seed(seed + 1))
    models.run(X[:PROBE_WARM_STEPS], Y[:PROBE_WARM_STEPS])  # they allocate and warm up
    t0 = time.perf_counter()
    models.run(X[PROBE_WARM_STEPS:], Y[PROBE_WARM_STEPS:])
    return (time.perf_counter() - t0) / (PROBE_STEPS * len(lrs))


def _train(models: BatchedSGD | NativeGrid, train: Split, batch_size: int, chunk_steps: int, seed: int, at_step: int,
           exponents: list[float], steps: int, on_progress: ProgressFn, should_stop: StopFn) -> GridResult:
    gen = torch.Generator().manual_seed(seed)
    chunks: list[torch.Tensor] = []  # (k, models) losses
    done, t_start = 0, time.perf_counter()
    while done < steps:
        k = min(chunk_steps, steps - done)
        chunks.append(models.run(*train.get_batch(k, batch_size, gen)))
        done += k
        best = float(chunks[-1][-1].nan_to_num(math.inf).min())
        on_progress(Progress("grid", done, steps, at_step, best, math.nan, time.perf_counter() - t_start))
        if should_stop():
            break
    losses = torch.cat(chunks)  # (done, models)
    tail = losses[-max(1, int(AVERAGE_LAST * done)) :].mean(0)
    return GridResult(at_step, exponents, tail.nan_to_num(math.inf, math.inf, math.inf).tolist(), done,
                      time.perf_counter() - t_start)
