"""`charmlp-tui tune` on a real PostgreSQL: two workers on one study, and a worker killed mid-trial.

These tests need a server: run them through scripts/with-postgres, which installs Debian's
PostgreSQL if it is missing, starts a throwaway one on loopback, passes its URL in
CHARMLP_TEST_POSTGRES and stops it after (the README's test command does). Without that variable
they fail, saying so: a skipped test would read as a pass.

Two workers run one study at once (real processes, one shared run store): every trial asked for is
there once (numbers distinct and contiguous), all finished, each kept as its own run, and the best
is shared: each worker reports a best that is a trial of the study, at least as good as anything it
knew when it started, and the worker that reported last reports the study's best.
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
import uuid
from pathlib import Path

import optuna
import pytest

from conftest import REPO
from test_search_kill import finish, kill_mid_trial_then_join, last_json, start_tune, trials_of, tune_env

URL_VARIABLE = "CHARMLP_TEST_POSTGRES"
HERE = Path(__file__).resolve().relative_to(REPO)
WORKERS, TRIALS_EACH, STEPS = 2, 4, 2000


def postgres_url() -> str:
    """The test server's URL; without it the test fails (in the test, not its setup: a plain FAILED)."""
    url = os.environ.get(URL_VARIABLE)
    if not url:
        pytest.fail(f"{URL_VARIABLE} is not set: the PostgreSQL tests need a server. Run them through "
                    f"scripts/with-postgres, which starts a throwaway one on loopback (installing Debian's "
                    f"postgresql if missing) and stops it after:  scripts/with-postgres pytest -q {HERE}   "
                    f"(the whole suite: scripts/with-postgres pytest -q)", pytrace=False)
    return url


def stored_runs(db: Path) -> list[tuple[str, str | None]]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as c:
        return [(str(name), writer) for name, writer in c.execute("SELECT name, writer FROM runs ORDER BY id")]


def test_two_workers_share_one_study_on_postgres(tmp_path, small_file):
    url = postgres_url()
    study = f"pg-{uuid.uuid4().hex[:12]}"
    env = tune_env(tmp_path)
    data = ["--data", str(small_file)]
    code, out, err = finish(start_tune("--study", study, "--storage", url, "--trials", "1", "--steps",
                                       str(STEPS), "--no-runs", *data, "--json", env=env))
    assert code == 0, f"stdout:\n{out}\nstderr:\n{err}"
    lecture = last_json(out)["best"]["dev_loss"]  # the study's first trial: the lecture's configuration

    runs = tmp_path / "runs.db"  # one machine's run store, shared by its two workers
    workers = [start_tune("--worker", "--study", study, "--storage", url, "--trials", str(TRIALS_EACH),
                          "--steps", str(STEPS), *data, "--runs-db", str(runs), "--json", env=env)
               for _ in range(WORKERS)]
    done = [finish(w) for w in workers]
    for code, out, err in done:
        assert code == 0 and "Traceback" not in err, f"exit {code}\nstdout:\n{out}\nstderr:\n{err}"
    summaries = [last_json(out) for _, out, _ in done]

    trials = trials_of(study, url)
    total = 1 + WORKERS * TRIALS_EACH
    assert len(trials) == total, [(t.number, t.state.name) for t in trials]  # no trial lost
    assert sorted(t.number for t in trials) == list(range(total))  # none handed out twice
    finished = {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    assert all(t.state in finished for t in trials), [(t.number, t.state.name, t.user_attrs) for t in trials]
    # The two ran at once: a worker's trials follow one another, so two that overlap in time are from both.
    spans = sorted((t.datetime_start, t.datetime_complete) for t in trials if t.number > 0)
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:])), "the workers' trials never overlapped"

    # Each trial kept once as its own run, named after it, and released.
    assert sorted(stored_runs(runs)) == sorted((f"{study}-{n}", None) for n in range(1, total)), done  # what they said

    complete = {t.number: t.value for t in trials if t.state == optuna.trial.TrialState.COMPLETE}
    best = min(complete.values())
    study_best = optuna.load_study(study_name=study, storage=url).best_value
    assert study_best == best
    for summary in summaries:
        assert summary["study"] == study
        counts = summary["trials"]
        assert counts["failed"] == 0 and 1 + TRIALS_EACH <= sum(counts.values()) <= total, counts  # saw the other's
        reported = summary["best"]
        assert complete.get(reported["trial"]) == reported["dev_loss"], (reported, complete)  # a trial of the study
        assert best <= reported["dev_loss"] <= lecture  # no better than the best; no worse than what it began with
    # The summary taken last was taken after every trial had finished: it names the study's best.
    assert min(s["best"]["dev_loss"] for s in summaries) == best, (summaries, complete)
    assert max(sum(s["trials"].values()) for s in summaries) == total
    assert all(math.isfinite(v) for v in complete.values())


def test_a_worker_killed_mid_trial_on_postgres(tmp_path, small_file):
    kill_mid_trial_then_join(tmp_path, small_file, postgres_url())
