"""The lecture's own training step and loss, kept as yardsticks for exactness tests and benchmarks
(benchmarks/ imports this file too). Not part of the installed package."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from core.model import Params, forward_logits


def lecture_step(params: list[torch.Tensor], X: torch.Tensor, Y: torch.Tensor, ix: torch.Tensor, lr: float) -> float:
    """One step exactly as makemore part 2 writes it; params need requires_grad=True."""
    C, W1, b1, W2, b2 = params
    emb = C[X[ix]]  # (32, 3, 2)
    h = torch.tanh(emb.view(-1, W1.shape[0]) @ W1 + b1)  # (32, 100)
    logits = h @ W2 + b2  # (32, 27)
    loss = F.cross_entropy(logits, Y[ix])
    for p in params:
        p.grad = None
    loss.backward()
    for p in params:
        p.data += -lr * p.grad
    return loss.item()


def lecture_params(params: Params) -> list[torch.Tensor]:
    """Leaf copies with requires_grad, as the lecture's `parameters` list."""
    return [t.detach().clone().requires_grad_(True) for t in params.tensors()]


def naive_mean_loss(params: Params, X: torch.Tensor, Y: torch.Tensor) -> float:
    """The lecture's way: one forward pass over every example. The yardstick for core.evaluate.mean_loss."""
    return float(F.cross_entropy(forward_logits(params, X), Y))
