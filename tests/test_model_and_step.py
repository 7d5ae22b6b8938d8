import pytest
import torch

from core.config import ModelConfig
from core.model import Params, init_params
from reference import lecture_params, lecture_step
import core.step as step_module
from core.step import SGDStep


def test_init_is_bit_identical_to_the_lecture():
    g = torch.Generator().manual_seed(2147483647)
    C = torch.randn((27, 2), generator=g)
    W1 = torch.randn((6, 100), generator=g)
    b1 = torch.randn(100, generator=g)
    W2 = torch.randn((100, 27), generator=g)
    b2 = torch.randn(27, generator=g)
    params = init_params(ModelConfig(), 27)
    for mine, theirs in zip(params.tensors(), [C, W1, b1, W2, b2]):
        assert torch.equal(mine, theirs)


@pytest.mark.parametrize(("emb", "hidden", "count"), [(2, 100, 3_481), (10, 200, 11_897)])
def test_parameter_counts_of_the_lecture(emb, hidden, count):
    config = ModelConfig(emb_dim=emb, hidden=hidden)
    assert init_params(config, 27).count() == config.n_params(27) == count


@pytest.mark.parametrize("bias_token_max_macs", [0, step_module.BIAS_TOKEN_MAX_MACS])  # both ways to add b1
@pytest.mark.parametrize(("block", "emb", "hidden", "batch", "vocab"), [(3, 2, 100, 32, 27), (5, 4, 7, 9, 11), (1, 1, 1, 1, 2)])
def test_hand_written_step_equals_autograd_in_float64(block, emb, hidden, batch, vocab, bias_token_max_macs, monkeypatch):
    monkeypatch.setattr(step_module, "BIAS_TOKEN_MAX_MACS", bias_token_max_macs)
    config = ModelConfig(block_size=block, emb_dim=emb, hidden=hidden, seed=7)
    p32 = init_params(config, vocab)
    params = Params(*(t.double() for t in p32.tensors()))
    reference = lecture_params(params)
    step = SGDStep(params, batch)
    assert step.bias_token == (bias_token_max_macs > 0)
    g = torch.Generator().manual_seed(0)
    X = torch.randint(0, vocab, (500, block), generator=g)
    Y = torch.randint(0, vocab, (500,), generator=g)
    for lr in [0.1, 0.05, 0.3, 0.01, 0.2]:
        ix = torch.randint(0, 500, (batch,), generator=g)
        expected = lecture_step(reference, X, Y, ix, lr)
        loss = step.run(X[ix][None], Y[ix][None], [lr])
        assert loss.item() == pytest.approx(expected, rel=1e-12)
        for mine, theirs in zip(params.tensors(), reference):
            torch.testing.assert_close(mine, theirs.detach(), rtol=1e-10, atol=1e-12)
