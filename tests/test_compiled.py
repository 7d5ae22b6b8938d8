"""The compiled training chunk (core.compiled): same math as the eager step, compiled in the
background, switched to at a chunk boundary, and a failure leaves the eager step in place."""

from __future__ import annotations

import pytest
import torch

import core.trainer as trainer_module
from core.config import DataConfig, ModelConfig, TrainConfig
from core.dataset import make_dataset
from core.trainer import Trainer

COMPILE_TIMEOUT_S = 600  # a cold compile takes ~15-20 s here; a loaded CI machine may be slower


def new_trainer(words) -> Trainer:
    return Trainer(make_dataset(words, 3, DataConfig()), ModelConfig(), TrainConfig())  # chunks of 200


@pytest.fixture(scope="module")
def compiled_trainer():
    from core.words import load_words

    trainer = new_trainer(load_words(None)[:300])
    lines: list[str] = []
    trainer.start_compiling(lines.append).join(COMPILE_TIMEOUT_S)
    assert lines and "ready" in lines[0], lines
    return trainer


def test_compiled_run_matches_the_eager_step(compiled_trainer, small_words):
    compiled_trainer.reset()
    assert compiled_trainer.compiled
    eager = new_trainer(small_words)
    assert not eager.compiled
    compiled_losses = [compiled_trainer.run(200).last_loss for _ in range(3)]
    eager_losses = [eager.run(200).last_loss for _ in range(3)]
    assert compiled_losses == pytest.approx(eager_losses, rel=1e-3)  # float noise over 600 steps
    for c, e in zip(compiled_trainer.params.tensors(), eager.params.tensors()):
        torch.testing.assert_close(c, e, rtol=1e-3, atol=1e-3)
    assert compiled_trainer.split_loss("dev") == pytest.approx(eager.split_loss("dev"), rel=1e-4)


def test_a_partial_chunk_runs_eager_and_the_step_count_is_right(compiled_trainer):
    compiled_trainer.reset()
    result = compiled_trainer.run(450)  # 200 + 200 compiled, 50 eager
    assert result.steps == compiled_trainer.step == len(compiled_trainer.history) == 450


def test_divergence_rolls_back_through_a_compiled_chunk(compiled_trainer):
    compiled_trainer.reset()
    compiled_trainer.run(400)
    healthy = compiled_trainer.split_loss("train")
    compiled_trainer.set_lr_exponent(3)
    result = compiled_trainer.run(2000)
    assert result.divergence is not None
    assert result.divergence.restored_step == compiled_trainer.step == len(compiled_trainer.history)
    assert compiled_trainer.params.all_finite()
    assert compiled_trainer.split_loss("train") < 1.5 * healthy


def test_a_failed_compile_leaves_the_eager_step(small_words, monkeypatch):
    def no_compiler(*_args):
        raise RuntimeError("InductorError: no working C++ compiler found\nmore detail")

    monkeypatch.setattr(trainer_module, "compile_chunk", no_compiler)
    trainer = new_trainer(small_words)
    lines: list[str] = []
    trainer.start_compiling(lines.append).join(10)
    assert lines == ["compiling the training steps failed (RuntimeError: InductorError: no working C++ compiler found); "
                     "staying on the eager path"]
    assert not trainer.compiled and trainer.run(400).steps == 400
