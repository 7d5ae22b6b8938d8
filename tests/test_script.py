
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


def test_execute_reports_each_action(trainer, tmp_path):
    outputs = [execute(trainer, a).summary for a in parse_script(f"run 100; decay; eval; sample 3; save {tmp_path}/m.pt")]
    assert outputs[0].startswith("run 100: step 100") and "exponent -2" in outputs[1]
    assert outputs[2].startswith("eval at step 100: train") and len(outputs[3].split()) == 4
    assert (tmp_path / "m.pt").exists()
