"""The training step: forward, hand-written backward and SGD update in 14-16 torch calls, no autograd.

At batch 32 almost all of a step is per-call overhead (each torch call costs more than its
arithmetic), so the step:
- runs under inference_mode (no autograd bookkeeping per call or per view);
- reuses preallocated buffers (`out=`) and views made once, not per step;
- keeps W2 and b2 in one (H+1, V) tensor and h in a (B, H+1) buffer whose last column is ones,
  so one mm gives h @ W2 + b2 and one addmm_ updates both (two calls fewer);
- for small models, does the same for W1 and b1 with a constant token: every context gets a
  (T+1)-th token whose embedding is [1, 0, …] (an extra row of C that is read, never written: the
  matmul that makes the embedding gradient leaves its columns at zero), so x @ W1 + b1 is one
  matmul over [x | 1, 0, …] and one addmm_ updates W1 and b1. It widens the first layer's
  matmuls by 1/T, which only pays while calls, not arithmetic, dominate (block 8 / emb 24 /
  hidden 512 / batch 256 lost 8% with it);
- computes tanh as 2·sigmoid(2z) − 1: torch's sigmoid kernel is several times faster than its
  tanh at these sizes (error ~1e-7 in float32; exact to 1e-15 in float64);
- keeps the logits transposed, (V, B): MKL writes h @ W2 faster that way;
- folds 1/batch into the update's alpha, and adds the embedding gradient with index_add_
  (faster than index_put_), pre-scaled by the matmul that produces it;
- writes each step's log-probabilities into one (k, V, B) tensor and picks the targets' out of
  it once per chunk: no gather and no host sync per step.
tests/test_model_and_step.py checks it against autograd in float64.
"""

from __future__ import annotations

from typing import Protocol

import torch

from core.dataset import Minibatches
from core.model import Params

TANH_BACKWARD = torch.ops.aten.tanh_backward.grad_input  # dh * (1 - h²) in one call
BIAS_TOKEN_MAX_MACS = 1 << 20  # first-layer multiply-adds per step up to which the constant token pays


class Stepper(Protocol):
    """What runs training steps on a model's parameters in place: SGDStep, or core.native's."""

    def run(self, X: torch.Tensor, Y: torch.Tensor, lrs: list[float]) -> torch.Tensor:
        """One step per minibatch of X (k, B, T), Y (k, B) at lrs[i]; the k minibatch losses."""
        ...

    def run_batches(self, batches: Minibatches, lrs: list[float]) -> torch.Tensor:
        """The same for minibatches drawn from a split (the same losses and parameters as run on
        their tensors() would give: a replay may take either way)."""
        ...


