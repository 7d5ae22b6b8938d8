"""The run store against what an outside tester threw at it (issue 14): writes aimed at the store itself, flags that a
resumed run decides for itself, words that moved, a model too big to stop, a name too long to echo."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from core.jobs import chunk_for
from core.store import RunStore


def charmlp(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui", "--headless", "--no-compile", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def db(small_file: Path, tmp_path: Path) -> Path:
    """A store holding run 'a', 300 steps on the small words file."""
    path = tmp_path / "runs.db"
    out = charmlp("--data", str(small_file), "--runs-db", str(path), "--run", "a", "--script", "run 300")
    assert out.returncode == 0, out.stderr
    return path


def integrity(path: Path) -> str:
    with sqlite3.connect(path) as c:
        return str(c.execute("PRAGMA integrity_check").fetchone()[0])


@pytest.mark.parametrize("how", ["--autosave", "save --force", "save of its -wal"])
def test_nothing_is_ever_written_over_the_store(db, small_file, how):
    before = db.read_bytes()
    if how == "--autosave":
        out = charmlp("--data", str(small_file), "--runs-db", str(db), "--autosave", str(db), "--script", "run 10")
    else:
        target = f"{db}-wal" if "wal" in how else str(db)
        out = charmlp("--data", str(small_file), "--runs-db", str(db), "--force", "--script", f"run 10; save {target}")
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert "is the run store this session reads, which is never overwritten" in out.stderr
    assert integrity(db) == "ok"
    if how == "--autosave":  # refused before any work: the file is as it was
        assert db.read_bytes() == before
    store = RunStore(db)
    try:
        assert store.get("a").steps == 300
    finally:
        store.close()


def test_resume_refuses_the_flags_a_run_decides_for_itself(db):
    for flags in (["--hidden", "5"], ["--hid", "5"], ["--emb-dim=3"], ["--seed", "1"], ["--batch-size", "8"],
                  ["--lr-exp", "-2"], ["--split", "1,0,0"]):
        out = charmlp("--runs-db", str(db), "--resume", "a", *flags, "--script", "run 10")
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, (flags, out.stderr)
        assert "--resume continues the run with its own split, shape, seeds, batch and LR" in out.stderr


def test_resume_finds_words_that_moved_and_refuses_other_words(db, small_file, tmp_path):
    moved = tmp_path / "moved" / "names.txt"
    moved.parent.mkdir()
    small_file.rename(moved)
    out = charmlp("--runs-db", str(db), "--resume", "a", "--script", "run 10")
    assert out.returncode == 2 and "no such file" in out.stderr, out.stderr
    out = charmlp("--runs-db", str(db), "--resume", "a", "--data", str(moved), "--script", "run 10")
    assert out.returncode == 0 and "final: step 310" in out.stdout, out.stderr
    other = tmp_path / "other.txt"
    other.write_text("emma\nolivia\nava\n", encoding="utf-8")
    out = charmlp("--runs-db", str(db), "--resume", "a", "--data", str(other), "--script", "run 10")
    assert out.returncode == 2 and "other words" in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_a_headless_run_says_where_it_is_kept(db, small_file):
    out = charmlp("--data", str(small_file), "--runs-db", str(db), "--run", "b", "--script", "run 100; eval")
    assert out.returncode == 0, out.stderr
    assert f"run b kept in {db} (charmlp-tui runs show b)" in out.stderr
    store = RunStore(db)
    try:
        run = store.get("b")
    finally:
        store.close()
    assert run.steps == 100 and run.dev_loss is not None and f"dev {run.dev_loss:.4f}" in out.stdout


def test_a_chunk_of_a_huge_model_is_one_step_and_a_small_one_keeps_its_200():
    assert chunk_for(200, 3_481, 32) == 200 and chunk_for(200, 17_697, 32) == 200  # the lecture's models
    assert chunk_for(200, 1_073_741_824, 32) == 1 == chunk_for(200, 134_000_000, 32)
    assert 1 < chunk_for(200, 3_000_000, 32) < 200


def test_a_run_of_a_large_model_stops_at_its_next_step(small_words, monkeypatch):
    """The chunk bound reaches Trainer.run: with a slow CPU assumed, every step is a chunk boundary, so
    a stop asked after the first step stops there (a 10^9-parameter model at 200 steps a chunk would not
    stop for minutes)."""
    import core.jobs
    from core.config import DataConfig, ModelConfig
    from core.dataset import make_dataset
    from core.trainer import Trainer

    monkeypatch.setattr(core.jobs, "SLOW_FLOPS_PER_S", 1e3)
    trainer = Trainer(make_dataset(small_words, 3, DataConfig()), ModelConfig())
    seen: list[int] = []
    result = trainer.run(1000, on_progress=lambda p: seen.append(p.done), should_stop=lambda: bool(seen))
    assert result.stopped and result.steps == 1 and seen == [1] and trainer.step == 1


def test_a_run_name_too_long_is_one_short_line(small_file, tmp_path):
    out = charmlp("--data", str(small_file), "--runs-db", str(tmp_path / "r.db"), "--run", "x" * 5000,
                  "--script", "run 1")
    assert out.returncode == 2 and len(out.stderr) < 400 and "(5,000 characters)" in out.stderr, out.stderr
