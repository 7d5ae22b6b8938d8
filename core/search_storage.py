"""Where a study lives: an Optuna storage from a URL, or SQLite beside the run store.

Optuna's RDB storage for every URL (sqlite:///…, postgresql://…, mysql://…): it is the one with
heartbeats in Optuna 5 (its journal file storage has none), so a worker killed mid-trial has that
trial failed by the next worker that starts one, on one machine as on many. A bad URL, a missing
driver or a server that does not answer is one line, and nothing is started. Several workers
started at once on a new storage all make its tables (Optuna does not wait for the others): one
that meets another's tables half made tries again.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any

from core.errors import SearchError
from core.reading import printable

HEARTBEAT_S = 5  # a running trial says it is alive this often…
GRACE_S = 20  # …and one silent for this long is failed by the next worker to start a trial
CONNECT_TIMEOUT_S = 10  # a server that does not answer: one line after this, not a hang
STUDIES_FILE = "studies.db"  # beside the run store
SETUP_WAIT_S = 10.0  # workers making one new storage's tables at once: how long one waits for the others
# what a storage says when another process made its tables meanwhile (SQLite's words, PostgreSQL's)
_MADE_MEANWHILE = ("already exists", "UNIQUE constraint failed", "duplicate key")


def default_url(runs_path: Path | None) -> str:
    from core.store import default_path

    return f"sqlite:///{(runs_path or default_path()).parent / STUDIES_FILE}"


def shown_url(url: str) -> str:
    """The URL without its password, printable."""
    try:
        from sqlalchemy.engine import make_url

        return printable(make_url(url).render_as_string(hide_password=True))
    except Exception:
        return printable(url.split("@")[-1]) if "@" in url else printable(url)


def open_storage(url: str | None, runs_path: Path | None, study: str | None = None) -> tuple[Any, str]:
    """(the storage, how to show it); SearchError in one line when it cannot be used, or (study
    given: a worker joining) when it holds no such study — then no file is left behind either."""
    import optuna

    logging.getLogger("sqlalchemy").setLevel(logging.ERROR)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # each trial is reported by the caller, a failure's why too
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats: experimental in 5.0
    url = default_url(runs_path) if url is None else url
    shown = shown_url(url)
    if "://" not in url:
        raise SearchError(f"--storage {shown or repr(url)}: not a storage URL (sqlite:///PATH, postgresql://USER@HOST/DB, …)")
    if url.startswith("sqlite:") and (not url.startswith("sqlite:///") or url.rstrip("/") == "sqlite:"
                                      or ":memory:" in url):
        raise SearchError(f"--storage {shown}: an in-memory study is neither kept nor shared; give a file, "
                          "sqlite:///PATH")
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):])
        if study is not None and not path.exists():
            raise SearchError(_missing(study, shown))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SearchError(f"--storage {shown}: cannot make its folder ({e.strerror or e})") from None
        connect: dict[str, Any] = {"timeout": 30}
    elif url.startswith(("postgresql", "mysql")):
        connect = {"connect_timeout": CONNECT_TIMEOUT_S}
    else:
        connect = {}
    deadline = time.monotonic() + SETUP_WAIT_S
    while True:
        try:
            storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": connect} if connect else None,
                                                 heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
            break
        except Exception as e:  # SQLAlchemy's and the drivers' errors: a bad URL, no driver, no server
            if not any(words in str(e) for words in _MADE_MEANWHILE) or time.monotonic() > deadline:
                raise SearchError(f"--storage {shown}: {_reason(e)}") from None
            time.sleep(0.1)
    if study is not None and study not in {s.study_name for s in storage.get_all_studies()}:
        raise SearchError(_missing(study, shown))
    return storage, shown


def _missing(study: str, shown: str) -> str:
    return f"no study named {study!r} in {shown}; start it with `charmlp-tui tune --study {study}` first"


def _reason(e: BaseException) -> str:
    text = str(e).strip()
    if isinstance(e, ModuleNotFoundError) or "Failed to import DB access module" in text:
        return "its database driver is not installed (for PostgreSQL: pip install 'charmlp-tui[postgres]')"
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("(Background")]
    first = lines[0] if lines else type(e).__name__
    if first.startswith("(") and ")" in first:  # "(psycopg2.OperationalError) connection … failed: …"
        first = first.split(")", 1)[1].strip()
    return printable(first)[:300]
