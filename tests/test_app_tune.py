"""The app's search (T): its dialog, the worker running `tune`, and the trials screen, driven by Pilot on a
small data file with the run store (and the studies beside it) in tmp_path. Tiny trials: a few hundred steps."""

from __future__ import annotations

from textual.widgets import DataTable, Label

from app_helpers import (db, field, kept_app, log_text, settle, stored_names, text_of,  # noqa: F401 (fixtures)
                         trainer_of, until)
from core.search_space import DIMS
from tui.tune_chart import TrialsChart
from tui.tune_dialog import TuneDialog
from tui.tune_screen import TrialsScreen


async def start_search(pilot, **fields: str) -> TrialsScreen:
    """T, fields typed over, enter: the trials screen it opens."""
    await pilot.press("T")
    await pilot.pause()
    assert isinstance(pilot.app.screen, TuneDialog)
    for key, value in fields.items():
        field(pilot.app, key).value = value
    await pilot.pause()
    await pilot.press("enter")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, TrialsScreen)
    return screen


async def test_the_dialog_is_prefilled_and_a_bad_range_gets_one_line_and_starts_nothing(kept_app, db):
    app = kept_app
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.check_action("trials", ()) is None  # no search yet
        await pilot.press("T")
        await pilot.pause()
        assert isinstance(app.screen, TuneDialog)
        assert {d.key: field(app, d.key).value for d in DIMS} == {d.key: d.text for d in DIMS}
        assert (field(app, "trials").value, field(app, "steps").value, field(app, "study").value) == (
            "20", "50000", "search")
        assert "at most 20 trials × 50,000 steps = 1,000,000 steps" in text_of(app, "#tune-budget")
        field(app, "hidden").value = "300:50"
        await pilot.pause()
        assert field(app, "hidden").has_class("-invalid")
        assert text_of(app, "#tune-error") == "hidden: the low end 300 is above the high end 50"
        await pilot.press("enter")  # refused: the parser's line, nothing sent
        await pilot.pause()
        assert isinstance(app.screen, TuneDialog)
        line = text_of(app, "#tune-error")
        assert line == "hidden: the low end 300 is above the high end 50" and "\n" not in line
        field(app, "hidden").value = "50:600"
        field(app, "timeout").value = "0"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, TuneDialog)
        assert text_of(app, "#tune-error") == "timeout must be a number above 0 to 604800 seconds, got 0.0"
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, TuneDialog)
        assert app.tune_action is None and app.status.job is None and app.status.facts.run == "first: kept from step 1"
        assert "tune" not in log_text(app)
        assert not db.with_name("studies.db").exists()


async def test_a_tiny_study_runs_to_the_end_and_opens_its_best_run(kept_app, db):
    app = kept_app
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = await start_search(pilot, trials="3", steps="600", study="tiny")
        assert str(app.tune_action) == "tune trials=3 steps=600 study=tiny"
        await until(pilot, lambda: app.search_end is not None)
        await settle(pilot)
        table = screen.query_one(DataTable)
        assert table.row_count == 3
        view = app.search_end.view
        assert [t.number for t in view.trials] == [0, 1, 2]
        assert all(t.state in ("complete", "pruned") for t in view.trials)
        best = view.best
        assert best is not None and best.value is not None and best.run is not None
        assert text_of(app, "#trials-best").startswith(f"★ best: trial {best.number} · dev {best.value:.4f}")
        assert str(table.get_row(str(best.number))[0]) == f"★ {best.number}"  # marked in the table
        assert "lecture's configuration" in str(table.get_row("0")[-1])
        summary = app.search_end.line
        assert summary.startswith("tune tiny: ") and f"opened run {best.run}" in summary
        assert text_of(app, "#trials-note") == summary and summary in log_text(app)
        assert "ended" in text_of(app, "#trials-title")
        assert "┤" in str(screen.query_one(TrialsChart).render())  # drawn
        # the main screen now shows the best trial's run
        assert app.status.facts.run == best.run and app.status.job is None
        assert str(app.query_one("#rate", Label).render()) == "done: tune trials=3 steps=600 study=tiny"
        trainer = await trainer_of(app)
        params = dict(best.params)
        assert (trainer.model_config.block_size, trainer.model_config.hidden) == (params["block"], params["hidden"])
        assert set(stored_names(db)) == {f"tiny-{n}" for n in range(3)}  # "first" had no step: not kept
        await pilot.press("escape")  # ended: escape closes
        await pilot.pause()
        assert not isinstance(app.screen, TrialsScreen)
        assert app.check_action("trials", ()) is True
        await pilot.press("t")  # back, as it ended
        await pilot.pause()
        assert isinstance(app.screen, TrialsScreen) and app.screen.query_one(DataTable).row_count == 3
        assert text_of(app, "#trials-note") == summary
        other = next(t for t in view.trials if t.number != best.number)
        app.screen.query_one(DataTable).move_cursor(row=other.number)
        await pilot.pause()
        assert text_of(app, "#trials-detail").startswith(f"trial {other.number} {other.state}")
        await pilot.press("enter")  # opens that trial's run, and closes
        await settle(pilot)
        assert not isinstance(app.screen, TrialsScreen) and app.status.facts.run == other.run
        await pilot.press("T")  # the dialog again, prefilled with the last search
        await pilot.pause()
        assert isinstance(app.screen, TuneDialog)
        assert (field(app, "trials").value, field(app, "steps").value, field(app, "study").value) == (
            "3", "600", "tiny")
        await pilot.press("escape")
        await settle(pilot)


