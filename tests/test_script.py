import pytest

from core.errors import ScriptError
from core.actions import Action, parse_script
from core.script import execute


def test_parses_the_issue_example():
    actions = parse_script("sweep; lr -1; run 20000; decay; run 10000; eval; sample 10")
    assert actions == [Action("sweep"), Action("lr", (-1.0,)), Action("run", (20000,)), Action("decay"),
                       Action("run", (10000,)), Action("eval"), Action("sample", (10,))]


def test_lines_comments_and_arguments():
    actions = parse_script("# warm up\nrun 1e3\nsweep -2 0.5 300 ; decay 3\nsave out.pt  # done")
    assert actions == [Action("run", (1000,)), Action("sweep", (-2.0, 0.5, 300)), Action("decay", (3.0,)),
                       Action("save", ("out.pt",))]
    assert [str(a) for a in actions] == ["run 1000", "sweep -2 0.5 300", "decay 3", "save out.pt"]


@pytest.mark.parametrize(
    ("script", "named"),
    [
        ("run 10; jump 3", "action 2 'jump 3': unknown action"),
        ("run -5", "action 1 'run -5'"),
        ("run 1e12", "action 1 'run 1e12'"),
        ("run 2.5", "action 1"),
        ("lr nan", "action 1 'lr nan'"),
        ("lr 7", "action 1 'lr 7'"),
        ("decay 0", "action 1 'decay 0'"),
        ("sweep 0 -3 100", "START must be below END"),
        ("sweep -3 0", "expected 'sweep [START END STEPS]'"),
        ("sample 0", "action 1 'sample 0'"),
        ("save", "expected 'save PATH'"),
        ("  ;  # nothing", "no actions"),
    ],
)
def test_bad_scripts_are_refused_naming_the_action(script, named):
    with pytest.raises(ScriptError) as err:
        parse_script(script)
    assert named in str(err.value)


def test_execute_reports_each_action(trainer, tmp_path):
    outputs = [execute(trainer, a).summary for a in parse_script(f"run 100; decay; eval; sample 3; save {tmp_path}/m.pt")]
    assert outputs[0].startswith("run 100: step 100") and "exponent -2" in outputs[1]
    assert outputs[2].startswith("eval at step 100: train") and len(outputs[3].split()) == 4
    assert (tmp_path / "m.pt").exists()
