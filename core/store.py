"""The run store: every run kept in one SQLite database (the standard library's sqlite3).

WAL mode, so readers never wait for a writer and a crash loses at most the transaction under
way; foreign keys on, so deleting a run deletes its history, state and snapshots with it; a
versioned schema (PRAGMA user_version) brought forward by MIGRATIONS, one transaction each
(core.store_schema: the tables and rows; core.store_open: opening and migrating, errors in
words). A database written by a newer charmlp-tui is refused, never changed. Two processes may
write the same database at once (each its own runs): every write is one short transaction, and a
writer that finds the database locked waits up to LOCK_TIMEOUT_S before it gives up.

Parameters and snapshots are stored as blobs in the database (core.run_blobs: raw float32
arrays, no pickle, their sizes checked against the run's shape before anything is built), so a
run is one row and its parts, written together. Every failure is a StoreError of one line.
Free of torch (the blobs are bytes here).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

from core.files import protect
from core.ranges import RUN_NAME
from core.errors import StoreError
from core.reading import printable, shown_path
from core.store_open import connect, error
from core.store_schema import MIGRATIONS, SCHEMA_VERSION, History, RunRow, StoredSnapshot, StoredState, row

__all__ = ["LOCK_TIMEOUT_S", "MIGRATIONS", "SCHEMA_VERSION", "History", "RunRow", "RunStore", "StoredSnapshot",
           "StoredState", "default_path"]

LOCK_TIMEOUT_S = 5.0  # how long a write waits for another process's transaction
APP_NAME = "charmlp-tui"


def default_path() -> Path:
    """runs.db in the user's data folder (platformdirs: ~/.local/share/charmlp-tui on Linux)."""
    from platformdirs import user_data_path

    return user_data_path(APP_NAME) / "runs.db"


