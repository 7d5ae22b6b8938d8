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


def reference_diagnostics(params: Params, X: torch.Tensor, Y: torch.Tensor, lr: float) -> dict:
    """makemore part 3's statistics as the lecture computes them, by autograd in float64: the
    update-to-data ratio ((lr * p.grad).std() / p.data.std()).log10() of each tensor, the saturation
    (h.abs() > 0.97).float().mean(), the dead units (h.abs() > 0.99 for every example), and the rest.
    The yardstick for core.diagnostics.measure (which uses the population std: the ratio is the same)."""
    tensors = [t.detach().double().requires_grad_(True) for t in params.tensors()]
    C, W1, b1, W2, b2 = tensors
    hpreact = C[X].view(X.shape[0], -1) @ W1 + b1
    h = torch.tanh(hpreact)
    logits = h @ W2 + b2
    F.cross_entropy(logits, Y).backward()
    with torch.no_grad():
        return {
            "ratio": [float(((lr * p.grad).std() / p.data.std()).log10()) for p in tensors],
            "grad_std": [float(p.grad.std(correction=0)) for p in tensors],
            "param_std": [float(p.data.std(correction=0)) for p in tensors],
            "saturation": float((h.abs() > 0.97).double().mean()),
            "dead_units": int((h.abs() > 0.99).all(0).sum()),
            "preact_std": float(hpreact.std(correction=0)),
            "max_prob": float(F.softmax(logits, 1).max(1).values.mean()),
            "histogram": [int(c) for c in torch.histc(h, 40, -1.0, 1.0).tolist()],
        }
