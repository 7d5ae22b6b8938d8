"""The run store across real processes: a run killed with SIGKILL, two writers at once, exact resume
in a new process, snapshots kept from one process to the next, a read-only file or folder (as
another user: root writes anything), a file size limit (the disk full, as the process sees it).

Each command is `python -m tui --headless --no-compile ...` with its store in tmp_path (--runs-db);
what the store holds afterwards is read straight from the file (sqlite3, core.run_blobs.read_state).
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from conftest import REPO
from store_helpers import stored
from core.keeping import FLUSH_INTERVAL_S
from core.state import TrainingState

CLI = [sys.executable, "-m", "tui", "--headless", "--no-compile"]


def charmlp(*args: str, prefix: tuple[str, ...] = (), **kwargs) -> tuple[int, str, str]:
    out = subprocess.run([*prefix, *CLI, *args], cwd=REPO, capture_output=True, text=True, timeout=120, **kwargs)
    return out.returncode, out.stdout, out.stderr


def in_this_process(*args: str) -> tuple[int, str, str]:
    """The same command in this process (quicker, for a store a test starts from)."""
    from tui.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--headless", "--no-compile", *args])
    return code, out.getvalue(), err.getvalue()


def start(*args: str, prefix: tuple[str, ...] = (), **kwargs) -> subprocess.Popen:
    return subprocess.Popen([*prefix, *CLI, *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err and lines[0].isprintable(), err
    return lines[0]


def same_state(a: TrainingState, b: TrainingState) -> bool:
    """Bit for bit: parameters, step, learning rate, history, evaluations, minibatch stream, diagnostics."""
    return (a.step == b.step and a.lr_exponent == b.lr_exponent and a.evals == b.evals
            and all(torch.equal(x, y) for x, y in zip(a.params.tensors(), b.params.tensors(), strict=True))
            and torch.equal(a.history_lr, b.history_lr) and torch.equal(a.history_loss, b.history_loss)
            and torch.equal(a.batch_rng, b.batch_rng) and torch.equal(a.diagnostics, b.diagnostics))


def integrity(db: Path) -> str:
    with contextlib.closing(sqlite3.connect(db)) as c:
        return str(c.execute("PRAGMA integrity_check").fetchone()[0])


def saved_steps(db: Path, name: str) -> int:
    """The steps the runs row says are saved (0 while the store or the run is not there yet)."""
    if not db.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as c:
            row = c.execute("SELECT steps FROM runs WHERE name = ?", (name,)).fetchone()
    except sqlite3.OperationalError:  # no tables yet
        return 0
    return int(row[0]) if row else 0


def wait_for(what: Callable[[], bool], proc: subprocess.Popen, seconds: float = 60) -> None:
    end = time.monotonic() + seconds
    while not what():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


# ---- 2. kill -9 in the middle of a run -------------------------------------------------------------
def test_a_run_killed_with_sigkill_is_whole_recent_and_resumes(small_file, tmp_path):
    db = tmp_path / "runs.db"
    proc = start("--data", str(small_file), "--runs-db", str(db), "--run", "c", "--script", "run 100000000")
    try:
        wait_for(lambda: saved_steps(db, "c") > 0, proc)  # the first save of its steps (after FLUSH_INTERVAL_S)
        first = saved_steps(db, "c")
        time.sleep(FLUSH_INTERVAL_S / 2)  # killed between two saves
    finally:
        proc.kill()
        proc.wait(30)
    killed_at = time.time()
    assert proc.returncode == -9

    assert integrity(db) == "ok"
    run, state = stored(db, "c")  # the state and history one transaction saved: they agree
    assert run.steps == state.step == len(state.history_loss) == len(state.history_lr) >= first > 0
    assert killed_at - run.updated < FLUSH_INTERVAL_S + 2.0, "the last save is older than the save interval"
    assert run.writer == f"{socket.gethostname()}:{proc.pid}"  # a dead process's: resumable

    resumed = start("--runs-db", str(db), "--resume", "c", "--script", "run 1000")
    again = start("--data", str(small_file), "--runs-db", str(db), "--run", "fresh", "--script", f"run {state.step}")
    code, out, err = finish(resumed)
    assert code == 0 and f"resumed run 'c' at step {state.step:,}" in err, err
    assert f"final: step {state.step + 1000}" in out
    assert finish(again)[0] == 0
    assert same_state(stored(db, "fresh")[1], state), "the killed run's state is not the one its steps make"
    run, state = stored(db, "c")
    assert run.steps == state.step == len(state.history_loss) and run.writer is None


# ---- 3. two writers at once ------------------------------------------------------------------------
APP_LIKE_WRITER = """
import sys
from pathlib import Path
import core.keeping as keeping
from core.config import DataConfig, ModelConfig, TrainConfig
from core.session import open_session

