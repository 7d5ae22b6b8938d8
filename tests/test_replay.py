"""Replayable sessions (core.recording): what the app did, exported with ctrl+e, replayed headless."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading

import pytest

from app_helpers import app_settings, log_text, settle, start_long_run, trainer_of
from core.actions import Action
from core.recording import SessionRecord
from core.verbs import parse_script
from tui.app import CharMLPApp


def test_mid_run_actions_split_the_run_and_a_stopped_run_records_its_steps():
    record = SessionRecord()
    record.engine_switched("eager", at_step=0)
    record.applied(Action("lr", (-0.934567,)))
    record.run_started(10_000, at_step=0)
    record.split_run(at_step=2_400)
    record.applied(Action("decay"))
    record.engine_switched("compiled", at_step=4_000)  # the background build ended mid-run
    record.run_ended(stopped=False, at_step=9_000)  # finished, or blew up and rolled back: as requested
    record.run_started(1_000_000, at_step=10_000)
    record.split_run(at_step=10_000)  # nothing ran yet: no empty segment
    record.applied(Action("sample", (5,)))
    record.run_ended(stopped=True, at_step=13_000)
    record.applied(Action("save", ("m.pt",)))
    assert record.lines == ["engine eager", "lr -0.934567", "run 2400", "decay", "run 1600", "engine compiled", "run 6000",
                            "sample 5", "run 3000", "# save m.pt"]
    assert [str(a) for a in parse_script(record.script(["header"]))] == record.lines[:-1]


def test_a_script_exported_during_a_run_holds_the_steps_so_far():
    record = SessionRecord()
    record.run_started(100_000, at_step=0)
    assert "run 4200\n# (exported during a run" in record.script([], now_at_step=4_200)


async def export_session(pilot, script) -> None:
    """ctrl+e, the path typed into the dialog, enter: the session script written there."""
    await pilot.press("ctrl+e")
    await pilot.pause()
    pilot.app.screen.query_one("Input").value = str(script)
    await pilot.press("enter")
    await settle(pilot)
    assert f"export: wrote {script}" in log_text(pilot.app)


async def test_an_exported_session_replays_to_the_same_losses(small_file, tmp_path, headless):
    script = tmp_path / "session.txt"
    app = CharMLPApp(app_settings(small_file))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        await pilot.press("a", "left_square_bracket", "space")  # adopt, run 1000
        await settle(pilot)
        await start_long_run(pilot)  # 1M steps, changed and stopped midway
        await asyncio.sleep(0.3)
        await pilot.press("up", "d")
        await asyncio.sleep(0.3)
        await pilot.press("g")
        await asyncio.sleep(0.2)
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("e", "g")
        await settle(pilot)
        await export_session(pilot, script)
        trainer = await trainer_of(app)
        step, lr, train, dev = trainer.step, trainer.lr_exponent, trainer.split_loss("train"), trainer.split_loss("dev")
        log = log_text(app)
        await pilot.press("q")
    text = script.read_text()
    assert "charmlp-tui --headless" in text and "\nrun 1000\n" in text and "\ndecay\n" in text
    code, out, err = headless("--data", str(small_file), "--script-file", str(script), "--json")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["step"] == step and summary["lr_exponent"] == pytest.approx(lr)
    assert summary["loss"]["train"] == train and summary["loss"]["dev"] == dev  # same engine: exact
    assert 1_000 < step < 1_000_000
    names = summary["samples"]
    assert len(names) == 20 and f"sample: {' '.join(names[:10])}" in log and f"sample: {' '.join(names[10:])}" in log


async def test_a_session_that_switched_to_the_compiled_steps_mid_run_replays_exactly(small_file, tmp_path, monkeypatch,
                                                                                      capsys):
    """The default: the app starts eager and switches when its background build is done (held
    back here until 2000 steps have run); the script says where, and the replay switches there."""
    from core import native
    from tui.cli import main

    release, real_build = threading.Event(), native.build
    monkeypatch.setattr(native, "build", lambda cache_dir=None: (release.wait(60), real_build(cache_dir))[1])
    script = tmp_path / "session.txt"
    app = CharMLPApp(dataclasses.replace(app_settings(small_file), compile=True))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await start_long_run(pilot)
        while app.status.step < 2_000:
            await asyncio.sleep(0.01)
        release.set()
        while app.status.engine != "compiled":
            await asyncio.sleep(0.01)
        switched_by = app.status.step
        while app.status.step < switched_by + 2_000:
            await asyncio.sleep(0.01)
        await pilot.press("escape")
        await settle(pilot)
        await export_session(pilot, script)
        trainer = await trainer_of(app)
        step, train, dev = trainer.step, trainer.split_loss("train"), trainer.split_loss("dev")
        await pilot.press("q")
    actions = [line for line in script.read_text().splitlines() if not line.startswith("#")]
    assert actions[0] == "engine eager" and actions[2] == "engine compiled" and len(actions) == 4, actions
    eager_steps = int(actions[1].split()[1])
    assert 2_000 <= eager_steps <= switched_by and eager_steps % 200 == 0  # at a chunk boundary

    capsys.readouterr()
    assert main(["--headless", "--data", str(small_file), "--script-file", str(script), "--json"]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out.strip().splitlines()[-1])
    assert "engine: compiled (native steps)" in out
    assert summary["step"] == step and summary["loss"]["train"] == train and summary["loss"]["dev"] == dev

    assert main(["--headless", "--no-compile", "--data", str(small_file), "--script-file", str(script), "--json"]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out.strip().splitlines()[-1])
    assert "engine: eager: the compiled steps are not available (compiling is off)" in out
    assert summary["loss"]["dev"] == pytest.approx(dev, rel=1e-3) and summary["loss"]["dev"] != dev  # float noise
