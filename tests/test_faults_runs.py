"""Faults in runs, numbers, the script language and the standard streams (issue 12, classes 1, 6,
8 and the quoting half of 10): each gets one clear line, or works, and never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app_helpers import app_settings, log_text, settle, trainer_of
from conftest import REPO
from core.actions import Action
from core.errors import ConfigError, ScriptError
from core.verbs import parse_script
from tui.app import CharMLPApp


def run_cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui", "--headless", "--no-compile", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120, **kwargs)


# ---- class 1: a blow-up in the first steps -------------------------------------------------------
@pytest.mark.parametrize("exponent", [3, 2, 1.5])
def test_a_blow_up_in_the_first_steps_is_reported_in_words(headless, small_file, exponent):
    code, out, err = headless("--data", str(small_file), "--script", f"lr {exponent}; run 2000; eval", "--json")
    assert code == 0 and "Traceback" not in err, err
    line = next(line for line in out.splitlines() if line.startswith("run 2000:"))
    assert "the loss blew up at step" in line and "rolled back to step" in line and "lower the learning rate" in line
    summary = json.loads(out.splitlines()[-1])
    assert summary["step"] == summary["divergences"][0]["restored_step"] < 2000


def test_a_run_blown_up_at_its_first_step_keeps_nothing(trainer):
    trainer.set_lr_exponent(3)
    result = trainer.run(500)
    assert result.steps == 0 and result.divergence.at_step == 1 and trainer.step == 0 == len(trainer.history)
    from core.verbs import execute

    trainer.set_lr_exponent(3)
    assert "no step kept, parameters rolled back to step 0" in execute(trainer, Action("run", (500,))).summary


async def test_a_rate_far_too_big_in_the_app(small_file):
    actions = [Action("lr", (3.0,)), Action("run", (1000,))]  # as `charmlp-tui --script "lr 3; run 1000"` starts
    app = CharMLPApp(app_settings(small_file), actions)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert "the loss blew up" in log_text(app) and "internal error" not in log_text(app)
        trainer = await trainer_of(app)
        assert app.status.step == trainer.step == len(trainer.history) and trainer.params.all_finite()
        await pilot.press("q")


# ---- class 6: numbers that are finite but absurd -------------------------------------------------
@pytest.fixture
def absurd_checkpoint(trainer, tmp_path):
    trainer.params.W2.fill_(3e38)
    trainer.params.C.fill_(3e38)
    return trainer.save(tmp_path / "absurd.pt")


def test_absurd_weights_give_valid_json_and_a_clear_sampling_error(headless, small_file, absurd_checkpoint):
    code, out, err = headless("--data", str(small_file), "--load", str(absurd_checkpoint), "--script", "eval", "--json")
    assert code == 0, err
    summary = json.loads(out.splitlines()[-1])  # strict JSON: no NaN
    assert summary["loss"] == {"train": None, "dev": None}
    code, out, err = headless("--data", str(small_file), "--load", str(absurd_checkpoint), "--script", "sample 3")
    assert code == 2 and "probabilities are not finite numbers" in err and "Traceback" not in err


def test_sampling_absurd_weights_is_refused_in_one_line(trainer):
    trainer.params.W2.fill_(3e38)
    with pytest.raises(ConfigError, match="not finite numbers"):
        trainer.sample(5)


# ---- class 8: standard streams -------------------------------------------------------------------
def test_a_closed_pipe_ends_quietly(small_file):
    proc = subprocess.Popen([sys.executable, "-m", "tui", "--headless", "--no-compile", "--data", str(small_file),
                             "--script", "run 200; sample 1000; sample 1000"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # as `| head -1` does
    err = proc.stderr.read()
    assert proc.wait(60) == 128 + 13 and "Traceback" not in err and "Exception ignored" not in err and "Error" not in err


def test_a_full_device_on_stdout_is_one_line(small_file):
    with open("/dev/full", "w") as full:
        out = subprocess.run([sys.executable, "-m", "tui", "--headless", "--no-compile", "--data", str(small_file),
                              "--script", "run 100; sample 5"], cwd=REPO, stdout=full, stderr=subprocess.PIPE,
                             text=True, timeout=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == "charmlp-tui: error: cannot write the output (No space left on device)"


def test_names_the_locale_cannot_encode_are_escaped(tmp_path):
    words = tmp_path / "accents.txt"
    words.write_text("zoé\nstraße\némile\nanaïs\n" * 40, encoding="utf-8")
    out = run_cli("--data", str(words), "--script", "run 300; sample 8", env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    sample = next(line for line in out.stdout.splitlines() if line.startswith("sample:"))
    assert sample.isascii() and "\\x" in sample


# ---- the script language: quoting and property tests ---------------------------------------------
def test_paths_with_spaces_and_separators_parse_when_quoted(trainer, tmp_path):
    from core.verbs import execute

    path = tmp_path / "my model; #1.pt"
    [save, load] = parse_script(f'save "{path}"\nload \'{path}\'')
    assert save.args == (str(path),) and parse_script(str(save)) == [save]
    execute(trainer, save)
    execute(trainer, load)
    with pytest.raises(ScriptError, match="no closing quotation"):
        parse_script('load "my model.pt')


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("run sweep lr decay eval sample save load grid snapshot engine "
                                             "0123456789-.e;#\"'\n\r\t --repeats x\x1b")), max_size=60))
def test_any_script_parses_to_actions_that_read_back_or_is_refused_in_one_line(text):
    try:
        actions = parse_script(text)
    except ScriptError as e:
        assert "\n" not in str(e) and "\x1b" not in str(e)
        return
    assert actions and parse_script("; ".join(map(str, actions))) == actions


def test_a_rollback_takes_the_evaluations_of_the_steps_it_undoes(small_words):
    from core.config import DataConfig, ModelConfig, TrainConfig
    from core.dataset import make_dataset
    from core.trainer import Trainer

    trainer = Trainer(make_dataset(small_words, 3, DataConfig()), ModelConfig(), TrainConfig(chunk_steps=2))
    trainer.run(300, eval_every=100)
    trainer.set_lr_exponent(0.5)
    result = trainer.run(3000, eval_every=2)
    assert result.divergence is not None and trainer.evals[-1].step <= trainer.step == result.divergence.restored_step
