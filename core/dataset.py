"""Context windows (X, Y) for next-character prediction, built vectorised, and the 80/10/10 split."""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from core import budget
from core.config import DataConfig
from core.errors import DataError
from core.words import Vocab, words_digest

SPLIT_NAMES = ("train", "dev", "test")


@dataclass(frozen=True)
class Split:
    name: str
    X: torch.Tensor  # (N, block_size) int64 contexts
    Y: torch.Tensor  # (N,) int64 next-character ids

    def __len__(self) -> int:
        return self.Y.shape[0]

    def get_batch(self, n_steps: int, batch_size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Minibatches for n_steps steps, drawn uniformly with gen: X (n_steps, B, T), Y (n_steps, B).
        index_select, not X[ix]: indexing with a 2-D ix costs several times more."""
        ix = torch.randint(0, len(self), (n_steps, batch_size), generator=gen)  # (k, B)
        return torch.index_select(self.X, 0, ix.view(-1)).view(n_steps, batch_size, -1), self.Y[ix]


@dataclass(frozen=True)
class Dataset:
    vocab: Vocab
    block_size: int
    n_words: int
    train: Split
    dev: Split
    test: Split
    source: str = ""  # where the words came from, for display
    words_digest: str = ""  # core.words.words_digest of the words it was built from

    def split(self, name: str) -> Split:
        return {"train": self.train, "dev": self.dev, "test": self.test}[name]

    def sizes(self) -> dict[str, int]:
        return {name: len(self.split(name)) for name in SPLIT_NAMES}


def encode(words: list[str], vocab: Vocab) -> torch.Tensor:
    """All characters of all words, concatenated, as ids (vocab.chars[i] -> i + 1)."""
    text = "".join(words)
    codes = torch.frombuffer(bytearray(text.encode("utf-32-le")), dtype=torch.int32).long()
    table = torch.tensor([ord(c) for c in vocab.chars], dtype=torch.long)  # sorted code points
    ids = torch.searchsorted(table, codes)
    unknown = (ids >= len(table)) | (table[ids.clamp(max=len(table) - 1)] != codes)
    if unknown.any():
        bad = chr(int(codes[unknown.nonzero()[0, 0]]))
        raise ValueError(f"character {bad!r} is not in the vocabulary")
    return ids + 1


def build_examples(words: list[str], vocab: Vocab, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (context, next char) pair of every word, as the lecture's build_dataset, without a Python loop.

    Each word w becomes block_size boundary tokens, its ids, and one closing boundary;
    every window of block_size + 1 that ends on a character or the closing boundary is an example.
    """
    T = block_size
    if not words:
        return torch.empty(0, T, dtype=torch.long), torch.empty(0, dtype=torch.long)
    lengths = torch.tensor([len(w) for w in words], dtype=torch.long)  # (W,)
    seg_len = lengths + T + 1  # (W,) boundary padding + word + end token
    seg_start = torch.cumsum(seg_len, 0) - seg_len  # (W,) where each word's segment begins
    flat = torch.zeros(int(seg_len.sum()), dtype=torch.long)  # all segments, boundaries = 0
    word_of_char = torch.repeat_interleave(torch.arange(len(words)), lengths)  # (n_chars,)
    char_start = torch.cumsum(lengths, 0) - lengths  # (W,) first char of each word in the encoding
    pos_in_word = torch.arange(word_of_char.shape[0]) - char_start[word_of_char]
    flat[seg_start[word_of_char] + T + pos_in_word] = encode(words, vocab)
    windows = flat.unfold(0, T + 1, 1)  # (len - T, T + 1) views, no copy
    n_ex = lengths + 1  # examples per word
    word_of_ex = torch.repeat_interleave(torch.arange(len(words)), n_ex)
    ex_start = torch.cumsum(n_ex, 0) - n_ex
    starts = seg_start[word_of_ex] + torch.arange(word_of_ex.shape[0]) - ex_start[word_of_ex]
    examples = windows[starts]  # (N, T + 1)
    return examples[:, :T].contiguous(), examples[:, T].contiguous()


def split_words(words: list[str], fractions: tuple[float, float, float], seed: int = 42) -> list[list[str]]:
    """Shuffle a copy as random.seed(seed); random.shuffle(words), then cut at int(f*n) as the lecture."""
    shuffled = list(words)
    random.Random(seed).shuffle(shuffled)
    n = len(shuffled)
    n1 = int(fractions[0] * n)
    n2 = int((fractions[0] + fractions[1]) * n)
    return [shuffled[:n1], shuffled[n1:n2], shuffled[n2:]]


def make_dataset(words: list[str], block_size: int, config: DataConfig, source: str = "",
                 vocab: Vocab | None = None) -> Dataset:
    """Vocabulary from all words (unless given), then the three splits of context windows.

    Refused before anything is built (core.budget.MemoryBudgetError) if words x block would
    take more memory than the machine has."""
    budget.check(f"the dataset of {source or 'the words'}",
                 budget.dataset_needs(len(words), sum(map(len, words)), block_size, config.split))
    vocab = Vocab.from_words(words) if vocab is None else vocab
    parts = split_words(words, config.split, config.shuffle_seed)
    if not parts[0]:
        split = ",".join(f"{f:g}" for f in config.split)
        raise DataError(f"{source or 'the data'}: {len(words)} word(s) with split {split} leave the training split "
                        "empty; give more words, or train on all of them with --split 1,0,0")
    train, dev, test = (Split(name, *build_examples(part, vocab, block_size)) for name, part in zip(SPLIT_NAMES, parts))
    return Dataset(vocab, block_size, len(words), train, dev, test, source=source, words_digest=words_digest(words))
