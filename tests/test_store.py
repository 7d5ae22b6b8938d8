"""The run store (core.store) in this process: its schema and migrations, databases that cannot be
used, stored states that lie, snapshots kept across sessions, a database locked too long.

Conventions, as the fault suite's: a store that cannot be used is one clear line and never a
traceback. `--resume` asked for that run, so it is refused (exit 2) and the database is left byte
for byte as it was; a plain headless run trains on (exit 0) and says runs are not saved. Each test
keeps its store in tmp_path (--runs-db). Real processes (kill -9, two writers, read-only files
as another user, a full disk, exact resume across processes) are in tests/test_store_processes.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from store_helpers import stored

import core.keeping
import core.store
from conftest import deadline, failures_at_once
from core.config import DataConfig, ModelConfig, TrainConfig
from core.diagnose import COLUMNS
from core.errors import CharMLPError, StoreError
from core.session import open_session
from core.run_blobs import read_state
from core.store import MIGRATIONS, SCHEMA_VERSION, History, RunStore
from core.words import load_words
from tui.cli import main


# ---- helpers ---------------------------------------------------------------------------------------
def one_clear_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in text, text
    assert lines[0].isprintable(), repr(lines[0])
    return lines[0]


def store_line(err: str, words: str) -> str:
    """The line of a headless run's stderr that says why runs are not saved (one, no traceback)."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if words in line]
    assert lines, err
    return lines[0]


def same(a, b) -> bool:
    """Two Params bit for bit."""
    return all(torch.equal(x, y) for x, y in zip(a.tensors(), b.tensors(), strict=True))


def fingerprint(db: Path) -> tuple[bytes, list[str]]:
    """The database's bytes and what its folder holds (no -wal, -shm or journal left behind)."""
    return db.read_bytes(), sorted(p.name for p in db.parent.iterdir())


def run_main(*args: str) -> tuple[int, str, str]:
    """charmlp-tui --headless --no-compile in this process, outside any fixture (module-scoped setup)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--headless", "--no-compile", *args])
    return code, out.getvalue(), err.getvalue()


def sql(db: Path, statement: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as c:
        return list(c.execute(statement, args))


BASE_SCRIPT = "run 300; eval; snapshot s; lr -1.5; run 300; eval"


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> tuple[Path, Path]:
    """(words file, a store holding run 'c': two runs, two evaluations, a snapshot), made once."""
    folder = tmp_path_factory.mktemp("base")
    words = folder / "names.txt"
    words.write_text("\n".join(load_words(None)[:300]) + "\n", encoding="utf-8")
    db = folder / "runs.db"
    code, _, err = run_main("--data", str(words), "--runs-db", str(db), "--run", "c", "--script", BASE_SCRIPT)
    assert code == 0, err
    return words, db


@pytest.fixture
def copy_of(base, tmp_path):
    """A fresh copy of the base store in this test's tmp_path."""
    db = tmp_path / "runs.db"
    db.write_bytes(base[1].read_bytes())
    return db


# ---- 1. schema and migration -----------------------------------------------------------------------
V1_RUN_COLUMNS = [c for c in core.store._COLUMNS.split(", ") if c not in ("test_loss", "test_step", "init")]


