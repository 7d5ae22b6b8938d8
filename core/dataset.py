"""Context windows (X, Y) for next-character prediction, built vectorised, and the 80/10/10 split."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

import torch

from core import budget
from core.config import DataConfig
from core.errors import DataError
from core.words import Vocab, words_digest

SPLIT_NAMES = ("train", "dev", "test")
BYTE_TOKENS = 256  # vocabularies up to this many tokens have ids that fit in a byte


@dataclass(frozen=True)
class Split:
    name: str
    X: torch.Tensor  # (N, block_size) int64 contexts
    Y: torch.Tensor  # (N,) int64 next-character ids
    # (N, block_size + 1) uint8: each example's X and Y in one row, where the ids fit in a byte
    # (pack); None otherwise. What minibatches are read from (Minibatches.tensors, and the compiled
    # steps themselves): 4 bytes an example at block 3 stay in the cache where X and Y's 32 do not
    # (1.2 -> 0.45 µs a step through the compiled steps' runs)
    rows: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.Y.shape[0]

    def draw(self, n_steps: int, batch_size: int, gen: torch.Generator) -> Minibatches:
        """Minibatches for n_steps steps, drawn uniformly with gen: which examples, (n_steps, B)."""
        return Minibatches(self, torch.randint(0, len(self), (n_steps, batch_size), generator=gen))

    def get_batch(self, n_steps: int, batch_size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The examples of draw(n_steps, batch_size, gen): X (n_steps, B, T), Y (n_steps, B)."""
        return self.draw(n_steps, batch_size, gen).tensors()


@dataclass(frozen=True)
class Minibatches:
    """Minibatches of a split, as which of its examples each holds: ix (k, B). The compiled steps
    read the examples from the split's packed rows themselves; tensors() makes X and Y."""

    split: Split
    ix: torch.Tensor  # (k, B) int64

    def head(self, n_steps: int) -> Minibatches:
        """The first n_steps minibatches."""
        return Minibatches(self.split, self.ix[:n_steps])

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """X (k, B, T), Y (k, B), contiguous int64, the same from the split's rows as from its X and Y.
        index_select, not X[ix]: indexing with a 2-D ix costs several times more."""
        (k, B), s, ix = self.ix.shape, self.split, self.ix.reshape(-1)
        T = s.X.shape[1]  # named, not -1: k may be 0 (a replay of no steps)
        if s.rows is None:
            return torch.index_select(s.X, 0, ix).view(k, B, T), torch.index_select(s.Y, 0, ix).view(k, B)
        rows = torch.index_select(s.rows, 0, ix)  # (k B, T + 1)
        return (rows[:, :-1].to(torch.int64, memory_format=torch.contiguous_format).view(k, B, T),
                rows[:, -1].to(torch.int64).view(k, B))


def pack(X: torch.Tensor, Y: torch.Tensor, vocab_size: int) -> torch.Tensor | None:
    """X (N, T) and Y (N,) side by side as uint8 (N, T + 1) if every id fits in a byte and the
    table in budget.PACKED_ROWS_MAX_BYTES, else None. Written into place: no int64 copy on the way."""
    if vocab_size > BYTE_TOKENS or budget.packed_rows_bytes(X.shape[0], X.shape[1]) == 0:
        return None
    rows = torch.empty(X.shape[0], X.shape[1] + 1, dtype=torch.uint8)
    rows[:, :-1], rows[:, -1] = X, Y
    return rows


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


def segments(words: list[str], vocab: Vocab, block_size: int) -> torch.Tensor:
    """Every word as block_size boundary tokens, its ids (vocab.chars[i] -> i + 1) and one closing
    boundary, all concatenated: uint8 where the ids fit, else int32. Made as text: the words joined
    by boundary marks (a character none of them has), mapped to ids by one str.translate and
    encoded one byte (or four) a character, so the build holds no int64 vector per character."""
    known = set(vocab.chars)
    mark = next(c for c in map(chr, range(0x110000)) if c not in known)  # stands for the boundary until mapped
    text = mark * block_size + (mark * (block_size + 1)).join(words) + mark
    unknown = text.translate(dict.fromkeys(map(ord, known | {mark})))
    if unknown:
        raise ValueError(f"character {unknown[0]!r} is not in the vocabulary")
    ids = text.translate({ord(c): i + 1 for i, c in enumerate(vocab.chars)} | {ord(mark): 0})
    del text
    if vocab.size <= BYTE_TOKENS:
        return torch.frombuffer(bytearray(ids, "latin-1"), dtype=torch.uint8)
    return torch.frombuffer(bytearray(ids, "utf-32-le"), dtype=torch.int32)


def build_examples(words: list[str], vocab: Vocab, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (context, next char) pair of every word, as the lecture's build_dataset, without a Python loop.

    Each word w becomes block_size boundary tokens, its ids, and one closing boundary (segments);
    every window of block_size + 1 that ends on a character or the closing boundary is an example.
    X and Y are made at their final size and filled a chunk of words at a time: the peak is them
    (8(T+1) bytes an example) and little more (core.budget.dataset_build_bytes; it was ~100 bytes
    an example at block 3 when every step made int64 vectors as long as the examples).
    """
    T = block_size
    lengths = torch.tensor([len(w) for w in words], dtype=torch.long)  # (W,)
    n_ex = lengths + 1  # examples per word
    N = int(n_ex.sum())
    X, Y = torch.empty(N, T, dtype=torch.long), torch.empty(N, dtype=torch.long)
    if not words:
        return X, Y
    windows = segments(words, vocab, T).unfold(0, T + 1, 1)  # (len - T, T + 1) views, no copy
    seg_start = torch.cumsum(lengths + T + 1, 0) - (lengths + T + 1)  # (W,) where each word's segment begins
    done, chunk = 0, budget.DATASET_CHUNK_WORDS
    for lo in range(0, len(words), chunk):
        n = n_ex[lo : lo + chunk]
        k = int(n.sum())
        first_ex = torch.cumsum(n, 0) - n  # each word's first example, counted from this chunk's first
        starts = torch.repeat_interleave(seg_start[lo : lo + chunk] - first_ex, n) + torch.arange(k)
        examples = windows[starts]  # (k, T + 1)
        X[done : done + k] = examples[:, :T]
        Y[done : done + k] = examples[:, T]
        done += k
    return X, Y


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
    train = dataclasses.replace(train, rows=pack(train.X, train.Y, vocab.size))  # minibatches come from train only
    return Dataset(vocab, block_size, len(words), train, dev, test, source=source, words_digest=words_digest(words))
