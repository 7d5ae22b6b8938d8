"""Opening the run store's database: checked, switched to WAL, brought forward (core.store_schema's
MIGRATIONS, one transaction each), and sqlite3's errors as one line a user can act on.

One written by a newer charmlp-tui (a higher version), or a database of another program (version
0 with tables in it), is refused before anything is written to it. Several processes may open
one new file at once (a search's workers, two runs started together): each waits for the others.
core.store builds on this; nothing else imports it.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from core.errors import StoreBusyError, StoreError
from core.reading import file_kind, printable
from core.store_schema import MIGRATIONS, SCHEMA_VERSION


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
    elif "FOREIGN KEY" in text:
        why = "its run is gone (deleted by another program?)"
    elif "full" in text:
        why = "the disk is full"
    elif "disk I/O error" in text:
        why = "the disk refused a write (full, over a file size limit, or failing)"
    elif "unable to open" in text:
        why = "cannot open its file (no permission to write its folder?)"
    else:
        why = printable(text.splitlines()[0][:120]) if text else type(e).__name__
    return StoreError(f"{shown}: cannot {what}: {why}")
