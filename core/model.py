"""The Bengio-2003 MLP of makemore part 2: embedding C, one tanh hidden layer, softmax output."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from core.config import ModelConfig

PARAM_NAMES = ("C", "W1", "b1", "W2", "b2")


@dataclass
class Params:
    C: torch.Tensor  # (vocab, emb_dim) character embeddings
    W1: torch.Tensor  # (block_size * emb_dim, hidden)
    b1: torch.Tensor  # (hidden,)
    W2: torch.Tensor  # (hidden, vocab)
    b2: torch.Tensor  # (vocab,)

    def tensors(self) -> list[torch.Tensor]:
        return [getattr(self, f.name) for f in fields(self)]

    def as_dict(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def clone(self) -> Params:
        return Params(*(t.clone() for t in self.tensors()))

    def copy_(self, other: Params) -> None:
        """Overwrite in place (buffers and views that point at these tensors stay valid)."""
        for mine, theirs in zip(self.tensors(), other.tensors()):
            mine.copy_(theirs)

    def count(self) -> int:
        return sum(t.numel() for t in self.tensors())

    def all_finite(self) -> bool:
        return all(bool(torch.isfinite(t).all()) for t in self.tensors())


TANH_GAIN = 5 / 3  # Kaiming's gain for tanh (torch.nn.init.calculate_gain), as in makemore part 3


def init_params(config: ModelConfig, vocab_size: int) -> Params:
    """randn draws C, W1, b1, W2, b2 in this order: bit-identical to the lecture for the same seed.

    init "scaled" (makemore part 3) scales the same draws: W1 by gain/sqrt(fan_in), so the hidden
    pre-activations start with std ~5/3 at any width instead of sqrt(fan_in) (a plain randn layer
    sits at tanh's flat ends, where its gradient vanishes, and more so the wider the context); b1
    and W2 by 0.01 and b2 to 0, so the first softmax is near uniform, not confidently wrong."""
    g = torch.Generator().manual_seed(config.seed)
    fan_in = config.block_size * config.emb_dim
    params = Params(
        C=torch.randn((vocab_size, config.emb_dim), generator=g),
        W1=torch.randn((fan_in, config.hidden), generator=g),
        b1=torch.randn(config.hidden, generator=g),
        W2=torch.randn((config.hidden, vocab_size), generator=g),
        b2=torch.randn(vocab_size, generator=g),
    )
    if config.init == "scaled":
        params.W1.mul_(TANH_GAIN / math.sqrt(fan_in))
        params.b1.mul_(0.01)
        params.W2.mul_(0.01)
        params.b2.zero_()
    return params


def forward_logits(params: Params, X: torch.Tensor) -> torch.Tensor:
    """(N, block_size) context ids -> (N, vocab) logits."""
    emb = params.C[X]  # (N, block_size, emb_dim)
    h = torch.tanh(emb.view(X.shape[0], -1) @ params.W1 + params.b1)  # (N, hidden)
    return h @ params.W2 + params.b2


def embedding_2d(C: torch.Tensor) -> tuple[torch.Tensor, str]:
    """(V, E) embeddings -> (V, 2) points to draw, and how they were made: the two dims
    themselves for E <= 2 (as the lecture plots them), else the first two principal components."""
    if C.shape[1] == 1:
        return torch.cat([C, torch.zeros_like(C)], 1), "dim 0"
    if C.shape[1] == 2:
        return C.clone(), "dims 0, 1"
    centered = C - C.mean(0)
    _, _, Vh = torch.linalg.svd(centered, full_matrices=False)  # rows of Vh: principal directions
    return centered @ Vh[:2].T, f"PCA of {C.shape[1]} dims"
