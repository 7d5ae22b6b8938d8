"""The parallel LR grid (core.grid): K models side by side, each exactly the single-model step."""

from __future__ import annotations

import json

import pytest
import torch

from app_helpers import app_settings, log_text, settle
from core.grid import PROBE_MODELS, RECHECK_EVERY, BatchedSGD, ThreadChoice
from core.step import SGDStep
from tui.app import CharMLPApp
from tui.lr_charts import GridChart, SweepChart


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


def plans(choice: ThreadChoice, per_model_step: dict[int, float], chunks: int) -> list[tuple[int, int]]:
    """The plan of each chunk when one thread and the pool take these times a model-step."""
    made = []
    for _ in range(chunks):
        threads, alone = choice.plan()
        if alone:
            choice.timed(1, per_model_step[1])
        choice.timed(threads, per_model_step[threads])
        choice.chunks += 1
        made.append((threads, alone))
    return made


def test_the_native_grids_threads_are_chosen_by_their_times():
    pool, alone = (2, PROBE_MODELS), (1, 0)
    # a quiet machine: the pool from the first chunk, one thread timed on a few models, again at each recheck
    quiet = plans(ThreadChoice(2, 32), {1: 2.0, 2: 1.0}, RECHECK_EVERY + 1)
    assert quiet[0] == quiet[RECHECK_EVERY] == pool and set(quiet[1:RECHECK_EVERY]) == {(2, 0)}
    # the other core busy: one thread from the second chunk, the pool timed again at each recheck
    busy = plans(ThreadChoice(2, 32), {1: 1.0, 2: 1.5}, RECHECK_EVERY + 2)
    assert busy[0] == pool and set(busy[1:RECHECK_EVERY]) == {alone} and busy[RECHECK_EVERY] == (2, 0)
    # too few models to leave some alone: a whole chunk on one thread, then the pool's
    assert plans(ThreadChoice(2, 2 * PROBE_MODELS - 1), {1: 2.0, 2: 1.0}, 3) == [alone, (2, 0), (2, 0)]
    assert plans(ThreadChoice(1, 32), {1: 1.0}, 2) == [alone, alone]


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
        chart = app.query_one(GridChart)
        assert f"grid at step 0: best {best:g}" in chart._title(200) and "●" in str(chart.render())
        assert chart.display and "grid @0" in str(chart.border_title)  # shown, its title fitted to 42 columns
        assert f"best lr exponent {best:g}" in log_text(app)
        await pilot.press("a")
        await settle(pilot)
        assert app.status.lr_exponent == pytest.approx(best)


def test_the_lr_charts_titles_are_shortened_where_the_full_ones_do_not_fit(trainer):
    sweep, grid = SweepChart(), GridChart()
    sweep.result, grid.grid = trainer.sweep(-3, 0, 200), trainer.grid(-3, 0, 4, 20)
    assert sweep._title(200).startswith("LR sweep at step 0: ") and sweep._title(200).endswith(" · loss vs log10 lr")
    assert sweep._title(30).startswith("LR sweep @0: ") and len(sweep._title(30)) + 6 <= 30
    best = grid.grid.best_exponent
    assert grid._title(200).startswith(f"LR grid at step 0: best {best:g}, loss ")
    assert grid._title(40).startswith(f"LR grid @0: best {best:g} (") and len(grid._title(40)) + 6 <= 40
