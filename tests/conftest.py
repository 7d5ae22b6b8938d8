from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LECTURE_NAMES = REPO.parent / "shared" / "data" / "names.txt"  # makemore's names.txt, never copied here

# The run store's default place (platformdirs: $XDG_DATA_HOME/charmlp-tui/runs.db) is a scratch folder
# for the whole test session, so no test writes into the user's own runs; subprocesses inherit it.
DATA_HOME = tempfile.mkdtemp(prefix="charmlp-tests-data-")
os.environ["XDG_DATA_HOME"] = DATA_HOME


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(DATA_HOME, ignore_errors=True)  # a run of the tests leaves no folder behind


@pytest.fixture
def lecture_names() -> Path:
    if not LECTURE_NAMES.exists():
        pytest.skip(f"{LECTURE_NAMES} is missing: the lecture-number tests need ../shared/data/names.txt beside the "
                    "checkout (makemore's names.txt; this repository never copies it in)")
    return LECTURE_NAMES


@pytest.fixture
def small_words() -> list[str]:
    """300 real names: small enough for fast tests, varied enough to train on."""
    from core.words import load_words

    return load_words(None)[:300]


@pytest.fixture
def small_file(tmp_path: Path, small_words: list[str]) -> Path:
    path = tmp_path / "names.txt"
    path.write_text("\n".join(small_words) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def app(small_file: Path):
    """The real app on 300 names, no background compile (tests/app_helpers.app_settings)."""
    from app_helpers import app_settings
    from tui.app import CharMLPApp

    return CharMLPApp(app_settings(small_file))


@pytest.fixture
def trainer(small_words):
    from core.config import DataConfig, ModelConfig, TrainConfig
    from core.dataset import make_dataset
    from core.trainer import Trainer

    return Trainer(make_dataset(small_words, 3, DataConfig()), ModelConfig(), TrainConfig(chunk_steps=50))


@pytest.fixture
def headless(capsys):
    """charmlp-tui --headless --no-compile in this process: (exit code, stdout, stderr)."""
    from tui.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        try:
            code = main(["--headless", "--no-compile", *args])
        except SystemExit as e:  # argparse refuses a flag
            code = e.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


class Blocked(BaseException):
    """A call still blocked at its deadline: a BaseException, so no `except Exception` under test hides it."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """A read that blocks (a FIFO with no writer) fails the test instead of hanging CI."""
    def expired(signum: int, frame: object) -> None:
        raise Blocked(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def failures_at_once(work: Callable[[int], object], rounds: int, threads: int = 3) -> list[str]:
    """`work(round)` from `threads` threads let go together (a barrier), `rounds` times, as
    processes started at the same moment: what each failure said."""
    failures: list[str] = []

    def one(round_: int, gate: threading.Barrier) -> None:
        gate.wait()
        try:
            work(round_)
        except Exception as e:
            failures.append(str(e))

    for round_ in range(rounds):
        gate = threading.Barrier(threads)
        started = [threading.Thread(target=one, args=(round_, gate)) for _ in range(threads)]
        for t in started:
            t.start()
        for t in started:
            t.join(60)
    return failures
