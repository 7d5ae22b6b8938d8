"""The training step: forward, hand-written backward and SGD update in 17 torch calls, no autograd.

At batch 32 almost all of a step is per-call overhead (~1.5-5 µs a call here), so the step:
- reuses preallocated buffers (`out=`) and views made once, not per step;
- keeps W2 and b2 in one (H+1, V) tensor and h in a (B, H+1) buffer whose last column is ones,
  so one mm gives h @ W2 + b2 and one addmm_ updates both (two calls fewer);
- computes tanh as 2·sigmoid(2z) − 1: torch's tanh kernel costs ~8 µs for 32x100 here, sigmoid
  ~1.5 µs (error ~1e-7 in float32; exact to 1e-15 in float64);
- folds 1/batch into the update's alpha, and scatters the embedding gradient with index_put_
  (2.5 µs, index_add_ 6 µs), pre-scaled by the matmul that produces it;
- writes each step's target log-probabilities into one (k, B) tensor: no host sync per step.
tests/test_model_and_step.py checks it against autograd in float64.
"""

from __future__ import annotations

import torch

from core.model import Params

TANH_BACKWARD = torch.ops.aten.tanh_backward.grad_input  # dh * (1 - h²) in one call


class SGDStep:
    """Runs SGD steps on `params` in place for minibatches of a fixed size.

    Re-homes params.W2 and params.b2 as views of one (H+1, V) tensor (see the module doc);
    everything else that reads `params` sees the same values.
    """

    def __init__(self, params: Params, batch_size: int) -> None:
        B = batch_size
        V, E = params.C.shape
        TE, H = params.W1.shape
        opts = {"dtype": params.C.dtype}
        self.W2b = torch.cat([params.W2, params.b2[None]])  # (H+1, V): W2 on top, b2 as the last row
        params.W2, params.b2 = self.W2b[:H], self.W2b[H]
        self.params = params
        self.batch_size = B
        self.emb = torch.empty(B * (TE // E), E, **opts)  # (B*T, E) gathered embeddings
        self.x = self.emb.view(B, TE)  # (B, T*E) the same memory, as the first layer's input
        self.z2 = torch.empty(B, H, **opts)  # 2 * pre-activation
        self.sig = torch.empty(B, H, **opts)  # sigmoid(2z)
        self.h1 = torch.ones(B, H + 1, **opts)  # [h | 1]
        self.h = self.h1[:, :H]  # (B, H) tanh activations, a view
        self.minus_ones = torch.full((B, H), -1.0, **opts)
        self.logits = torch.empty(B, V, **opts)
        self.logp = torch.empty(B, V, **opts)
        self.dlogits = torch.empty(B, V, **opts)  # B * dloss/dlogits = softmax - onehot
        self.minus_one = torch.full((B, 1), -1.0, **opts)
        self.dh = torch.empty(B, H, **opts)
        self.dz = torch.empty(B, H, **opts)
        self.db1 = torch.empty(H, **opts)
        self.dx = torch.empty(B, TE, **opts)  # -lr * dloss/dx, ready to scatter into C
        self.dx_rows = self.dx.view(self.emb.shape)  # (B*T, E)

    def run(self, X: torch.Tensor, Y: torch.Tensor, lrs: list[float]) -> torch.Tensor:
        """len(lrs) steps on minibatches X (k, B, T), Y (k, B); returns the k minibatch losses (k,)."""
        k, B = len(lrs), self.batch_size
        picked = torch.empty(k, B, 1, dtype=self.params.C.dtype)  # log p of each step's targets
        xs = X.reshape(k, B * X.shape[-1]).unbind(0)  # k views (B*T,) made in one call
        ys = Y.reshape(k, B, 1).unbind(0)
        p, W2b = self.params, self.W2b
        C, W1, b1 = p.C, p.W1, p.b1
        W1t, W2t = W1.t(), p.W2.t()
        emb, x, xt, z2, sig, h, h1, h1t = self.emb, self.x, self.x.t(), self.z2, self.sig, self.h, self.h1, self.h1.t()
        logits, logp, dlogits, dh, dz, db1, dx = self.logits, self.logp, self.dlogits, self.dh, self.dz, self.db1, self.dx
        minus_one, minus_ones, dx_rows = self.minus_one, self.minus_ones, self.dx_rows
        for xb, yb, picked_i, lr in zip(xs, ys, picked.unbind(0), lrs):
            alpha = -lr / B  # every gradient below is B times the true one
            torch.index_select(C, 0, xb, out=emb)
            torch.addmm(b1, x, W1, beta=2, alpha=2, out=z2)  # 2(x @ W1 + b1)
            torch.sigmoid(z2, out=sig)
            torch.add(minus_ones, sig, alpha=2, out=h)  # tanh
            torch.mm(h1, W2b, out=logits)  # h @ W2 + b2
            torch.log_softmax(logits, 1, out=logp)
            torch.gather(logp, 1, yb, out=picked_i)
            # backward
            torch.exp(logp, out=dlogits)
            dlogits.scatter_add_(1, yb, minus_one)  # softmax - onehot
            torch.mm(dlogits, W2t, out=dh)  # before W2 changes
            W2b.addmm_(h1t, dlogits, alpha=alpha)  # W2 and b2
            TANH_BACKWARD(dh, h, grad_input=dz)
            torch.addmm(dx, dz, W1t, beta=0, alpha=alpha, out=dx)  # before W1 changes
            torch.sum(dz, 0, out=db1)
            W1.addmm_(xt, dz, alpha=alpha)
            b1.add_(db1, alpha=alpha)
            C.index_put_((xb,), dx_rows, accumulate=True)
        return picked.view(k, B).mean(1).neg_()
