"""`charmlp-tui runs …`: list, show, export, rm and rename the kept runs, as a user runs them."""

from __future__ import annotations

import csv
import io
import json
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from core.store import RunStore

ESC_NAME = "evil\x1b[31mred"


def charmlp(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def one_line_error(out: subprocess.CompletedProcess | tuple[int, str, str], code: int = 2) -> str:
    if isinstance(out, subprocess.CompletedProcess):
        out = (out.returncode, out.stdout, out.stderr)
    rc, stdout, stderr = out
    assert rc == code, (rc, stdout, stderr)
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert stderr.startswith("charmlp-tui"), stderr
    return stderr


@pytest.fixture(scope="module")
def kept(tmp_path_factory) -> Path:
    """A store holding two real headless runs: 'plain' (never evaluated) and 'evald' (evaluated twice, its
    test loss looked at); made once, copied by `db` for each test."""
    from core.words import load_words

    folder = tmp_path_factory.mktemp("kept")
    words = folder / "names.txt"
    words.write_text("\n".join(load_words(None)[:300]) + "\n", encoding="utf-8")
    db = folder / "runs.db"
    for name, script in (("plain", "run 200"), ("evald", "run 200; eval; lr -1.5; run 100; eval; test")):
        out = charmlp("--headless", "--no-compile", "--data", str(words), "--runs-db", str(db), "--run", name,
                      "--hidden", "20", "--script", script)
        assert out.returncode == 0, out.stderr
    return db


@pytest.fixture
def db(kept: Path, tmp_path: Path) -> Path:
    for suffix in ("", "-wal"):
        if Path(f"{kept}{suffix}").exists():
            shutil.copy(f"{kept}{suffix}", tmp_path / f"runs.db{suffix}")
    return tmp_path / "runs.db"


@pytest.fixture
def runs(capsys):
    """charmlp-tui runs ARGS… in this process: (exit code, stdout, stderr)."""
    from tui.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        try:
            code = main(["runs", *args])
        except SystemExit as e:  # argparse: --help or a bad flag
            code = e.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


def strict_json(text: str) -> object:
    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in the JSON")

    return json.loads(text, parse_constant=refuse)


# ---- list --------------------------------------------------------------------------------------
def test_list_of_a_store_that_does_not_exist_says_so_and_creates_nothing(runs, tmp_path):
    path = tmp_path / "sub" / "runs.db"
    code, out, err = runs("list", "--runs-db", str(path))
    assert code == 0 and err == ""
    assert out.splitlines()[0].split() == ["name", "shape", "params", "steps", "train", "dev", "best", "time",
                                           "schedule"]
    assert "no runs yet" in out and str(path) in out
    assert runs("list", "--json", "--runs-db", str(path))[:2] == (0, "[]\n")
    assert runs("export", "--runs-db", str(path))[:2] == (0, '{"runs": []}\n')
    assert not path.exists() and not path.parent.exists()


def test_list_table_and_json(runs, db):
    code, out, err = runs("list", "--runs-db", str(db))
    assert code == 0 and err == "", err
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["name", "shape", "params", "steps"] and "test" in lines[0]
    plain = next(line for line in lines if line.startswith("plain "))
    evald = next(line for line in lines if line.startswith("evald "))
    assert "3/2/20" in plain and " 200 " in plain and "seen" not in plain and "-1×200" in plain
    assert " 300 " in evald and "seen" in evald and "-1×200, -1.5×100" in evald
    assert "never by test" in lines[-1]
    assert all(len(line) < 80 for line in lines[:3])

    code, out, err = runs("list", "--json", "--runs-db", str(db))
    assert code == 0 and len(out.splitlines()) == 1
    items = strict_json(out)
    assert [r["name"] for r in items] == ["plain", "evald"]
    plain, evald = items
    for key in ("name", "params", "steps", "train_loss", "dev_loss", "best_dev_loss", "schedule", "argv",
                "test_loss"):
        assert key in plain and key in evald
    assert plain["dev_loss"] is None and plain["best_dev_loss"] is None and plain["steps"] == 200
    assert isinstance(evald["dev_loss"], float) and evald["best_dev_loss"] <= evald["dev_loss"] + 1e-12
    assert evald["steps"] == 300 and evald["test_loss"] is not None and plain["test_loss"] is None
    assert plain["params"] == evald["params"] == 27 * 2 + 6 * 20 + 20 + 20 * 27 + 27


def test_runs_list_needs_neither_torch_nor_textual(kept):
    code = ("import sys; from tui.cli import main; code = main(['runs', 'list', '--runs-db', sys.argv[1]]); "
            "assert not {'torch', 'textual'} & set(sys.modules), sorted(sys.modules); sys.exit(code)")
    out = subprocess.run([sys.executable, "-c", code, str(kept)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "evald" in out.stdout, out.stderr


# ---- show --------------------------------------------------------------------------------------
def test_show_tells_everything_and_its_script_rebuilds_the_run(runs, db, tmp_path):
    code, out, err = runs("show", "evald", "--runs-db", str(db))
    assert code == 0 and err == "", err
    for part in ("run evald", "block 3, emb 2, hidden 20", "split     0.8,0.1,0.1", "batch     32",
                 "-1×200, -1.5×100", "looked at", "steps/s", "created", "--hidden 20", "--script-file FILE",
                 f"--resume evald --runs-db {db}", "  lr -1.5", "evaluations", "      200  ", "      300  "):
        assert part in out, part
    rebuild = next(line for line in out.splitlines() if line.startswith("  charmlp-tui --headless"))
    argv = shlex.split(rebuild)[2:-2]

    code, script, _ = runs("show", "evald", "--script", "--runs-db", str(db))
    assert code == 0 and script.splitlines()[-1] == "test" and "run 200" in script
    path = tmp_path / "evald.script"
    path.write_text(script, encoding="utf-8")
    replay = charmlp("--headless", "--no-compile", "--no-runs", *argv, "--script-file", str(path), "--json")
    assert replay.returncode == 0, replay.stderr
    summary = json.loads(replay.stdout.splitlines()[-1])
    stored = strict_json(runs("list", "--json", "--runs-db", str(db))[1])[1]
    assert summary["step"] == stored["steps"] == 300
    assert summary["loss"]["dev"] == pytest.approx(stored["dev_loss"], abs=1e-6)

    code, out, _ = runs("show", "plain", "--runs-db", str(db))
    assert "not evaluated yet" in out and "not looked at" in out and "none yet" in out


def test_show_an_unknown_run_is_one_line(runs, db, tmp_path):
    err = one_line_error(runs("show", "nope", "--runs-db", str(db)))
    assert "no run named 'nope'" in err and "evald" in err
    missing = tmp_path / "none.db"
    assert "there are no runs yet" in one_line_error(runs("show", "nope", "--runs-db", str(missing)))
    assert not missing.exists()


# ---- export ------------------------------------------------------------------------------------
def test_export_json_and_csv(runs, db):
    code, out, err = runs("export", "--runs-db", str(db))
    assert code == 0 and err == ""
    exported = strict_json(out)["runs"]
    assert [r["name"] for r in exported] == ["plain", "evald"]
    assert exported[0]["evals"] == [] and exported[0]["script"].splitlines()[-1] == "run 200"
    assert [e[0] for e in exported[1]["evals"]] == [200, 300]
    assert exported[1]["evals"][-1][2] == pytest.approx(exported[1]["dev_loss"])
    assert exported[1]["params"] == exported[0]["params"] and "argv" in exported[1]

    code, out, err = runs("export", "--csv", "--runs-db", str(db), "evald", "plain")
    assert code == 0 and err == ""
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["name", "block", "emb", "hidden", "init", "params", "batch", "init_seed", "batch_seed",
                             "step", "train", "dev"]
    assert [(r["name"], r["step"]) for r in rows] == [("evald", "200"), ("evald", "300"), ("plain", "")]
    assert float(rows[1]["dev"]) == pytest.approx(exported[1]["dev_loss"])
    assert rows[2]["train"] == rows[2]["dev"] == "" and rows[2]["hidden"] == "20" and rows[2]["batch"] == "32"
    assert {r["init"] for r in rows} == {"lecture"}


def test_export_to_a_file_is_refused_over_an_existing_one_without_force(runs, db, tmp_path):
    target = tmp_path / "runs.csv"
    code, out, err = runs("export", "--output", str(target), "--runs-db", str(db))  # .csv: CSV
    assert code == 0 and out == "" and "exported 2 runs" in err
    assert target.read_text().startswith("name,block,")
    target.write_text("mine\n")
    assert "already exists" in one_line_error(runs("export", "-o", str(target), "--runs-db", str(db)))
    assert target.read_text() == "mine\n"
    assert runs("export", "--json", "-o", str(target), "--force", "--runs-db", str(db), "plain")[0] == 0
    assert [r["name"] for r in strict_json(target.read_text())["runs"]] == ["plain"]
    assert "is the run store" in one_line_error(runs("export", "-o", str(db), "--force", "--runs-db", str(db)))
    nowhere = tmp_path / "no" / "x.json"
    assert "does not exist" in one_line_error(runs("export", "-o", str(nowhere), "--runs-db", str(db)))
    assert "no run named 'nope'" in one_line_error(runs("export", "--runs-db", str(db), "plain", "nope"))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary file left


# ---- rm, rename --------------------------------------------------------------------------------
def test_rm_and_rename(runs, db):
    assert "no run named 'nope'" in one_line_error(runs("rm", "plain", "nope", "--runs-db", str(db)))
    assert [r.name for r in RunStore(db).runs()] == ["plain", "evald"]  # nothing removed: every name is checked first
    code, out, err = runs("rm", "plain", "--runs-db", str(db))
    assert code == 0 and out == "removed run plain (200 steps)\n" and err == ""
    assert "no run named 'plain'" in one_line_error(runs("show", "plain", "--runs-db", str(db)))
    assert [r["name"] for r in strict_json(runs("list", "--json", "--runs-db", str(db))[1])] == ["evald"]

    assert runs("rename", "evald", "best", "--runs-db", str(db))[:2] == (0, "renamed run evald to best\n")
    assert "NEW is 1 to 60" in one_line_error(runs("rename", "best", "two words", "--runs-db", str(db)))
    assert "no run named 'evald'" in one_line_error(runs("rename", "evald", "x", "--runs-db", str(db)))
    assert [r.name for r in RunStore(db).runs()] == ["best"]


def test_rm_refuses_a_run_another_live_process_trains(runs, db):
    with sqlite3.connect(db) as con:  # pid 1 (init) is alive on this host
        con.execute("UPDATE runs SET writer = ? WHERE name = 'plain'", (f"{__import__('socket').gethostname()}:1",))
    assert "being trained by another charmlp-tui" in one_line_error(runs("rm", "plain", "--runs-db", str(db)))
    assert [r.name for r in RunStore(db).runs()] == ["plain", "evald"]


# ---- faults ------------------------------------------------------------------------------------
def test_a_closed_pipe_ends_quietly(kept, tmp_path):
    db = tmp_path / "many.db"
    shutil.copy(kept, db)
    with sqlite3.connect(db) as con:  # some 300 KB of table: more than a pipe holds, so `head -1` closes it early
        columns = [r[1] for r in con.execute("PRAGMA table_info(runs)") if r[1] not in ("id", "name")]
        con.executemany(f"INSERT INTO runs (name, {', '.join(columns)}) SELECT ?, {', '.join(columns)} FROM runs "
                        "WHERE name = 'evald'", [(f"copy{k}",) for k in range(4000)])
    err = tmp_path / "err.txt"
    shell = (f"{shlex.quote(sys.executable)} -m tui runs list --runs-db {shlex.quote(str(db))} "
             f"2>{shlex.quote(str(err))} | head -1; echo ${{PIPESTATUS[0]}}")
    out = subprocess.run(["bash", "-c", shell], cwd=REPO, capture_output=True, text=True, timeout=60)
    first, status = out.stdout.splitlines()
    assert first.startswith("name ") and status == "141" and err.read_text() == ""


def test_a_damaged_or_newer_store_is_one_line(runs, db, tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not sqlite at all, just some bytes " * 200)
    for command in (["list"], ["list", "--json"], ["show", "x"], ["export"], ["rm", "x"]):
        assert "not a charmlp-tui runs database, or damaged" in one_line_error(runs(*command, "--runs-db", str(bad)))
    out = charmlp("runs", "list", "--runs-db", str(bad))
    assert "damaged" in one_line_error(out)
    assert "is a directory" in one_line_error(runs("list", "--runs-db", str(tmp_path)))
    with sqlite3.connect(db) as con:
        con.execute("PRAGMA user_version = 99")
    assert "written by a newer charmlp-tui" in one_line_error(runs("list", "--runs-db", str(db)))


def test_a_name_and_path_with_control_characters_are_printed_escaped(runs, db):
    with sqlite3.connect(db) as con:
        con.execute("UPDATE runs SET name = ?, data_source = ?, data_path = ?, script = ?, dev_loss = ? "
                    "WHERE name = 'evald'",
                    (ESC_NAME, "/tmp/\x1b]0;title\x07", "/tmp/\x1b]0;title\x07", "run 1\n\x1b[2J", float("inf")))
    shown = "evil\\x1b[31mred"
    for args in (["list"], ["show", ESC_NAME], ["show", ESC_NAME, "--script"], ["export", "--csv"]):
        code, out, err = runs(*args, "--runs-db", str(db))
        assert code == 0 and err == "", (args, err)
        assert "\x1b" not in out and "\x07" not in out, args
        assert (shown in out) or args[-1] == "--script", args
    assert "\\x1b[2J" in runs("show", ESC_NAME, "--script", "--runs-db", str(db))[1]
    assert "\\x1b]0;title\\x07" in runs("show", ESC_NAME, "--runs-db", str(db))[1]
    code, out, _ = runs("list", "--json", "--runs-db", str(db))
    assert "\x1b" not in out and strict_json(out)[1]["name"] == ESC_NAME  # JSON escapes it, and keeps it
    assert strict_json(out)[1]["dev_loss"] is None  # Infinity is no JSON: null
    err = one_line_error(runs("show", "nope", "--runs-db", str(db)))
    assert "\x1b" not in err and shown in err  # the hint names the latest runs
    assert runs("rm", ESC_NAME, "--runs-db", str(db))[0] == 0
    assert [r.name for r in RunStore(db).runs()] == ["plain"]


def test_help_explains_every_flag(runs):
    code, out, _ = runs("--help")
    assert code == 0
    for word in ("list", "show", "export", "rm", "rename", "--runs-db"):
        assert word in out
    flags = {"list": ["--json", "--runs-db"], "show": ["NAME", "--script", "--runs-db"],
             "export": ["--csv", "--json", "--output", "--force", "NAME", "--runs-db", "step,train,dev"],
             "rm": ["NAME", "--runs-db"], "rename": ["NAME", "NEW", "--runs-db"]}
    for command, words in flags.items():
        code, out, _ = runs(command, "--help")
        assert code == 0 and out.startswith(f"usage: charmlp-tui runs {command}"), out
        for word in words:
            assert word in out, (command, word)
    assert "charmlp-tui runs --help" in charmlp("--help").stdout
    err = one_line_error(runs("lst"))
    assert "invalid choice: 'lst'" in err and "see charmlp-tui runs --help" in err
    assert "required" in one_line_error(runs())
