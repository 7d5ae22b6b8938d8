"""makemore part 3's statistics while training (core.diagnostics): equal to float64 autograd on the same
parameters and minibatch, one decade of ratio per decade of LR, the lecture's saturated init, and never
a change to the training: runs and replays are bit for bit the same with and without them."""

from __future__ import annotations

import json
import math

import pytest
import torch

from core.config import DataConfig, ModelConfig, TrainConfig
from core.dataset import make_dataset
from core.diagnose import measure, measuring_batch
from core.diagnostics import HISTOGRAM_BINS, STEADY, Diagnostics, reading, short_reading
from core.model import PARAM_NAMES, Params
from core.trainer import Trainer
from reference import reference_diagnostics


def _trainer(words, model: ModelConfig = ModelConfig(), every: int = 50) -> Trainer:
    t = Trainer(make_dataset(words, model.block_size, DataConfig()), model, TrainConfig(chunk_steps=50))
    t.diagnose_every = every
    return t


def _assert_matches(d: Diagnostics, ref: dict, rel: float, count_slack: int) -> None:
    for name, ratio, want in zip(PARAM_NAMES, d.update_ratio_log10.values(), ref["ratio"]):
        assert ratio == pytest.approx(want, abs=rel), name
    assert d.grad_std == pytest.approx(ref["grad_std"], rel=rel)
    assert d.param_std == pytest.approx(ref["param_std"], rel=rel)
    cells = sum(d.histogram)
    assert abs(d.saturation - ref["saturation"]) * cells <= count_slack
    assert abs(d.dead_units - ref["dead_units"]) <= count_slack
    assert d.preact_std == pytest.approx(ref["preact_std"], rel=rel)
    assert d.max_prob == pytest.approx(ref["max_prob"], rel=rel)
    assert len(d.histogram) == HISTOGRAM_BINS
    assert sum(abs(a - b) for a, b in zip(d.histogram, ref["histogram"])) <= 2 * count_slack


@pytest.mark.parametrize("init", ["lecture", "scaled"])
def test_statistics_equal_a_float64_reference_on_the_same_parameters_and_minibatch(small_words, init):
    t = _trainer(small_words, ModelConfig(init=init))
    t.run(300)
    X, Y = measuring_batch(t.dataset.train, 32, t.model_config.seed, t.step)
    # the same math in float64: equal to rounding
    exact = Params(*(p.double() for p in t.params.tensors()))
    _assert_matches(measure(exact, X, Y, t.step, t.lr_exponent), reference_diagnostics(t.params, X, Y, t.lr), 1e-9, 0)
    # the trainer's own, float32: within float32 rounding (a value at a threshold may land on either side)
    _assert_matches(t.diagnose(), reference_diagnostics(t.params, X, Y, t.lr), 1e-4, 1)


def test_the_update_ratio_moves_one_decade_per_decade_of_lr(trainer):
    trainer.run(200)
    before = trainer.params.clone()
    measured = {}
    for exponent in (-3.0, -2.0, -1.0, 0.0):
        trainer.set_lr_exponent(exponent)
        measured[exponent] = trainer.diagnose().update_ratio_log10
    for name in PARAM_NAMES:
        steps = [measured[e + 1][name] - measured[e][name] for e in (-3.0, -2.0, -1.0)]
        assert steps == pytest.approx([1.0] * 3, abs=1e-12), name
    assert all(torch.equal(a, b) for a, b in zip(before.tensors(), trainer.params.tensors()))


@pytest.mark.parametrize("emb, hidden", [(2, 100), (10, 200)])
def test_the_lectures_init_saturates_and_matches_the_reference(lecture_names, emb, hidden):
    from core.words import load_words

    words = load_words(lecture_names)
    stats = {}
    for init in ("lecture", "scaled"):
        t = _trainer(words, ModelConfig(3, emb, hidden, init=init))
        X, Y = measuring_batch(t.dataset.train, 32, t.model_config.seed, 0)
        d, ref = t.diagnose(), reference_diagnostics(t.params, X, Y, t.lr)
        assert abs(d.saturation - ref["saturation"]) * 32 * hidden <= 1
        assert d.dead_units == ref["dead_units"]
        stats[init] = d
    lecture = stats["lecture"]
    # plain randn: the histogram piled up at ±1, each end bin fuller than any bin between
    assert min(lecture.histogram[0], lecture.histogram[-1]) > max(lecture.histogram[1:-1])
    assert lecture.saturation > 0.4 and stats["scaled"].saturation < lecture.saturation
    assert lecture.max_prob > 0.5 > stats["scaled"].max_prob  # confidently wrong, against near uniform


def test_runs_are_bit_identical_with_and_without_diagnostics(small_words):
    def train(every: int) -> Trainer:
        t = _trainer(small_words, every=every)
        t.run(700, on_progress=lambda p: t.set_lr_exponent(-1.3) if p.done == 300 else None)
        t.diagnose()  # on demand, too: nothing the training uses moves
        t.run(300)
        return t

    without, with_ = train(0), train(50)
    assert len(without.diagnostics) == 0 and len(with_.diagnostics) == 20
    assert all(torch.equal(a, b) for a, b in zip(without.params.tensors(), with_.params.tensors()))
    assert all(torch.equal(a, b) for a, b in zip(without.history.tensors(), with_.history.tensors()))
    assert torch.equal(without.batch_rng_state(), with_.batch_rng_state())