def test_a_version_1_database_is_brought_forward_and_its_run_resumes(base, headless, tmp_path):
    words, source = base
    old = tmp_path / "v1.db"
    with contextlib.closing(sqlite3.connect(old, isolation_level=None)) as c:  # as version 1 made it (rollback journal)
        c.executescript(MIGRATIONS[0])
        c.execute("PRAGMA user_version = 1")
        c.execute("ATTACH ? AS src", (str(source),))
        c.execute(f"INSERT INTO runs ({', '.join(V1_RUN_COLUMNS)}) SELECT {', '.join(V1_RUN_COLUMNS)} FROM src.runs")
        c.execute("INSERT INTO history SELECT run_id, start, lr, loss FROM src.history")
        c.execute("INSERT INTO state SELECT * FROM src.state")
    before_run, before_state = stored(source, "c")

    store = RunStore(old)
    store.close()
    assert sql(old, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert sql(old, "PRAGMA journal_mode") == [("wal",)]
    assert sql(old, "PRAGMA integrity_check") == [("ok",)]
    run, state = stored(old, "c")
    assert run == before_run.__class__(**{**vars(before_run), "test_loss": None, "test_step": None})
    assert state.step == before_state.step == 600 and same(state.params, before_state.params)
    assert state.history_loss.equal(before_state.history_loss) and state.evals == before_state.evals

    code, out, err = headless("--runs-db", str(old), "--resume", "c", "--script", "run 200; snapshot t")
    assert code == 0 and "resumed run 'c' at step 600" in err, err
    run, state = stored(old, "c")
    assert run.steps == state.step == len(state.history_loss) == 800
    assert [n for (n,) in sql(old, "SELECT name FROM snapshots")] == ["t"]


def test_a_version_3_database_is_brought_forward_and_resumes_as_a_new_one_does(base, headless, tmp_path):
    """Runs from before diagnostics were kept have none stored; from the migration on they keep theirs,
    and the resumed run is the one a version-4 database holds, bit for bit (diagnostics included)."""
    words, source = base
    old, new = tmp_path / "v3.db", tmp_path / "v4.db"
    new.write_bytes(source.read_bytes())
    snapshot_columns = [row[1] for row in sql(source, "PRAGMA table_info(snapshots)") if row[1] != "diagnostics"]
    with contextlib.closing(sqlite3.connect(old, isolation_level=None)) as c:  # as version 3 made it
        for script in MIGRATIONS[:3]:
            c.executescript(script)
        c.execute("PRAGMA user_version = 3")
        c.execute("ATTACH ? AS src", (str(source),))
        c.execute("INSERT INTO runs SELECT * FROM src.runs")
        c.execute("INSERT INTO history SELECT run_id, start, lr, loss FROM src.history")
        c.execute("INSERT INTO state SELECT * FROM src.state")
        c.execute(f"INSERT INTO snapshots SELECT {', '.join(snapshot_columns)} FROM src.snapshots")
    for db in (old, new):
        code, out, err = headless("--runs-db", str(db), "--resume", "c", "--script", "restore s; run 2500")
        assert code == 0 and "final: step 2800" in out, err
    assert sql(old, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert sql(old, "PRAGMA integrity_check") == [("ok",)]
    (_, a), (_, b) = stored(old, "c"), stored(new, "c")
    assert a.step == b.step == 2800 and same(a.params, b.params) and a.history_loss.equal(b.history_loss)
    assert len(a.diagnostics) == 2 and torch.equal(a.diagnostics, b.diagnostics)


def test_a_migration_that_fails_is_rolled_back_whole(copy_of, monkeypatch):
    import core.store_open as opening

    broken = (*MIGRATIONS, "ALTER TABLE runs ADD COLUMN tag TEXT; CREATE TABLE broken (")
    monkeypatch.setattr(opening, "MIGRATIONS", broken)
    monkeypatch.setattr(opening, "SCHEMA_VERSION", len(broken))
    with pytest.raises(StoreError) as e:
        RunStore(copy_of)
    one_clear_line(str(e.value))
    assert sql(copy_of, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert "tag" not in [row[1] for row in sql(copy_of, "PRAGMA table_info(runs)")]


def test_a_database_from_a_newer_version_is_refused_and_left_as_it_was(copy_of, base, headless):
    sql(copy_of, f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = fingerprint(copy_of)
    code, out, err = headless("--runs-db", str(copy_of), "--resume", "c", "--script", "run 10")
    assert code == 2 and out == ""
    line = one_clear_line(err)
    assert f"schema {SCHEMA_VERSION + 1}" in line and "newer charmlp-tui" in line, line
    assert fingerprint(copy_of) == before

    code, out, err = headless("--data", str(base[0]), "--runs-db", str(copy_of), "--script", "run 10")
    assert code == 0 and "final: step 10" in out
    assert "newer charmlp-tui" in store_line(err, "runs are not saved")
    assert fingerprint(copy_of) == before


# ---- 4. databases that cannot be used --------------------------------------------------------------
def _random_bytes(db: Path, base_db: Path) -> None:
    db.write_bytes(bytes(range(256)) * 300)


def _truncated(db: Path, base_db: Path) -> None:
    data = base_db.read_bytes()
    db.write_bytes(data[: len(data) // 2])


def _truncated_at_a_page(db: Path, base_db: Path) -> None:
    data = base_db.read_bytes()
    db.write_bytes(data[: len(data) // 2 // 4096 * 4096])


def _another_programs_database(db: Path, base_db: Path) -> None:
    sql(db, "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    sql(db, "INSERT INTO notes (text) VALUES ('keep me')")


def _directory(db: Path, base_db: Path) -> None:
    db.mkdir()


def _fifo(db: Path, base_db: Path) -> None:
    os.mkfifo(db)


BAD = {
    "random bytes": (_random_bytes, "not a charmlp-tui runs database, or damaged"),
    "a real database cut in half": (_truncated, "not a charmlp-tui runs database, or damaged"),
    "a real database cut at a page": (_truncated_at_a_page, "not a charmlp-tui runs database, or damaged"),
    "another program's database": (_another_programs_database, "not a charmlp-tui runs database"),
    "a directory": (_directory, "is a directory, not a runs database"),
    "a FIFO": (_fifo, "is a named pipe (FIFO), not a runs database"),
}


@pytest.mark.parametrize("kind", BAD)
def test_a_database_that_cannot_be_used_is_one_line(kind, base, headless, tmp_path):
    make, expected = BAD[kind]
    db = tmp_path / "runs.db"
    make(db, base[1])
    before = fingerprint(db) if db.is_file() else None
    with deadline(30):  # a FIFO is never opened
        code, out, err = headless("--runs-db", str(db), "--resume", "c", "--script", "run 10")
    assert code == 2 and out == ""
    line = one_clear_line(err)
    assert line.startswith(f"charmlp-tui: error: cannot resume 'c': {db}: ") and expected in line, line
    with deadline(30):
        code, out, err = headless("--data", str(base[0]), "--runs-db", str(db), "--run", "n", "--script", "run 10")
    assert code == 0 and "final: step 10" in out, err
    assert expected in store_line(err, "runs are not saved")
    if before is not None:
        assert fingerprint(db) == before


def test_dev_null_as_the_store_is_refused(base, headless):
    code, out, err = headless("--runs-db", os.devnull, "--resume", "c", "--script", "run 10")
    assert code == 2 and "is a character device, not a runs database" in one_clear_line(err)
    code, out, err = headless("--data", str(base[0]), "--runs-db", os.devnull, "--script", "run 10")
    assert code == 0 and "is a character device" in store_line(err, "runs are not saved")


def test_a_read_only_connection_is_said_in_words(copy_of, monkeypatch):
    """The read-only words at the StoreError level (the real thing, as another user, is in
    test_store_processes): sqlite3 opened with mode=ro refuses every write as a read-only file does."""
    import core.store_open as opening

    real = sqlite3.connect
    monkeypatch.setattr(opening.sqlite3, "connect",
                        lambda path, **kw: real(f"file:{path}?mode=ro", uri=True, **kw))
    store = RunStore(copy_of)
    try:
        with pytest.raises(StoreError, match="read-only") as e:
            store.rename("c", "d")
        one_clear_line(str(e.value))
    finally:
        store.close()


# ---- 4. a database locked too long -----------------------------------------------------------------
@contextlib.contextmanager
def held_lock(db: Path, after: threading.Event | None = None, for_s: float = 60.0):
    """Another connection holding the write lock (BEGIN EXCLUSIVE) from now, or from `after` on,
    until the block ends or for `for_s` seconds."""
    taken, done = threading.Event(), threading.Event()

    def hold() -> None:
        with contextlib.closing(sqlite3.connect(db, isolation_level=None, check_same_thread=False)) as c:
            if after is not None:
                after.wait(30)
            c.execute("BEGIN EXCLUSIVE")
            taken.set()
            done.wait(for_s)
            c.execute("ROLLBACK")

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    if after is None:
        assert taken.wait(10)
    try:
        yield taken
    finally:
        done.set()
        thread.join(10)


def test_a_database_locked_too_long(copy_of, base, headless, monkeypatch):
    monkeypatch.setattr(core.store, "LOCK_TIMEOUT_S", 0.3)
    before = fingerprint(copy_of)
    with held_lock(copy_of):
        code, out, err = headless("--runs-db", str(copy_of), "--resume", "c", "--script", "run 10")
        assert code == 2 and out == ""
        assert "locked by another program for more than 0.3 s" in one_clear_line(err)
        code, out, err = headless("--data", str(base[0]), "--runs-db", str(copy_of), "--run", "n", "--script", "run 10")
        assert code == 0 and "final: step 10" in out
        line = store_line(err, "runs are not saved")  # the run could not even be made
        assert "locked by another program for more than 0.3 s" in line and "training goes on" in line
    assert fingerprint(copy_of)[0] == before[0]


def test_connections_opening_one_new_database_at_once_all_open_it(tmp_path):
    """Switching a new file to WAL fails at once, not after the wait, if another connection is
    opening it at that moment: it is tried again (two `--run` processes started together on a new
    store: one trained with its run not kept)."""
    assert failures_at_once(lambda round_: RunStore(tmp_path / f"{round_}.db").close(), 100) == []


def test_a_lock_taken_during_a_run_stops_keeping_and_training_goes_on(copy_of, base, headless, monkeypatch):
    monkeypatch.setattr(core.store, "LOCK_TIMEOUT_S", 0.3)
    monkeypatch.setattr(core.keeping, "FLUSH_INTERVAL_S", 0.1)
    started = threading.Event()

    def watch() -> None:  # the lock is taken once the run has saved some steps of its own
        with contextlib.closing(sqlite3.connect(copy_of, check_same_thread=False)) as c:
            while not c.execute("SELECT 1 FROM runs WHERE name = 'n' AND steps > 0").fetchone():
                threading.Event().wait(0.02)
        started.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with held_lock(copy_of, after=started) as taken:
        code, out, err = headless("--data", str(base[0]), "--runs-db", str(copy_of), "--run", "n",
                                  "--script", "run 20000; eval")
        assert taken.is_set()
    assert code == 0 and "final: step 20000" in out, err
    line = store_line(err, "runs are no longer saved")
    assert "cannot save the run: locked by another program for more than 0.3 s" in line
    run, state = stored(copy_of, "n")  # what was saved before the lock is whole
    assert 0 < run.steps == state.step == len(state.history_loss) < 20000


def test_a_lock_held_once_past_the_wait_is_tried_again_and_nothing_is_lost(copy_of, base, headless, monkeypatch):
    """Two processes keeping runs in one store: one save that meets the other's lock for longer than
    the wait says so and is tried again; the run is kept whole."""
    monkeypatch.setattr(core.store, "LOCK_TIMEOUT_S", 0.3)
    monkeypatch.setattr(core.keeping, "FLUSH_INTERVAL_S", 0.1)
    started = threading.Event()

    def watch() -> None:
        with contextlib.closing(sqlite3.connect(copy_of, check_same_thread=False)) as c:
            while not c.execute("SELECT 1 FROM runs WHERE name = 'n' AND steps > 0").fetchone():
                threading.Event().wait(0.02)
        started.set()

    threading.Thread(target=watch, daemon=True).start()
    with held_lock(copy_of, after=started, for_s=0.5) as taken:  # one save fails at 0.3 s, the next waits it out
        code, out, err = headless("--data", str(base[0]), "--runs-db", str(copy_of), "--run", "n", "--no-compile",
                                  "--script", "run 100000; eval")
        assert taken.is_set()
    assert code == 0 and "final: step 100000" in out, err
    assert "no longer saved" not in err and "Traceback" not in err, err
    line = store_line(err, "not saved this time")
    assert "cannot save the run: locked by another program for more than 0.3 s" in line and "tried again" in line
    run, state = stored(copy_of, "n")
    assert run.steps == state.step == len(state.history_loss) == 100000 and run.dev_loss is not None


# ---- 5. processes at the same moment: one name, a resume, a delete ---------------------------------
def another_process_made(db: Path, name: str) -> None:
    """A run named `name` appears, as another process's run does (a copy of run 'c', no writer)."""
    columns = ", ".join(c for c in core.store._COLUMNS.split(", ") if c not in ("id", "name", "writer"))
    sql(db, f"INSERT INTO runs (name, {columns}) SELECT ?, {columns} FROM runs WHERE name = 'c'", (name,))


def test_a_name_taken_after_the_check_keeps_the_run_beside_it_in_one_line(copy_of, base, headless, monkeypatch):
    """Runs started together with one --run name each find it free; the name is taken at a run's
    first step. The later one is kept as name.2 with one line, and keeping stays on: it used to
    train on unkept, and a search whose trial names clashed kept none of its trials."""
    import core.session

    opened = core.session.open_trainer

    def then_taken(*args, **kwargs):
        trainer = opened(*args, **kwargs)
        another_process_made(copy_of, "same")
        return trainer

    monkeypatch.setattr(core.session, "open_trainer", then_taken)
    code, out, err = headless("--data", str(base[0]), "--runs-db", str(copy_of), "--run", "same",
                              "--script", "run 100; reset; run 50")
    assert code == 0 and "final: step 50" in out, err
    line = store_line(err, "was taken by another run meanwhile")
    assert "this run is kept as 'same.2'" in line and "not saved" not in err, err
    assert stored(copy_of, "same.2")[1].step == 100
    assert [r[0] for r in sql(copy_of, "SELECT steps FROM runs ORDER BY id")][-1] == 50  # after reset: kept too


def test_a_run_saved_by_another_process_between_its_read_and_its_claim_is_read_again(copy_of, base, headless,
                                                                                    monkeypatch):
    """A resume reads the run, then claims it; another process that resumed, trained and let go in
    between must not have its steps overwritten by the state read before."""
    read = core.keeping.stored_state
    trained_meanwhile: list[int] = []

    def then_trained_elsewhere(store, trainer, run):
        found = read(store, trainer, run)
        if not trained_meanwhile:
            trained_meanwhile.append(-1)  # once: the other process reads it too
            code, _, err = run_main("--runs-db", str(copy_of), "--resume", "c", "--script", "run 100")
            trained_meanwhile[0] = code
            assert code == 0, err
        return found

    monkeypatch.setattr(core.keeping, "stored_state", then_trained_elsewhere)
    code, out, err = headless("--runs-db", str(copy_of), "--resume", "c", "--script", "run 10")
    assert trained_meanwhile == [0] and code == 0 and "final: step 710" in out, err
    run, state = stored(copy_of, "c")
    assert run.steps == state.step == len(state.history_loss) == 710


def test_a_run_renamed_while_it_trains_is_reported_by_its_new_name(copy_of, base, headless, monkeypatch):
    monkeypatch.setattr(core.keeping, "FLUSH_INTERVAL_S", 0.05)

    def rename_once_kept() -> None:
        while not sql(copy_of, "SELECT 1 FROM runs WHERE name = 'n' AND steps > 0"):
            threading.Event().wait(0.02)
        RunStore(copy_of).rename("n", "m")

    renamer = threading.Thread(target=rename_once_kept, daemon=True)
    renamer.start()
    code, out, err = headless("--data", str(base[0]), "--runs-db", str(copy_of), "--run", "n", "--script", "run 100000")
    renamer.join(10)
    assert code == 0 and not renamer.is_alive(), err
    assert "run m kept" in err and "runs show m" in err and "run n " not in err, err
    assert stored(copy_of, "m")[1].step == 100000


def test_a_name_taken_near_the_length_limit_is_kept_beside_it_within_the_limit(copy_of):
    from core.ranges import RUN_NAME

    store = RunStore(copy_of)
    try:
        c = store.get("c")
        values = {f: getattr(c, f) for f in core.store._COLUMNS.split(", ")
                  if f not in ("id", "name", "created", "updated", "writer")}
        long = "n" * RUN_NAME.max_length
        first, second = store.create(values, long), store.create(values, long)
    finally:
        store.close()
    assert first.name == long and second.name == "n" * (RUN_NAME.max_length - 2) + ".2"
    assert RUN_NAME.check(second.name)  # it can be given to --resume


def test_the_open_run_renamed_elsewhere_cannot_be_deleted_by_its_new_name(copy_of):
    trainer, keeper, _ = open_session(DataConfig(), ModelConfig(), TrainConfig(), None, True, copy_of, None, "c",
                                      lambda *a: [])
    try:
        RunStore(copy_of).rename("c", "d")  # another process, while this one has it open
        with pytest.raises(StoreError, match="is the one open now"):
            keeper.delete("d")
    finally:
        keeper.close(trainer)
    assert sql(copy_of, "SELECT name FROM runs") == [("d",)]


def test_a_resume_refused_after_another_process_saved_the_run_releases_it_in_one_line(copy_of, base, headless,
                                                                                     monkeypatch):
    """The run as another process left it between the read and the claim is read again; refused
    then (here: its words changed), the claim is let go and the error is one line."""
    read = core.keeping.stored_state
    reads: list[int] = []

    def second_read_refused(store, trainer, run):
        reads.append(run.steps)
        if len(reads) == 1:
            found = read(store, trainer, run)
            sql(copy_of, "UPDATE runs SET updated = updated + 1, steps = steps + 1 WHERE name = 'c'")
            return found
        raise StoreError(f"run {run.name!r} was trained on other words than its file holds now")

    monkeypatch.setattr(core.keeping, "stored_state", second_read_refused)
    code, out, err = headless("--runs-db", str(copy_of), "--resume", "c", "--script", "run 10")
    assert code == 2 and out == "" and "other words" in one_clear_line(err)
    assert reads == [600, 601]
    assert sql(copy_of, "SELECT writer FROM runs WHERE name = 'c'") == [(None,)]


def test_a_run_claimed_between_a_deletes_look_and_its_write_is_not_deleted(copy_of, monkeypatch):
    """`runs rm` read the run's writer before its transaction: a resume claiming it in between had
    its run deleted under it (and every save after failed on a foreign key)."""
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as other:
        try:
            looked = RunStore.get

            def then_claimed(self, name):
                run = looked(self, name)
                sql(copy_of, "UPDATE runs SET writer = ? WHERE id = ?", (f"{socket.gethostname()}:{other.pid}", run.id))
                return run

            monkeypatch.setattr(RunStore, "get", then_claimed)
            store = RunStore(copy_of)
            try:
                with pytest.raises(StoreError, match="being trained by another charmlp-tui"):
                    store.delete("c")
            finally:
                store.close()
        finally:
            other.kill()
    assert sql(copy_of, "SELECT name FROM runs") == [("c",)]


def test_a_run_deleted_before_its_claim_is_refused_in_one_line(copy_of):
    store = RunStore(copy_of)
    try:
        run = store.get("c")
        sql(copy_of, "DELETE FROM runs")
        with pytest.raises(StoreError, match="is gone") as e:
            store.claim(run)
        one_clear_line(str(e.value))
    finally:
        store.close()


# ---- 6. a stored state that lies ------------------------------------------------------------------
NAN32 = struct.pack("<f", float("nan"))


def measured_at(step: float) -> bytes:
    """One stored diagnostics row (core.diagnose.COLUMNS float64s) measured at `step`."""
    return struct.pack(f"<{COLUMNS}d", step, -1.0, *[0.5] * (COLUMNS - 2))


MUTATIONS = {
    "a parameter NaN": ("UPDATE state SET params = CAST(? || substr(params, 5) AS BLOB)", (NAN32,), "C holds non-finite values"),
    "parameters short": ("UPDATE state SET params = substr(params, 5)", (), "its parameters are 13,920 bytes"),
    "parameters long": ("UPDATE state SET params = CAST(params || x'00000000' AS BLOB)", (), "its parameters are 13,928 bytes"),
    "a gap in the history": ("UPDATE history SET start = start + 7 WHERE start > 0", (), "history is damaged"),
    "a torn history row": ("UPDATE history SET lr = substr(lr, 3) WHERE start = 0", (), "history is damaged"),
    "history shorter than the step": ("DELETE FROM history WHERE start >= 300", (), "history holds 300 steps, its state 600"),
    "step beyond the history": ("UPDATE state SET step = step + 1", (), "history holds 600 steps, its state 601"),
    "evaluations not whole records": ("UPDATE state SET evals = CAST(evals || x'00' AS BLOB)", (), "evaluations are damaged"),
    "an evaluation at step NaN": ("UPDATE state SET evals = ?", (struct.pack("<3d", float("nan"), 2.0, 2.0),),
                                  "evaluations are damaged"),
    "an evaluation at step 1.5": ("UPDATE state SET evals = ?", (struct.pack("<3d", 1.5, 2.0, 2.0),),
                                  "evaluations are damaged"),
    "an evaluation after the step": ("UPDATE state SET evals = ?", (struct.pack("<3d", 601, 2.0, 2.0),),
                                     "evaluation 0 is at step 601"),
    "generator state garbage": ("UPDATE state SET batch_rng = ?", (b"\xff" * 5056,), "minibatch generator state"),
    "generator state short": ("UPDATE state SET batch_rng = x'00'", (), "minibatch generator state"),
    "parameters as text": ("UPDATE state SET params = 'weights'", (), "damaged (state.params holds text, not a blob)"),
    "learning rate absurd": ("UPDATE state SET lr_exponent = 1e9", (), "lr exponent"),
    "no state": ("DELETE FROM state", (), "has no stored state"),
    "step not a number": ("UPDATE state SET step = 'many'", (), "damaged"),
    "history start not a number": ("UPDATE history SET start = 'x' WHERE start = (SELECT max(start) FROM history)", (),
                                   "damaged"),
    "vocabulary changed": ("UPDATE runs SET vocab = upper(vocab)", (), "vocabulary"),
    "vocabulary shorter": ("UPDATE runs SET vocab = substr(vocab, 2)", (), "stored vocabulary differs"),
    "other words": ("UPDATE runs SET data_digest = 'x'", (), "trained on other words"),
    "split garbage": ("UPDATE runs SET split = 'a,b'", (), "damaged"),
    "argv garbage": ("UPDATE runs SET argv = '{'", (), "damaged"),
    "wall time not a number": ("UPDATE runs SET wall_s = 'soon'", (), "damaged"),
    "a snapshot cut short": ("UPDATE snapshots SET params = substr(params, 5)", (), "snapshot 's'"),
    "a torn diagnostics row": ("UPDATE history SET diagnostics = x'00' WHERE start = 0", (), "diagnostics are damaged"),
    "a measurement after its row": ("UPDATE history SET diagnostics = ? WHERE start = 0", (measured_at(601),),
                                    "a measurement not at a step of its row"),
    "a measurement at step NaN": ("UPDATE history SET diagnostics = ? WHERE start = 0", (measured_at(float("nan")),),
                                  "diagnostics are damaged"),
    "a measurement at step 1.5": ("UPDATE history SET diagnostics = ? WHERE start = 0", (measured_at(1.5),),
                                  "diagnostics are damaged"),
    "measurements out of order": ("UPDATE history SET diagnostics = ? WHERE start = 0",
                                  (measured_at(20) + measured_at(10),), "diagnostics are damaged"),
    "a snapshot's diagnostics torn": ("UPDATE snapshots SET diagnostics = x'0000'", (), "snapshot 's'"),
}


@pytest.mark.parametrize("lie", MUTATIONS)
def test_a_stored_state_that_lies_is_refused_and_nothing_changes(lie, copy_of, headless):
    statement, args, expected = MUTATIONS[lie]
    sql(copy_of, statement, args)
    before = fingerprint(copy_of)
    code, out, err = headless("--runs-db", str(copy_of), "--resume", "c", "--script", "run 10")
    assert code == 2 and out == "", (code, err)
    line = one_clear_line(err)
    assert expected in line, line
    assert fingerprint(copy_of) == before


RUN_COLUMNS = [c for c in core.store._COLUMNS.split(", ") if c not in ("id", "name")]
LIES = st.one_of(
    st.tuples(st.just("runs"), st.sampled_from(RUN_COLUMNS)),
    st.tuples(st.just("state"), st.sampled_from(["step", "lr_exponent", "params", "batch_rng", "evals", "engine"])),
    st.tuples(st.just("history"), st.sampled_from(["start", "lr", "loss", "diagnostics"])),
    st.tuples(st.just("snapshots"), st.sampled_from(["name", "step", "lr_exponent", "dev_loss", "params", "batch_rng",
                                                     "evals", "lr", "loss", "diagnostics"])),
)
VALUES = st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False), st.text(max_size=30),
                   st.binary(max_size=64))


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=LIES, value=VALUES, flip=st.integers(0, 10**6))
def test_any_one_lie_is_refused_in_one_line_or_resumes(base, tmp_path, where, value, flip):
    """One column of one row set to any value SQLite holds (or, for a blob, one bit flipped):
    --resume either works or is refused in one line with the database unchanged."""
    table, column = where
    db = tmp_path / "lie.db"
    db.write_bytes(base[1].read_bytes())
    rowids = [r for (r,) in sql(db, f"SELECT rowid FROM {table} ORDER BY rowid")]
    rowid = rowids[flip % len(rowids)]
    try:
        (old,) = sql(db, f"SELECT {column} FROM {table} WHERE rowid = ?", (rowid,))[0]
        if isinstance(value, bytes) and isinstance(old, bytes) and old:  # a blob: one bit of it flipped
            i = flip % (8 * len(old))
            value = old[: i // 8] + bytes([old[i // 8] ^ (1 << i % 8)]) + old[i // 8 + 1 :]
        sql(db, f"UPDATE {table} SET {column} = ? WHERE rowid = ?", (value, rowid))
    except sqlite3.IntegrityError:  # NOT NULL, UNIQUE: SQLite itself refuses that lie
        event("SQLite refused it")
        return
    before = fingerprint(db)
    try:
        trainer, keeper, _ = open_session(DataConfig(), ModelConfig(), TrainConfig(), None, True, db, None, "c",
                                          lambda *a: [])
    except CharMLPError as e:
        one_clear_line(str(e))
        assert fingerprint(db) == before
        event("refused")
        return
    event("resumed")
    trainer.run(20)
    line = keeper.close(trainer)
    assert line is None, line
    assert stored(db, "c")[1].step == trainer.step


# ---- 7. snapshots survive the session ---------------------------------------------------------------
def test_snapshots_survive_the_process(base, headless, tmp_path):
    db = tmp_path / "runs.db"
    code, out, err = headless("--data", str(base[0]), "--runs-db", str(db), "--run", "c",
                              "--script", "run 500; snapshot x; run 500")
    assert code == 0, err
    snapshot = RunStore(db)
    try:
        run = snapshot.get("c")
        (kept,) = snapshot.snapshots(run.id)
        at_x = read_state(run, kept.state, [History(0, kept.lr, kept.loss, kept.diagnostics)], "x")
    finally:
        snapshot.close()
    code, out, err = headless("--runs-db", str(db), "--resume", "c", "--script", "restore x")
    assert code == 0 and "restore x: back to step 500" in out, err
    run, state = stored(db, "c")
    assert run.steps == state.step == 500 and same(state.params, at_x.params)
    assert state.history_loss.equal(at_x.history_loss) and state.batch_rng.equal(at_x.batch_rng)
    code, out, err = headless("--runs-db", str(db), "--resume", "c", "--script", "run 100; restore x; run 10")
    assert code == 0 and "final: step 510" in out, err


def test_the_store_keeps_the_snapshots_the_session_keeps(base, headless, tmp_path):
    """Eleven snapshots: the session drops the oldest (ranges.MAX_SNAPSHOTS); so does the store."""
    db = tmp_path / "runs.db"
    script = "; ".join(f"run 10; snapshot s{k}" for k in range(11))
    code, out, err = headless("--data", str(base[0]), "--runs-db", str(db), "--run", "c", "--script", script)
    assert code == 0, err
    assert [n for (n,) in sql(db, "SELECT name FROM snapshots ORDER BY rowid")] == [f"s{k}" for k in range(1, 11)]
    code, out, err = headless("--runs-db", str(db), "--resume", "c", "--script", "restore s0")
    assert code == 2 and "no snapshot named 's0'" in err


def test_runs_list_json_reads_back(copy_of):
    store = RunStore(copy_of)
    try:
        (run,) = store.runs()
        assert json.loads(json.dumps(run.as_json()))["steps"] == 600
    finally:
        store.close()


def test_a_runs_last_save_waits_out_a_lock_once_more_and_then_says_what_was_lost(small_file, tmp_path, monkeypatch):
    """finish/close: no later save will come, so a lock met there is tried once more at once; a
    lock that outlasts it is one honest line, keeping stays on, and the run is not released."""
    from core.config import DataConfig, ModelConfig, TrainConfig
    from core.errors import StoreBusyError
    from core.session import open_session
    from tui.settings import rebuild_argv

    save = RunStore.save_progress
    locked = {"times": 0}

    def save_progress(store, *args, **kwargs):
        if locked["times"]:
            locked["times"] -= 1
            raise StoreBusyError("runs.db: cannot save the run: locked by another program for more than 5 s")
        return save(store, *args, **kwargs)

    monkeypatch.setattr(RunStore, "save_progress", save_progress)
    data = DataConfig(path=small_file)
    trainer, keeper, _ = open_session(data, ModelConfig(), TrainConfig(), None, True, tmp_path / "runs.db", "a", None,
                                      lambda m, t, load: rebuild_argv(data, m, t, load))
    trainer.run(300)
    assert keeper.on_chunk(trainer, 0.1) is None  # made and saved at step 300
    trainer.run(200)
    locked["times"] = 1
    run, line = keeper.finish(trainer)  # the first try meets the lock, the second saves
    assert line is None and run is not None and run.name == "a"
    assert stored(tmp_path / "runs.db", "a")[0].steps == 500 and stored(tmp_path / "runs.db", "a")[0].writer is None

    keeper.start(trainer, "b")  # a trained model: made in the store at once, at step 500
    trainer.run(200)
    locked["times"] = 2
    line = keeper.close(trainer)
    assert line == "run not saved this time: runs.db: cannot save the run: locked by another program for more than 5 s"
    b = stored(tmp_path / "runs.db", "b")[0]
    assert b.steps == 500 and b.writer is not None  # its last save kept; still claimed by this (live) process
