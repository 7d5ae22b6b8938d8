import math

import pytest
import torch

from core.errors import ConfigError


def test_run_takes_steps_and_records_history(trainer):
    first = trainer.split_loss("train")
    result = trainer.run(500)
    assert result.steps == 500 and trainer.step == 500 and len(trainer.history) == 500
    assert trainer.split_loss("train") < first
    lr, loss = trainer.history.tensors()
    assert lr.tolist() == pytest.approx([0.1] * 500) and torch.isfinite(loss).all()


def test_decay_divides_the_learning_rate(trainer):
    trainer.set_lr_exponent(-0.5)
    before = trainer.lr
    trainer.decay(10)
    assert trainer.lr == pytest.approx(before / 10)
    trainer.decay(4)
    assert trainer.lr == pytest.approx(before / 40, rel=1e-5)
    for bad in (0, 1, -2, math.nan, math.inf):
        with pytest.raises(ConfigError):
            trainer.decay(bad)


def test_run_is_deterministic_for_a_seed(trainer, small_words):
    trainer.run(300)
    again = type(trainer)(trainer.dataset, trainer.model_config, trainer.train_config)
    again.run(300)
    for a, b in zip(trainer.params.tensors(), again.params.tensors()):
        assert torch.equal(a, b)


def test_cancel_stops_at_a_chunk_boundary(trainer):
    result = trainer.run(10_000, should_stop=lambda: True)
    assert result.stopped and trainer.step == trainer.train_config.chunk_steps == len(trainer.history)


def test_progress_can_change_the_lr_mid_run(trainer):
    def halve(progress):
        if progress.done == 100:
            trainer.set_lr_exponent(-2)

    trainer.run(200, on_progress=halve)
    lr, _ = trainer.history.tensors()
    assert lr[:100].tolist() == pytest.approx([0.1] * 100) and lr[100:].tolist() == pytest.approx([0.01] * 100)


def test_sweep_restores_parameters_and_generator_exactly(trainer):
    trainer.run(100)
    saved = trainer.params.clone()
    rng = trainer._batch_gen.get_state()
    result = trainer.sweep(-3, 0, 200)
    for a, b in zip(trainer.params.tensors(), saved.tensors()):
        assert torch.equal(a, b)
    assert torch.equal(trainer._batch_gen.get_state(), rng) and trainer.step == 100
    assert len(result.exponents) == len(result.losses) == len(result.smoothed) > 0
    assert result.suggested_exponent is not None and -3 <= result.suggested_exponent <= 0


def test_sweep_stops_when_the_loss_blows_up(trainer):
    trainer.run(300)
    result = trainer.sweep(-1, 3, 400)
    assert result.stopped_early and len(result.losses) < 400
    assert max(result.smoothed) <= 4 * min(result.smoothed)


def test_evaluate_records_points(trainer):
    trainer.run(100, eval_every=50)
    assert [p.step for p in trainer.evals] == [50, 100]
    assert all(p.train is not None and p.dev is not None for p in trainer.evals)


@pytest.mark.parametrize("bad", [0, -5, 10**12, 1.5, True])
def test_bad_run_lengths_are_refused(trainer, bad):
    with pytest.raises(ConfigError):
        trainer.run(bad)
    assert trainer.step == 0


def test_repeated_sweeps_average_over_different_minibatches(trainer):
    single = trainer.sweep(-3, 0, 200)
    repeated = trainer.sweep(-3, 0, 200, repeats=4)
    assert repeated.repeats == 4 and len(repeated.suggestions) == 4 and len(repeated.band) == len(repeated.smoothed)
    assert repeated.losses != single.losses and trainer.step == 0  # other minibatches; parameters restored
    again = trainer.sweep(-3, 0, 200, repeats=4)
    assert again.losses == repeated.losses and again.suggestions == repeated.suggestions  # deterministic
    assert all(b >= 0 for b in repeated.band) and max(repeated.band) > 0
