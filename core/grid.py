"""The parallel LR grid: K copies of the model trained side by side, one learning rate each.

A ramp sweep answers "where does the loss blow up" from one noisy step per LR; the grid answers
"which LR is best after N steps" directly. The K models see the same minibatches. Two engines:
- BatchedSGD, with torch alone: the K models advance together with batched ops (one bmm per
  matmul for all K, not a Python loop over models); the step is core.step's math with a batch
  dimension, and each model's learning rate scales its gradient at the source (dloss/dlogits),
  so one update call serves all K.
- NativeGrid, once the native steps are built (core.native): each model runs a whole chunk in
  one native call, the models spread over threads (the call releases the GIL). Each model's
  steps are exactly the single model's native steps.
"""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch

from core import budget
from core.dataset import Split
from core.jobs import Progress, ProgressFn, StopFn
from core.model import Params
from core.native import NativeKernel

TANH_BACKWARD = torch.ops.aten.tanh_backward.grad_input
AVERAGE_LAST = 0.2  # a model's grid loss: its mean minibatch loss over the last 20% of the steps
GRID_THREADS = budget.GRID_THREADS


@dataclass(frozen=True)
class GridResult:
    at_step: int  # the model's step when the grid ran (its parameters are untouched)
    exponents: list[float]  # one learning-rate exponent per model
    losses: list[float]  # each model's mean minibatch loss over the last 20% of its steps (inf: it blew up)
    steps: int  # steps each model took (fewer than asked if cancelled)

    @property
    def best_exponent(self) -> float | None:
        finite = [(loss, e) for loss, e in zip(self.losses, self.exponents) if math.isfinite(loss)]
        return round(min(finite)[1], 2) if finite else None


class BatchedSGD:
    """K copies of `params`, trained in place with one learning rate each."""

    def __init__(self, params: Params, lrs: list[float], batch_size: int) -> None:
        K, B = len(lrs), batch_size
        V, E = params.C.shape
        TE, H = params.W1.shape

        def copies(t: torch.Tensor) -> torch.Tensor:
            return t.detach().unsqueeze(0).repeat(K, *([1] * t.dim())).contiguous()

        self.C, self.W1, self.W2 = copies(params.C), copies(params.W1), copies(params.W2)  # (K, V, E) (K, TE, H) (K, H, V)
        self.b1, self.b2 = copies(params.b1).unsqueeze(1), copies(params.b2).unsqueeze(1)  # (K, 1, H) (K, 1, V)
        self.K, self.B, self.T, self.E = K, B, TE // E, E
        self.scale = torch.tensor([-lr / B for lr in lrs], dtype=params.C.dtype).view(K, 1, 1)
        dtype = params.C.dtype
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


class NativeGrid:
    """K copies of `params`, each trained in place with one learning rate by the native kernel."""

    def __init__(self, kernel: NativeKernel, params: Params, lrs: list[float], pool: ThreadPoolExecutor) -> None:
        self.kernel, self.lrs, self.pool = kernel, lrs, pool
        self.models = [params.clone() for _ in lrs]

    def run(self, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        """One step per minibatch of X (k, B, T), Y (k, B) for all K models; (k, K) losses."""
        X, Y = X.contiguous(), Y.contiguous()
        k = X.shape[0]

        def train(model: int) -> torch.Tensor:
            return self.kernel.run(self.models[model], X, Y, [self.lrs[model]] * k)

        return torch.stack(list(self.pool.map(train, range(len(self.models)))), 1)


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
    # K models are work enough for a second core, unlike the single model at batch 32, where
    # handing each op to another thread costs more than it gains
    threads = min(GRID_THREADS, os.cpu_count() or 1)
    if kernel is not None:
        with ThreadPoolExecutor(threads, thread_name_prefix="charmlp-grid") as pool:
            return _train(NativeGrid(kernel, params, lrs, pool), train, batch_size, chunk_steps, seed, at_step,
                          exponents, steps, on_progress, should_stop)
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(max(torch_threads, threads))
    try:
        return _train(BatchedSGD(params, lrs, batch_size), train, batch_size, chunk_steps, seed, at_step, exponents,
                      steps, on_progress, should_stop)
    finally:
        torch.set_num_threads(torch_threads)


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
    return GridResult(at_step, exponents, tail.nan_to_num(math.inf, math.inf, math.inf).tolist(), done)
