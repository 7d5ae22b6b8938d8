"""A whole chunk of SGD steps in one call, compiled by torch.compile into a C++ loop.

The eager step (core.step) pays ~1.5-5 µs of Python and dispatcher overhead for each of its
15 torch calls. Here the steps of a chunk are one `scan`, which inductor turns into a C++ loop
(cpp_wrapper): the per-step cost falls from ~42 to ~25 µs for the lecture's small model. The
price is a compile of ~15-20 s the first time (~5 s from inductor's on-disk cache), so the
Trainer compiles in a background thread and switches at a chunk boundary when it is ready
(Trainer.start_compiling); until then, and wherever compiling fails, the eager step runs.

Same math as core.step (tests/test_compiled.py); the parameters stay in `params`, updated in place.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from core.model import Params


def _sgd_step(carry: tuple[torch.Tensor, ...], batch: tuple[torch.Tensor, ...]):
    """One step as a pure function: (params, (xb (B, T), yb (B,), lr ())) -> (new params, loss)."""
    C, W1, b1, W2, b2 = carry
    xb, yb, lr = batch
    B, (V, E) = yb.shape[0], C.shape
    x = C[xb].reshape(B, -1)  # (B, T*E)
    h = 1 - 2 / (torch.exp(2 * (x @ W1 + b1)) + 1)  # tanh, fused into one loop  (B, H)
    logp = torch.log_softmax(h @ W2 + b2, 1)  # (B, V)
    loss = -logp.gather(1, yb[:, None]).mean()
    dlogits = (torch.exp(logp) - (yb[:, None] == torch.arange(V)).to(C.dtype)) / B  # (B, V)
    dz = (dlogits @ W2.t()) * (1 - h * h)  # (B, H)
    dC = torch.zeros_like(C).index_add(0, xb.reshape(-1), (dz @ W1.t()).reshape(-1, E))  # (V, E)
    grads = (dC, x.t() @ dz, dz.sum(0), h.t() @ dlogits, dlogits.sum(0))
    # lr 0 leaves a parameter exactly as it is (a rollback replays part of a chunk that way)
    return tuple(torch.where(lr > 0, p - lr * g, p) for p, g in zip(carry, grads)), loss


def _sgd_chunk(C, W1, b1, W2, b2, X, Y, lrs):
    from torch._higher_order_ops.scan import scan

    params, losses = scan(_sgd_step, (C, W1, b1, W2, b2), (X, Y, lrs))
    return (*params, losses)


ChunkFn = Callable[..., tuple[torch.Tensor, ...]]


def compile_chunk(params: Params, batch_size: int, chunk_steps: int) -> tuple[ChunkFn, float]:
    """Compile for these parameter shapes and chunk size, by calling it once on dummy data.

    Slow (seconds): run it off the training thread. Raises whatever torch.compile raises where
    it cannot compile (no C++ compiler, an unsupported platform). Returns (fn, seconds taken).
    """
    t0 = time.perf_counter()
    fn = torch.compile(_sgd_chunk, fullgraph=True, dynamic=False, options={"cpp_wrapper": True})
    block_size = params.W1.shape[0] // params.C.shape[1]
    dummy = [torch.zeros_like(t) for t in params.tensors()]
    X = torch.zeros(chunk_steps, batch_size, block_size, dtype=torch.long)
    Y = torch.zeros(chunk_steps, batch_size, dtype=torch.long)
    fn(*dummy, X, Y, torch.zeros(chunk_steps, dtype=params.C.dtype))
    return fn, time.perf_counter() - t0


class CompiledSteps:
    """Runs chunks of exactly `chunk_steps` steps with a compiled ChunkFn, on `params` in place."""

    def __init__(self, fn: ChunkFn, params: Params, chunk_steps: int) -> None:
        self.fn, self.params, self.chunk_steps = fn, params, chunk_steps

    def run(self, X: torch.Tensor, Y: torch.Tensor, lrs: list[float]) -> torch.Tensor:
        """Like SGDStep.run for X (k, B, T), Y (k, B) with k == chunk_steps; lrs may end in zeros."""
        out = self.fn(*self.params.tensors(), X, Y, torch.tensor(lrs, dtype=self.params.C.dtype))
        self.params.copy_(Params(*out[:5]))
        return out[5]
