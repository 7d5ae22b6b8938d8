"""Snapshot tests (pytest-textual-snapshot): the main screen after a deterministic sequence on the
built-in names, at 80x24 and 160x48, and the snapshots dialog, centred. Update after a deliberate change of the screen with
`pytest tests/test_app_snapshots.py --snapshot-update`, and look at the SVGs before committing.
"""

from __future__ import annotations

import pytest

from app_helpers import settle
from core.jobs import RunResult
from tui.app import CharMLPApp
from tui.settings import parse_settings


@pytest.fixture
def fixed_rate(monkeypatch):
    """Steps/s is the one figure on screen that depends on the machine: pin it for the picture."""
    monkeypatch.setattr(RunResult, "steps_per_s", property(lambda self: 12_345.0))


def kept_as(run: str, folder):
    """The app on the built-in names, its run named `run` in a store of its own (a generated name
    would count the runs other tests kept). No compile: the engine line would change when it ends."""
    return parse_settings(["--no-compile", "--runs-db", str(folder / "runs.db"), "--run", run])


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
