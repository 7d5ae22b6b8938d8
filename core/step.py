"""The training step: forward, hand-written backward and SGD update in ~20 torch calls, no autograd.

At batch 32 almost all of a step is per-call overhead, so this step reuses preallocated buffers
(`out=`), folds 1/batch into the update's alpha and updates the parameters in place with
addmm_/index_add_. tests/test_step.py checks it against autograd in float64.
"""

from __future__ import annotations

import torch

from core.model import Params


class SGDStep:
    """Runs SGD steps on `params` in place for minibatches of a fixed size."""

    def __init__(self, params: Params, batch_size: int) -> None:
        self.params = params
        B = batch_size
        V, E = params.C.shape
        TE, H = params.W1.shape
        opts = {"dtype": params.C.dtype}
        self.batch_size = B
        self.emb = torch.empty(B * (TE // E), E, **opts)  # (B*T, E) gathered embeddings
        self.hpre = torch.empty(B, H, **opts)
        self.h = torch.empty(B, H, **opts)
        self.logits = torch.empty(B, V, **opts)
        self.logp = torch.empty(B, V, **opts)
        self.picked = torch.empty(B, 1, **opts)  # log p of the targets
        self.dlogits = torch.empty(B, V, **opts)  # B * dloss/dlogits = softmax - onehot
        self.db2 = torch.empty(V, **opts)
        self.dh = torch.empty(B, H, **opts)
        self.hsq = torch.empty(B, H, **opts)
        self.dhpre = torch.empty(B, H, **opts)
        self.db1 = torch.empty(H, **opts)
        self.dx = torch.empty(B, TE, **opts)
        self.minus_one = torch.full((B, 1), -1.0, **opts)

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor, lr: float, mean_logp_out: torch.Tensor) -> None:
        """One step on contexts xb (B*T,) flattened and targets yb (B, 1).

        Writes the mean log-probability of the targets (minus the minibatch loss) into the
        0-dim tensor mean_logp_out, so a chunk of steps needs no host sync.
        """
        p = self.params
        B = self.batch_size
        x = self.emb.view(B, -1)  # (B, T*E)
        torch.index_select(p.C, 0, xb, out=self.emb)
        torch.addmm(p.b1, x, p.W1, out=self.hpre)  # (B, H)
        torch.tanh(self.hpre, out=self.h)
        torch.addmm(p.b2, self.h, p.W2, out=self.logits)  # (B, V)
        torch.log_softmax(self.logits, 1, out=self.logp)
        torch.gather(self.logp, 1, yb, out=self.picked)
        torch.mean(self.picked, out=mean_logp_out)
        # backward: every gradient below is B times the true one; alpha divides it back
        alpha = -lr / B
        torch.exp(self.logp, out=self.dlogits)
        self.dlogits.scatter_add_(1, yb, self.minus_one)  # softmax - onehot
        torch.mm(self.dlogits, p.W2.t(), out=self.dh)  # before W2 changes
        torch.sum(self.dlogits, 0, out=self.db2)
        p.W2.addmm_(self.h.t(), self.dlogits, alpha=alpha)
        p.b2.add_(self.db2, alpha=alpha)
        torch.mul(self.h, self.h, out=self.hsq)
        torch.addcmul(self.dh, self.dh, self.hsq, value=-1.0, out=self.dhpre)  # dh * (1 - h^2)
        torch.mm(self.dhpre, p.W1.t(), out=self.dx)  # before W1 changes
        torch.sum(self.dhpre, 0, out=self.db1)
        p.W1.addmm_(x.t(), self.dhpre, alpha=alpha)
        p.b1.add_(self.db1, alpha=alpha)
        p.C.index_add_(0, xb, self.dx.view(self.emb.shape), alpha=alpha)

    def run(self, X: torch.Tensor, Y: torch.Tensor, lrs: list[float]) -> torch.Tensor:
        """len(lrs) steps on minibatches X (k, B, T), Y (k, B); returns the k minibatch losses (k,)."""
        k = len(lrs)
        mean_logp = torch.empty(k, dtype=self.params.C.dtype)
        xs = X.reshape(k, self.emb.shape[0])  # (k, B*T)
        ys = Y.reshape(k, self.batch_size, 1)  # (k, B, 1)
        for i, lr in enumerate(lrs):
            self(xs[i], ys[i], lr, mean_logp[i])
        return mean_logp.neg_()
