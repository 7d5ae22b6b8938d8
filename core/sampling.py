"""Names from the model: one character at a time until the boundary token, many names at once."""

from __future__ import annotations

import torch

from core.budget import eval_chunk_rows
from core.model import Params, forward_logits
from core.words import Vocab

MAX_NAME_LENGTH = 40  # an untrained model may never emit the end token


@torch.inference_mode()
def sample_names(params: Params, vocab: Vocab, block_size: int, n: int, generator: torch.Generator) -> list[str]:
    """n names, drawn in groups whose (group, vocab) probabilities stay under core.budget's
    EVAL_CHUNK_BYTES: one group (and the same draws) unless the vocabulary is huge."""
    (V, E), H = params.C.shape, params.W1.shape[1]
    group = eval_chunk_rows(block_size, E, H, V)
    return [name for lo in range(0, n, group) for name in _sample(params, vocab, block_size, min(group, n - lo), generator)]


def _sample(params: Params, vocab: Vocab, block_size: int, n: int, generator: torch.Generator) -> list[str]:
    context = torch.zeros(n, block_size, dtype=torch.long)  # (n, T) all start at the boundary
    out = torch.zeros(n, MAX_NAME_LENGTH, dtype=torch.long)  # (n, L) 0 pads after a name ends
    alive = torch.ones(n, dtype=torch.bool)
    for i in range(MAX_NAME_LENGTH):
        probs = torch.softmax(forward_logits(params, context), dim=1)  # (n, vocab)
        ix = torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (n,)
        ix = ix * alive
        out[:, i] = ix
        alive &= ix != 0
        if not alive.any():
            break
        context = torch.cat([context[:, 1:], ix[:, None]], dim=1)
    return [vocab.decode(row.tolist()) for row in out]