class SGDStep:
    """Runs SGD steps on `params` in place for minibatches of a fixed size.

    Re-homes the parameters as views of three larger tensors (see the module doc): C of
    (V+1, E) with the constant token, W1 and b1 of ((T+1)E, H), W2 and b2 of (H+1, V).
    Everything that reads `params` sees the same values as before.
    """

    def __init__(self, params: Params, batch_size: int) -> None:
        B = batch_size
        V, E = params.C.shape
        TE, H = params.W1.shape
        T = TE // E
        dtype = params.C.dtype
        self.bias_token = (TE + E) * H * B <= BIAS_TOKEN_MAX_MACS
        extra = E if self.bias_token else 0  # the constant token's columns of x
        self.C_ext = torch.zeros(V + 1, E, dtype=dtype)  # rows: C, the constant token [1, 0, …]
        self.C_ext[:V] = params.C
        self.C_ext[V, 0] = 1.0
        self.W1b = torch.zeros(TE + E, H, dtype=dtype)  # rows: W1, b1, zeros (the constant token's other dims)
        self.W1b[:TE], self.W1b[TE] = params.W1, params.b1
        self.W2b = torch.cat([params.W2, params.b2[None]])  # (H+1, V): W2 on top, b2 as the last row
        params.C, params.W1, params.b1 = self.C_ext[:V], self.W1b[:TE], self.W1b[TE]
        params.W2, params.b2 = self.W2b[:H], self.W2b[H]
        self.params = params
        self.batch_size, self.block_size, self.vocab_size = B, T, V
        self.W1_in = self.W1b[: TE + extra]  # what multiplies x: [W1; b1; 0…] or W1 alone
        self.emb = torch.empty(B * (T + extra // E), E, dtype=dtype)  # gathered embeddings
        self.x = self.emb.view(B, TE + extra)  # the same memory, as the first layer's input
        self.z2 = torch.empty(B, H, dtype=dtype)  # 2 * pre-activation
        self.sig = torch.empty(B, H, dtype=dtype)  # sigmoid(2z)
        self.h1 = torch.ones(B, H + 1, dtype=dtype)  # [h | 1]
        self.h = self.h1[:, :H]  # (B, H) tanh activations, a view
        self.minus_ones = torch.full((B, H), -1.0, dtype=dtype)
        self.logits = torch.empty(V, B, dtype=dtype)  # transposed: MKL writes h @ W2 faster this way
        self.dlogits = torch.empty(V, B, dtype=dtype)  # B * dloss/dlogits = softmax - onehot, transposed
        self.minus_one = torch.full((1, B), -1.0, dtype=dtype)
        self.dh = torch.empty(B, H, dtype=dtype)
        self.dz = torch.empty(B, H, dtype=dtype)
        self.db1 = torch.empty(H, dtype=dtype)  # used without the constant token only
        self.dx = torch.zeros(B, TE + extra, dtype=dtype)  # -lr * dloss/dx, ready to scatter into C
        self.dx_rows = self.dx.view(self.emb.shape)

    def _token_ids(self, X: torch.Tensor, k: int) -> torch.Tensor:
        """(k, B, T) contexts -> the ids of the embeddings to read and update, (k, B*T'): with the
        constant token, T' = T+1 and the last id of each context is the constant token."""
        B, T, V = self.batch_size, self.block_size, self.vocab_size
        if not self.bias_token:
            return X.reshape(k, B * T)
        ids = torch.full((k, B, T + 1), V, dtype=X.dtype)
        ids[:, :, :T] = X.reshape(k, B, T)
        return ids.view(k, B * (T + 1))

    def run_batches(self, batches: Minibatches, lrs: list[float]) -> torch.Tensor:
        return self.run(*batches.tensors(), lrs)

    @torch.inference_mode()  # no autograd bookkeeping per call and per view
    def run(self, X: torch.Tensor, Y: torch.Tensor, lrs: list[float]) -> torch.Tensor:
        """len(lrs) steps on minibatches X (k, B, T), Y (k, B); returns the k minibatch losses (k,)."""
        k, B, V = len(lrs), self.batch_size, self.vocab_size
        ids = self._token_ids(X, k)
        ys = Y.reshape(k, 1, B)
        logps = torch.empty(k, V, B, dtype=self.C_ext.dtype)  # each step's log-probabilities, transposed
        C_ext, W1_in, W2b = self.C_ext, self.W1_in, self.W2b
        TE = self.params.W1.shape[0]
        W2t = self.params.W2.t()
        # dx's columns for x itself; those of the constant token stay zero, so it is never updated
        W1t, dx = W1_in[:TE].t(), self.dx[:, :TE]
        # with the constant token the bias is inside W1_in; otherwise addmm adds b1 (beta 2: 2z)
        bias, beta, b1 = (self.z2, 0, None) if self.bias_token else (self.params.b1, 2, self.params.b1)
        emb, x, xt, z2, sig, h, h1, h1t = self.emb, self.x, self.x.t(), self.z2, self.sig, self.h, self.h1, self.h1.t()
        logits, dlogits, dh, dz, db1 = self.logits, self.dlogits, self.dh, self.dz, self.db1
        logits_bv, dlogits_bv = logits.t(), dlogits.t()  # (B, V) views
        minus_one, minus_ones, dx_rows = self.minus_one, self.minus_ones, self.dx_rows
        for x_ids, yb, logp, lr in zip(ids.unbind(0), ys.unbind(0), logps.unbind(0), lrs):
            alpha = -lr / B  # every gradient below is B times the true one
            torch.index_select(C_ext, 0, x_ids, out=emb)
            torch.addmm(bias, x, W1_in, beta=beta, alpha=2, out=z2)  # 2(x @ W1 + b1)
            torch.sigmoid(z2, out=sig)
            torch.add(minus_ones, sig, alpha=2, out=h)  # tanh
            torch.mm(h1, W2b, out=logits_bv)  # h @ W2 + b2
            torch.log_softmax(logits, 0, out=logp)
            # backward
            torch.exp(logp, out=dlogits)
            dlogits.scatter_add_(0, yb, minus_one)  # softmax - onehot
            torch.mm(dlogits_bv, W2t, out=dh)  # before W2 changes
            W2b.addmm_(h1t, dlogits_bv, alpha=alpha)  # W2 and b2
            TANH_BACKWARD(dh, h, grad_input=dz)
            torch.addmm(dx, dz, W1t, beta=0, alpha=alpha, out=dx)  # before W1 changes
            W1_in.addmm_(xt, dz, alpha=alpha)  # W1, and b1 with the constant token
            if b1 is not None:
                torch.sum(dz, 0, out=db1)
                b1.add_(db1, alpha=alpha)
            C_ext.index_add_(0, x_ids, dx_rows)
        return logps.gather(1, ys).view(k, B).mean(1).neg_()
