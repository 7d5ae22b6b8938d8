"""The diagnostics screen (D), driven by Pilot on a small data file: its reports come from the worker
only while it is open, the training keys work from it, and it reads the ratios in words."""

from __future__ import annotations

import asyncio

from textual.widgets import Label, Static

from app_helpers import settle, start_long_run, trainer_of, until
from core.diagnostics import short_reading
from tui.diagnostics_chart import ActivationHistogram, RatioChart
from tui.diagnostics_screen import DiagnosticsScreen


def text(app, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def open_diagnostics(pilot) -> DiagnosticsScreen:
    await pilot.press("D")
    await until(pilot, lambda: isinstance(pilot.app.screen, DiagnosticsScreen) and pilot.app.screen.report is not None)
    return pilot.app.screen


async def test_the_screen_reads_the_ratios_and_follows_runs_and_decays(app):
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = await open_diagnostics(pilot)
        assert "step 0 · lr 10^-1.00" in str(screen.query_one("#diag-title", Label).render())
        assert "rule of thumb ~10^-3, makemore part 3" in text(app, "#diag-reading")
        assert "No measurement recorded yet" in str(screen.query_one(RatioChart).render())
        assert "█" in str(screen.query_one(ActivationHistogram).render())  # the init's h, now
        await pilot.press("left_square_bracket", "space")  # the main screen's keys work here: run 1,000 twice
        await settle(pilot)
        await pilot.press("space")
        await settle(pilot)
        await until(pilot, lambda: screen.report.step == 2000)
        assert screen.report.history.steps == [1000, 2000]
        assert "┤" in str(screen.query_one(RatioChart).render())  # drawn, with its axis
        await pilot.press("d")  # decay: the ratios fall by one decade at once
        await settle(pilot)
        await until(pilot, lambda: screen.report.current.lr_exponent == -2.0)
        before = screen.report.history.ratios("W1")[-1]
        assert screen.report.current.update_ratio_log10["W1"] == before - 1.0 or abs(
            screen.report.current.update_ratio_log10["W1"] - (before - 1.0)) < 1e-9
        assert "lr 10^-2.00" in str(screen.query_one("#diag-title", Label).render())
        assert "log10 update/data C " in text(app, "#diag-now")
        await pilot.press("D")
        await pilot.pause()
        assert not isinstance(app.screen, DiagnosticsScreen) and app.diagnostics is None
        steadied = screen.report.history.recent_ratios(-2.0)  # the status panel reads the same, in short
        assert f"updates    {short_reading(steadied)}" in str(app.query_one("#state").render())


async def test_reports_come_only_while_the_screen_is_open(app, monkeypatch):
    import tui.worker
    from tui.messages import DiagnosticsUpdated

    posted = []

    def counted(report):
        posted.append(report)
        return DiagnosticsUpdated(report)

    monkeypatch.setattr(tui.worker, "DiagnosticsUpdated", counted)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("space")
        await settle(pilot)
        assert posted == []  # closed: the worker measures nothing for it
        await open_diagnostics(pilot)
        opened = len(posted)
        assert opened >= 1
        await pilot.press("c")
        await settle(pilot)
        await pilot.press("space")
        await settle(pilot)
        assert len(posted) == opened
        trainer = await trainer_of(app)
        assert len(trainer.diagnostics) == 20  # the runs recorded them all along, shown or not


async def test_escape_stops_a_run_then_closes(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await start_long_run(pilot)
        screen = await open_diagnostics(pilot)
        await until(pilot, lambda: screen.report.job is not None)
        await pilot.press("escape")  # a run goes on: escape stops it, the screen stays
        await settle(pilot)
        assert app.screen is screen
        await pilot.press("escape")  # nothing runs: escape closes
        await pilot.pause()
        assert not isinstance(app.screen, DiagnosticsScreen)
        await asyncio.sleep(0.1)


async def test_the_main_charts_wait_under_the_screen_and_catch_up_when_it_closes(app):
    """Under D the training chart is not redrawn (its redraws would take the GIL from training for a
    chart no one sees); closing D draws what the runs did meanwhile."""
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await open_diagnostics(pilot)
        drawn = app.chart_shows
        await pilot.press("left_square_bracket", "space")  # run 1,000 under the screen
        await settle(pilot)
        await until(pilot, lambda: app.status.step == 1000 and app.status.job is None)
        assert app.chart_shows == drawn
        await pilot.press("D")
        await until(pilot, lambda: not app.diagnostics_open)
        await until(pilot, lambda: app.chart_shows == (1000, app.status.last_eval))
