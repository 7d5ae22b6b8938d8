"""The charts' column (tui.charts_panel) and the status panel's extras, in the real app: one chart at a
time under tabs in a small terminal, the chart of what just ran brought into sight; all of them at
once on a big screen, with the samples, snapshots and the store's other runs in the left column."""

from __future__ import annotations

from textual.widgets import Tabs

from app_helpers import db, kept_app, settle  # noqa: F401 (fixtures)
from tui.charts import EmbeddingChart, TrainingChart
from tui.charts_panel import ChartsPanel
from tui.lr_charts import GridChart, SweepChart

CHARTS = {"training": TrainingChart, "sweep": SweepChart, "grid": GridChart, "embedding": EmbeddingChart}


def in_sight(app) -> set[str]:
    return {name for name, kind in CHARTS.items() if app.query_one(kind).display}


async def test_a_small_terminal_shows_one_chart_at_a_time_under_tabs(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        panel = app.query_one(ChartsPanel)
        assert not panel.wide and app.query_one(Tabs).display and in_sight(app) == {"training"}
        await pilot.press("s")
        await settle(pilot)
        assert in_sight(app) == {"sweep"} and app.query_one(Tabs).active == "tab-sweep"  # what just ran
        assert "┤" in str(app.query_one(SweepChart).render())
        await pilot.press("left_square_bracket", "left_square_bracket", "space")  # a run: its chart
        await settle(pilot)
        assert in_sight(app) == {"training"} and "┤" in str(app.query_one(TrainingChart).render())
        for key, name in (("3", "grid"), ("4", "embedding"), ("2", "sweep"), ("1", "training")):
            await pilot.press(key)
            await pilot.pause()
            assert in_sight(app) == {name} and app.query_one(Tabs).active == f"tab-{name}"
        await pilot.press("m")  # the map, and back to the LR chart shown last
        await pilot.pause()
        assert in_sight(app) == {"embedding"} and "┤" in str(app.query_one(EmbeddingChart).render())
        await pilot.press("m")
        await pilot.pause()
        assert in_sight(app) == {"sweep"}
        await pilot.click("#tab-grid")
        await pilot.pause()
        assert in_sight(app) == {"grid"} and "No grid yet" in str(app.query_one(GridChart).render())
        await pilot.click("#tab-embedding")
        await pilot.pause()
        assert "embeddings at step 100" in str(app.query_one(EmbeddingChart).border_title)


async def test_a_big_screen_shows_the_charts_together_and_more_of_the_status(app):
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert app.query_one(ChartsPanel).wide and not app.query_one(Tabs).display
        assert in_sight(app) == {"training", "sweep", "grid"}
        await pilot.press("left_square_bracket", "left_square_bracket", "space")
        await settle(pilot)
        await pilot.press("g", "z")
        await settle(pilot)
        more = str(app.query_one("#more").render())
        assert "samples at step 100" in more and "snapshots (Z)" in more and "s1     step 100" in more
        await pilot.press("m")
        await pilot.pause()
        assert in_sight(app) == {"training", "embedding"}
        await pilot.resize_terminal(80, 24)  # the same state, one chart at a time: the map stays in sight
        await pilot.pause()
        assert in_sight(app) == {"embedding"} and not app.query_one("#more").display
        await pilot.resize_terminal(160, 48)
        await pilot.pause()
        assert in_sight(app) == {"training", "embedding"}


async def test_a_tall_status_panel_lists_the_other_runs_of_the_store(kept_app):
    app = kept_app
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("left_square_bracket", "left_square_bracket", "space")  # 100 steps of "first"
        await settle(pilot)
        assert "recent runs" not in str(app.query_one("#more").render())  # the open run is the panel's own
        await pilot.press("n")
        await pilot.pause()
        await pilot.press("enter")  # a new run with the same settings: "first" is now another run
        await settle(pilot)
        await pilot.pause()
        more = str(app.query_one("#more").render())
        listed = more.split("recent runs (R)\n")[1].split("\n\n")[0].splitlines()
        assert len(listed) == 1 and listed[0].split()[:3] == ["first", "100", "dev"]  # not the open one
        await pilot.resize_terminal(80, 24)  # too short for it: the state rows keep their place
        await pilot.pause()
        assert not app.query_one("#more").display and "updates" in str(app.query_one("#state").render())
