"""The init option (core.ranges.INITS): the lecture's plain randn, or makemore part 3's scaled draws.

"scaled" is the same draws as "lecture" scaled (so a seed still names one model), it keeps the tanh
layer out of saturation however wide the context, and it travels with the model everywhere one
goes: checkpoints, the run store and --resume, the `new` verb, the flags a run keeps, the search."""

from __future__ import annotations

import math

import pytest
import torch

from core.config import DataConfig, ModelConfig, TrainConfig
from core.dataset import make_dataset
from core.errors import ConfigError
from core.model import TANH_GAIN, init_params
from core.search_space import LECTURE, Space
from core.store import RunStore
from core.trainer import Trainer
from core.verbs import execute, parse_script


def hidden(params, X: torch.Tensor) -> torch.Tensor:
    emb = params.C[X].view(X.shape[0], -1)
    return torch.tanh(emb @ params.W1 + params.b1)


def test_scaled_is_the_lectures_draws_scaled():
    lecture = init_params(ModelConfig(5, 4, 30, seed=7), 27)
    scaled = init_params(ModelConfig(5, 4, 30, seed=7, init="scaled"), 27)
    assert torch.equal(scaled.C, lecture.C)
    assert torch.equal(scaled.W1, lecture.W1 * (TANH_GAIN / math.sqrt(20)))
    assert torch.equal(scaled.b1, lecture.b1 * 0.01) and torch.equal(scaled.W2, lecture.W2 * 0.01)
    assert torch.equal(scaled.b2, torch.zeros(27))


@pytest.mark.parametrize(("block", "emb", "hidden_size"), [(3, 10, 200), (8, 24, 300)])
def test_scaled_keeps_tanh_out_of_saturation_and_the_first_loss_near_uniform(small_words, block, emb, hidden_size):
    data = make_dataset(small_words, block, DataConfig())
    X, Y = data.train.X[:2000], data.train.Y[:2000]
    V = data.vocab.size
    saturated, loss = {}, {}
    for init in ("lecture", "scaled"):
        params = init_params(ModelConfig(block, emb, hidden_size, init=init), V)
        h = hidden(params, X)
        saturated[init] = (h.abs() > 0.97).float().mean().item()
        loss[init] = torch.nn.functional.cross_entropy(h @ params.W2 + params.b2, Y).item()
    # scaled: pre-activations of std ~5/3 at any width (about a fifth past 0.97, as for N(0, 5/3));
    # the lecture's grow with the context's width (sqrt(fan-in)): 70 % saturated at fan-in 30, 89 % at 192
    assert saturated["lecture"] > 0.6 and saturated["scaled"] < 0.25, saturated
    assert loss["lecture"] > 10 and abs(loss["scaled"] - math.log(V)) < 0.05, loss


def test_an_init_no_one_draws_is_refused():
    with pytest.raises(ConfigError, match="init must be lecture or scaled, got 'kaiming'"):
        ModelConfig(init="kaiming")


def test_a_checkpoint_carries_it(small_words, tmp_path):
    data = make_dataset(small_words, 3, DataConfig())
    trainer = Trainer(data, ModelConfig(init="scaled"), TrainConfig(chunk_steps=50))
    trainer.run(100)
    path = trainer.save(tmp_path / "s.pt")
    other = Trainer(data)
    other.load(path)
    assert other.model_config.init == "scaled" and torch.equal(other.params.W1, trainer.params.W1)
    other.reset()  # new parameters the way the checkpoint's model draws them
    assert torch.equal(other.params.W1, init_params(ModelConfig(init="scaled"), data.vocab.size).W1)


def test_the_new_verb_takes_it_and_says_it(small_words):
    trainer = Trainer(make_dataset(small_words, 3, DataConfig()), ModelConfig(), TrainConfig(chunk_steps=50))
    [action] = parse_script("new init=scaled hidden=40")
    line = execute(trainer, action).summary
    assert "init scaled" in line and trainer.model_config.init == "scaled"
    assert torch.equal(trainer.params.W1, init_params(ModelConfig(hidden=40, init="scaled"), trainer.dataset.vocab.size).W1)
    [action] = parse_script("new hidden=50")  # left out: the current model's
    execute(trainer, action)
    assert trainer.model_config.init == "scaled"


def test_a_run_keeps_it_and_resumes_with_it(headless, tmp_path):
    db = tmp_path / "runs.db"
    code, out, err = headless("--runs-db", str(db), "--run", "s", "--init", "scaled", "--hidden", "30",
                              "--script", "run 100")
    assert code == 0, err
    store = RunStore(db)
    run = store.get("s")
    store.close()
    assert run.init == "scaled" and run.argv.count('"--init", "scaled"') == 1
    code, out, err = headless("--runs-db", str(db), "--resume", "s", "--script", "run 50", "--json")
    assert code == 0 and "resumed run 's' at step 100" in err, err
    code, out, err = headless("--runs-db", str(db), "--resume", "s", "--init", "lecture", "--script", "eval")
    assert code == 2 and "--init" in err and "\n" not in err.strip()


def test_a_bad_init_flag_is_one_line(headless):
    code, out, err = headless("--init", "xavier")
    assert code == 2 and "init must be lecture or scaled, got 'xavier'" in err and len(err.strip().splitlines()) == 1


def test_the_search_draws_it_as_a_category():
    space = Space()
    assert space.holds(LECTURE) and dict(zip((d.key for d in space.dims), (d.text for d in space.dims)))["init"] \
        == "lecture,scaled"
    fixed = space.with_ranges(["init=scaled"])
    assert not fixed.holds(LECTURE) and fixed.holds({**LECTURE, "init": "scaled"})
    assert Space().with_ranges(["init=Scaled, lecture"]).holds(LECTURE)
    for bad in ("init=xavier", "init=", "init=scaled,"):
        with pytest.raises(ConfigError, match="init takes lecture or scaled"):
            Space().with_ranges([bad])
