import pytest
import torch

from core.config import DataConfig, ModelConfig
from core.dataset import make_dataset
from core.evaluate import count_contexts, mean_loss
from reference import naive_mean_loss
from core.model import init_params


@pytest.mark.parametrize("block", [3, 8, 30])  # 30: 27**30 overflows int64 keys, the row-unique path
def test_counted_loss_equals_naive_loss(small_words, block):
    ds = make_dataset(small_words, block, DataConfig())
    params = init_params(ModelConfig(block_size=block), ds.vocab.size)
    for split in (ds.train, ds.dev):
        counts = count_contexts(split.X, split.Y, ds.vocab.size)
        assert mean_loss(params, counts) == pytest.approx(naive_mean_loss(params, split.X, split.Y), abs=1e-5)


def test_empty_split_has_no_loss():
    counts = count_contexts(torch.empty(0, 3, dtype=torch.long), torch.empty(0, dtype=torch.long), 27)
    assert mean_loss(init_params(ModelConfig(), 27), counts) is None


def test_samples_are_names_from_the_vocabulary(trainer):
    trainer.run(300)
    names = trainer.sample(20)
    assert len(names) == 20
    assert all(set(n) <= set(trainer.dataset.vocab.chars) and len(n) <= 40 for n in names)
