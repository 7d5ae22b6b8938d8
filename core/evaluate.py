"""Exact full-split loss, computed once per distinct context instead of once per example.

With block 3, names.txt's 228k examples hold only ~5.7k distinct contexts: the mean loss is
sum over (context, next char) pairs of count * -log p(next | context), divided by N. When
contexts rarely repeat this degrades gracefully to one forward pass per example, in chunks
sized by memory (core.budget.eval_chunk_rows), not by a row count: a vocabulary of tens of
thousands of characters makes each row's logits that many floats.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.budget import eval_chunk_rows
from core.model import Params, forward_logits

KEY_LIMIT = 2**62  # keys below this fit an int64 with room to spare


@dataclass(frozen=True)
class ContextCounts:
    contexts: torch.Tensor  # (U, block_size) distinct contexts
    pair_context: torch.Tensor  # (P,) row of `contexts` for each distinct (context, next) pair
    pair_target: torch.Tensor  # (P,) the next character of each pair
    pair_count: torch.Tensor  # (P,) float64 occurrences of each pair
    n_examples: int


def count_contexts(X: torch.Tensor, Y: torch.Tensor, vocab_size: int) -> ContextCounts:
    """Group the examples of one split by context, then by next character. Done once per dataset.
    Memory: a few (N,) int64 vectors at a time (core.budget.evaluation_needs)."""
    T = X.shape[1]
    if vocab_size**T < KEY_LIMIT:  # each context fits one int64 key: unique on keys is much faster
        radix = vocab_size ** torch.arange(T - 1, -1, -1)  # (T,)
        keys, inverse = torch.unique(X @ radix, return_inverse=True)
        contexts = (keys[:, None] // radix) % vocab_size  # (U, T)
    else:
        inverse = _context_ranks(X, vocab_size)
        U = int(inverse.max()) + 1 if inverse.numel() else 0
        first = torch.empty(U, dtype=torch.long).scatter_(0, inverse, torch.arange(X.shape[0]))  # (U,) a row of each
        contexts = X[first]  # (U, T)
    pairs, counts = torch.unique(inverse * vocab_size + Y, return_counts=True)
    return ContextCounts(contexts, pairs // vocab_size, pairs % vocab_size, counts.double(), X.shape[0])


def _context_ranks(X: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """(N, T) contexts whose radix key overflows int64 (a long block, a large vocabulary) -> (N,)
    the rank of each row's context in lexicographic order, as torch.unique(X, dim=0) orders them,
    without sorting rows: the columns are folded in a few at a time, each group's key being the
    rank so far times V**g plus the group's own radix key (rank < N keeps it under KEY_LIMIT)."""
    N, T = X.shape
    rank, n_ranks, t = torch.zeros(N, dtype=torch.long), 1, 0
    if N == 0:
        return rank
    while t < T:
        g = 1
        while t + g < T and n_ranks * vocab_size ** (g + 1) < KEY_LIMIT:
            g += 1
        radix = vocab_size ** torch.arange(g - 1, -1, -1)  # (g,)
        keys = rank * vocab_size**g + X[:, t : t + g] @ radix  # (N,)
        distinct, rank = torch.unique(keys, return_inverse=True)
        n_ranks, t = distinct.numel(), t + g
    return rank


@torch.inference_mode()
def mean_loss(params: Params, counts: ContextCounts) -> float | None:
    """Mean cross-entropy over the split the counts came from; None for an empty split."""
    if counts.n_examples == 0:
        return None
    total = torch.zeros((), dtype=torch.float64)
    U = counts.contexts.shape[0]
    (V, E), (TE, H) = params.C.shape, params.W1.shape
    rows = eval_chunk_rows(TE // E, E, H, V)
    # pair_context is sorted (the pairs come from a sorted unique): each chunk's pairs are one slice
    cuts = torch.searchsorted(counts.pair_context, torch.arange(0, U + rows, rows)).tolist()
    for i, lo in enumerate(range(0, U, rows)):
        logp = torch.log_softmax(forward_logits(params, counts.contexts[lo : lo + rows]), dim=1)  # (rows, V)
        a, b = cuts[i], cuts[i + 1]
        picked = logp[counts.pair_context[a:b] - lo, counts.pair_target[a:b]]  # (P_chunk,)
        total -= (picked.double() * counts.pair_count[a:b]).sum()
    return float(total) / counts.n_examples


@torch.inference_mode()
def bigram_loss(train_X: torch.Tensor, train_Y: torch.Tensor, X: torch.Tensor, Y: torch.Tensor, vocab_size: int) -> float | None:
    """Loss of the counting bigram model of makemore part 1 (add-one smoothing), fitted on train.

    The baseline any MLP should beat: uses only the last character of each context. Counted
    sparsely, (N,) keys rather than a (V, V) table: 30,000 characters would make that 7 GB.
    """
    if Y.numel() == 0:
        return None
    V = vocab_size
    seen, seen_count = torch.unique(train_X[:, -1] * V + train_Y, return_counts=True)  # (P,) sorted pairs
    row_total = torch.bincount(train_X[:, -1], minlength=V).double() + V  # (V,) with one per pair added
    wanted = X[:, -1] * V + Y  # (N,)
    pair = torch.ones(wanted.shape, dtype=torch.float64)  # (N,) add-one smoothed count of each pair
    if seen.numel():
        at = torch.searchsorted(seen, wanted).clamp_(max=seen.numel() - 1)
        pair += torch.where(seen[at] == wanted, seen_count[at], 0)
    return float(-(pair / row_total[X[:, -1]]).log().mean())