def test_replays_are_bit_identical_with_and_without_diag(headless, small_file):
    def summary(script: str) -> tuple[dict, str]:
        code, out, _ = headless("--data", str(small_file), "--no-runs", "--script", script, "--json")
        assert code == 0
        return json.loads(out.strip().splitlines()[-1]), out

    plain, _ = summary("run 500; lr -1.5; run 500; sample 5")
    diagnosed, out = summary("run 500; diag; lr -1.5; diag; run 500; diag; sample 5")
    assert diagnosed["loss"] == plain["loss"] and diagnosed["samples"] == plain["samples"]
    assert diagnosed["diagnostics"] == plain["diagnostics"]
    assert "diag at step 500 (lr 10^-1.50)" in out
    d = plain["diagnostics"]
    assert set(d["update_ratio_log10"]) == set(PARAM_NAMES) and d["step"] == 1000
    assert 0 <= d["saturation"] <= 1 and 0 <= d["dead_units"] <= 100 and 0 < d["max_prob"] <= 1


def test_the_history_follows_undo_rollback_and_restore(trainer):
    trainer.diagnose_every = 100
    trainer.run(400)
    trainer.take_snapshot("s")
    trainer.run(400)
    assert [s for s in trainer.diagnostics.view().steps] == [100, 200, 300, 400, 500, 600, 700, 800]
    trainer.undo_last_run()
    assert trainer.diagnostics.view().steps == [100, 200, 300, 400]
    trainer.run(200)
    trainer.restore_snapshot("s")
    assert trainer.diagnostics.view().steps == [100, 200, 300, 400]
    trainer.reset()
    assert len(trainer.diagnostics) == 0 and trainer.diagnostics.latest is None


def test_undo_and_restore_put_back_the_measurements_of_their_own_path(trainer):
    """A snapshot keeps the measurements it was taken with: steps undone and trained again on
    another path do not leak into it."""
    trainer.diagnose_every = 100
    trainer.run(400)
    trainer.run(400)
    trainer.take_snapshot("s")
    at_s = trainer.diagnostics.view().rows.clone()
    trainer.undo_last_run()
    trainer.set_lr_exponent(-2.0)
    trainer.run(400)  # steps 500 to 800 again, at another LR
    assert trainer.diagnostics.view().steps == [100 * k for k in range(1, 9)]
    assert not torch.equal(trainer.diagnostics.view().rows, at_s)
    trainer.restore_snapshot("s")
    assert torch.equal(trainer.diagnostics.view().rows, at_s)
    trainer.run(100)
    assert torch.equal(trainer.diagnostics.view().rows[:8], at_s)  # appending never writes into the snapshot's
    assert torch.equal(trainer.snapshots[0].state.diagnostics, at_s)


def test_a_view_never_changes_afterwards(trainer):
    trainer.diagnose_every = 50
    trainer.run(100)
    view = trainer.diagnostics.view()
    rows = view.rows.clone()
    trainer.run(5000)  # grows past the first storage
    trainer.undo_last_run()
    assert torch.equal(view.rows, rows) and len(view) == 2
    assert view.ratios("W1") == pytest.approx([trainer.diagnostics.view().ratios("W1")[i] for i in (0, 1)])


def test_the_reading_is_a_rule_of_thumb_over_the_weights():
    assert reading({"C": -2.8, "W1": -2.6, "b1": 0.0, "W2": -3.1, "b2": -1.0}).startswith(
        "updates ≈ 10^-2.8 of the weights: near the guide")
    assert reading({"C": -2.8, "W1": -2.6, "b1": -3, "W2": -1.4, "b2": -3}).startswith(
        "W2 updates 10^-1.4: LR likely too high for it")
    assert reading({"C": -4.5, "W1": -3.2, "b1": -3, "W2": -3.0, "b2": -3}).startswith("C updates 10^-4.5: it likely learns slowly")
    assert "rule of thumb" in reading({"C": -3.0, "W1": -3.0, "W2": -3.0})
    assert reading({"C": math.inf, "W1": math.nan, "W2": -math.inf}).startswith("no update ratio yet")


def test_the_short_reading_says_the_same_in_a_status_row():
    cases = {"10^-2.8: near guide": {"C": -2.8, "W1": -2.6, "W2": -3.1}, "W2 10^-1.4: LR high?": {"C": -2.8, "W1": -2.6, "W2": -1.4},
             "C 10^-4.5: slow?": {"C": -4.5, "W1": -3.2, "W2": -3.0}, "—": {"C": math.inf}}
    for said, ratios in cases.items():
        assert short_reading(ratios) == said and len(said) <= 21
    assert len(short_reading({"W1": -12.345, "C": -12.3, "W2": -12.3})) <= 21


def test_the_steadied_ratios_are_the_median_of_the_last_measurements_moved_to_the_lr_now(trainer):
    trainer.diagnose_every = 50
    assert trainer.diagnostics.view().recent_ratios(-1.0) == {}
    trainer.run(300)
    trainer.decay(10.0)  # one decade down: the last measurements were made at the old LR
    trainer.run(100)
    view = trainer.diagnostics.view()
    lr = trainer.lr_exponent
    for name in PARAM_NAMES:
        moved = [r - e + lr for r, e in zip(view.ratios(name)[-STEADY:], view.rows[-STEADY:, 1].tolist())]
        assert view.recent_ratios(lr)[name] == pytest.approx(sorted(moved)[STEADY // 2])
        assert view.recent_ratios(lr + 1)[name] == pytest.approx(view.recent_ratios(lr)[name] + 1)  # one decade


def test_weights_that_are_not_numbers_are_measured_without_an_error(trainer):
    trainer.params.W2.fill_(math.inf)
    d = trainer.diagnose()
    assert not math.isfinite(d.max_prob) or d.max_prob <= 1
    assert isinstance(d.line(), str)
