"""The run store: every run kept in one SQLite database (the standard library's sqlite3).

WAL mode, so readers never wait for a writer and a crash loses at most the transaction under
way; foreign keys on, so deleting a run deletes its history, state and snapshots with it; a
versioned schema (PRAGMA user_version) brought forward by MIGRATIONS, one transaction each. A
database written by a newer charmlp-tui is refused, never changed. Two processes may write the
same database at once (each its own runs): every write is one short transaction, and a writer
that finds the database locked waits up to LOCK_TIMEOUT_S before it gives up.

Parameters and snapshots are stored as blobs in the database (core.run_blobs: raw float32
arrays, no pickle, their sizes checked against the run's shape before anything is built), so a
run is one row and its parts, written together. Every failure is a StoreError of one line.
Free of torch (the blobs are bytes here).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from core.errors import StoreError
from core.reading import file_kind, shown_path

LOCK_TIMEOUT_S = 5.0  # how long a write waits for another process's transaction
APP_NAME = "charmlp-tui"

# One script per version: applying MIGRATIONS[k] takes a database from version k to k + 1.
MIGRATIONS: tuple[str, ...] = (
    # 1: runs, their history in chunks, and the latest state of each
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created REAL NOT NULL,
        updated REAL NOT NULL,
        writer TEXT,                    -- host:pid of the process training it now, NULL when none
        data_source TEXT NOT NULL,      -- as shown: a path or 'built-in SSA names'
        data_path TEXT,                 -- absolute; NULL for the built-in names
        data_digest TEXT NOT NULL,      -- core.words.words_digest
        split TEXT NOT NULL,            -- '0.8,0.1,0.1'
        block_size INTEGER NOT NULL, emb_dim INTEGER NOT NULL, hidden INTEGER NOT NULL,
        init_seed INTEGER NOT NULL, batch_size INTEGER NOT NULL, batch_seed INTEGER NOT NULL,
        vocab TEXT NOT NULL,
        params INTEGER NOT NULL,
        argv TEXT NOT NULL,             -- JSON list: the flags that rebuild its model from scratch
        script TEXT NOT NULL DEFAULT '',-- every action applied to it, a replayable script
        steps INTEGER NOT NULL DEFAULT 0,
        lr_exponent REAL NOT NULL,
        schedule TEXT NOT NULL DEFAULT '',
        train_loss REAL, dev_loss REAL, -- its latest exact evaluation
        best_train_loss REAL, best_dev_loss REAL,
        wall_s REAL NOT NULL DEFAULT 0, train_s REAL NOT NULL DEFAULT 0
    );
    CREATE TABLE history (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        start INTEGER NOT NULL,         -- the step of its first row
        lr BLOB NOT NULL, loss BLOB NOT NULL,  -- float32, little-endian, one per step
        PRIMARY KEY (run_id, start)
    );
    CREATE TABLE state (
        run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
        step INTEGER NOT NULL, lr_exponent REAL NOT NULL,
        params BLOB NOT NULL, batch_rng BLOB NOT NULL, evals BLOB NOT NULL, engine TEXT NOT NULL
    );
    """,
    # 2: named snapshots, and whether the test split was looked at
    """
    ALTER TABLE runs ADD COLUMN test_loss REAL;
    ALTER TABLE runs ADD COLUMN test_step INTEGER;
    CREATE TABLE snapshots (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        name TEXT NOT NULL, step INTEGER NOT NULL, lr_exponent REAL NOT NULL, dev_loss REAL,
        params BLOB NOT NULL, batch_rng BLOB NOT NULL, evals BLOB NOT NULL, lr BLOB NOT NULL, loss BLOB NOT NULL,
        PRIMARY KEY (run_id, name)
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def default_path() -> Path:
    """runs.db in the user's data folder (platformdirs: ~/.local/share/charmlp-tui on Linux)."""
    from platformdirs import user_data_path

    return user_data_path(APP_NAME) / "runs.db"


