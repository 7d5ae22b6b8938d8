"""The run store's schema: its tables (MIGRATIONS, one script per version) and its rows as Python
reads them (each value checked for its type).

A database is versioned by PRAGMA user_version: applying MIGRATIONS[k] takes it from version k to
k + 1, in one transaction (core.store_open). SQLite keeps a value of any type in any column, so
a row read back is checked field by field (`row`): a value of another type is a damaged
database, refused in one line, never a TypeError later. core.store and core.store_open build on
this; nothing else imports it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from core.errors import StoreError

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
