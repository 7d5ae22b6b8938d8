"""Exact full-split loss, computed once per distinct context instead of once per example.

With block 3, names.txt's 228k examples hold only ~5.7k distinct contexts: the mean loss is
sum over (context, next char) pairs of count * -log p(next | context), divided by N. When
contexts rarely repeat this degrades gracefully to one forward pass per example, in chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.model import Params, forward_logits

_CHUNK_ROWS = 65536  # bounds the memory of one forward pass


@dataclass(frozen=True)
class ContextCounts:
    contexts: torch.Tensor  # (U, block_size) distinct contexts
    pair_context: torch.Tensor  # (P,) row of `contexts` for each distinct (context, next) pair
    pair_target: torch.Tensor  # (P,) the next character of each pair
    pair_count: torch.Tensor  # (P,) float64 occurrences of each pair
    n_examples: int


def count_contexts(X: torch.Tensor, Y: torch.Tensor, vocab_size: int) -> ContextCounts:
    """Group the examples of one split by context, then by next character. Done once per dataset."""
    T = X.shape[1]
    if vocab_size ** T < 2**62:  # each context fits one int64 key: unique on keys is much faster
        radix = vocab_size ** torch.arange(T - 1, -1, -1)  # (T,)
        keys, inverse = torch.unique(X @ radix, return_inverse=True)
        contexts = (keys[:, None] // radix) % vocab_size  # (U, T)
    else:
        contexts, inverse = torch.unique(X, dim=0, return_inverse=True)
    pairs, counts = torch.unique(inverse * vocab_size + Y, return_counts=True)
    return ContextCounts(contexts, pairs // vocab_size, pairs % vocab_size, counts.double(), X.shape[0])


@torch.inference_mode()
def mean_loss(params: Params, counts: ContextCounts) -> float | None:
    """Mean cross-entropy over the split the counts came from; None for an empty split."""
    if counts.n_examples == 0:
        return None
    total = torch.zeros((), dtype=torch.float64)
    U = counts.contexts.shape[0]
    for lo in range(0, U, _CHUNK_ROWS):
        logp = torch.log_softmax(forward_logits(params, counts.contexts[lo : lo + _CHUNK_ROWS]), dim=1)
        in_chunk = (counts.pair_context >= lo) & (counts.pair_context < lo + _CHUNK_ROWS)
        picked = logp[counts.pair_context[in_chunk] - lo, counts.pair_target[in_chunk]]  # (P_chunk,)
        total -= (picked.double() * counts.pair_count[in_chunk]).sum()
    return float(total) / counts.n_examples


@torch.inference_mode()
def bigram_loss(train_X: torch.Tensor, train_Y: torch.Tensor, X: torch.Tensor, Y: torch.Tensor, vocab_size: int) -> float | None:
    """Loss of the counting bigram model of makemore part 1 (add-one smoothing), fitted on train.

    The baseline any MLP should beat: uses only the last character of each context.
    """
    if Y.numel() == 0:
        return None
    prev_train, prev = train_X[:, -1], X[:, -1]
    counts = torch.ones(vocab_size * vocab_size, dtype=torch.float64)
    counts.index_add_(0, prev_train * vocab_size + train_Y, torch.ones(train_Y.shape[0], dtype=torch.float64))
    logp = (counts.view(vocab_size, vocab_size) / counts.view(vocab_size, vocab_size).sum(1, keepdim=True)).log()
    return float(-logp[prev, Y].mean())
