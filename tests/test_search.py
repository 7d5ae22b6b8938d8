"""`charmlp-tui tune` and the `tune` verb, headless, as a user runs them: a tiny study end to end, its
JSON, its trials kept as runs whose recorded recipe replays to the same dev loss, Ctrl+C, bad spaces."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO
from core.errors import ConfigError
from core.search_space import DIMS, KEYS, LECTURE, Space
from core.store import RunStore

TINY = ["--steps", "600", "--sampler-seed", "1"]


def tune(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui", "tune", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def optuna_trials(storage: str, study: str) -> list:
    import optuna

    return optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """A four-trial study of 600 steps each on the built-in names, kept in a scratch store."""
    home = tmp_path_factory.mktemp("tune")
    out = tune("--trials", "4", *TINY, "--json", "--runs-db", str(home / "runs.db"))
    assert out.returncode == 0, out.stderr
    return home, out


def test_a_tiny_study_ends_with_its_json_summary(study):
    home, out = study
    summary = json.loads(out.stdout.splitlines()[-1])
    counts = summary["trials"]
    assert sum(counts.values()) == 4 and set(counts) == {"complete", "pruned", "failed"} and counts["failed"] == 0
    best = summary["best"]
    assert set(best["params"]) == set(KEYS) and 1.5 < best["dev_loss"] < 3.5
    trials = optuna_trials(summary["storage"], "search")
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert best["dev_loss"] == min(t.value for t in complete) and summary["storage"].endswith(str(home / "studies.db"))
    assert trials[0].params == LECTURE  # the number to beat comes first
    lines = [line for line in out.stdout.splitlines() if line.startswith("trial ")]
    assert [line.split()[1] for line in lines] == ["0", "1", "2", "3"]


def test_every_trial_is_a_run_whose_recipe_replays_to_its_dev_loss(study):
    home, out = study
    summary = json.loads(out.stdout.splitlines()[-1])
    store = RunStore(home / "runs.db")
    try:
        runs = {run.name: run for run in store.runs()}
    finally:
        store.close()
    assert set(runs) == {f"search-{n}" for n in range(4)}
    best = runs[summary["best"]["run"]]
    assert best.steps == 600 and best.dev_loss == pytest.approx(summary["best"]["dev_loss"], abs=1e-9)
    assert best.script.splitlines()[0] == "engine compiled" and "decay" in best.script
    argv = json.loads(best.argv)
    replay = subprocess.run([sys.executable, "-m", "tui", *argv, "--headless", "--no-runs", "--json",
                             "--script", best.script.replace("\n", "; ") + "; eval"],
                            cwd=REPO, capture_output=True, text=True, timeout=180)
    assert replay.returncode == 0, replay.stderr
    assert json.loads(replay.stdout.splitlines()[-1])["loss"]["dev"] == pytest.approx(best.dev_loss, abs=1e-4)


def test_a_second_tune_goes_on_with_the_study_and_keeps_run_names_apart(study):
    home, _ = study
    out = tune("--trials", "1", *TINY, "--json", "--runs-db", str(home / "runs.db"))
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.splitlines()[-1])
    assert sum(summary["trials"].values()) == 5  # the study's trials, not only this process's
    assert "trial 4 " in out.stdout and "search-4" in out.stdout


def test_ctrl_c_stops_the_running_trial_and_keeps_the_finished(tmp_path):
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    proc = subprocess.Popen([sys.executable, "-m", "tui", "tune", "--trials", "3", "--steps", "5000000",
                             "--storage", storage, "--runs-db", str(tmp_path / "runs.db"), "--json"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if any(t.state.name == "RUNNING" for t in optuna_trials(storage, "search")):
                    break
            except KeyError:  # the study is not made yet
                pass
            time.sleep(0.5)
        time.sleep(1.0)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert time.monotonic() - started < 10  # at a chunk boundary, not at the trial's end
    assert proc.returncode == 128 + signal.SIGINT, stderr
    assert "Traceback" not in stderr and "the finished trials are kept" in stderr
    [trial] = optuna_trials(storage, "search")
    assert trial.state.name == "FAIL"
    assert json.loads(stdout.splitlines()[-1])["trials"] == {"complete": 0, "pruned": 0, "failed": 1}
    store = RunStore(tmp_path / "runs.db")
    try:
        [run] = store.runs()
        assert run.name == "search-0" and run.steps > 0
        store.claim(run)  # released: another process may resume it
    finally:
        store.close()


def test_the_tune_verb_opens_the_best_trial_to_train_further(tmp_path):
    out = subprocess.run([sys.executable, "-m", "tui", "--headless", "--runs-db", str(tmp_path / "runs.db"), "--json",
                          "--script", "tune trials=2 steps=600 study=verb hidden=50:80; run 100"],
                         cwd=REPO, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.splitlines()[-1])
    best = next(line for line in out.stdout.splitlines() if line.startswith("tune verb:"))
    run = best.rsplit("opened run ", 1)[1]
    assert summary["run"] == run and summary["step"] == 700 and 50 <= summary["hidden"] <= 80


@pytest.mark.parametrize("given, message", [
    (["hidden=600:50"], "hidden: the low end 600 is above the high end 50"),
    (["depth=1:2"], "give KEY=LO:HI with KEY one of block, emb"),
    (["lr=-9:0"], "lr must be a number from -8 to 3"),
    (["emb=0:4"], "emb must be a whole number from 1 to 1,024"),
    (["decay=1:10"], "decay must be a number above 1"),
    (["block"], "give KEY=LO:HI"),
])
def test_a_bad_space_is_one_line(given, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        Space().with_ranges(given)
    out = tune(*[word for g in given for word in ("--space", g)], "--no-runs")
    assert out.returncode == 2 and out.stdout == "" and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert message.split(":")[0] in out.stderr


def test_a_fixed_value_and_a_narrowed_range_are_what_trials_draw_from():
    space = Space().with_ranges(["block=4", "hidden=100:120", "lr=-1.5:-1"])
    dims = {d.key: d for d in space.dims}
    assert (dims["block"].low, dims["block"].high) == (4, 4) and dims["hidden"].text == "100:120"
    assert not space.holds(LECTURE) and Space().holds(LECTURE)
    assert [d.key for d in space.dims] == [d.key for d in DIMS]


def test_help_lists_every_dimension_of_the_space():
    out = tune("--help")
    assert out.returncode == 0
    for d in DIMS:
        assert f"{d.key} " in out.stdout and d.text in out.stdout
    assert shlex.split("--worker --study --storage --trials --timeout --steps --json")[0] in out.stdout


def test_a_search_stopped_before_any_best_leaves_the_last_trial_open_and_kept(tmp_path, small_file):
    """Nothing to open (stopped in the first trial): the model it stopped on stays, as its run, so
    training on is kept there."""
    from core.actions import Job
    from core.config import DataConfig, ModelConfig, TrainConfig
    from core.search import StudySpec, run_search
    from core.session import open_session
    from tui.settings import rebuild_argv

    data = DataConfig(path=small_file)
    trainer, keeper, _ = open_session(data, ModelConfig(), TrainConfig(), None, True, tmp_path / "runs.db", None,
                                      None, lambda m, t, load: rebuild_argv(data, m, t, load))
    steps: list[int] = []
    job = Job(on_progress=lambda p: steps.append(p.step), should_stop=lambda: len(steps) >= 3)
    outcome, view = run_search(trainer, keeper, StudySpec(study="stop", trials=2, steps=100_000), job)
    assert "(stopped)" in outcome.summary and view.best is None and view.counts()["failed"] == 1
    assert keeper.run is not None and keeper.run.name == "stop-0" and trainer.step == keeper.run.steps > 0
    stopped_at = trainer.step
    trainer.run(100)
    keeper.close(trainer)
    from core.store import RunStore

    store = RunStore(tmp_path / "runs.db")
    try:
        assert store.get("stop-0").steps == stopped_at + 100 and [r.name for r in store.runs()] == ["stop-0"]
    finally:
        store.close()


@pytest.mark.parametrize("failure", ["full", "locked once"])
def test_a_trial_whose_run_cannot_be_kept_says_so(tmp_path, small_file, monkeypatch, failure):
    """The store fails as trial 1's run is made: a full disk turns keeping off (trial 1 and 2 name no
    run, and the summary says why); a lock met once is tried again, the run is kept and the trial's
    note says so."""
    from core.actions import Job
    from core.config import DataConfig, ModelConfig, TrainConfig
    from core.errors import StoreBusyError, StoreError
    from core.search import StudySpec, run_search
    from core.session import open_session
    from tui.settings import rebuild_argv

    create = RunStore.create
    failed: list[str] = []

    def failing_create(store, values, name):
        if name == "fail-1" and not failed:
            failed.append(name)
            raise (StoreError("runs.db: cannot create a run: the disk is full") if failure == "full" else
                   StoreBusyError("runs.db: cannot create a run: locked by another program for more than 5 s"))
        return create(store, values, name)

    monkeypatch.setattr(RunStore, "create", failing_create)
    data = DataConfig(path=small_file)
    trainer, keeper, _ = open_session(data, ModelConfig(), TrainConfig(), None, True, tmp_path / "runs.db", None,
                                      None, lambda m, t, load: rebuild_argv(data, m, t, load))
    outcome, view = run_search(trainer, keeper, StudySpec(study="fail", trials=3, steps=3000, prune=False), Job())
    keeper.close(trainer)
    trials = {t.number: t for t in view.trials}
    store = RunStore(tmp_path / "runs.db")
    try:
        stored = sorted(r.name for r in store.runs())
    finally:
        store.close()
    if failure == "full":
        assert stored == ["fail-0"] and [trials[n].run for n in range(3)] == ["fail-0", None, None]
        assert trials[1].note == "runs are not saved: runs.db: cannot create a run: the disk is full (training goes on)"
        assert outcome.summary.endswith("; " + trials[1].note) and trials[2].note == ""
    else:
        assert stored == ["fail-0", "fail-1", "fail-2"] and [trials[n].run for n in range(3)] == stored
        assert trials[1].note.startswith("run not saved this time: runs.db: cannot create a run: locked")
        assert "not saved" not in outcome.summary and trials[2].note == ""  # nothing was lost
    assert all(trials[n].state == "complete" for n in range(3)) and failed == ["fail-1"]
