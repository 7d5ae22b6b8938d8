"""The app's new-run dialog (n) and runs screen (R), driven by Pilot on a small data file with the
run store in tmp_path (--runs-db)."""

from __future__ import annotations

import json

from textual.widgets import DataTable, Input, Label

from app_helpers import (app_settings, db, field, kept_app, log_text, settle, start_long_run, stored_names,  # noqa: F401 (fixtures)
                         text_of, trainer_of, until)
from core.config import ModelConfig
from tui.app import CharMLPApp
from tui.charts import TrainingChart
from tui.new_run import NewRunScreen
from tui.runs_screen import RunsScreen
from tui.screens import ConfirmScreen, NameScreen, PathScreen


async def run_100(pilot) -> None:
    await pilot.press("left_square_bracket", "left_square_bracket", "space")  # 10k -> 100, run
    await settle(pilot)
    pilot.app.steps_index = 2  # back to 10k for the next press


async def new_run(pilot, **fields: str) -> None:
    """n, fields typed over, enter; until the worker has taken it up."""
    await pilot.press("n")
    await pilot.pause()
    for key, value in fields.items():
        field(pilot.app, key).value = value
    await pilot.pause()
    await pilot.press("enter")
    await settle(pilot)


# ---- the new-run dialog --------------------------------------------------------------------------
async def test_new_run_dialog_prefilled_refuses_a_bad_value_and_starts_the_run(kept_app, db):
    app = kept_app
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await run_100(pilot)
        before = await trainer_of(app)
        seed, batch_seed = before.model_config.seed, before.batch_seed
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, NewRunScreen)
        assert {k: field(app, k).value for k in ("block", "emb", "hidden", "batch", "init-seed", "batch-seed")} == {
            "block": "3", "emb": "2", "hidden": "100", "batch": "32", "init-seed": str(seed),
            "batch-seed": str(batch_seed)}
        assert "parameters: 3,481" in text_of(app, "#params")
        field(app, "block").value = "0"
        await pilot.pause()
        assert "block size must be a whole number from 1 to 64, got 0" in text_of(app, "#error-block")
        await pilot.press("enter")  # refused: nothing sent
        await pilot.pause()
        assert isinstance(app.screen, NewRunScreen) and app.status.facts.run == "first"
        field(app, "block").value = "4"
        field(app, "emb").value = "10"
        field(app, "hidden").value = "200"
        field(app, "init-seed").value = "1"
        await pilot.pause()
        assert not app.screen.query_one("#error-block", Label).display
        n_params = ModelConfig(4, 10, 200).n_params(len(app.status.facts.vocab))
        assert f"parameters: {n_params:,}" in text_of(app, "#params")
        assert "rebuilds the dataset" in text_of(app, "#params")
        await pilot.press("enter")
        await settle(pilot)
        assert not isinstance(app.screen, NewRunScreen)
        trainer = await trainer_of(app)
        m = trainer.model_config
        assert (m.block_size, m.emb_dim, m.hidden, m.seed) == (4, 10, 200, 1) and trainer.dataset.block_size == 4
        assert trainer.step == 0 == app.status.step and trainer.n_params == n_params == app.status.facts.n_params
        assert trainer.batch_seed == batch_seed  # what was not changed stays
        assert app.status.facts.run == "new: kept from step 1"  # an untrained run is not kept
        assert "new: block 4, emb 10, hidden 200" in log_text(app)
        assert stored_names(db) == ["first"]
        await run_100(pilot)  # the rebuilt dataset trains and evaluates
        assert app.status.step == 100 and app.status.last_eval is not None
        assert app.status.facts.run not in ("first", "new: kept from step 1")
        assert set(stored_names(db)) == {"first", app.status.facts.run}


async def test_new_run_dialog_escape_changes_nothing(kept_app, db):
    app = kept_app
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await run_100(pilot)
        await pilot.press("n")
        await pilot.pause()
        field(app, "hidden").value = "7"
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, NewRunScreen)
        trainer = await trainer_of(app)
        assert trainer.model_config.hidden == 100 and app.status.facts.run == "first"
        assert stored_names(db) == ["first"]


