"""The charts' pure parts: round ticks and their labels (tui.ticks), the centred mean
(core.smoothing), where a sweep's loss starts to rise (core.sweep.rise_edge)."""

from __future__ import annotations

import math
import random

import pytest

from core.smoothing import centred_mean
from core.sweep import rise_edge
from tui.ticks import log_value_ticks, nice_step, nice_ticks, step_ticks, value_ticks


@pytest.mark.parametrize("span, most, step", [(1.0, 5, 0.2), (3.0, 6, 0.5), (8400, 5, 2000), (7, 1, 10), (0.4, 4, 0.1),
                                              (200_000, 4, 50_000), (1e-3, 2, 5e-4)])
def test_a_step_is_1_2_or_5_times_a_power_of_ten(span, most, step):
    assert nice_step(span, most) == pytest.approx(step)


@pytest.mark.parametrize("low, high, most", [(540, 8400, 5), (-2.93, 0.07, 6), (2.21, 2.63, 4), (-1.03, 2.41, 5),
                                             (0, 1e6, 8), (-0.001, 0.001, 3)])
def test_ticks_are_evenly_spaced_round_and_inside(low, high, most):
    ticks, step = nice_ticks(low, high, most)
    assert 1 <= len(ticks) <= most + 1 and all(low - 1e-12 <= t <= high + 1e-12 for t in ticks)
    assert all(b - a == pytest.approx(step) for a, b in zip(ticks, ticks[1:]))
    assert all(abs(t / step - round(t / step)) < 1e-9 for t in ticks)
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert round(mantissa, 9) in (1, 2, 5)


def test_step_axes_read_as_people_say_steps():
    assert step_ticks(540, 8400, 5)[1] == ["2k", "4k", "6k", "8k"]
    assert step_ticks(0, 200_000, 4)[1] == ["0", "50k", "100k", "150k", "200k"]
    assert step_ticks(0, 3_000_000, 6)[1] == ["0", "500k", "1M", "1.5M", "2M", "2.5M", "3M"]
    assert step_ticks(0, 10, 20)[0] == [float(n) for n in range(11)]  # never half a step


def test_value_axes_have_the_decimals_their_step_needs_and_no_minus_zero():
    assert value_ticks(-3, 0, 6)[1] == ["-3.0", "-2.5", "-2.0", "-1.5", "-1.0", "-0.5", "0.0"]
    assert value_ticks(-1.03, 2.41, 4)[1] == ["-1", "0", "1", "2"]
    assert value_ticks(-0.3, 0.3, 6)[1] == ["-0.3", "-0.2", "-0.1", "0.0", "0.1", "0.2", "0.3"]


def test_a_log_loss_axis_is_labelled_in_losses():
    positions, labels = log_value_ticks(math.log10(2.0), math.log10(22.0), 4)
    assert labels == ["2", "5", "10", "20"] and positions == pytest.approx([math.log10(v) for v in (2, 5, 10, 20)])
    positions, labels = log_value_ticks(math.log10(2.12), math.log10(2.65), 6)
    assert labels == ["2.2", "2.3", "2.4", "2.5", "2.6"]  # narrow: linear steps of the loss
    assert log_value_ticks(math.log10(2.0), math.log10(3000.0), 2)[1] == ["10", "100", "1000"]  # too many 1-2-5s


def test_the_centred_mean_does_not_lag():
    step = [1.0] * 50 + [3.0] * 50
    smooth = centred_mean(step, 5)
    assert smooth[:45] == [1.0] * 45 and smooth[55:] == [3.0] * 45 and smooth[49] < 2 < smooth[50]
    assert centred_mean([1.0, 2.0, 6.0], 1) == [1.5, 3.0, 4.0] and centred_mean([2.0], 3) == [2.0]
    assert centred_mean([1.0, 5.0], 0) == [1.0, 5.0]


def flat_then_rising(rise_at: float, noise: float, seed: int = 0) -> tuple[list[float], list[float]]:
    """A sweep from a trained model: loss ~2.3 up to `rise_at`, then climbing fast."""
    rng = random.Random(seed)
    exponents = [-3 + 3 * i / 999 for i in range(1000)]
    losses = [2.3 * (1 + rng.gauss(0, noise)) + (max(0.0, e - rise_at) * 8) ** 2 for e in exponents]
    return exponents, losses


def test_a_sweep_from_a_trained_model_reports_where_its_loss_rises():
    exponents, losses = flat_then_rising(-0.6, 0.1)
    edge = rise_edge(exponents, losses)
    assert edge is not None and -0.6 <= edge <= -0.4  # 10% above the flat part: shortly past the bend
    for seed in range(5):
        assert rise_edge(*flat_then_rising(-1.2, 0.1, seed)) == pytest.approx(-1.1, abs=0.15)


def test_no_rise_no_edge():
    exponents = [-3 + 3 * i / 99 for i in range(100)]
    assert rise_edge(exponents, [20 - i / 10 for i in range(100)]) is None  # falls all the way
    assert rise_edge([0.0], [2.0]) is None
