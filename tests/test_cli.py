"""The command line as a user runs it: a real process, its output and exit code."""

import json
import subprocess
import sys


from conftest import REPO


def charmlp(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "tui", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def test_headless_json_summary(small_file):
    out = charmlp("--headless", "--data", str(small_file), "--script", "sweep -3 0 100 --repeats 3; run 500; decay; run 200; eval; sample 3", "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["params"] == 3481 - 27 * 2 - 27 - 100 * 27 + summary["vocab_size"] * (2 + 1 + 100)
    assert summary["step"] == 700 and summary["lr_exponent"] == -2
    assert set(summary["examples"]) == {"train", "dev", "test"}
    assert summary["loss"]["train"] < 3.3 and summary["loss"]["dev"] < 3.5
    assert len(summary["samples"]) == 3 and summary["steps_per_s"] > 0
    assert summary["sweep"]["suggested_exponent"] is not None and len(summary["sweep"]["points"]) > 10
    assert summary["sweep"]["repeats"] == 3 and len(summary["sweep"]["suggestions"]) == 3


def test_lecture_recipe_beats_the_bigram(lecture_names):
    out = charmlp("--headless", "--data", str(lecture_names), "--script", "run 20000; decay; run 10000; eval", "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["examples"] == {"train": 182625, "dev": 22655, "test": 22866}
    assert summary["params"] == 3481
    assert summary["loss"]["train"] < 2.45 and summary["loss"]["dev"] < 2.45


def test_help_explains_every_flag():
    out = charmlp("--help")
    assert out.returncode == 0
    for flag in ["--data", "--block-size", "--emb-dim", "--hidden", "--batch-size", "--seed", "--split", "--lr-exp",
                 "--load", "--headless", "--script", "--json", "sweep [START END STEPS]"]:
        assert flag in out.stdout
