"""The fault suite: every bad input, blow-up, key storm, signal and resize we throw at charmlp-tui.

Each case either works correctly or gets one clear line (which file or flag, what is wrong, what
to do) and exit code 2 in headless mode / an error notice in the app; never a traceback, never a
lost or corrupted model. README "Reliability" summarises this file.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import random
import signal
import subprocess
import sys
import time

import pexpect
import pytest
import torch

from app_helpers import app_settings, log_text, settle, start_long_run, trainer_of, wait_for_error
from conftest import REPO
from core.checkpoint import load_checkpoint
from core.config import DataConfig
from core.dataset import make_dataset
from core.errors import CheckpointError
from core.trainer import Trainer
from core.words import load_words
from tui import keys
from tui.app import CharMLPApp
from tui.charts import TrainingChart
from tui.lr_charts import SweepChart
from tui.screens import PathScreen


def one_clear_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ---- data files ----------------------------------------------------------------------------------
NAMES = b"emma\nolivia\nava\nisabella\nsophia\nmia\ncharlotte\namelia\nharper\nevelyn\n"
DATA_FILES = [  # (case, file contents, None if it must work, else what the one line says)
    ("empty", b"", "no words"),
    ("only blank lines", b"\n \n\t\n", "no words"),
    ("binary", b"emma\nol\x00ivia\n", ":2: binary data"),
    ("not UTF-8", b"emma\nzo\xe9\n", ":2: not UTF-8"),
    ("a word with the boundary character", b"emma\nmr.smith\n", ":2: the word 'mr.smith' contains '.'"),
    ("a single one-letter word", b"a\n", "leave the training split empty; give more words, or train on all"),
    ("too small for a dev split", b"emma\nava\n", None),
    ("CRLF line ends and a BOM", b"\xef\xbb\xbf" + NAMES.replace(b"\n", b"\r\n") * 5, None),
    ("a word 100x longer than the block", b"a" * 300 + b"\n" + NAMES * 5, None),
    ("letters outside ASCII: e-acute, sharp s, emoji", "zoé\nstraße\n😀ok\n".encode() * 20 + NAMES * 5, None),
]


@pytest.mark.parametrize(("case", "content", "expected"), DATA_FILES, ids=[c[0] for c in DATA_FILES])
def test_data_file(headless, tmp_path, case, content, expected):
    path = tmp_path / "words.txt"
    path.write_bytes(content)
    code, out, err = headless("--data", str(path), "--script", "run 50; eval; sample 2")
    if expected is None:
        assert code == 0, err
        assert "final: step 50" in out and "Traceback" not in err
    else:
        assert code == 2 and out == ""
        line = one_clear_line(err)
        assert expected in line and "words.txt" in line


def test_missing_file_and_directory(headless, tmp_path):
    code, _, err = headless("--data", str(tmp_path / "nope.txt"), "--script", "run 1")
    assert code == 2 and "nope.txt: no such file" in one_clear_line(err)
    code, _, err = headless("--data", str(tmp_path), "--script", "run 1")
    assert code == 2 and "is a directory" in one_clear_line(err)


def test_a_million_lines(headless, tmp_path):
    rng = random.Random(0)
    real = load_words(None)
    path = tmp_path / "million.txt"
    path.write_text("\n".join(rng.choice(real) for _ in range(1_000_001)) + "\n", encoding="utf-8")
    code, out, err = headless("--data", str(path), "--script", "run 100; sample 1")
    assert code == 0, err
    assert "1,000,001 words" in err and "final: step 100" in out


async def test_a_bad_data_file_is_an_error_notice_in_the_app(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"emma\n\xff\xfe\n")
    app = CharMLPApp(app_settings(bad))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_error(app, timeout=4)
        assert "bad.txt:2: not UTF-8" in log_text(app)
        assert app.check_action("run", ()) is None
        await pilot.press("q")


# ---- flags and script actions: refused before any work starts ----------------------------------
BAD_FLAGS = [  # (arguments, what the one line says)
    (["--hidden", "0"], "hidden size must be"),
    (["--block-size", "-1"], "block size must be"),
    (["--emb-dim", "two"], "invalid int value"),
    (["--batch-size", "0"], "batch size must be"),
    (["--split", "0.5,0.5"], "three fractions"),
    (["--split", "0.9,0.9,0.1"], "split"),
    (["--lr-exp", "9"], "lr exponent must be"),
    (["--threads", "0"], "--threads must be"),
    (["--eval-every", "-1"], "--eval-every must be"),
    (["--autosave", "/no/such/folder/model.pt"], "does not exist"),
    (["--autosave", "/tmp"], "is a directory"),
    (["--load", "/no/such.pt"], "no such checkpoint"),
    (["--script", "run -5"], "action 1 'run -5'"),
    (["--script", "run 1e12"], "action 1 'run 1e12'"),
    (["--script", "run 2.5"], "action 1 'run 2.5'"),
    (["--script", "lr nan"], "action 1 'lr nan'"),
    (["--script", "lr 7"], "action 1 'lr 7'"),
    (["--script", "decay 0"], "action 1 'decay 0'"),
    (["--script", "sweep 0 -3 100"], "START must be below END"),
    (["--script", "sweep -3 0"], "expected 'sweep [START END STEPS] [--repeats N]'"),
    (["--script", "sweep --repeats 0"], "N must be a whole number from 1 to 20"),
    (["--script", "sweep --repeats 99"], "N must be a whole number from 1 to 20"),
    (["--script", "undo 3"], "expected 'undo'"),
    (["--script", "snapshot"], "expected 'snapshot NAME'"),
    (["--script", "sample 0"], "action 1 'sample 0'"),
    (["--script", "save"], "expected 'save PATH'"),
    (["--script", "engine fast"], "expected 'engine eager|compiled'"),
    (["--script", "engine"], "expected 'engine eager|compiled'"),
    (["--script", "run 10; fly"], "action 2 'fly': unknown action"),
    (["--script", "  ;  # nothing"], "no actions"),
    (["--script-file", "/no/such/script.txt"], "cannot be read"),
]


@pytest.mark.parametrize(("args", "message"), BAD_FLAGS, ids=[" ".join(a) for a, _ in BAD_FLAGS])
def test_bad_flag_or_action(headless, args, message):
    if not any(a.startswith("--script") for a in args):
        args = [*args, "--script", "eval"]
    code, out, err = headless(*args)
    assert code == 2 and out == ""
    assert message in one_clear_line(err)
    assert "data:" not in err  # refused before the data was loaded


def test_bad_flags_in_a_real_process_print_no_traceback():
    out = subprocess.run([sys.executable, "-m", "tui", "--hidden", "0"], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and "hidden size must be" in out.stderr and "Traceback" not in out.stderr


# ---- checkpoints -----------------------------------------------------------------------------------
def assert_refused(trainer, path, match):
    before = trainer.params.clone()
    with pytest.raises(CheckpointError, match=match) as err:
        trainer.load(path)
    assert "\n" not in str(err.value)
    for a, b in zip(trainer.params.tensors(), before.tensors()):
        assert torch.equal(a, b)


def test_truncated_random_and_missing_checkpoints(trainer, tmp_path):
    good = trainer.save(tmp_path / "good.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(good[: len(good) // 2])
    assert_refused(trainer, tmp_path / "cut.pt", "not a readable checkpoint")
    (tmp_path / "noise.pt").write_bytes(os.urandom(4096))
    assert_refused(trainer, tmp_path / "noise.pt", "not a readable checkpoint")
    assert_refused(trainer, tmp_path / "absent.pt", "no such checkpoint")


class RunsCode:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_a_pickled_object_is_never_executed(trainer, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"format": "charmlp-tui checkpoint", "evil": RunsCode()}, tmp_path / "evil.pt")
    assert_refused(trainer, tmp_path / "evil.pt", "refused")
    with open(tmp_path / "plain.pkl", "wb") as f:
        pickle.dump(RunsCode(), f)
    assert_refused(trainer, tmp_path / "plain.pkl", "refused|not a readable")
    assert not (tmp_path / "PWNED").exists()


def test_other_vocabulary_or_shape_is_refused(trainer, tmp_path):
    other = Trainer(make_dataset(["xyz", "zzy"], 3, DataConfig(split=(1, 0, 0))))
    assert_refused(trainer, other.save(tmp_path / "vocab.pt"), "vocabulary")
    tensors = torch.load(trainer.save(tmp_path / "shape.pt"), weights_only=True)
    tensors["params"]["W1"] = torch.zeros(5, 5)
    torch.save(tensors, tmp_path / "shape.pt")
    assert_refused(trainer, tmp_path / "shape.pt", "W1 should be")


def test_a_crash_mid_save_leaves_the_previous_checkpoint(trainer, tmp_path, monkeypatch):
    path = trainer.save(tmp_path / "model.pt")
    before = path.read_bytes()
    trainer.run(100)

    def crash(obj, f, *args, **kwargs):
        f.write(b"half a checkp")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises((CheckpointError, OSError)):
        trainer.save(path)
    assert path.read_bytes() == before and load_checkpoint(path).step == 0
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temporary file left behind


def test_save_never_overwrites_a_file_it_did_not_write(trainer, headless, tmp_path, small_file):
    other = tmp_path / "notes.txt"
    other.write_text("keep me")
    with pytest.raises(CheckpointError, match="already exists"):
        trainer.save(other)
    code, _, err = headless("--data", str(small_file), "--script", f"run 10; save {other}")
    assert code == 2 and "already exists" in err and other.read_text() == "keep me"
    code, _, err = headless("--data", str(small_file), "--script", f"run 10; save {other}", "--force")
    assert code == 0 and load_checkpoint(other).step == 10


async def test_the_app_asks_before_overwriting_a_file(small_file, tmp_path):
    other = tmp_path / "notes.txt"
    other.write_text("keep me")
    app = CharMLPApp(app_settings(small_file))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        app.screen.query_one("Input").value = str(other)
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("n")
        await settle(pilot)
        assert other.read_text() == "keep me"


# ---- divergence ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("exponent", [0.5, 1, 2, 3])
def test_a_diverging_run_stops_and_rolls_back(trainer, exponent):
    trainer.run(300)
    healthy = trainer.split_loss("train")
    trainer.set_lr_exponent(exponent)
    result = trainer.run(5000)
    assert result.divergence is not None and result.steps < 5000
    assert result.divergence.restored_step == trainer.step == len(trainer.history) < result.divergence.at_step
    assert trainer.params.all_finite() and trainer.split_loss("train") < 1.5 * healthy


def test_a_sweep_up_to_plus_3_stops_early_and_restores(trainer):
    before = trainer.params.clone()
    result = trainer.sweep(-3, 3, 3000)
    assert result.stopped_early and len(result.losses) < 3000
    for a, b in zip(trainer.params.tensors(), before.tensors()):
        assert torch.equal(a, b)


def test_headless_reports_the_blow_up(headless, small_file):
    code, out, _ = headless("--data", str(small_file), "--script", "run 200; lr 3; run 3000", "--json")
    assert code == 0 and "loss blew up at step" in out and "rolled back to step" in out
    assert '"divergences": [{"at_step"' in out


async def test_undo_is_one_key_away(small_file):
    app = CharMLPApp(app_settings(small_file))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.check_action("undo", ()) is None  # nothing to undo yet
        await pilot.press("left_square_bracket", "space")  # run 1000
        await settle(pilot)
        trainer = await trainer_of(app)
        good = trainer.params.clone()
        for _ in range(40):  # LR exponent +4: to 10^3
            await pilot.press("up")
        await pilot.press("space")
        await settle(pilot)
        assert "loss blew up" in log_text(app) and app.status.step >= 1000
        await pilot.press("u")
        await settle(pilot)
        assert app.status.step == 1000 == len(trainer.history) and app.status.lr_exponent == pytest.approx(3)
        for a, b in zip(trainer.params.tensors(), good.tensors()):
            assert torch.equal(a, b)
        assert "undo: back from step" in log_text(app) and app.check_action("undo", ()) is None


# ---- concurrency: a key storm -------------------------------------------------------------------------
STORM_KEYS = [  # (key, character) for every binding of the main screen and its dialogs, but quit
    ("space", " "), ("enter", "\r"), ("s", "s"), ("a", "a"), ("up", None), ("down", None), ("plus", "+"),
    ("minus", "-"), ("left_square_bracket", "["), ("right_square_bracket", "]"), ("d", "d"), ("e", "e"), ("g", "g"),
    ("u", "u"), ("r", "r"), ("escape", None), ("escape", None), ("f1", None), ("question_mark", "?"),
    ("ctrl+s", None), ("ctrl+o", None), ("y", "y"), ("n", "n"), ("D", "D"), ("c", "c"),
]


async def test_a_thousand_random_keys(small_file, tmp_path, monkeypatch):
    """Keys mashed at ~200 a second, straight into the driver: Pilot.press waits for the app to be
    idle after each key, which a busy training thread never lets it be."""
    from textual import events

    monkeypatch.chdir(tmp_path)  # ctrl+s then enter saves charmlp.pt here
    # runs of at most 10k steps: on a slow or loaded machine a 1M-step run (] pressed twice) took
    # minutes and left every later long key greyed out, so the storm did no sweep or undo at all
    monkeypatch.setattr(keys, "STEPS_PER_RUN", (100, 300, 1_000, 3_000, 10_000))
    monkeypatch.setattr(keys, "DEFAULT_STEPS_PER_RUN", 1_000)
    rng = random.Random(1234)
    app = CharMLPApp(app_settings(small_file, "--eval-every", "0.05"))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        for i in range(1000):
            key, char = rng.choice(STORM_KEYS)
            app._driver.send_message(events.Key(key, char))
            await asyncio.sleep(0.05 if i % 50 == 0 else 0.005)  # now and then, let a run get going
        while not app._message_queue.empty():  # on a loaded machine keys are still queued: let them all land
            await asyncio.sleep(0.05)
        await pilot.pause()
        while len(app.screen_stack) > 1:  # close a dialog left open
            await pilot.press("escape")
        app.worker.stop()
        await settle(pilot, timeout=120)
        assert "steps/s" in log_text(app)  # the storm itself trained
        # and the app still does everything afterwards (what the storm happened to reach depends on
        # the machine's speed: on a slow one a long run greys out sweeps and undo for the rest of it)
        for key in ("left_square_bracket", "space", "u", "s", "e"):
            await pilot.press(key)
            await settle(pilot, timeout=120)
        trainer = await trainer_of(app)
        log = log_text(app)
        assert app.worker.thread.is_alive() and "internal error" not in log
        assert "sweep: " in log and "steps/s" in log and "undo: " in log and "eval at step" in log  # real work
        assert app.status.step == trainer.step == len(trainer.history)
        assert all(e.step <= trainer.step for e in trainer.evals) and trainer.params.all_finite()
        await pilot.press("q")


async def test_a_dialog_answers_once_however_fast_the_keys(small_file, tmp_path, monkeypatch):
    """A second key that arrives before the dialog has closed (enter enter, enter escape) once
    dismissed it again, popping the main screen and killing the app (ScreenStackError, CI's key storm)."""
    from textual import events

    monkeypatch.chdir(tmp_path)
    app = CharMLPApp(app_settings(small_file))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        # enter then escape may end either way (Input submits through a message of its own): once
        for open_key, second, done, times in [("ctrl+s", ("enter", "\r"), "save: wrote", {1}),
                                              ("ctrl+o", ("escape", None), "load: charmlp.pt", {0, 1})]:
            await pilot.press(open_key)
            assert isinstance(app.screen, PathScreen)
            app._driver.send_message(events.Key("enter", "\r"))
            app._driver.send_message(events.Key(*second))  # queued behind the first: no await between
            await pilot.pause()
            await settle(pilot)
            assert len(app.screen_stack) == 1 and log_text(app).count(done) in times
        assert app.is_running and app.worker.thread.is_alive()
        await pilot.press("q")


# ---- interruptions, in real processes -------------------------------------------------------------------
SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]


