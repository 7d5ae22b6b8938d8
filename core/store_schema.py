"""The run store's schema and its file: the tables (MIGRATIONS, one script per version), opening
a database (checked, brought forward), and sqlite3's errors as one line a user can act on.

A database is versioned by PRAGMA user_version: applying MIGRATIONS[k] takes it from version k to
k + 1, in one transaction. One written by a newer charmlp-tui (a higher version) is refused before
anything is written to it. core.store builds on this; nothing else imports it.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from core.errors import StoreError
from core.reading import file_kind

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


def connect(path: Path, shown: str, timeout: float) -> sqlite3.Connection:
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
        db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
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
        raise error(shown, e, "open", timeout) from None
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


def error(shown: str, e: sqlite3.Error, what: str, timeout: float) -> StoreError:
    text = str(e)
    if "locked" in text or "busy" in text:
        why = f"locked by another program for more than {timeout:g} s"
    elif "readonly" in text or "read-only" in text:
        why = "read-only (no permission to write it or its folder)"
    elif "not a database" in text or "malformed" in text or "corrupt" in text:
        why = "not a charmlp-tui runs database, or damaged"
    elif "disk" in text and "full" in text:
        why = "the disk is full"
    else:
        why = text.splitlines()[0][:120] if text else type(e).__name__
    return StoreError(f"{shown}: cannot {what}: {why}")
