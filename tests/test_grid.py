"""The parallel LR grid (core.grid): K models side by side, each exactly the single-model step."""

from __future__ import annotations

import json

import pytest
import torch

from app_helpers import app_settings, log_text, settle
from core.grid import BatchedSGD
from core.step import SGDStep
from tui.app import CharMLPApp
from tui.charts import SweepChart


def test_each_model_of_the_grid_is_the_single_model_step(trainer):
    """In float64, where float noise cannot hide a wrong gradient."""
    from core.model import Params

    start = Params(*(t.double() for t in trainer.params.tensors()))
    lrs = [0.01, 0.1, 0.5]
    batched = BatchedSGD(start, lrs, 32)
    g = torch.Generator().manual_seed(0)
    train = trainer.dataset.train
    ix = torch.randint(0, len(train), (50, 32), generator=g)
    grid_losses = batched.run(train.X[ix], train.Y[ix])  # (50, 3)
    for k, lr in enumerate(lrs):
        single = start.clone()
        losses = SGDStep(single, 32).run(train.X[ix], train.Y[ix], [lr] * 50)
        torch.testing.assert_close(grid_losses[:, k], losses, rtol=1e-10, atol=1e-10)
        for mine, theirs in zip((batched.C[k], batched.W1[k], batched.b1[k, 0], batched.W2[k], batched.b2[k, 0]),
                                single.tensors()):
            torch.testing.assert_close(mine, theirs, rtol=1e-9, atol=1e-10)


def test_the_grid_leaves_the_model_alone_and_finds_a_sane_rate(trainer):
    before = trainer.params.clone()
    result = trainer.grid(-3, 0, 16, 300)
    assert len(result.losses) == 16 and result.steps == 300 and trainer.step == 0
    for a, b in zip(trainer.params.tensors(), before.tensors()):
        assert torch.equal(a, b)
    assert -2 < result.best_exponent < 0  # far from both ends on this model
    assert result.losses[0] > min(result.losses) < result.losses[-1]


def test_headless_grid_in_the_json_summary(small_file, headless):
    code, out, err = headless("--data", str(small_file), "--script", "grid -3 0 8 100", "--json")
    assert code == 0, err
    grid = json.loads(out.strip().splitlines()[-1])["grid"]
    assert len(grid["exponents"]) == len(grid["losses"]) == 8 and grid["best_exponent"] in [round(e, 2) for e in grid["exponents"]]


async def test_G_draws_the_grid_and_a_adopts_its_best(small_file):
    app = CharMLPApp(app_settings(small_file))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("G")
        await settle(pilot)
        best = app.grid.best_exponent
        chart = app.query_one(SweepChart)
        assert f"grid at step 0: best {best:g}" in str(chart.border_title) and "●" in str(chart.render())
        assert f"best lr exponent {best:g}" in log_text(app)
        await pilot.press("a")
        await settle(pilot)
        assert app.status.lr_exponent == pytest.approx(best)


def test_the_sweep_chart_title_is_shortened_where_the_full_one_does_not_fit(trainer):
    chart = SweepChart()
    chart.result, chart.grid = trainer.sweep(-3, 0, 200), trainer.grid(-3, 0, 4, 20)
    wide, narrow = chart._title(200), chart._title(60)
    assert wide.startswith("LR sweep at step 0: ") and " · grid at step 0: best " in wide
    assert narrow.startswith("LR sweep @0: ") and " · grid @0: " in narrow and len(narrow) + 6 <= 60