@dataclass(frozen=True)
class RunRow:
    """One run as the runs table lists it."""

    id: int
    name: str
    created: float
    updated: float
    writer: str | None
    data_source: str
    data_path: str | None
    data_digest: str
    split: str
    block_size: int
    emb_dim: int
    hidden: int
    init_seed: int
    batch_size: int
    batch_seed: int
    vocab: str
    params: int
    argv: str
    script: str
    steps: int
    lr_exponent: float
    schedule: str
    train_loss: float | None
    dev_loss: float | None
    best_train_loss: float | None
    best_dev_loss: float | None
    wall_s: float
    train_s: float
    test_loss: float | None
    test_step: int | None

    @property
    def shape(self) -> str:
        return f"{self.block_size}/{self.emb_dim}/{self.hidden}"

    @property
    def steps_per_s(self) -> float | None:
        return self.steps / self.train_s if self.train_s > 0 else None

    def as_json(self) -> dict[str, object]:
        """What `runs list --json` prints for it."""
        out: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("script", "argv")}
        out["argv"] = json.loads(self.argv)
        out["steps_per_s"] = self.steps_per_s
        return out


@dataclass(frozen=True)
class StoredState:
    """A run's state as stored: the blobs (core.run_blobs reads and checks them)."""

    step: int
    lr_exponent: float
    params: bytes
    batch_rng: bytes
    evals: bytes
    engine: str


@dataclass(frozen=True)
class StoredSnapshot:
    """A named snapshot of a run: its state, and its history (float32 blobs, as history rows)."""

    name: str
    dev_loss: float | None
    state: StoredState
    lr: bytes
    loss: bytes