async def test_new_run_key_is_greyed_out_while_a_job_runs(kept_app):
    app = kept_app
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.check_action("new_run", ()) is True
        await start_long_run(pilot)
        assert app.check_action("new_run", ()) is None
        await pilot.press("escape")
        await settle(pilot)


# ---- the runs screen -----------------------------------------------------------------------------
async def three_runs(pilot) -> None:
    """first (hidden 100) and second (hidden 50) trained 200 steps each, third (hidden 20) open at step 100."""
    await run_100(pilot)
    await run_100(pilot)
    await new_run(pilot, hidden="50")
    await run_100(pilot)
    await run_100(pilot)
    await new_run(pilot, hidden="20")
    await run_100(pilot)


async def open_runs_screen(pilot) -> RunsScreen:
    await pilot.press("R")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, RunsScreen)
    await until(pilot, lambda: screen.loaded)
    return screen


async def cursor_to(pilot, screen: RunsScreen, name: str) -> None:
    screen.query_one(DataTable).move_cursor(row=[r.name for r in screen.order].index(name))
    await pilot.pause()


async def test_runs_screen_lists_sorts_selects_and_overlays(kept_app):
    app = kept_app
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await three_runs(pilot)
        third = app.status.facts.run
        second = next(r for r in stored_names(app.settings.runs_db) if r not in ("first", third))
        screen = await open_runs_screen(pilot)
        assert [r.name for r in screen.order] == ["first", second, third]  # oldest first
        table = screen.query_one(DataTable)
        assert table.row_count == 3
        row = [str(c) for c in table.get_row("first")]
        assert row[:4] == ["   first", "3/2/100", "3,481", "200"] and row[4] != "—" and row[5] != "—"
        assert str(table.get_row(third)[0]).startswith("▶")  # the open run
        await pilot.press("s", "s", "s")  # by params
        assert screen.sort == 2 and [r.name for r in screen.order] == [third, second, "first"]
        assert "by params ▲" in text_of(app, "#runs-title")
        screen.on_data_table_header_selected(DataTable.HeaderSelected(table, table.ordered_columns[2].key, 2, "params"))
        await pilot.pause()
        assert screen.reverse and [r.name for r in screen.order] == ["first", second, third]
        await pilot.press("s")  # steps ▲: ties keep the store's order
        assert screen.sort == 3 and [r.name for r in screen.order][0] == third
        for name in ("first", second):
            await cursor_to(pilot, screen, name)
            await pilot.press("space")
        assert screen.selected == ["first", second] and str(table.get_row("first")[0]).startswith(" ✓")
        await pilot.press("c")
        chart = app.query_one(TrainingChart)
        await until(pilot, lambda: chart.overlay)
        assert chart.overlay_labels == ["first", second]
        assert "first" in str(chart.border_subtitle) and second in str(chart.border_subtitle)
        assert "┤" in str(chart.render())  # drawn
        # opened again, the overlaid runs are selected; closing with none selected clears the chart
        screen = await open_runs_screen(pilot)
        assert screen.selected == ["first", second]
        for name in ("first", second):
            await cursor_to(pilot, screen, name)
            await pilot.press("space")
        await pilot.press("escape")
        await pilot.pause()
        assert chart.overlay == [] and str(chart.border_subtitle).startswith("batch ")


