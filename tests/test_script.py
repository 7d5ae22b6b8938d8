
import pytest

from core.actions import Action
from core.verbs import execute, parse_script


def test_parses_the_issue_example():
    actions = parse_script("sweep; lr -1; run 20000; decay; run 10000; eval; sample 10")
    assert actions == [Action("sweep"), Action("lr", (-1.0,)), Action("run", (20000,)), Action("decay"),
                       Action("run", (10000,)), Action("eval"), Action("sample", (10,))]


def test_lines_comments_and_arguments():
    actions = parse_script("# warm up\nrun 1e3\nsweep -2 0.5 300 ; decay 3\nsave out.pt  # done")
    assert actions == [Action("run", (1000,)), Action("sweep", (-2.0, 0.5, 300)), Action("decay", (3.0,)),
                       Action("save", ("out.pt",))]
    assert [str(a) for a in actions] == ["run 1000", "sweep -2 0.5 300", "decay 3", "save out.pt"]
    assert parse_script("engine Eager; engine compiled") == [Action("engine", ("eager",)), Action("engine", ("compiled",))]


def test_execute_reports_each_action(trainer, tmp_path):
    outputs = [execute(trainer, a).summary for a in parse_script(f"run 100; decay; eval; sample 3; save {tmp_path}/m.pt; "
                                                                   "engine eager")]
    assert outputs[0].startswith("run 100: step 100") and "exponent -2" in outputs[1]
    assert outputs[5] == "engine: eager (torch's step)"
    assert outputs[2].startswith("eval at step 100: train") and len(outputs[3].split()) == 4
    assert (tmp_path / "m.pt").exists()


def test_the_test_split_is_measured_only_when_asked(trainer):
    [outcome] = [execute(trainer, a) for a in parse_script("test")]
    assert outcome.summary.startswith(f"test at step 0: {trainer.split_loss('test'):.4f}") and trainer.evals == []


def test_snapshot_and_restore_in_a_script(trainer):
    outputs = [execute(trainer, a).summary for a in parse_script("run 100; snapshot good; lr 2; run 300; restore good")]
    assert outputs[1].startswith("snapshot good: step 100") and outputs[4] == "restore good: back to step 100, lr exponent -1"
    assert trainer.step == 100 == len(trainer.history) and trainer.lr_exponent == -1


def test_snapshots_are_bounded_and_named_sensibly(trainer):
    from core.errors import ConfigError
    from core.ranges import MAX_SNAPSHOTS

    for i in range(MAX_SNAPSHOTS + 3):
        trainer.take_snapshot(f"s{i}")
    assert [s.name for s in trainer.snapshots] == [f"s{i}" for i in range(3, MAX_SNAPSHOTS + 3)]
    trainer.take_snapshot("s5")  # the same name replaces the old one
    assert [s.name for s in trainer.snapshots].count("s5") == 1 and trainer.snapshots[-1].name == "s5"
    with pytest.raises(ConfigError, match="no snapshot named 'nope'"):
        trainer.restore_snapshot("nope")


def test_a_sweep_from_a_trained_model_says_why_it_suggests_nothing(small_file, headless):
    code, out, err = headless("--data", str(small_file), "--script", "sweep; run 5000; sweep", "--json")
    assert code == 0, err
    first, second = [line for line in out.splitlines() if line.startswith("sweep:")]
    assert "suggested lr exponent -" in first  # from init: the left edge of the basin
    assert "suggested lr exponent none (the loss is flat from the sweep's start" in second
