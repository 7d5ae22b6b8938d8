"""The real app, driven by Pilot on a small data file (App.run_test, no terminal)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
import torch
from textual.widgets import Label, ProgressBar

from app_helpers import app_settings, log_text, settle, start_long_run, trainer_of
from tui.app import CharMLPApp
from tui.keys import STEPS_PER_RUN, palette_rows
from tui.charts import TrainingChart
from tui.lr_charts import SweepChart


async def test_run_changes_step_and_loss(app):
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.status.step == 0 and app.status.last_loss is None
        assert not app.query_one(ProgressBar).visible  # no empty 0% bar before the first job
        await pilot.press("left_square_bracket", "left_square_bracket")  # 10k -> 100
        await pilot.press("space")
        await settle(pilot)
        assert app.query_one(ProgressBar).visible and app.query_one(ProgressBar).percentage == 1
        assert str(app.query_one("#rate", Label).render()) == "done: run 100"
        assert app.status.step == STEPS_PER_RUN[0] == 100
        assert app.status.last_loss is not None and app.status.last_eval.step == 100
        assert "run 100: step 100" in log_text(app)
        assert "┤" in str(app.query_one(TrainingChart).render())  # drawn, though the run took < 1 s


async def test_lr_change_and_decay_apply_mid_run(app):
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await start_long_run(pilot)
        await pilot.press("up", "up", "d")
        await asyncio.sleep(0.3)
        await pilot.press("escape")
        await settle(pilot)
        trainer = await trainer_of(app)
        lrs, _ = trainer.history.tensors()
        assert app.status.job is None and 0 < trainer.step < 1_000_000
        assert trainer.lr_exponent == pytest.approx(-1.8)
        assert lrs[0] == pytest.approx(0.1) and lrs[-1] == pytest.approx(10**-1.8, rel=1e-5)
        assert "stopped after" in log_text(app)
        # the bar stays where the run stopped, not at 100%
        assert str(app.query_one("#rate", Label).render()) == f"stopped: run 1000000 after {trainer.step:,}"
        assert app.query_one(ProgressBar).percentage == pytest.approx(trainer.step / 1e6)


async def test_sweep_draws_chart_and_adopt_takes_the_suggestion(app):
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.check_action("adopt", ()) is None  # greyed out before any sweep
        await pilot.press("s")
        await settle(pilot)
        suggestion = app.sweeps[-1].suggested_exponent
        chart = app.query_one(SweepChart)
        assert f"suggested {suggestion:g}" in str(chart.border_title)
        assert "┤" in str(chart.render())  # a plotext frame was drawn
        await pilot.press("left_square_bracket", "left_square_bracket", "a", "space")  # no wait between a and run
        await settle(pilot)
        assert app.status.lr_exponent == pytest.approx(suggestion)
        assert app.status.step == 100


async def test_evaluate_sample_save_and_load(app, tmp_path):
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("left_square_bracket", "left_square_bracket", "space")
        await settle(pilot)
        await pilot.press("e", "g")
        await settle(pilot)
        assert "eval at step 100: train" in log_text(app) and "sample: " in log_text(app)
        target = tmp_path / "model.pt"
        await pilot.press("ctrl+s")
        await pilot.pause()
        app.screen.query_one("Input").value = str(target)
        await pilot.press("enter")
        await settle(pilot)
        assert target.exists() and f"save: wrote {target}" in log_text(app)
        await pilot.press("r")
        await settle(pilot)
        assert app.status.step == 0
        await pilot.press("ctrl+o")
        await pilot.pause()
        app.screen.query_one("Input").value = str(target)
        await pilot.press("enter")
        await settle(pilot)
        assert app.status.step == 100


async def test_long_actions_are_greyed_out_while_running(app):
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await start_long_run(pilot)
        for action in ("run", "sweep", "reset", "load"):
            assert app.check_action(action, ()) is None
        assert app.check_action("stop", ()) is True and app.check_action("decay", ()) is True
        await pilot.press("escape")
        await settle(pilot)
        assert app.check_action("run", ()) is True and app.check_action("stop", ()) is None


async def test_quit_during_a_run_stops_the_worker(app):
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await start_long_run(pilot)
        await pilot.press("q")
        await pilot.pause()
    assert not app.worker.thread.is_alive()
    assert 0 < app.status.step < 1_000_000  # the last status the worker posted


async def test_help_screen_and_palette_list_the_keys(app):
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("f1")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        await pilot.pause()
        names = [name for name, _, _ in palette_rows()]
        assert "Decay: learning rate / 10 (mid-run too)" in names and "Load a checkpoint" in names


async def test_too_small_terminal_says_so(app):
    async with app.run_test(size=(30, 10)) as pilot:
        await pilot.pause()
        assert app.screen.has_class("too-small")
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        assert not app.screen.has_class("too-small")


async def test_background_compile_switches_the_engine(small_file):
    app = CharMLPApp(dataclasses.replace(app_settings(small_file), compile=True))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("left_square_bracket", "space")  # a 1000-step run while it compiles
        for _ in range(30_000):  # a cold compile takes ~15-20 s
            if app.status.engine == "compiled":
                break
            await asyncio.sleep(0.02)
        assert "compiled training steps ready" in log_text(app)
        await settle(pilot)
        await pilot.press("space")
        await settle(pilot)
        assert app.status.step == 2000 and app.status.engine == "compiled"
        assert "steps      compiled" in str(app.query_one("#state").render())


async def test_the_embedding_map_replaces_the_sweep_chart_and_back(app):
    from tui.charts import EmbeddingChart

    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("left_square_bracket", "space", "m")
        await settle(pilot)
        chart = app.query_one(EmbeddingChart)
        assert chart.display and not app.query_one(SweepChart).display
        assert "embeddings at step 1,000: dims 0, 1" in str(chart.border_title)
        drawn = str(chart.render())
        assert "┤" in drawn and all(c in drawn for c in ".aeiou")  # each character is a labelled point
        await pilot.press("m")
        await pilot.pause()
        assert app.query_one(SweepChart).display and not chart.display


def test_a_wide_embedding_is_drawn_through_its_principal_components():
    import torch

    from core.model import embedding_2d

    C = torch.randn(27, 10, generator=torch.Generator().manual_seed(0))
    points, kind = embedding_2d(C)
    assert points.shape == (27, 2) and kind == "PCA of 10 dims"
    centered = C - C.mean(0)
    assert points.var(0).sum() <= centered.var(0).sum() and points[:, 0].var() >= points[:, 1].var()


async def test_five_sweeps_show_a_band_and_earlier_sweeps_overlay(app):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        # run 100, so the next sweeps start elsewhere (not far: from a trained model the loss is flat)
        await pilot.press("left_square_bracket", "left_square_bracket", "space")
        await settle(pilot)
        await pilot.press("S")
        await settle(pilot)
        result = app.sweeps[-1]
        low, high = result.suggestion_spread
        assert result.repeats == 5 and len(result.band) == len(result.smoothed) and low <= high
        chart = app.query_one(SweepChart)
        assert f"at step 100: suggested {result.suggested_exponent:g} (mean of 5; each {low:g} to {high:g})" in (
            chart._title(200))  # the full title; the chart beside the grid's, 42 columns here, has the short one
        assert "± 1 std" in str(chart.border_subtitle) and "step 0" not in str(chart.border_subtitle)
        await pilot.press("o")
        await pilot.pause()
        assert "step 0" in str(chart.border_subtitle)
        assert f"(mean of 5; each alone: {low:g} to {high:g})" in log_text(app)


async def test_snapshots_are_taken_listed_and_restored(app):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("left_square_bracket", "space")  # run 1000
        await settle(pilot)
        await pilot.press("z")  # s1 at step 1000
        await settle(pilot)
        trainer = await trainer_of(app)
        kept = trainer.params.clone()
        await pilot.press("up", "space")  # another 1000 at a higher LR
        await settle(pilot)
        await pilot.press("z", "Z")  # s2 at step 2000, then the list
        await settle(pilot)
        assert type(app.screen).__name__ == "SnapshotsScreen"
        rows = [str(app.screen.query_one("OptionList").get_option_at_index(i).prompt) for i in range(2)]
        assert rows[0].startswith("s1") and "step      1,000" in rows[0] and "dev 2." in rows[0]
        await pilot.press("up", "enter")  # restore s1
        await settle(pilot)
        assert app.status.step == 1000 == len(trainer.history) and app.status.lr_exponent == pytest.approx(-1)
        for a, b in zip(trainer.params.tensors(), kept.tensors()):
            assert torch.equal(a, b)
        assert "restore s1: back to step 1000" in log_text(app)
