"""`charmlp-tui tune` killed with SIGKILL mid-trial: that trial is failed, the study goes on.

A worker trains its study's first trial (long enough to be mid-training), is killed with kill -9
once the study shows the trial RUNNING and its run is in the run store; a second worker joins the
study after the heartbeat's grace period (core.search_storage.GRACE_S) and Optuna fails the stale
trial when it starts its own (fail_stale_trials, run by study.optimize). Afterwards: the killed
trial is FAIL, the second worker's trials are finished, and the killed trial's run is kept with its
steps and is not claimed for ever (its writer is a dead process: another one may resume it).

The default storage (SQLite beside the run store) here; tests/test_search_postgres.py runs the
same on PostgreSQL. Every process has its own scratch XDG_DATA_HOME and --runs-db in tmp_path.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest

from conftest import REPO
from core.search_storage import GRACE_S, default_url

TUNE = [sys.executable, "-m", "tui", "tune", "--no-compile"]
LONG_STEPS = 10_000_000  # a trial far longer than the test: killed mid-training, before its first rung


def tune_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a tune process: its own scratch data folder (the default run store and studies)."""
    return dict(os.environ, XDG_DATA_HOME=str(tmp_path / "xdg"))


def start_tune(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([*TUNE, *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    """(exit code, stdout, stderr); a process still running at the timeout is killed and the test fails."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"`{' '.join(map(str, proc.args))}` still running after {timeout} s (killed)\n"
                    f"stdout:\n{out}\nstderr:\n{err}")
    return proc.returncode, out, err


def last_json(out: str) -> dict:
    lines = out.strip().splitlines()
    assert lines, "no output on stdout"
    return json.loads(lines[-1])


def wait_for(what: Callable[[], bool], proc: subprocess.Popen[str], seconds: float = 60) -> None:
    end = time.monotonic() + seconds
    while not what():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the worker ended (exit {proc.returncode}) before it was killed\nstdout:\n{out}\nstderr:\n{err}")
        assert time.monotonic() < end, f"timed out after {seconds} s"
        time.sleep(0.1)


def stored_run(db: Path, name: str) -> tuple[int, str | None] | None:
    """(steps, writer) of the run named so, read straight from the store (None: not there yet)."""
    if not db.exists():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as c:
            row = c.execute("SELECT steps, writer FROM runs WHERE name = ?", (name,)).fetchone()
    except sqlite3.OperationalError:  # no tables yet, or locked for longer than the timeout
        return None
    return (int(row[0] or 0), row[1]) if row else None


def trials_of(study: str, url: str) -> list[optuna.trial.FrozenTrial]:
    """The study's trials as its storage holds them now (a storage of its own: nothing cached)."""
    storage = optuna.storages.RDBStorage(url)
    try:
        return optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)
    finally:
        storage.remove_session()
        storage.engine.dispose()


def kill_mid_trial_then_join(tmp_path: Path, data: Path, storage: str | None) -> None:
    """The whole scenario on one storage (None: the default SQLite file beside the run store)."""
    study = f"kill-{uuid.uuid4().hex[:10]}"
    runs = tmp_path / "runs.db"
    url = storage or default_url(runs)
    where = ["--storage", storage] if storage else []
    common = ["--study", study, *where, "--data", str(data), "--runs-db", str(runs)]
    env = tune_env(tmp_path)

    first = start_tune(*common, "--trials", "1", "--steps", str(LONG_STEPS), env=env)
    try:
        wait_for(lambda: stored_run(runs, f"{study}-0") is not None, first)  # training: its run is in the store
        running = trials_of(study, url)
        assert [(t.number, t.state) for t in running] == [(0, optuna.trial.TrialState.RUNNING)], running
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    killed_at = time.monotonic()
    assert first.returncode == -signal.SIGKILL
    steps_killed, writer = stored_run(runs, f"{study}-0") or (0, None)
    assert steps_killed > 0

    # Its heartbeat is at most as new as the kill: once GRACE_S has passed, the next trial started fails it.
    time.sleep(max(0.0, killed_at + GRACE_S + 1 - time.monotonic()))
    assert trials_of(study, url)[0].state == optuna.trial.TrialState.RUNNING  # nothing fails it but a new trial
    second = start_tune("--worker", *common, "--trials", "2", "--steps", "600", "--sampler-seed", "1", "--json",
                        env=env)
    code, out, err = finish(second)
    assert code == 0, f"stdout:\n{out}\nstderr:\n{err}"
    assert "Traceback" not in err, err

    trials = trials_of(study, url)
    states = {t.number: t.state for t in trials}
    assert states[0] == optuna.trial.TrialState.FAIL, f"the killed trial is {states[0].name}, not FAIL\n{out}\n{err}"
    assert sorted(states) == [0, 1, 2], states  # the study went on: the second worker's two trials, numbered after it
    finished = {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    assert all(states[n] in finished for n in (1, 2)), states
    assert optuna.trial.TrialState.COMPLETE in (states[1], states[2]), states  # the first to reach each rung goes on
    summary = last_json(out)
    assert summary["trials"] == {"complete": sum(s == optuna.trial.TrialState.COMPLETE for s in states.values()),
                                 "pruned": sum(s == optuna.trial.TrialState.PRUNED for s in states.values()),
                                 "failed": 1}, summary
    assert summary["best"]["trial"] in (1, 2)

    # The killed trial's run: kept with its steps, and free to take (its writer is a dead process on this host).
    kept = stored_run(runs, f"{study}-0")
    assert kept is not None and kept[0] == steps_killed
    assert kept[1] in (None, f"{socket.gethostname()}:{first.pid}"), kept
    from core.store import RunStore

    store = RunStore(runs)
    try:
        store.claim(store.get(f"{study}-0"))  # a StoreError ("being trained by another charmlp-tui") if still claimed
        store.release(store.get(f"{study}-0").id)
    finally:
        store.close()
    for n in (1, 2):  # the second worker's trials were kept and released
        assert stored_run(runs, f"{study}-{n}") is not None
        assert stored_run(runs, f"{study}-{n}")[1] is None


def test_a_worker_killed_mid_trial_leaves_it_failed_and_the_study_going(tmp_path, small_file):
    kill_mid_trial_then_join(tmp_path, small_file, None)