def writer_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def protect_store(path: Path) -> None:
    """Never write a checkpoint, script or export over the store or its WAL files (core.files.protect)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        protect(Path(f"{path}{suffix}"), "run store")


class RunStore:
    """One open database. Used by one thread (the trainer's)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.shown = shown_path(path)
        protect_store(path)
        self._db = connect(path, self.shown, LOCK_TIMEOUT_S)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        """One transaction, taken at once (BEGIN IMMEDIATE: a lock is waited for here, not half-way)."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # a COMMIT that failed (a full disk) may leave it open
                    self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            raise error(self.shown, e, what, LOCK_TIMEOUT_S) from None

    def _read(self, sql: str, args: tuple[object, ...] = ()) -> list[Any]:
        try:
            return list(self._db.execute(sql, args))
        except sqlite3.Error as e:
            raise error(self.shown, e, "read runs", LOCK_TIMEOUT_S) from None

    # ---- runs ------------------------------------------------------------------------------
    def create(self, values: dict[str, object], name: str | None) -> RunRow:
        """A new run (values: the runs table's columns that say what it is); `name` None: run<id>.
        A name another process took since it was checked (runs started together) gets a free one
        beside it, name.2, …: the caller sees which in the row."""
        now = time.time()
        row = dict(values, created=now, updated=now, writer=writer_id(), name=name or f"new-{now}-{os.getpid()}")
        with self._write("create a run") as db:
            if name is not None:
                row["name"] = _free_name(db, name)
            cursor = db.execute(f"INSERT INTO runs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                                tuple(row.values()))
            run_id = cursor.lastrowid
            assert run_id is not None
            if name is None:
                db.execute("UPDATE runs SET name = ? WHERE id = ?", (_free_name(db, f"run{run_id}"), run_id))
        return self.get_by_id(run_id)

    def runs(self) -> list[RunRow]:
        return [row(RunRow, r, self.shown) for r in self._read(f"SELECT {_COLUMNS} FROM runs ORDER BY id")]

    def get_by_id(self, run_id: int) -> RunRow:
        rows = self._read(f"SELECT {_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise StoreError(f"{self.shown}: run {run_id} is gone (deleted by another program?)")
        return row(RunRow, rows[0], self.shown)

    def get(self, name: str) -> RunRow:
        rows = self._read(f"SELECT {_COLUMNS} FROM runs WHERE name = ?", (name,))
        if not rows:
            known = [r[0] for r in self._read("SELECT name FROM runs ORDER BY id DESC LIMIT 5")]
            hint = f"; latest: {', '.join(map(str, known))}" if known else "; there are no runs yet"
            raise StoreError(f"{self.shown}: no run named {name!r}{hint}")
        return row(RunRow, rows[0], self.shown)

    def claim(self, run: RunRow) -> None:
        """Take a run to train it (resume): refused while another live process on this host has it."""
        with self._write("claim the run") as db:
            found = db.execute("SELECT writer FROM runs WHERE id = ?", (run.id,)).fetchone()
            if found is None:
                raise StoreError(f"run {run.name!r} is gone (deleted by another program?)")
            (writer,) = found
            if writer and writer != writer_id() and _alive(str(writer)):
                raise StoreError(f"run {run.name!r} is being trained by another charmlp-tui ({printable(str(writer))}); "
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
        """Refused while a live process trains it: checked in the deleting transaction, so a run
        claimed at the same moment is either refused here or never claimed (claim: gone)."""
        run = self.get(name)
        with self._write("delete the run") as db:
            (writer,) = db.execute("SELECT writer FROM runs WHERE id = ?", (run.id,)).fetchone() or (None,)
            if writer and writer != writer_id() and _alive(str(writer)):
                raise StoreError(f"run {name!r} is being trained by another charmlp-tui ({printable(str(writer))}); "
                                 "not deleted")
            db.execute("DELETE FROM runs WHERE id = ?", (run.id,))

    # ---- progress --------------------------------------------------------------------------
    def save_progress(self, run_id: int, summary: dict[str, object], state: StoredState, history: list[History],
                      keep_history_before: int) -> str:
        """One transaction: history rows from keep_history_before on are replaced by `history`, the
        state replaced, the runs row updated. Returns the run's name (`runs rename` may change it
        while it trains)."""
        with self._write("save the run") as db:
            db.execute("DELETE FROM history WHERE run_id = ? AND start >= ?", (run_id, keep_history_before))
            db.executemany("INSERT INTO history (run_id, start, lr, loss, diagnostics) VALUES (?, ?, ?, ?, ?)",
                           [(run_id, h.start, h.lr, h.loss, h.diagnostics) for h in history])
            db.execute("INSERT OR REPLACE INTO state (run_id, step, lr_exponent, params, batch_rng, evals, engine) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)", (run_id, state.step, state.lr_exponent, state.params,
                                                        state.batch_rng, state.evals, state.engine))
            sets = ", ".join(f"{k} = ?" for k in summary)
            db.execute(f"UPDATE runs SET {sets}, updated = ? WHERE id = ?", (*summary.values(), time.time(), run_id))
            (name,) = db.execute("SELECT name FROM runs WHERE id = ?", (run_id,)).fetchone()
        return str(name)

    def mark_test(self, run_id: int, step: int, loss: float | None) -> None:
        with self._write("mark the test evaluation") as db:
            db.execute("UPDATE runs SET test_loss = ?, test_step = ? WHERE id = ?", (loss, step, run_id))

    def state(self, run_id: int) -> StoredState | None:
        rows = self._read("SELECT step, lr_exponent, params, batch_rng, evals, engine FROM state WHERE run_id = ?",
                          (run_id,))
        return row(StoredState, rows[0], self.shown) if rows else None

    def history(self, run_id: int) -> list[History]:
        """Its history rows in step order."""
        return [row(History, r, self.shown) for r in self._read(
            "SELECT start, lr, loss, diagnostics FROM history WHERE run_id = ? ORDER BY start", (run_id,))]

    def evals(self, run_id: int) -> bytes:
        stored = self.state(run_id)
        return stored.evals if stored is not None else b""

    # ---- snapshots -------------------------------------------------------------------------
    def save_snapshot(self, run_id: int, kept: StoredSnapshot, keep: list[str]) -> None:
        """Store `kept`, and drop the run's snapshots not named in `keep` (the session's: it keeps
        at most ranges.MAX_SNAPSHOTS, the oldest dropped first)."""
        st = kept.state
        with self._write("save the snapshot") as db:
            db.execute(f"DELETE FROM snapshots WHERE run_id = ? AND name NOT IN ({', '.join('?' * len(keep))})",
                       (run_id, *keep))
            db.execute("INSERT OR REPLACE INTO snapshots (run_id, name, step, lr_exponent, dev_loss, params, batch_rng, "
                       "evals, lr, loss, diagnostics) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (run_id, kept.name, st.step, st.lr_exponent, kept.dev_loss, st.params, st.batch_rng, st.evals,
                        kept.lr, kept.loss, kept.diagnostics))

    def snapshots(self, run_id: int) -> list[StoredSnapshot]:
        rows = self._read("SELECT name, dev_loss, step, lr_exponent, params, batch_rng, evals, lr, loss, diagnostics "
                          "FROM snapshots WHERE run_id = ? ORDER BY rowid", (run_id,))
        return [row(StoredSnapshot, (name, dev, row(StoredState, (step, lr_exp, params, rng, evals, "eager"), self.shown),
                                     lr, loss, diagnostics), self.shown)
                for name, dev, step, lr_exp, params, rng, evals, lr, loss, diagnostics in rows]


_COLUMNS = ", ".join(f.name for f in fields(RunRow))


def _free_name(db: sqlite3.Connection, name: str) -> str:
    """`name`, or name.2, name.3, … if another run has it (core.ranges.RUN_NAME.beside)."""
    candidate, k = name, 1
    while db.execute("SELECT 1 FROM runs WHERE name = ?", (candidate,)).fetchone():
        k += 1
        candidate = RUN_NAME.beside(name, k)
    return candidate


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