def writer_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class RunStore:
    """One open database. Used by one thread (the trainer's)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.shown = shown_path(path)
        self._db = _connect(path, self.shown)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        """One transaction, taken at once (BEGIN IMMEDIATE: a lock is waited for here, not half-way)."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as e:
            raise _error(self.shown, e, what) from None

    def _read(self, sql: str, args: tuple[object, ...] = ()) -> list[Any]:
        try:
            return list(self._db.execute(sql, args))
        except sqlite3.Error as e:
            raise _error(self.shown, e, "read runs") from None

    # ---- runs ------------------------------------------------------------------------------
    def create(self, values: dict[str, object], name: str | None) -> RunRow:
        """A new run (values: the runs table's columns that say what it is); `name` None: run<id>."""
        now = time.time()
        row = dict(values, created=now, updated=now, writer=writer_id(), name=name or f"new-{now}-{os.getpid()}")
        with self._write("create a run") as db:
            if name is not None and db.execute("SELECT 1 FROM runs WHERE name = ?", (name,)).fetchone():
                raise StoreError(f"{self.shown}: a run named {name!r} exists already; give another name or --resume it")
            cursor = db.execute(f"INSERT INTO runs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                                tuple(row.values()))
            run_id = cursor.lastrowid
            assert run_id is not None
            if name is None:
                db.execute("UPDATE runs SET name = ? WHERE id = ?", (_free_name(db, run_id), run_id))
        return self.get_by_id(run_id)

    def runs(self) -> list[RunRow]:
        return [RunRow(*r) for r in self._read(f"SELECT {_COLUMNS} FROM runs ORDER BY id")]

    def get_by_id(self, run_id: int) -> RunRow:
        rows = self._read(f"SELECT {_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise StoreError(f"{self.shown}: run {run_id} is gone (deleted by another program?)")
        return RunRow(*rows[0])

    def get(self, name: str) -> RunRow:
        rows = self._read(f"SELECT {_COLUMNS} FROM runs WHERE name = ?", (name,))
        if not rows:
            known = [r[0] for r in self._read("SELECT name FROM runs ORDER BY id DESC LIMIT 5")]
            hint = f"; latest: {', '.join(map(str, known))}" if known else "; there are no runs yet"
            raise StoreError(f"{self.shown}: no run named {name!r}{hint}")
        return RunRow(*rows[0])

    def claim(self, run: RunRow) -> None:
        """Take a run to train it (resume): refused while another live process on this host has it."""
        with self._write("claim the run") as db:
            (writer,) = db.execute("SELECT writer FROM runs WHERE id = ?", (run.id,)).fetchone() or (None,)
            if writer and writer != writer_id() and _alive(writer):
                raise StoreError(f"run {run.name!r} is being trained by another charmlp-tui ({writer}); "
                                 "wait for it to end, or start a new run")
            db.execute("UPDATE runs SET writer = ? WHERE id = ?", (writer_id(), run.id))

    def release(self, run_id: int) -> None:
        with self._write("release the run") as db:
            db.execute("UPDATE runs SET writer = NULL WHERE id = ? AND writer = ?", (run_id, writer_id()))

    def rename(self, name: str, new: str) -> None:
        run = self.get(name)
        with self._write("rename the run") as db:
            if db.execute("SELECT 1 FROM runs WHERE name = ?", (new,)).fetchone():
                raise StoreError(f"a run named {new!r} exists already")
            db.execute("UPDATE runs SET name = ? WHERE id = ?", (new, run.id))

    def delete(self, name: str) -> None:
        run = self.get(name)
        if run.writer and run.writer != writer_id() and _alive(run.writer):
            raise StoreError(f"run {name!r} is being trained by another charmlp-tui ({run.writer}); not deleted")
        with self._write("delete the run") as db:
            db.execute("DELETE FROM runs WHERE id = ?", (run.id,))

    # ---- progress --------------------------------------------------------------------------
    def save_progress(self, run_id: int, summary: dict[str, object], state: StoredState,
                      history: list[tuple[int, bytes, bytes]], keep_history_before: int) -> None:
        """One transaction: history rows from keep_history_before on are replaced by `history`
        ((start, lr, loss) chunks), the state replaced, the runs row updated."""
        with self._write("save the run") as db:
            db.execute("DELETE FROM history WHERE run_id = ? AND start >= ?", (run_id, keep_history_before))
            db.executemany("INSERT INTO history (run_id, start, lr, loss) VALUES (?, ?, ?, ?)",
                           [(run_id, start, lr, loss) for start, lr, loss in history])
            db.execute("INSERT OR REPLACE INTO state (run_id, step, lr_exponent, params, batch_rng, evals, engine) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)", (run_id, state.step, state.lr_exponent, state.params,
                                                        state.batch_rng, state.evals, state.engine))
            sets = ", ".join(f"{k} = ?" for k in summary)
            db.execute(f"UPDATE runs SET {sets}, updated = ? WHERE id = ?", (*summary.values(), time.time(), run_id))

    def mark_test(self, run_id: int, step: int, loss: float | None) -> None:
        with self._write("mark the test evaluation") as db:
            db.execute("UPDATE runs SET test_loss = ?, test_step = ? WHERE id = ?", (loss, step, run_id))

    def state(self, run_id: int) -> StoredState | None:
        rows = self._read("SELECT step, lr_exponent, params, batch_rng, evals, engine FROM state WHERE run_id = ?",
                          (run_id,))
        return StoredState(*rows[0]) if rows else None

    def history(self, run_id: int) -> list[tuple[int, bytes, bytes]]:
        """Its history chunks, (start, lr, loss), in step order."""
        return [(int(s), bytes(lr), bytes(loss)) for s, lr, loss in
                self._read("SELECT start, lr, loss FROM history WHERE run_id = ? ORDER BY start", (run_id,))]

    def evals(self, run_id: int) -> bytes:
        rows = self._read("SELECT evals FROM state WHERE run_id = ?", (run_id,))
        return bytes(rows[0][0]) if rows else b""

    # ---- snapshots -------------------------------------------------------------------------
    def save_snapshot(self, run_id: int, kept: StoredSnapshot) -> None:
        st = kept.state
        with self._write("save the snapshot") as db:
            db.execute("INSERT OR REPLACE INTO snapshots (run_id, name, step, lr_exponent, dev_loss, params, batch_rng, "
                       "evals, lr, loss) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (run_id, kept.name, st.step, st.lr_exponent, kept.dev_loss, st.params, st.batch_rng, st.evals,
                        kept.lr, kept.loss))

    def snapshots(self, run_id: int) -> list[StoredSnapshot]:
        rows = self._read("SELECT name, dev_loss, step, lr_exponent, params, batch_rng, evals, lr, loss FROM snapshots "
                          "WHERE run_id = ? ORDER BY rowid", (run_id,))
        return [StoredSnapshot(name, dev, StoredState(step, lr_exp, params, rng, evals, "eager"), lr, loss)
                for name, dev, step, lr_exp, params, rng, evals, lr, loss in rows]


_COLUMNS = ", ".join(f.name for f in fields(RunRow))


def _free_name(db: sqlite3.Connection, run_id: int) -> str:
    """run<id>, or run<id>-2, … if a user took that name for another run."""
    name, k = f"run{run_id}", 1
    while db.execute("SELECT 1 FROM runs WHERE name = ? AND id != ?", (name, run_id)).fetchone():
        k += 1
        name = f"run{run_id}-{k}"
    return name


def _alive(writer: str) -> bool:
    """Whether host:pid is a live process on this host (another host's: assumed alive)."""
    host, _, pid = writer.rpartition(":")
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, OverflowError):
        return True
    return True


