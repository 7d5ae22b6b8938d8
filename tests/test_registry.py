"""The seams: one declaration per verb (core.verbs) and per key (tui.keys), everything else derived."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core import ranges
from core.actions import Action
from core.errors import ConfigError, ScriptError
from core.history import LossHistory
from core.verbs import VERBS, parse_script
from tui import keys
from tui.app import CharMLPApp
from tui.settings import build_parser, parse_settings


def test_what_may_apply_mid_run_and_what_is_a_job_come_from_the_registry():
    assert {v.name for v in VERBS if v.mid_run} == {"lr", "decay", "eval", "diag", "sample", "save", "snapshot"}
    assert {v.name for v in VERBS if v.long} == {"run", "sweep", "grid", "tune"}


def test_defaults_are_filled_in_from_the_declaration_alone():
    assert VERBS["sweep"].values(Action("sweep")) == {"start": -3.0, "end": 0.0, "steps": 1000, "repeats": 1}
    assert VERBS["grid"].values(Action("grid")) == {"start": -3.0, "end": 0.0, "models": 32, "steps": 500}
    assert VERBS["decay"].values(Action("decay")) == {"factor": 10.0}


def test_every_usage_and_help_line_is_in_the_command_line_help():
    text = build_parser().format_help()
    for verb in VERBS:
        assert verb.usage in text and verb.help[:40] in " ".join(text.split())


def test_the_parser_and_the_trainer_refuse_with_the_same_range(trainer):
    with pytest.raises(ScriptError, match="N must be a whole number from 1 to 100,000,000"):
        parse_script("run 0")
    with pytest.raises(ConfigError, match="steps must be a whole number from 1 to 100,000,000"):
        trainer.run(0)
    with pytest.raises(ConfigError, match=f"from {ranges.SAMPLES.low:,} to {ranges.SAMPLES.high:,}"):
        trainer.sample(ranges.SAMPLES.high + 1)
    with pytest.raises(ConfigError, match="grid START must be below END"):
        trainer.grid(0, -1, 4, 20)


@pytest.mark.parametrize("script", ["sweep -2 0.5 300 --repeats 3", "grid -2 -0.5 8 100", "decay 3", "lr -0.934567",
                                    "engine compiled", "sample 7", "snapshot best", "sweep --repeats 2",
                                    "new block=4 emb=10 init-seed=3 batch-seed=0", "new"])
def test_an_action_reads_back_as_itself(script):
    action = parse_script(script)[0]
    assert str(action) == script and parse_script(str(action)) == [action]


def test_every_key_has_an_action_a_help_line_and_an_existing_verb():
    for key in keys.KEYS:
        if key.bound:
            assert hasattr(CharMLPApp, f"action_{key.name}"), key
        assert key.help and (key.verb is None or key.verb in {v.name for v in VERBS})
    bound = {b.action for b in CharMLPApp.BINDINGS}  # type: ignore[union-attr]
    assert bound == {k.action for k in keys.KEYS if k.bound}


def test_settings_rebuild_their_command_line(tmp_path: Path):
    data = tmp_path / "my words.txt"  # a space: the exported replay command must quote it
    settings = parse_settings(["--data", str(data), "--split", "0.7,0.2,0.1", "--block-size", "4", "--emb-dim", "5",
                               "--hidden", "77", "--seed", "9", "--batch-size", "48", "--lr-exp", "-1.25",
                               "--load", str(tmp_path / "ck.pt")])
    again = parse_settings(settings.to_argv())
    for field in ("data", "model", "train", "load"):
        assert getattr(again, field) == getattr(settings, field)


def test_a_history_view_never_changes_after_it_was_taken():
    history = LossHistory()
    history.append(0.1, torch.arange(10.0))
    view = history.view()
    before = view.loss.clone()
    history.truncate(4)  # a rollback
    history.append(0.1, torch.full((2000,), 7.0))  # rows 4.. written again, storage grown
    assert torch.equal(view.loss, before) and len(view) == 10
    assert len(history) == 2004 and float(history.view().loss[5]) == 7.0


def test_a_bad_snapshot_name_is_refused_when_the_script_is_checked():
    with pytest.raises(ScriptError, match="action 2 .*NAME is 1 to 40 printable characters"):
        parse_script(f"run 10; snapshot {'x' * 41}")


def test_keys_whose_verb_applies_mid_run_say_so():
    for key in keys.KEYS:
        assert key.help.endswith("(mid-run too)") == bool(key.verb and VERBS[key.verb].mid_run), key
