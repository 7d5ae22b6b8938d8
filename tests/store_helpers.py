"""What the run-store tests share: a run read straight from a database file."""

from __future__ import annotations

from pathlib import Path

from core.run_blobs import read_state
from core.state import TrainingState
from core.store import RunRow, RunStore


def stored(db: Path, name: str) -> tuple[RunRow, TrainingState]:
    """(the runs row, its state as resume reads it) straight from the file."""
    store = RunStore(db)
    try:
        run = store.get(name)
        state = store.state(run.id)
        assert state is not None
        return run, read_state(run, state, store.history(run.id), name)
    finally:
        store.close()
