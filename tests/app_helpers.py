"""Driving the real app headless: settings for a data file, and waiting for the worker."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Future
from pathlib import Path

import pytest

from tui.messages import Probe
from tui.settings import parse_settings


def app_settings(data: Path, *extra: str):
    """No background compile unless a test asks for it: it takes CPU and the GIL for seconds."""
    return parse_settings(["--data", str(data), "--no-compile", *extra])


async def settle(pilot, timeout: float = 30.0) -> None:
    """Wait until the worker has applied every command and no job runs."""
    app = pilot.app
    deadline = time.monotonic() + timeout
    while app.busy or app.status is None or not app.worker.commands.empty() or app.worker.working:
        if not app.is_running:  # it crashed: run_test raises its exception on the way out
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"app still busy after {timeout}s: {app.status}")
        await asyncio.sleep(0.02)
    await pilot.pause()


async def start_long_run(pilot) -> None:
    """Press run with N at 1M steps and wait until the worker has taken the job up."""
    await pilot.press("right_square_bracket", "right_square_bracket", "space")
    while pilot.app.status.job is None:
        await asyncio.sleep(0.01)


def log_text(app) -> str:
    """The log as one line of single-spaced words (the widget wraps long lines)."""
    from textual.widgets import RichLog

    return " ".join(" ".join(line.text for line in app.query_one(RichLog).lines).split())


async def trainer_of(app):
    """The app's Trainer, handed over by the worker thread between commands (tui.messages.Probe).
    For tests to look inside once the app has settled; the app itself never holds it."""
    answer: Future = Future()
    app.worker.send(Probe(lambda trainer: trainer, answer))
    return await asyncio.wrap_future(answer)


async def wait_for_error(app, timeout: float = 30.0) -> None:
    """Until the log shows an error (a start-up refusal reaches it from the worker thread)."""
    deadline = time.monotonic() + timeout
    while "error" not in log_text(app) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


def stored_names(db: Path) -> list[str]:
    """The names of the runs a store holds, oldest first."""
    from core.store import RunStore

    store = RunStore(db)
    try:
        return [r.name for r in store.runs()]
    finally:
        store.close()


async def until(pilot, condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.02)
    await pilot.pause()


def field(app, key: str):
    from textual.widgets import Input

    return app.screen.query_one(f"#field-{key}", Input)


@pytest.fixture
def db(tmp_path) -> Path:
    """The run store of one test."""
    return tmp_path / "runs.db"


@pytest.fixture
def kept_app(small_file, db):
    """The app on the small words, its run named 'first', kept in the test's own store."""
    from tui.app import CharMLPApp

    return CharMLPApp(app_settings(small_file, "--runs-db", str(db), "--run", "first"))


def text_of(app, selector: str) -> str:
    """What the label or static `selector` of the screen on top shows."""
    from textual.widgets import Static

    return str(app.screen.query_one(selector, Static).render())