def _connect(path: Path, shown: str) -> sqlite3.Connection:
    """Open (creating it and its folder if need be), check the version, migrate forward."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        info = None
    except OSError as e:
        raise StoreError(f"{shown}: cannot be read ({e.strerror or e})") from None
    if info is not None and (kind := file_kind(info.st_mode)) is not None:
        raise StoreError(f"{shown}: is {kind}, not a runs database; give --runs-db a file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=LOCK_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as e:
        raise StoreError(f"{shown}: cannot be opened ({getattr(e, 'strerror', None) or e})") from None
    try:
        db.execute("PRAGMA foreign_keys = ON")
        (version,) = db.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise StoreError(f"{shown}: written by a newer charmlp-tui (schema {version}, this one reads up to "
                             f"{SCHEMA_VERSION}); upgrade, or give another --runs-db")
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            db.execute("PRAGMA journal_mode = WAL")
        _migrate(db, version)
    except sqlite3.Error as e:
        db.close()
        raise _error(shown, e, "open") from None
    except StoreError:
        db.close()
        raise
    return db


def _migrate(db: sqlite3.Connection, version: int) -> None:
    while version < SCHEMA_VERSION:
        db.execute("BEGIN IMMEDIATE")
        try:
            (version,) = db.execute("PRAGMA user_version").fetchone()  # another process may have migrated it
            if version < SCHEMA_VERSION:
                for statement in _statements(MIGRATIONS[version]):
                    db.execute(statement)
                version += 1
                db.execute(f"PRAGMA user_version = {version}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


def _statements(script: str) -> list[str]:
    """A migration's statements (they hold no ';' inside a string or comment)."""
    lines = [line.split("--")[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _error(shown: str, e: sqlite3.Error, what: str) -> StoreError:
    text = str(e)
    if "locked" in text or "busy" in text:
        why = f"locked by another program for more than {LOCK_TIMEOUT_S:g} s"
    elif "readonly" in text or "read-only" in text:
        why = "read-only (no permission to write it or its folder)"
    elif "not a database" in text or "malformed" in text or "corrupt" in text:
        why = "not a charmlp-tui runs database, or damaged"
    elif "disk" in text and "full" in text:
        why = "the disk is full"
    else:
        why = text.splitlines()[0][:120] if text else type(e).__name__
    return StoreError(f"{shown}: cannot {what}: {why}")
