"""Snapshot tests (pytest-textual-snapshot): the main screen after a deterministic sequence on the
built-in names, at 80x24 and 160x48; each chart after what draws it (a run and a decay, a sweep, a
grid after training, overlaid sweeps, the embedding map), at both sizes; the snapshots dialog,
centred, and the runs screen. Update after a deliberate change of the screen with
`pytest tests/test_app_snapshots.py --snapshot-update`, and look at the SVGs before committing.
"""

from __future__ import annotations

import dataclasses

import pytest

import core.trainer

from app_helpers import settle
from core.jobs import RunResult
from tui.app import CharMLPApp
from tui.settings import parse_settings


@pytest.fixture
def fixed_rate(monkeypatch):
    """Steps/s and the grid's seconds are the figures on screen that depend on the machine: pinned for the picture."""
    monkeypatch.setattr(RunResult, "steps_per_s", property(lambda self: 12_345.0))
    train_grid = core.trainer.train_grid
    monkeypatch.setattr(core.trainer, "train_grid",
                        lambda *args, **kwargs: dataclasses.replace(train_grid(*args, **kwargs), seconds=0.25))


def kept_as(run: str, folder, *flags: str):
    """The app on the built-in names, its run named `run` in a store of its own (a generated name
    would count the runs other tests kept). No compile: the engine line would change when it ends."""
    return parse_settings(["--no-compile", "--runs-db", str(folder / "runs.db"), "--run", run, *flags])


async def sweep_adopt_run_evaluate_sample(pilot) -> None:
    await settle(pilot)
    await pilot.press("s")
    await settle(pilot)
    await pilot.press("a", "left_square_bracket", "left_square_bracket", "space")  # run 100 at the suggestion
    await settle(pilot)
    await pilot.press("e", "g")
    await settle(pilot)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_main_screen(snap_compare, fixed_rate, size, tmp_path):
    app = CharMLPApp(kept_as("lecture", tmp_path))
    assert snap_compare(app, terminal_size=size, run_before=sweep_adopt_run_evaluate_sample)


async def press(pilot, *steps: str) -> None:
    """Each group of keys, then until the worker is done with them."""
    await settle(pilot)
    for keys in steps:
        await pilot.press(*keys.split())
        await settle(pilot)


async def run_and_decay(pilot) -> None:  # 1000 steps at the sweep's suggestion, a decay, 1000 more, evaluated
    await press(pilot, "s", "a left_square_bracket space", "d space", "e", "1")


async def sweep_from_init(pilot) -> None:
    await press(pilot, "s")


async def grid_after_training(pilot) -> None:
    await press(pilot, "s", "a left_square_bracket space", "d space", "G")


async def sweeps_overlaid(pilot) -> None:  # from the init, then after 1000 steps: 2 to 20 against 2.3 to 2.6
    await press(pilot, "s", "a left_square_bracket space", "s", "o")


async def embedding_map(pilot) -> None:
    await press(pilot, "s", "a left_square_bracket space", "m")


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
@pytest.mark.parametrize("scenario", [run_and_decay, sweep_from_init, grid_after_training, sweeps_overlaid,
                                      embedding_map], ids=lambda f: f.__name__)
def test_chart(snap_compare, fixed_rate, size, scenario, tmp_path):
    # evaluations only where `e` asks: one timed every second during a run lands at a step the machine's speed picks
    app = CharMLPApp(kept_as("lecture", tmp_path, "--eval-every", "0"))
    assert snap_compare(app, terminal_size=size, run_before=scenario)


async def two_snapshots_listed(pilot) -> None:
    await settle(pilot)
    await pilot.press("left_square_bracket", "left_square_bracket", "space")  # run 100
    await settle(pilot)
    await pilot.press("z", "space")  # s1 at step 100, then run on
    await settle(pilot)
    await pilot.press("z", "e")  # s2 at step 200 with its dev loss
    await settle(pilot)
    await pilot.press("Z")
    await pilot.pause()


def test_snapshots_dialog(snap_compare, fixed_rate, tmp_path):
    app = CharMLPApp(kept_as("lecture", tmp_path))
    assert snap_compare(app, terminal_size=(80, 24), run_before=two_snapshots_listed)


def fixed_runs(path) -> None:
    """Three runs in a store, their figures fixed (no time measured here): what the runs screen lists."""
    from core.store import RunStore, StoredState

    store = RunStore(path)
    base = dict(data_source="built-in SSA names", data_path=None, data_digest="0" * 64, split="0.8,0.1,0.1",
                init_seed=2147483647, batch_size=32, batch_seed=2147483648, vocab=".abcdefghijklmnopqrstuvwxyz",
                argv="[]", lr_exponent=-1.0)
    for name, (block, emb, hidden, params), steps, schedule, losses, train_s, tested in (
            ("lecture", (3, 2, 100, 3481), 200_000, "-1×100k, -2×100k", (2.2478, 2.2531, 2.2502), 2.8, True),
            ("wide-emb", (3, 10, 200, 11897), 30_000, "-0.9×20k, -1.9×10k", (2.1384, 2.1791, 2.1791), 41.0, False),
            ("context-5", (5, 10, 200, 15897), 150_000, "-1×150k", (2.0612, 2.1299, 2.1204), 3725.0, False)):
        run = store.create({**base, "block_size": block, "emb_dim": emb, "hidden": hidden, "params": params}, name)
        train, dev, best = losses
        summary = {"steps": steps, "schedule": schedule, "train_loss": train, "dev_loss": dev,
                   "best_train_loss": train, "best_dev_loss": best, "wall_s": train_s + 60, "train_s": train_s}
        store.save_progress(run.id, summary, StoredState(steps, -2.0, b"", b"", b"", "eager"), [], 0)
        if tested:
            store.mark_test(run.id, steps, 2.2490)
        store.release(run.id)
    store.close()


async def runs_listed(pilot) -> None:
    await settle(pilot)
    await pilot.press("R")
    while not getattr(pilot.app.screen, "loaded", False):
        await pilot.pause(0.02)
    await pilot.pause()


def test_runs_screen(snap_compare, tmp_path):
    """The runs screen at 80x24: three stored runs (the open one, untrained, is not kept before its first step)."""
    fixed_runs(tmp_path / "runs.db")
    app = CharMLPApp(kept_as("current", tmp_path))
    assert snap_compare(app, terminal_size=(80, 24), run_before=runs_listed)


async def three_runs_then_diagnostics(pilot) -> None:
    from app_helpers import until
    from tui.diagnostics_screen import DiagnosticsScreen

    await settle(pilot)
    await pilot.press("left_square_bracket")  # N = 1,000
    for _ in range(3):  # a measurement recorded at each 1,000 steps
        await pilot.press("space")
        await settle(pilot)
    await pilot.press("D")
    await until(pilot, lambda: isinstance(pilot.app.screen, DiagnosticsScreen) and pilot.app.screen.report is not None)


def test_diagnostics_screen(snap_compare, fixed_rate, tmp_path):
    app = CharMLPApp(kept_as("lecture", tmp_path))
    assert snap_compare(app, terminal_size=(80, 24), run_before=three_runs_then_diagnostics)