keeping.FLUSH_INTERVAL_S = 0.0  # a save after every chunk: as many transactions as it can make
trainer, keeper, lines = open_session(DataConfig(path=Path(sys.argv[1])), ModelConfig(), TrainConfig(), None,
                                     True, Path(sys.argv[2]), "app", None, lambda *a: [])
assert not lines, lines
for _ in range(int(sys.argv[3])):
    trainer.run(200)
    line = keeper.on_chunk(trainer, 0.0)
    assert line is None, line
assert keeper.close(trainer) is None
print(trainer.step)
"""


def test_two_headless_writers_and_an_app_like_one_lose_nothing(small_file, tmp_path):
    db = tmp_path / "runs.db"  # not there yet: all three create and migrate it at once
    procs = [start("--data", str(small_file), "--runs-db", str(db), "--run", name, "--script", "run 30000")
             for name in ("a", "b")]
    app = subprocess.Popen([sys.executable, "-c", APP_LIKE_WRITER, str(small_file), str(db), "60"], cwd=REPO,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for proc in procs:
        code, out, err = finish(proc)
        assert code == 0 and "final: step 30000" in out and "runs are" not in err, err
    code, out, err = finish(app)
    assert code == 0 and out.strip() == "12000", err

    assert integrity(db) == "ok"
    for name, steps in (("a", 30000), ("b", 30000), ("app", 12000)):
        run, state = stored(db, name)
        assert run.steps == state.step == len(state.history_loss) == steps and run.writer is None
    assert same_state(stored(db, "a")[1], stored(db, "b")[1])  # same seeds, same steps: same run


# ---- 5. exact resume, 7. snapshots -----------------------------------------------------------------
FIRST = "run 1000; lr -1.5; run 1000; snapshot s; run 1000"


def test_a_resumed_run_is_the_run_that_never_stopped(small_file, tmp_path):
    db = tmp_path / "runs.db"
    stopped = start("--data", str(small_file), "--runs-db", str(db), "--run", "c", "--script", FIRST)
    whole = start("--data", str(small_file), "--runs-db", str(db), "--run", "u", "--script", f"{FIRST}; run 2000")
    code, _, err = finish(stopped)
    assert code == 0 and "saved: " not in err, err  # keeping never turned off
    assert stored(db, "c")[1].step == 3000
    code, out, err = charmlp("--runs-db", str(db), "--resume", "c", "--script", "run 2000")
    assert code == 0 and "final: step 5000" in out, err
    code, _, err = finish(whole)
    assert code == 0 and "saved: " not in err, err  # keeping never turned off
    (run_c, c), (run_u, u) = stored(db, "c"), stored(db, "u")
    assert c.step == 5000 and c.lr_exponent == -1.5 and same_state(c, u)
    assert [int(s) for s in c.diagnostics[:, 0]] == [1000, 2000, 3000, 4000, 5000]  # before and after the stop
    assert run_c.schedule == run_u.schedule == "-1×1k, -1.5×4k"

    code, out, err = charmlp("--runs-db", str(db), "--resume", "c", "--script", "restore s; run 1000")
    assert code == 0 and "restore s: back to step 2000" in out and "final: step 3000" in out, err
    code, out, err = charmlp("--runs-db", str(db), "--resume", "u", "--script", "restore s; run 1000")
    assert code == 0 and "final: step 3000" in out, err
    assert same_state(stored(db, "c")[1], stored(db, "u")[1])


# ---- 4. read-only: a file, a folder ----------------------------------------------------------------
NOBODY = 65534


@pytest.fixture
def as_another_user(tmp_path) -> Iterator[tuple[Path, tuple[str, ...], Callable[[Path], None]]]:
    """(a folder that user can read, the command prefix that runs as that user, give(path): make a
    path theirs). Root writes any file whatever its mode, so as root the commands run as nobody."""
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: a read-only file cannot be made")
        prefix: tuple[str, ...] = (setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--")

        def give(path: Path) -> None:
            os.chown(path, NOBODY, NOBODY)
    else:
        prefix = ()

        def give(path: Path) -> None:
            pass
    folder = Path(tempfile.mkdtemp(prefix="charmlp-ro-"))  # tmp_path's parents are closed to other users
    folder.chmod(0o755)
    try:
        yield folder, prefix, give
    finally:
        for path in folder.rglob("*"):
            if path.is_dir():
                path.chmod(0o755)
        shutil.rmtree(folder)


def test_a_read_only_file_or_folder_is_one_line(as_another_user, small_file, tmp_path):
    folder, prefix, give = as_another_user
    words = folder / "names.txt"
    shutil.copy(small_file, words)
    words.chmod(0o644)
    made = tmp_path / "runs.db"
    assert in_this_process("--data", str(words), "--runs-db", str(made), "--run", "c", "--script", "run 300")[0] == 0

    ro_file = folder / "ro-file"  # a folder they may write, a database they may not
    ro_file.mkdir()
    give(ro_file)
    ro_folder = folder / "ro-folder"  # a database they may write, in a folder they may not
    ro_folder.mkdir()
    for db, owner in ((ro_file / "runs.db", None), (ro_folder / "runs.db", give)):
        db.write_bytes(made.read_bytes())
        db.chmod(0o644 if owner else 0o444)
        if owner:
            owner(db)
    ro_folder.chmod(0o555)

    cases = [(ro_file / "runs.db", "read-only (no permission to write it or its folder)"),
             (ro_folder / "runs.db", "read-only (no permission to write it or its folder)"),
             (ro_folder / "new.db", "cannot be made: its folder is read-only")]
    before = {db: db.read_bytes() if db.exists() else None for db, _ in cases}
    names = {folder: {p.name for p in folder.iterdir()} for folder in (ro_file, ro_folder)}
    resumes = [start("--runs-db", str(db), "--resume", "c", "--script", "run 10", prefix=prefix) for db, _ in cases]
    plain = [start("--data", str(words), "--runs-db", str(db), "--run", "n", "--script", "run 10", prefix=prefix)
             for db, _ in cases]
    for (db, expected), resume, run in zip(cases, resumes, plain):
        code, out, err = finish(resume)
        assert code == 2 and out == "" and expected in one_line(err), (db, err)
        code, out, err = finish(run)
        assert code == 0 and "final: step 10" in out and "Traceback" not in err, err
        assert expected in next(line for line in err.splitlines() if "runs are not saved" in line or
                                "runs are no longer saved" in line), err
        assert (db.read_bytes() if db.exists() else None) == before[db]
    for folder, had in names.items():  # SQLite may leave a read-only database's -wal and -shm, nothing else
        assert {p.name for p in folder.iterdir()} - had <= {"runs.db-wal", "runs.db-shm"}


# ---- 8. the disk full (a file size limit) ----------------------------------------------------------
def test_a_file_size_limit_stops_keeping_and_training_goes_on(small_file, tmp_path):
    """RLIMIT_FSIZE: a write past it fails with EFBIG (Python ignores SIGXFSZ), as a full disk's does."""
    db = tmp_path / "runs.db"
    limit = 160 * 1024  # the store is made and the run's first save fits; the first save of a run's steps does not

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    code, out, err = charmlp("--data", str(small_file), "--runs-db", str(db), "--run", "c", "--script",
                             "run 50000; run 20000; eval", preexec_fn=small_files)
    assert code == 0 and "final: step 70000" in out and "Traceback" not in err, err
    line = next(line for line in err.splitlines() if "no longer saved" in line)
    assert "cannot save the run: the disk refused a write" in line and "training goes on" in line, line
    assert integrity(db) == "ok"
    run, state = stored(db, "c")
    assert run.steps == state.step == len(state.history_loss) < 50000
    assert charmlp("--runs-db", str(db), "--resume", "c", "--script", "run 100")[0] == 0
