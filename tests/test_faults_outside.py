"""Inputs an outside tester found after the fault suites were written (issue 12): each was a
traceback, a silent loss or raw bytes on the terminal; each is now one line, or works."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from app_helpers import app_settings, log_text, settle
from conftest import REPO
from core.actions import Action
from core.errors import CheckpointError, ConfigError, ScriptError
from core.files import replace_atomically
from core.recording import SessionRecord
from core.verbs import parse_script
from tui.app import CharMLPApp


@pytest.mark.parametrize("name", ["\x1b[2J\x1b[H", "a\u200bb", "x\x1b[5my", "bell\x07"])
def test_a_snapshot_name_that_is_not_printable_is_refused_before_anything_runs(name):
    with pytest.raises(ScriptError, match="printable characters"):
        parse_script(f"run 10; snapshot {name}")


@pytest.mark.parametrize("path", ["~nosuchuser9/x.pt"])
def test_a_home_of_no_user_is_one_line(headless, small_file, path):
    for script in (f"save {path}", f"load {path}"):
        code, _, err = headless("--data", str(small_file), "--script", script)
        assert code == 2 and "names no user with a home folder" in err and "Traceback" not in err


def test_a_disk_full_part_way_through_a_save_is_one_line(small_file, tmp_path):
    def small_files() -> None:  # as `prlimit --fsize`: torch's zip writer fails in the middle
        resource.setrlimit(resource.RLIMIT_FSIZE, (8000, 8000))

    target = tmp_path / "m.pt"
    out = subprocess.run([sys.executable, "-m", "tui", "--headless", "--no-compile", "--data", str(small_file),
                          "--script", f"save {target}"], cwd=REPO, capture_output=True, text=True, timeout=120,
                         preexec_fn=small_files)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert "cannot write checkpoint" in out.stderr and "previous file, if any, is unchanged" in out.stderr
    assert not target.exists() and not list(tmp_path.glob(".m.pt*"))


def test_a_failed_autosave_is_not_a_success(headless, small_file, tmp_path, monkeypatch):
    from core.trainer import Trainer

    def refuse(self, path, force=False):
        raise CheckpointError(f"{path}: cannot write checkpoint (no space left on the device)")

    monkeypatch.setattr(Trainer, "save", refuse)
    code, _, err = headless("--data", str(small_file), "--autosave", str(tmp_path / "m.pt"), "--script", "run 10")
    assert code == 1 and "autosave failed" in err


def test_two_saves_to_one_new_name_cannot_both_win(tmp_path):
    target = tmp_path / "race.pt"
    replace_atomically(target, lambda f: f.write(b"first"), ConfigError, "test", exclusive=True)
    with pytest.raises(ConfigError, match="written meanwhile by another program"):
        replace_atomically(target, lambda f: f.write(b"second"), ConfigError, "test", exclusive=True)
    assert target.read_bytes() == b"first" and not list(tmp_path.glob(".race.pt*"))


def test_a_file_name_with_a_line_end_cannot_add_actions_to_an_exported_session():
    record = SessionRecord()
    record.applied(Action("eval"))
    text = record.script(["replay: charmlp-tui --data 'd\nrun 7\n#x.txt'"])
    assert parse_script(text) == [Action("eval")]


def test_the_app_needs_a_terminal():
    out = subprocess.run([sys.executable, "-m", "tui", "--no-compile"], cwd=REPO, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "the app needs a terminal" in out.stderr


def test_threads_beyond_the_memory_limit_are_one_line():
    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    out = subprocess.run([sys.executable, "-m", "tui", "--headless", "--no-compile", "--threads", "256", "--script",
                          "run 10"], cwd=REPO, capture_output=True, text=True, timeout=60, preexec_fn=limited)
    assert out.returncode == 2 and "256 torch threads" in out.stderr and "Traceback" not in out.stderr


async def test_odd_names_in_the_app_dialogs_are_one_line_not_a_crash(small_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    app = CharMLPApp(app_settings(small_file), [Action("snapshot", ("[/]",))])  # markup in a snapshot name
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("Z")  # the list shows '[/]' as text (it was read as markup: MarkupError)
        await pilot.pause()
        assert type(app.screen).__name__ == "SnapshotsScreen"
        await pilot.press("escape")
        for name in ("x" * 300 + ".pt", str(loop), "~nosuchuser9/x.pt"):
            await pilot.press("ctrl+s")
            await pilot.pause()
            app.screen.query_one("Input").value = name
            await pilot.press("enter")
            await settle(pilot)
            assert app.is_running and type(app.screen).__name__ != "PathScreen"
        log = log_text(app)
        assert "too long" in log and "names no user" in log and "internal error" not in log
        await pilot.press("q")