@pytest.mark.parametrize("signum", SIGNALS, ids=[s.name for s in SIGNALS])
def test_a_signal_stops_the_app_restores_the_terminal_and_autosaves(small_file, tmp_path, signum):
    saved = tmp_path / "autosave.pt"
    env = {**os.environ, "TERM": "xterm-256color"}
    child = pexpect.spawn(sys.executable, ["-m", "tui", "--data", str(small_file), "--no-compile", "--autosave", str(saved)],
                          cwd=str(REPO), env=env, dimensions=(30, 100), timeout=60)
    try:
        child.expect("parameters")  # the ready line in the log
        child.send("]]")  # N = 1M steps
        time.sleep(0.3)
        child.send(" ")
        time.sleep(1.5)  # training
        os.kill(child.pid, signum)
        child.expect(pexpect.EOF)
        output = child.before.decode(errors="replace")
    finally:
        child.close(force=True)
    assert child.exitstatus == 128 + signum and child.signalstatus is None
    assert "\x1b[?1049l" in output  # left the alternate screen: the terminal is back
    assert "saved the model to" in output and "Traceback" not in output
    step = load_checkpoint(saved).step
    assert 0 < step < 1_000_000


@pytest.mark.parametrize("signum", SIGNALS, ids=[s.name for s in SIGNALS])
def test_a_signal_stops_a_headless_run_and_autosaves(small_file, tmp_path, signum):
    saved = tmp_path / "autosave.pt"
    proc = subprocess.Popen([sys.executable, "-m", "tui", "--headless", "--no-compile", "--data", str(small_file),
                             "--script", "run 1000000", "--json", "--autosave", str(saved)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while "model:" not in proc.stderr.readline():  # the data is loaded; the run starts
        assert proc.poll() is None
    time.sleep(1.0)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err
    assert f"interrupted by signal {signum}" in err and "saved the model to" in err and "Traceback" not in err
    assert '"interrupted": true' in out
    step = load_checkpoint(saved).step
    assert 0 < step < 1_000_000


# ---- terminal sizes ------------------------------------------------------------------------------------
async def test_resizes_during_a_run(small_file):
    from textual import events
    from textual.geometry import Size

    app = CharMLPApp(app_settings(small_file))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await start_long_run(pilot)
        for width, height in [(40, 12), (250, 80), (39, 11), (120, 40), (40, 12), (200, 60)]:
            # as Pilot.resize_terminal, without its wait for an idle app (a run never lets it be)
            app._driver._size = Size(width, height)
            app.post_message(events.Resize(Size(width, height), Size(width, height)))
            await asyncio.sleep(0.3)
            assert app.screen.has_class("too-small") == (width < 40 or height < 12)
        assert "┤" in str(app.query_one(TrainingChart).render())  # drawn at 200x60
        await pilot.press("escape")
        await settle(pilot)
        assert app.status.step == len((await trainer_of(app)).history) > 0
        await pilot.press("s")
        await settle(pilot)
        await pilot.resize_terminal(60, 16)
        await pilot.pause()
        assert str(app.query_one(SweepChart).border_title).startswith("LR sweep @")  # the short title, at this width
