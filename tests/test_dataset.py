import dataclasses
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.config import DataConfig
from core.dataset import build_examples, make_dataset, split_words
from core.errors import ConfigError
from core.words import Vocab, load_words


def lecture_build(words, stoi, block_size):
    """build_dataset as the lecture writes it (a Python loop per example)."""
    X, Y = [], []
    for w in words:
        context = [0] * block_size
        for ch in w + ".":
            ix = stoi[ch]
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]
    return torch.tensor(X, dtype=torch.long).view(-1, block_size), torch.tensor(Y, dtype=torch.long)


@pytest.mark.parametrize("block_size", [1, 3, 8])
def test_examples_equal_the_lecture_loop(small_words, block_size):
    vocab = Vocab.from_words(small_words)
    stoi = {c: i + 1 for i, c in enumerate(vocab.chars)} | {".": 0}
    X, Y = build_examples(small_words, vocab, block_size)
    Xr, Yr = lecture_build(small_words, stoi, block_size)
    assert torch.equal(X, Xr) and torch.equal(Y, Yr)


def test_sizes_on_a_small_file():
    words = ["ab", "c", "defg"]
    X, Y = build_examples(words, Vocab.from_words(words), 3)
    assert X.shape == (3 + 2 + 5, 3)  # len(word) + 1 examples per word
    assert Y.tolist() == [1, 2, 0, 3, 0, 4, 5, 6, 7, 0]


def test_split_arithmetic_follows_python_random_seed_42():
    words = [f"w{i}" for i in range(1001)]
    train, dev, test = split_words(words, (0.8, 0.1, 0.1))
    expected = list(words)
    random.seed(42)
    random.shuffle(expected)
    assert (len(train), len(dev), len(test)) == (800, 100, 101)  # int(0.8*1001), int(0.9*1001)
    assert train + dev + test == expected


def test_whole_dataset_split(small_words):
    ds = make_dataset(small_words, 3, DataConfig(split=(1.0, 0.0, 0.0)))
    assert len(ds.dev) == 0 and len(ds.test) == 0
    assert len(ds.train) == sum(len(w) + 1 for w in small_words)


def test_lecture_numbers_on_makemore_names(lecture_names):
    ds = make_dataset(load_words(lecture_names), 3, DataConfig())
    assert ds.n_words == 32_033 and ds.vocab.size == 27
    assert ds.sizes() == {"train": 182_625, "dev": 22_655, "test": 22_866}


@pytest.mark.parametrize("split", [(0.5, 0.5), (0.5, 0.6, -0.1), (0.0, 0.5, 0.5), (0.8, 0.1, 0.2)])
def test_bad_splits_are_refused(split):
    with pytest.raises(ConfigError):
        DataConfig(split=split)


def test_non_ascii_words(tmp_path):
    path = tmp_path / "w.txt"
    path.write_text("zoé\nstraße\n😀x\n", encoding="utf-8")
    words = load_words(path)
    ds = make_dataset(words, 3, DataConfig(split=(1, 0, 0)))
    assert ds.vocab.size == len(set("zoéstraße😀x")) + 1
    assert len(ds.train) == sum(len(w) + 1 for w in words)


PEAK = r"""
import random, sys
from core.config import DataConfig
from core.dataset import make_dataset
from core.words import load_words

def status(key):
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith(key))

real = load_words(None)
rng = random.Random(0)
words = [a[: len(a) // 2 + 1] + b[len(b) // 2 :] for a, b in ((rng.choice(real), rng.choice(real)) for _ in range(300_000))]
make_dataset(real[:300], 3, DataConfig())  # torch's code paged in
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # VmHWM starts again from VmRSS
before = status("VmRSS")
ds = make_dataset(words, 3, DataConfig())
print((status("VmHWM") - before) / sum(ds.sizes().values()))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="measures the peak through Linux's /proc")
def test_the_build_peaks_at_under_48_bytes_an_example():
    """32 bytes an example at rest (block 3: X and Y int64); the build once peaked at ~100."""
    out = subprocess.run([sys.executable, "-c", PEAK], cwd=Path(__file__).resolve().parent.parent, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) <= 48, out.stdout


@pytest.mark.parametrize("block_size", [1, 3, 8])
def test_minibatches_from_the_packed_rows_are_those_of_x_and_y(small_words, block_size):
    """get_batch gathers from the training split's byte rows: the same minibatches, drawn with the
    same generator, as indexing X and Y with its randint (what replays and saved runs rely on)."""
    ds = make_dataset(small_words, block_size, DataConfig())
    assert ds.train.rows is not None and ds.train.rows.dtype == torch.uint8 and ds.dev.rows is None
    unpacked = dataclasses.replace(ds.train, rows=None)
    for k, B in [(1, 32), (7, 5), (200, 32)]:
        X, Y = ds.train.get_batch(k, B, torch.Generator().manual_seed(k))
        ix = torch.randint(0, len(ds.train), (k, B), generator=torch.Generator().manual_seed(k))
        assert X.dtype == Y.dtype == torch.int64 and X.is_contiguous() and Y.is_contiguous()
        assert torch.equal(X, ds.train.X[ix]) and torch.equal(Y, ds.train.Y[ix])
        X2, Y2 = unpacked.get_batch(k, B, torch.Generator().manual_seed(k))
        assert torch.equal(X, X2) and torch.equal(Y, Y2)


def test_ids_past_a_byte_are_not_packed():
    words = ["".join(chr(0x400 + (i + j) % 300) for j in range(4)) for i in range(300)]
    ds = make_dataset(words, 3, DataConfig())
    assert ds.vocab.size > 256 and ds.train.rows is None
    X, Y = ds.train.get_batch(3, 4, torch.Generator().manual_seed(0))
    ix = torch.randint(0, len(ds.train), (3, 4), generator=torch.Generator().manual_seed(0))
    assert torch.equal(X, ds.train.X[ix]) and torch.equal(Y, ds.train.Y[ix])


def test_a_training_split_past_the_packing_bound_is_not_packed(small_words, monkeypatch):
    from core import budget

    monkeypatch.setattr(budget, "PACKED_ROWS_MAX_BYTES", 1000)
    assert make_dataset(small_words, 3, DataConfig()).train.rows is None
