"""`charmlp-tui tune` refuses a storage it cannot use in one line, before anything is made.

Each bad `--storage` (not a URL, an unknown scheme, a PostgreSQL server that refuses, a SQLite file
where no folder can be made, a URL with a password that must not be shown) and `--worker` for a
study that does not exist: exit code 2, exactly one line on stderr (`charmlp-tui: error: …`),
nothing on stdout, no run in the run store, and no studies file left where there was none.
Each command runs as the user types it (a real process), with a scratch data folder and --runs-db.
And the other way round: workers started together on a new storage all open it.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, failures_at_once
from core.search_storage import STUDIES_FILE, open_storage
from test_search_kill import tune_env

PASSWORD = "s3cret-Pw0rd"

BAD = {
    "not a URL": ["--storage", "not-a-url"],
    "unknown scheme": ["--storage", "foo://bar"],
    "server refuses": ["--storage", "postgresql://nobody@127.0.0.1:1/db"],
    "no folder can be made": ["--storage", "sqlite:////proc/nope/x.db"],
    "password, server refuses": ["--storage", f"postgresql://nobody:{PASSWORD}@127.0.0.1:1/db"],
    "password, bad port": ["--storage", f"postgresql://nobody:{PASSWORD}@127.0.0.1:notaport/db"],
    "worker, no such study": ["--worker", "--study", "missing"],
    "empty": ["--storage", ""],
    "in memory": ["--storage", "sqlite://"],
    "in memory, named": ["--storage", "sqlite:///:memory:"],
}


def runs_in(db: Path) -> int:
    """How many runs the store holds (0 when there is no store)."""
    if not db.exists():
        return 0
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as c:
        try:
            return int(c.execute("SELECT count(*) FROM runs").fetchone()[0])
        except sqlite3.OperationalError:  # a file with no tables
            return 0


@pytest.mark.parametrize("args", BAD.values(), ids=BAD.keys())
def test_a_storage_that_cannot_be_used_is_one_line_and_nothing_made(args, tmp_path, small_file):
    runs = tmp_path / "store" / "runs.db"
    done = subprocess.run([sys.executable, "-m", "tui", "tune", *args, "--trials", "1", "--steps", "600",
                           "--data", str(small_file), "--runs-db", str(runs)],
                          cwd=REPO, capture_output=True, text=True, timeout=120, env=tune_env(tmp_path))
    shown = f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert done.returncode == 2, shown
    assert done.stdout == "", shown
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("charmlp-tui: error: ") and lines[0].isprintable(), shown
    assert PASSWORD not in done.stdout + done.stderr, shown
    assert runs_in(runs) == 0, shown
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob(f"{STUDIES_FILE}*"))
    assert left == [], f"studies file(s) left where there were none: {left}\n{shown}"


def test_a_storage_lost_mid_search_is_one_line_and_the_trial_run_kept(tmp_path, small_file):
    """The study's SQLite file removed while a trial trains: one line, exit 2, the trial's run saved."""
    import time

    studies, runs = tmp_path / "s.db", tmp_path / "runs.db"
    proc = subprocess.Popen([sys.executable, "-m", "tui", "tune", "--storage", f"sqlite:///{studies}",
                             "--steps", "5000000", "--data", str(small_file), "--runs-db", str(runs)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=tune_env(tmp_path))
    try:
        deadline = time.monotonic() + 60
        while runs_in(runs) == 0 and time.monotonic() < deadline:
            time.sleep(0.3)
        studies.unlink()
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 2 and stdout == "", stderr
    [line] = [x for x in stderr.splitlines() if x.startswith("charmlp-tui:")]
    assert "the study's storage" in line and "failed: attempt to write a readonly database" in line
    assert "Traceback" not in stderr and runs_in(runs) == 1


def test_workers_opening_one_new_storage_at_once_all_open_it(tmp_path):
    """Optuna makes a new storage's tables in each process that opens it: two `tune` started
    together on a fresh machine made one fail with "table studies already exists"."""
    assert failures_at_once(lambda round_: open_storage(None, tmp_path / str(round_) / "runs.db"), 20) == []
