"""The run store's schema: its tables (MIGRATIONS, one script per version), its rows as Python
reads them (each value checked for its type), opening a database (checked, brought forward), and
sqlite3's errors as one line a user can act on.

A database is versioned by PRAGMA user_version: applying MIGRATIONS[k] takes it from version k to
k + 1, in one transaction. One written by a newer charmlp-tui (a higher version), or a database of
another program (version 0 with tables in it), is refused before anything is written to it.
SQLite keeps a value of any type in any column, so a row read back is checked field by field
(`row`): a value of another type is a damaged database, refused in one line, never a TypeError
later. core.store builds on this; nothing else imports it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from core.errors import StoreBusyError, StoreError
from core.reading import file_kind, printable

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
    # 3: how the parameters were drawn (core.ranges.INITS); runs from before it had the lecture's
    """
    ALTER TABLE runs ADD COLUMN init TEXT NOT NULL DEFAULT 'lecture';
    """,
    # 4: the diagnostics (core.diagnose) each history row's steps recorded, and each snapshot's: float64
    # rows, little-endian; runs from before it recorded none that were kept
    """
    ALTER TABLE history ADD COLUMN diagnostics BLOB NOT NULL DEFAULT x'';
    ALTER TABLE snapshots ADD COLUMN diagnostics BLOB NOT NULL DEFAULT x'';
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


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
    init: str

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
    """A named snapshot of a run: its state, and its history (blobs, as one history row)."""

    name: str
    dev_loss: float | None
    state: StoredState
    lr: bytes
    loss: bytes
    diagnostics: bytes


@dataclass(frozen=True)
class History:
    """One row of a run's history: `start`, the step of its first value, float32 blobs of its steps'
    learning rates and losses, and the diagnostics measured after them (float64 rows, core.diagnose)."""

    start: int
    lr: bytes
    loss: bytes
    diagnostics: bytes


Row = TypeVar("Row", RunRow, StoredState, StoredSnapshot, History)
_KINDS: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "str": (str,), "bytes": (bytes,),
                                       "None": (type(None),), "StoredState": (StoredState,)}
_NAMES = {int: "a whole number", float: "a number", str: "text", bytes: "a blob", type(None): "NULL",
          StoredState: "a state"}
_TABLES = {RunRow: "runs", StoredState: "state", StoredSnapshot: "snapshots", History: "history"}


def row(cls: type[Row], values: Sequence[Any], shown: str) -> Row:
    """The row as `cls`, every value of its field's type (and a run's argv a JSON list of strings),
    or one StoreError line naming the column."""
    for f, value in zip(fields(cls), values, strict=True):
        if not isinstance(value, tuple(k for kind in str(f.type).split(" | ") for k in _KINDS[kind])) \
                or isinstance(value, bool):
            raise StoreError(f"{shown}: damaged ({_TABLES[cls]}.{f.name} holds {_NAMES.get(type(value), 'another type')}, "
                             f"not {' or '.join(_NAMES[_KINDS[k][-1]] for k in str(f.type).split(' | '))})")
    made = cls(*values)
    if isinstance(made, RunRow):
        try:
            argv = json.loads(made.argv)
        except ValueError:
            argv = None
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            raise StoreError(f"{shown}: damaged (run {made.name!r} argv is not a JSON list of flags)")
    return made


def connect(path: Path, shown: str, timeout: float) -> sqlite3.Connection:
    """Open (creating it and its folder if need be), check the version, migrate forward. A
    database this program does not take (newer, another program's) is left untouched."""
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
        db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as e:
        if info is None and not os.access(path.parent, os.W_OK):
            raise StoreError(f"{shown}: cannot be made: its folder is read-only (no permission to write it)") from None
        raise StoreError(f"{shown}: cannot be opened ({getattr(e, 'strerror', None) or e})") from None
    db.text_factory = lambda b: b.decode("utf-8", "replace")  # text that is not UTF-8: a damaged row, not a crash
    try:
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("BEGIN")  # the version and the tables read together: another process may be migrating it
        try:
            (version,) = db.execute("PRAGMA user_version").fetchone()
            if version > SCHEMA_VERSION:
                raise StoreError(f"{shown}: written by a newer charmlp-tui (schema {version}, this one reads up to "
                                 f"{SCHEMA_VERSION}); upgrade, or give another --runs-db")
            _not_foreign(db, version, shown)
        finally:
            db.execute("COMMIT")
        _use_wal(db, timeout)
        _migrate(db, version, shown)
    except sqlite3.Error as e:
        db.close()
        raise error(shown, e, "open", timeout) from None
    except StoreError:
        db.close()
        raise
    return db


def _use_wal(db: sqlite3.Connection, timeout: float) -> None:
    """Switch a new database to WAL. The switch needs the file to itself and SQLite does not wait
    for it (another process opening the same new file at this moment makes it fail at once), so
    it is tried again until `timeout`; one that another process switched meanwhile is done."""
    deadline = time.monotonic() + timeout
    while db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return  # switched, or a file system without WAL: SQLite keeps its own journal there
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _not_foreign(db: sqlite3.Connection, version: int, shown: str) -> None:
    """A database at version 0 is a new one only if it is empty: tables in it are another program's."""
    if version == 0 and db.execute("SELECT 1 FROM sqlite_master").fetchone():
        raise StoreError(f"{shown}: not a charmlp-tui runs database (it holds another program's tables); "
                         "give --runs-db a file of its own")


def _migrate(db: sqlite3.Connection, version: int, shown: str) -> None:
    while version < SCHEMA_VERSION:
        db.execute("BEGIN IMMEDIATE")
        try:
            (version,) = db.execute("PRAGMA user_version").fetchone()  # another process may have migrated it
            _not_foreign(db, version, shown)
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


def error(shown: str, e: sqlite3.Error, what: str, timeout: float) -> StoreError:
    text = str(e)
    if "locked" in text or "busy" in text:
        return StoreBusyError(f"{shown}: cannot {what}: locked by another program for more than {timeout:g} s")
    if "readonly" in text or "read-only" in text:
        why = "read-only (no permission to write it or its folder)"
    elif "not a database" in text or "malformed" in text or "corrupt" in text:
        why = "not a charmlp-tui runs database, or damaged"
    elif "full" in text:
        why = "the disk is full"
    elif "disk I/O error" in text:
        why = "the disk refused a write (full, over a file size limit, or failing)"
    elif "unable to open" in text:
        why = "cannot open its file (no permission to write its folder?)"
    else:
        why = printable(text.splitlines()[0][:120]) if text else type(e).__name__
    return StoreError(f"{shown}: cannot {what}: {why}")