async def test_runs_screen_renames_deletes_and_refuses_to_delete_the_open_run(kept_app, db):
    app = kept_app
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await run_100(pilot)
        await new_run(pilot, emb="3")
        await run_100(pilot)  # kept from its first step
        current = app.status.facts.run
        screen = await open_runs_screen(pilot)
        await cursor_to(pilot, screen, "first")
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, NameScreen)
        name_input = app.screen.query_one(Input)
        name_input.value = "a b"
        await pilot.pause()
        assert "a run name is 1 to 60 printable characters" in text_of(app, "#name-error")
        await pilot.press("enter")  # refused
        assert isinstance(app.screen, NameScreen)
        name_input.value = "[/]odd"  # markup would crash; as text it is a name like any other
        await pilot.press("enter")
        await until(pilot, lambda: "[/]odd" in [r.name for r in screen.runs])
        assert app.screen is screen and "renamed run 'first' to '[/]odd'" in text_of(app, "#runs-note")
        assert set(stored_names(db)) == {"[/]odd", current}
        await pilot.press("space", "c")  # its curves overlaid: the legend shows the name as text
        chart = app.query_one(TrainingChart)
        await until(pilot, lambda: chart.overlay)
        assert "[/]odd" in chart.border_subtitle
        screen = await open_runs_screen(pilot)
        await cursor_to(pilot, screen, current)
        await pilot.press("x")  # the open run: refused at once, no question
        await pilot.pause()
        assert app.screen is screen and "is the one open now" in text_of(app, "#runs-note")
        assert screen.query_one("#runs-note").has_class("error")
        await cursor_to(pilot, screen, "[/]odd")
        await pilot.press("delete")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await until(pilot, lambda: len(screen.runs) == 1)
        assert stored_names(db) == [current] and screen.selected == []
        assert "deleted run '[/]odd'" in log_text(app)


async def test_runs_screen_opens_a_run_at_its_step_and_exports(kept_app, db, tmp_path):
    app = kept_app
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await run_100(pilot)
        await run_100(pilot)
        first = await trainer_of(app)
        params_at_200 = first.params.W1.clone()
        await new_run(pilot, hidden="30", batch="16")
        await run_100(pilot)
        second = app.status.facts.run
        screen = await open_runs_screen(pilot)
        for name in ("first", second):
            await cursor_to(pilot, screen, name)
            await pilot.press("space")
        await pilot.press("E")
        await pilot.pause()
        assert isinstance(app.screen, PathScreen)
        target = tmp_path / "runs.json"
        app.screen.query_one(Input).value = str(target)
        await pilot.press("enter")
        await until(pilot, lambda: target.exists())
        exported = json.loads(target.read_text())
        assert [r["name"] for r in exported["runs"]] == ["first", second]
        assert exported["runs"][0]["steps"] == 200 and exported["runs"][0]["evals"][-1]["step"] == 200
        assert exported["runs"][1]["hidden"] == 30 and exported["runs"][1]["batch_size"] == 16
        await until(pilot, lambda: "export: wrote 2 runs" in text_of(app, "#runs-note"))
        await cursor_to(pilot, screen, "first")
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, RunsScreen))
        await settle(pilot)
        trainer = await trainer_of(app)
        assert app.status.facts.run == "first" and trainer.step == 200 == app.status.step
        assert trainer.model_config.hidden == 100 and trainer.train_config.batch_size == 32
        assert app.status.facts.batch_size == 32 and app.status.facts.n_params == 3481
        assert (trainer.params.W1 == params_at_200).all()
        assert "opened run 'first' at step 200" in log_text(app)
        await run_100(pilot)  # it trains on from there
        assert app.status.step == 300


async def test_opening_a_run_is_refused_while_a_job_runs(kept_app):
    app = kept_app
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await run_100(pilot)
        await new_run(pilot)
        await start_long_run(pilot)
        screen = await open_runs_screen(pilot)
        await cursor_to(pilot, screen, "first")
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen and "refused, a job is running" in text_of(app, "#runs-note")
        await pilot.press("escape")  # closes the screen; escape again stops the run
        await pilot.press("escape")
        await settle(pilot)
        assert app.status.facts.run != "first"


async def test_runs_screen_without_a_store_says_why(small_file):
    app = CharMLPApp(app_settings(small_file, "--no-runs"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = await open_runs_screen(pilot)
        assert screen.query_one(DataTable).row_count == 0
        assert "runs are not saved in this session (--no-runs)" in text_of(app, "#runs-note")
        await pilot.press("space", "enter", "r", "x", "E")  # nothing under the cursor: nothing happens
        assert app.screen is screen
        await pilot.press("c")
        assert not isinstance(app.screen, RunsScreen)