async def test_escape_stops_the_search_and_keeps_the_finished_trials(kept_app, db):
    app = kept_app
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = await start_search(pilot, trials="10000", steps="5000", study="long")
        finished = ("complete", "pruned")
        await until(pilot, lambda: app.search is not None and any(t.state in finished for t in app.search.trials)
                    and app.search.trials[-1].state == "running")
        assert app.tuning and app.check_action("tune", ()) is True
        await pilot.press("c")  # the search goes on beneath
        await pilot.pause()
        assert not isinstance(app.screen, TrialsScreen) and app.tuning
        await pilot.press("d")  # a trial trains as it was drawn
        await until(pilot, lambda: "decay: refused while the search runs" in log_text(app))
        await pilot.press("T")  # while a search runs: its trials screen
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TrialsScreen) and screen.running
        await pilot.press("escape")
        await until(pilot, lambda: app.search_end is not None)
        await settle(pilot)
        view = app.search_end.view
        assert "(stopped)" in app.search_end.line and not app.search_end.error
        states = [t.state for t in view.trials]
        assert len(states) < 10_000 and states[-1] == "failed"  # the running trial failed
        assert all(s in finished for s in states[:-1]) and len(states) >= 2
        assert screen.query_one(DataTable).row_count == len(states)
        kept = set(stored_names(db))
        assert {t.run for t in view.trials[:-1]} <= kept
        assert app.status.job is None and app.status.facts.run == view.best.run
        ran = len(states) - 1  # this search's finished trials (the study is new)
        assert str(app.query_one("#rate", Label).render()) == (
            f"stopped: tune trials=10000 steps=5000 study=long after {ran:,}")
        await pilot.press("escape")  # ended: closes
        await pilot.pause()
        assert not isinstance(app.screen, TrialsScreen)


def test_search_views_are_posted_at_a_bounded_rate_and_the_end_once(monkeypatch):
    from core.actions import Outcome
    from core.search_view import SearchView, TrialView
    from tui import tune_commands
    from tui.messages import SearchEnded, SearchUpdated

    now = [100.0]
    monkeypatch.setattr(tune_commands.time, "monotonic", lambda: now[0])
    posted: list = []
    posts = tune_commands.SearchPosts(posted.append)

    def view(*states: str, dev: int = 0) -> SearchView:
        trials = tuple(TrialView(n, s, (), ((dev, 3.0),), None, None, None, "") for n, s in enumerate(states))
        return SearchView("s", "sqlite:///x", trials, None)

    posts(view("running"))  # the first: at once
    for dev in range(1, 50):  # its rungs, 1 ms apart: none
        now[0] += 0.001
        posts(view("running", dev=dev))
    assert len(posted) == 1
    now[0] += 0.04
    posts(view("complete", "running"))  # a trial ended, but 0.089 s after the last post is too soon…
    assert len(posted) == 1
    now[0] += 0.05
    posts(view("complete", "running", dev=1))  # …from 0.1 s on it is posted, with what came since
    assert len(posted) == 2 and posted[-1].view.trials[0].state == "complete"
    now[0] += 0.2
    posts(view("complete", "running", dev=2))  # no change: at most every 0.25 s
    assert len(posted) == 2
    now[0] += 0.05
    posts(view("complete", "running", dev=3))
    assert len(posted) == 3 and all(isinstance(m, SearchUpdated) for m in posted)
    last = view("complete", "pruned")
    assert posts.end("tune", Outcome("tune s: done", search=last)) == ("tune", 2, 2)  # "done: tune"
    assert posts.end("tune", Outcome("tune s: stopped", search=last), stopped=True) == ("tune", 1, 2)
    assert posts.end("tune", None, "failed") == ("tune", 0, 0)
    assert len(posted) == 4 and isinstance(posted[-1], SearchEnded)  # once only
    assert (posted[-1].view, posted[-1].line, posted[-1].error) == (last, "tune s: done", False)
