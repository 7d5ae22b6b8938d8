"""Checkpoints that pass the shape check and lie (issue 12, class 5), and files that are no checkpoint.

Every case is refused with one CheckpointError line, and loading is all or nothing: the model,
step, learning rate, history, evaluations, minibatch generator, snapshots and undo state are
exactly as before, and a headless run's --autosave afterwards writes the session's model, not
the refused one. A property test mutates a valid checkpoint's fields at random: each mutation
either loads exactly what it says or is refused, never any other exception.
"""

from __future__ import annotations

import copy
import io
import math
import os
import struct
import zipfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import core.checkpoint as checkpoint
from conftest import deadline
from core.checkpoint import load_checkpoint
from core.config import DataConfig, ModelConfig, TrainConfig
from core.dataset import make_dataset
from core.errors import CheckpointError
from core.history import EvalPoint
from core.trainer import Trainer


# ---- helpers -------------------------------------------------------------------------------------
def fingerprint(t: Trainer) -> dict:
    """Everything a load could change, copied (tensors) or by identity (snapshots, undo state)."""
    lr, loss = t.history.tensors()
    return {"params": t.params.clone().tensors(), "param_objects": [id(p) for p in t.params.tensors()],
            "step": t.step, "lr_exponent": t.lr_exponent, "lr": lr, "loss": loss, "evals": list(t.evals),
            "rng": t._batch_gen.get_state(), "model": t.model_config, "snapshots": [id(s) for s in t.snapshots],
            "before_run": id(t._before_run), "history_object": id(t.history)}


def assert_same(now: dict, before: dict) -> None:
    for key, value in before.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(now[key], value), key
        elif key == "params":
            assert all(torch.equal(a, b) for a, b in zip(now[key], value)), key
        else:
            assert now[key] == value, key


def assert_refused(trainer: Trainer, path: Path, match: str) -> str:
    before = fingerprint(trainer)
    with deadline(10), pytest.raises(CheckpointError, match=match) as err:
        trainer.load(path)
    line = str(err.value)
    assert "\n" not in line and line.isprintable() and len(line) < 400, line
    assert_same(fingerprint(trainer), before)
    return line


def raw_of(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def write(path: Path, raw: object) -> Path:
    torch.save(raw, path)
    return path


def rezip(data: bytes, replace: dict[str, bytes] | None = None, deflate: tuple[str, ...] = (),
          extra: tuple[tuple[str, bytes], ...] = (), comment: bytes = b"") -> bytes:
    """The archive `data` rewritten by Python's zipfile: records replaced, deflated or added."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            record = (replace or {}).get(name, source.read(name))
            target.writestr(name, record, zipfile.ZIP_DEFLATED if name in deflate else zipfile.ZIP_STORED)
        for name, record in extra:
            target.writestr(name, record)
        target.comment = comment
    return out.getvalue()


def generator_record(data: bytes) -> str:
    """The name of the record holding the minibatch generator's state (5,056 bytes): torch.save
    numbers storages in the order it meets them, params 0-4, history 5-6, the generator 7."""
    return next(n for n in zipfile.ZipFile(io.BytesIO(data)).namelist() if n.endswith("/data/7"))


def forge_claim(data: bytes, numel: int) -> bytes:
    """`data` with the pickle claiming `numel` bytes for the generator's storage (its record holds 5,056)."""
    data = rezip(data)
    pkl_name = next(n for n in zipfile.ZipFile(io.BytesIO(data)).namelist() if n.endswith("/data.pkl"))
    pkl = zipfile.ZipFile(io.BytesIO(data)).read(pkl_name)
    assert pkl.count(b"M\xc0\x13t") == 1  # BININT2 5056, then TUPLE: the storage's element count
    return rezip(data, {pkl_name: pkl.replace(b"M\xc0\x13t", struct.pack("<BBq", 0x8A, 8, numel) + b"t")})  # LONG1


# ---- a model to protect, and a good checkpoint of it ---------------------------------------------
@pytest.fixture(scope="module")
def dataset(small_words_once):
    return make_dataset(small_words_once, 3, DataConfig())


@pytest.fixture(scope="module")
def small_words_once() -> list[str]:
    from core.words import load_words

    return load_words(None)[:300]  # the conftest's small_words, built once for this module


@pytest.fixture(scope="module")
def good_bytes(dataset, tmp_path_factory) -> bytes:
    """A checkpoint at step 60 with an evaluation (made once: training is the slow part)."""
    trainer = Trainer(dataset, ModelConfig(), TrainConfig(chunk_steps=50))
    trainer.run(60)
    trainer.evaluate()
    return trainer.save(tmp_path_factory.mktemp("good") / "good.pt").read_bytes()


@pytest.fixture
def trained(dataset, good_bytes: bytes, tmp_path: Path) -> tuple[Trainer, Path]:
    """A trainer with a history, evaluations, a snapshot and an undo state; the good checkpoint."""
    trainer = Trainer(dataset, ModelConfig(), TrainConfig(chunk_steps=50))
    path = tmp_path / "good.pt"
    path.write_bytes(good_bytes)
    trainer.load(path)
    trainer.take_snapshot("kept")
    trainer.run(10)  # differs from the checkpoint (a load would show), and can be undone
    assert trainer.can_undo and trainer.snapshots
    return trainer, path


# ---- the values: each field lies ----------------------------------------------------------------
def _set(*keys_and_value):
    *keys, value = keys_and_value

    def mutate(raw: dict) -> None:
        target = raw
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value(raw) if callable(value) else value

    return mutate


def _drop(*keys):
    def mutate(raw: dict) -> None:
        target = raw
        for k in keys[:-1]:
            target = target[k]
        del target[keys[-1]]

    return mutate


def _history(name: str, change):
    def mutate(raw: dict) -> None:
        t = raw["history"][name].clone()
        raw["history"][name] = change(t)

    return mutate


def _nan_at_0(t):
    t[0] = math.nan
    return t


def _inf_at_end(t):
    t[-1] = math.inf
    return t


def _negative(t):
    t[3] = -0.1
    return t


LIES = [  # (case, mutation of the checkpoint's dict, what the one line says)
    ("lr exponent 400 (10**400 overflows)", _set("lr_exponent", 400.0), "lr exponent must be a number from -8"),
    ("lr exponent -inf", _set("lr_exponent", -math.inf), "lr exponent must be"),
    ("lr exponent nan", _set("lr_exponent", math.nan), "lr exponent must be"),
    ("lr exponent a string", _set("lr_exponent", "-1"), "lr exponent is '-1', not a number"),
    ("lr exponent True", _set("lr_exponent", True), "lr exponent is True"),
    ("lr exponent a tensor", _set("lr_exponent", torch.tensor(-1.0)), "lr exponent is a Tensor"),
    ("step negative", _set("step", -1), "step must be a whole number"),
    ("step a float", _set("step", 60.0), "step is 60.0, not a whole number"),
    ("step a string", _set("step", "60"), "step is '60'"),
    ("step past any run", _set("step", 10**13), "step must be a whole number"),
    ("step beyond its history", _set("step", 61), "history lr should be float32 \\(61,\\)"),
    ("an evaluation with a negative loss", _set("evals", [[10, -1.0, 2.0]]), "evaluation 0 has train loss -1.0"),
    ("an evaluation with a string loss", _set("evals", [[10, 2.0, "2.1"]]), "evaluation 0 has dev loss '2.1'"),
    ("an evaluation with a nan loss", _set("evals", [[10, math.nan, None]]), "evaluation 0 has train loss nan"),
    ("an evaluation with an inf loss", _set("evals", [[10, 2.0, math.inf]]), "dev loss inf"),
    ("an evaluation with an int loss", _set("evals", [[10, 2, None]]), "train loss 2, not a finite"),
    ("an evaluation past the checkpoint's step", _set("evals", [[0, 3.0, 3.0], [61, 2.0, 2.0]]),
     "evaluation 1 is at step 61, not a step from 0 to 60"),
    ("an evaluation at a negative step", _set("evals", [[-1, 2.0, 2.0]]), "evaluation 0 is at step -1"),
    ("an evaluation of two values", _set("evals", [[10, 2.0]]), "evaluation 0 is a list, not \\[step"),
    ("an evaluation that is a tensor", _set("evals", [torch.zeros(3)]), "evaluation 0 is a Tensor"),
    ("evaluations a dict", _set("evals", {"0": [1, 2.0, 2.0]}), "evaluations are a dict, not a list"),
    ("history lr with nan", _history("lr", _nan_at_0), "history lr holds a learning rate that is not"),
    ("history lr negative", _history("lr", _negative), "history lr holds a learning rate that is not"),
    ("history loss with nan", _history("loss", _nan_at_0), "history loss holds non-finite values"),
    ("history loss with inf", _history("loss", _inf_at_end), "history loss holds non-finite values"),
    ("history loss float64", _history("loss", lambda t: t.double()), "history loss should be float32 \\(60,\\), found float64"),
    ("history loss shorter", _history("loss", lambda t: t[:-1].clone()), "history loss should be float32 \\(60,\\)"),
    ("history loss a list", _history("loss", lambda t: t.tolist()), "history loss is a list, not a tensor"),
    ("history without its loss", _drop("history", "loss"), "missing history field loss"),
    ("history with another field", _set("history", "grad", torch.zeros(60)), "unknown history field 'grad'"),
    ("generator state shortened", _set("batch_rng_state", lambda r: r["batch_rng_state"][:-8].clone()),
     "minibatch generator state should be uint8"),
    ("generator state int64", _set("batch_rng_state", lambda r: r["batch_rng_state"].long()),
     "minibatch generator state should be uint8 .* found int64"),
    ("generator state 2-D", _set("batch_rng_state", lambda r: r["batch_rng_state"].view(2, -1).clone()),
     "minibatch generator state should be uint8"),
    ("generator state of zeros (unseeded, torch refuses it)", _set("batch_rng_state", lambda r: torch.zeros_like(r["batch_rng_state"])),
     "minibatch generator state: "),
    ("generator state a list", _set("batch_rng_state", lambda r: r["batch_rng_state"].tolist()),
     "minibatch generator state is a list"),
    ("W1 expand()ed from one row", _set("params", "W1", lambda r: r["params"]["W1"][:1].clone().expand(6, 100)),
     "W1 is a view of other memory"),
    ("W1 as_strided over 100 floats", _set("params", "W1", lambda r: torch.zeros(100).as_strided((6, 100), (0, 1))),
     "W1 is a view of other memory"),
    ("W1 in a giant shared storage", _set("params", "W1", lambda r: torch.zeros(1 << 20)[:600].view(6, 100)),
     "W1 is a view of other memory"),
    ("W1 at an offset into a storage", _set("params", "W1", lambda r: torch.zeros(700)[100:].view(6, 100)),
     "W1 is a view of other memory"),
    ("W1 transposed (not contiguous)", _set("params", "W1", lambda r: torch.zeros(100, 6).t()),
     "W1 is a view of other memory"),
    ("W1 a Parameter", _set("params", "W1", lambda r: torch.nn.Parameter(r["params"]["W1"])), "W1 is a Parameter"),
    ("W1 requiring grad", _set("params", "W1", lambda r: r["params"]["W1"].clone().requires_grad_()),
     "W1 is not a plain tensor"),
    ("W1 float64", _set("params", "W1", lambda r: r["params"]["W1"].double()), "W1 should be float32"),
    ("W1 with nan", _set("params", "W1", lambda r: r["params"]["W1"].clone().fill_(math.nan)), "W1 holds non-finite"),
    ("b2 one short", _set("params", "b2", lambda r: r["params"]["b2"][:-1].clone()), "b2 should be float32"),
    ("C sparse", _set("params", "C", lambda r: r["params"]["C"].to_sparse()), "C is not a plain tensor"),
    ("a sixth parameter", _set("params", "W3", torch.zeros(2)), "unknown parameter field 'W3'"),
    ("no C", _drop("params", "C"), "missing parameter field C"),
    ("vocabulary unsorted", _set("vocab", lambda r: r["vocab"][::-1]), "vocabulary is not sorted distinct"),
    ("vocabulary with a repeat", _set("vocab", lambda r: r["vocab"][:-1] + r["vocab"][-2]), "vocabulary is not sorted"),
    ("vocabulary with the boundary", _set("vocab", lambda r: "." + r["vocab"][1:]), "boundary token"),
    ("vocabulary with ESC", _set("vocab", lambda r: "\x1b" + r["vocab"][1:]), "not printable"),
    ("vocabulary empty", _set("vocab", ""), "vocabulary is '', not a string"),
    ("vocabulary a number", _set("vocab", 26), "vocabulary is 26"),
    ("hidden size 0", _set("model", "hidden", 0), "hidden size must be a whole number"),
    ("hidden size a string", _set("model", "hidden", "100"), "model hidden is '100', not a whole number"),
    ("block size True", _set("model", "block_size", True), "model block_size is True"),
    ("the model a list", _set("model", [3, 2, 100, 1]), "model is a list"),
    ("the model without its seed", _drop("model", "seed"), "missing model field seed"),
    ("the model with a dropout", _set("model", "dropout", 0.1), "unknown model field 'dropout'"),
    ("an init no program draws", _set("model", "init", "kaiming"), "model init is 'kaiming', not lecture or scaled"),
    ("an init that is a number", _set("model", "init", 1), "model init is 1, not lecture or scaled"),
    ("an extra field", _set("comment", "hi"), "unknown field 'comment'"),
    ("no evaluations", _drop("evals"), "missing field evals"),
    ("no generator state", _drop("batch_rng_state"), "missing field batch_rng_state"),
    ("another format", _set("format", "something else"), "missing its format marker"),
    ("version 2", _set("version", 2), "version 2, this program reads version 1"),
    ("version '1'", _set("version", "1"), "version '1'"),
    ("version a tensor", _set("version", torch.ones(3)), "version a Tensor"),
]


@pytest.mark.parametrize(("case", "mutate", "match"), LIES, ids=[c[0] for c in LIES])
def test_a_checkpoint_that_lies_is_refused_and_nothing_changes(trained, tmp_path, case, mutate, match):
    trainer, good = trained
    raw = raw_of(good)
    mutate(raw)
    line = assert_refused(trainer, write(tmp_path / "lies.pt", raw), match)
    assert "lies.pt" in line and "nothing was loaded" in line


def test_the_raw_is_not_a_dict(trained, tmp_path):
    trainer, _ = trained
    for i, value in enumerate([[1, 2], None, torch.zeros(3), "charmlp-tui checkpoint", {"format": 1}]):
        assert_refused(trainer, write(tmp_path / f"raw{i}.pt", value), "missing its format marker")


# ---- what must still load -----------------------------------------------------------------------
def test_edge_values_that_are_true_load_exactly(dataset, tmp_path):
    trainer = Trainer(dataset)
    path = trainer.save(tmp_path / "fresh.pt")  # step 0: empty history, no evaluations
    trainer.run(5)
    trainer.load(path)
    assert trainer.step == 0 and len(trainer.history) == 0 and trainer.evals == []
    raw = raw_of(path)
    raw["evals"] = [[0, None, None], [0, 0.0, 3.5]]  # a split may be empty; a loss may be 0
    raw["lr_exponent"] = 3.0  # the ends of the range
    trainer.load(write(tmp_path / "edges.pt", raw))
    assert trainer.evals == [EvalPoint(0, None, None), EvalPoint(0, 0.0, 3.5)] and trainer.lr == 1000.0


def test_a_checkpoint_from_before_init_was_recorded_loads_as_the_lectures(dataset, tmp_path):
    trainer = Trainer(dataset, ModelConfig(init="scaled"))
    raw = raw_of(trainer.save(tmp_path / "scaled.pt"))
    assert raw["model"]["init"] == "scaled"
    del raw["model"]["init"]  # as this program wrote them before the field existed
    trainer.load(write(tmp_path / "old.pt", raw))
    assert trainer.model_config.init == "lecture"


def test_an_evaluation_a_rollback_left_past_the_step_is_not_saved(dataset, tmp_path):
    trainer = Trainer(dataset)
    """Trainer.run keeps an evaluation of a chunk it rolled back; the checkpoint leaves it out
    (it describes parameters the checkpoint does not hold), so the file loads again."""
    trainer.run(20)
    trainer.evals = [EvalPoint(10, 2.5, 2.6), EvalPoint(24, 9.0, 9.0)]
    trainer.load(trainer.save(tmp_path / "m.pt"))
    assert trainer.evals == [EvalPoint(10, 2.5, 2.6)]


# ---- the file: not a checkpoint at all ----------------------------------------------------------
@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "pipe.pt"
    os.mkfifo(path)
    return path


def test_a_fifo_a_device_and_a_directory_are_refused_without_reading(trained, fifo, tmp_path):
    trainer, _ = trained
    assert_refused(trainer, fifo, "is a named pipe \\(FIFO\\), not a checkpoint")
    assert_refused(trainer, Path("/dev/zero"), "is a character device, not a checkpoint")
    assert_refused(trainer, tmp_path, "is a directory, not a checkpoint")
    assert_refused(trainer, tmp_path / "absent.pt", "no such checkpoint file")


def test_a_file_past_the_bound_is_refused_before_it_is_read(trained, tmp_path):
    trainer, _ = trained
    big = tmp_path / "sparse.pt"
    with open(big, "wb") as f:
        f.truncate(checkpoint.MAX_BYTES + 1)  # sparse: no disk space, never read
    assert_refused(trainer, big, "is more than a checkpoint may be \\(16.0 GiB\\)")


def test_truncated_empty_and_random_files(trained, tmp_path):
    trainer, good = trained
    data = good.read_bytes()
    for cut in (0, 1, 21, 22, len(data) // 3, len(data) // 2, len(data) - 23, len(data) - 22, len(data) - 1):
        (tmp_path / "cut.pt").write_bytes(data[:cut])
        assert_refused(trainer, tmp_path / "cut.pt", "not a readable checkpoint")
    for seed in range(3):
        (tmp_path / "noise.pt").write_bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(seed),
                                                          dtype=torch.uint8).numpy().tobytes())
        assert_refused(trainer, tmp_path / "noise.pt", "not a readable checkpoint")
    legacy = io.BytesIO()
    torch.save(raw_of(good), legacy, _use_new_zipfile_serialization=False)
    (tmp_path / "legacy.pt").write_bytes(legacy.getvalue())
    assert_refused(trainer, tmp_path / "legacy.pt", "not a zip archive as torch.save writes")


def test_a_huge_claimed_storage_is_refused_before_it_is_allocated(trained, tmp_path):
    """The pickle says the generator's storage holds 10**12 bytes; its record holds 5,056."""
    trainer, good = trained
    (tmp_path / "plain.pt").write_bytes(rezip(good.read_bytes()))
    trainer.load(tmp_path / "plain.pt")  # Python's zipfile wrote it (no zip64 record): still a checkpoint
    trainer.run(10)
    (tmp_path / "claims.pt").write_bytes(forge_claim(good.read_bytes(), 10**12))
    assert_refused(trainer, tmp_path / "claims.pt", "not a readable checkpoint \\(truncated or corrupt: record size")


def test_a_zip_directory_that_claims_more_than_the_file(trained, tmp_path):
    trainer, good = trained
    data = bytearray(rezip(good.read_bytes()))
    at = data.rindex(b"PK\x01\x02", 0, data.rindex(generator_record(bytes(data)).encode()))  # its directory entry
    data[at + 20:at + 28] = struct.pack("<II", 0x7FFFFFFF, 0x7FFFFFFF)  # compressed, uncompressed size: 2 GiB
    (tmp_path / "claims.pt").write_bytes(bytes(data))
    assert_refused(trainer, tmp_path / "claims.pt", "runs past the end of the file")


def test_a_deflated_record_is_refused(trained, tmp_path):
    """A zip bomb: deflate lets a few KB of file claim GBs of record (torch would inflate it)."""
    trainer, good = trained
    data = good.read_bytes()
    (tmp_path / "deflated.pt").write_bytes(rezip(data, deflate=(generator_record(data),)))
    assert_refused(trainer, tmp_path / "deflated.pt", "is compressed or encrypted")


def test_odd_archives_are_refused(trained, tmp_path, monkeypatch):
    trainer, good = trained
    data = good.read_bytes()
    cases = [
        (b"JUNK" + rezip(data), "its zip directory is not where its end record says"),
        (rezip(data, comment=b"hello"), "not a zip archive as torch.save writes"),
        (rezip(data, extra=(("archive/constants.pkl", b"x"),)), "a TorchScript archive"),
    ]
    with pytest.warns(UserWarning, match="Duplicate name"):
        cases.append((rezip(data, extra=((generator_record(data), b"\0" * 5056),)), "two records share a name"))
    for i, (forged, match) in enumerate(cases):
        (tmp_path / f"odd{i}.pt").write_bytes(forged)
        assert_refused(trainer, tmp_path / f"odd{i}.pt", match)
    monkeypatch.setattr(checkpoint, "MAX_PICKLE_BYTES", 100)
    assert_refused(trainer, good, "more than the values of a checkpoint take")
    monkeypatch.setattr(checkpoint, "MAX_RECORDS", 3)
    assert_refused(trainer, good, "14 records in .* of zip directory, more than a checkpoint has")
    monkeypatch.setattr(checkpoint, "MAX_RECORDS", 1024)
    monkeypatch.setattr(checkpoint, "MAX_DIRECTORY_BYTES", 200)
    assert_refused(trainer, good, "of zip directory, more than a checkpoint has")


def test_a_directory_with_more_entries_than_its_end_record_says(trained, tmp_path):
    """zipfile reads entries until the directory's bytes run out: the count must match them."""
    trainer, good = trained
    data = bytearray(rezip(good.read_bytes()))
    data[-12:-10] = struct.pack("<H", 3)  # the end record's total count (its last 22 bytes: count at 10)
    data[-14:-12] = struct.pack("<H", 3)  # and this disk's
    (tmp_path / "count.pt").write_bytes(bytes(data))
    assert_refused(trainer, tmp_path / "count.pt", "another number of records than its end record says")


def test_a_pickle_that_is_not_plain_values(trained, tmp_path):
    trainer, good = trained
    raw = raw_of(good)
    raw["evals"] = [EvalPoint(1, 2.0, 2.0)]  # a dataclass: weights_only refuses to build it
    assert_refused(trainer, write(tmp_path / "object.pt", raw), "refused, it holds something other than tensors and plain values \\(Unsupported global: GLOBAL core.history.EvalPoint")


# ---- a refused load leaves a session's autosave alone ---------------------------------------------
BAD_FOR_HEADLESS = ["fifo", "/dev/zero", "exponent 400", "generator state shortened", "history nan", "W1 expanded",
                    "claims 10**12 bytes", "truncated", "evaluation past the step"]


def _bad_file(kind: str, good: Path, tmp_path: Path, fifo: Path) -> Path:
    raw = raw_of(good)
    if kind == "fifo":
        return fifo
    if kind == "/dev/zero":
        return Path("/dev/zero")
    if kind == "truncated":
        (tmp_path / "bad.pt").write_bytes(good.read_bytes()[:-100])
        return tmp_path / "bad.pt"
    if kind == "claims 10**12 bytes":
        (tmp_path / "bad.pt").write_bytes(forge_claim(good.read_bytes(), 10**12))
        return tmp_path / "bad.pt"
    mutate = {"exponent 400": _set("lr_exponent", 400.0),
              "generator state shortened": _set("batch_rng_state", lambda r: r["batch_rng_state"][:-8].clone()),
              "history nan": _history("loss", _nan_at_0),
              "W1 expanded": _set("params", "W1", lambda r: r["params"]["W1"][:1].clone().expand(6, 100)),
              "evaluation past the step": _set("evals", [[61, 2.0, 2.0]])}[kind]
    mutate(raw)
    return write(tmp_path / "bad.pt", raw)


@pytest.mark.parametrize("kind", BAD_FOR_HEADLESS)
def test_a_refused_load_in_a_script_leaves_the_autosave_to_the_session(headless, trained, small_file, tmp_path, fifo,
                                                                        kind):
    trainer, good = trained
    bad = _bad_file(kind, good, tmp_path, fifo)
    auto = tmp_path / "auto.pt"
    auto.write_bytes(good.read_bytes())  # --autosave points at the user's good checkpoint
    expected = Trainer(trainer.dataset, trainer.model_config, trainer.train_config)
    expected.load(good)
    expected.run(20)
    with deadline(10):
        code, out, err = headless("--data", str(small_file), "--load", str(good), "--autosave", str(auto),
                                  "--script", f"run 20; load {bad}")
    assert code == 2, (code, out, err)
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and "Traceback" not in err and str(bad) in errors[0], err
    saved = load_checkpoint(auto)  # still a checkpoint, and the session's model: not the refused one
    assert saved.step == 80 and saved.lr_exponent == expected.lr_exponent
    assert all(torch.equal(a, b) for a, b in zip(saved.params.tensors(), expected.params.tensors()))
    lr, loss = expected.history.tensors()
    assert torch.equal(saved.history_lr, lr) and torch.equal(saved.history_loss, loss)
    assert list(saved.evals) == expected.evals and torch.equal(saved.batch_rng, expected._batch_gen.get_state())


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "generator state shortened", "claims 10**12 bytes"])
def test_load_flag_refuses_in_one_line(headless, trained, small_file, tmp_path, fifo, kind):
    _, good = trained
    bad = _bad_file(kind, good, tmp_path, fifo)
    auto = tmp_path / "auto.pt"
    auto.write_bytes(good.read_bytes())
    with deadline(10):
        code, out, err = headless("--data", str(small_file), "--load", str(bad), "--autosave", str(auto),
                                  "--script", "run 5")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and out == "" and len(lines) == 1 and str(bad) in lines[0], (code, out, err)
    assert auto.read_bytes() == good.read_bytes()  # no session started: nothing autosaved


# ---- property: random mutations load exactly or are refused ---------------------------------------
@pytest.fixture(scope="module")
def subject(dataset, tmp_path_factory):
    """One trainer and its good checkpoint for every example (a load that succeeds is undone)."""
    trainer = Trainer(dataset, ModelConfig(hidden=20), TrainConfig(chunk_steps=50))
    trainer.run(30)
    trainer.evaluate()
    folder = tmp_path_factory.mktemp("mutations")
    return trainer, trainer.save(folder / "good.pt"), folder


def _paths(raw: dict) -> list[tuple]:
    """Where a mutation may strike: every field and every value inside one."""
    found: list[tuple] = []

    def walk(value, path):
        found.append(path)
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, (*path, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, (*path, i))

    walk(raw, ())
    return found[1:]


VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.sampled_from([0, 1, 3, 30, 31, 100, 20, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([-1.0, 0.0, 2.5, 3.0, -8.0, 400.0]),
    st.text(max_size=8), st.binary(max_size=8), st.lists(st.integers(0, 40), max_size=3),
    st.dictionaries(st.sampled_from(["lr", "loss", "x"]), st.none(), max_size=2),
    st.builds(lambda n, d: torch.zeros(n, dtype=d), st.integers(0, 40),
              st.sampled_from([torch.float32, torch.float64, torch.uint8, torch.int64])),
)


def _tensor_change(t: torch.Tensor, how: str, n: int, x: float) -> object:
    flat = t.reshape(-1)
    if how == "shrink":
        return t[: max(0, t.shape[0] - n)].clone() if t.dim() else t
    if how == "grow":
        return torch.cat([t, t[:1].expand(n, *t.shape[1:])]) if t.dim() and t.shape[0] else t
    if how == "value" and flat.numel():
        changed = t.clone()
        changed.reshape(-1)[n % flat.numel()] = x if t.is_floating_point() else int(abs(x)) % 256 if math.isfinite(x) else 0
        return changed
    if how == "dtype":
        return t.double() if t.is_floating_point() else t.float()
    if how == "view" and t.dim() == 2:
        return t.t().contiguous().t()
    if how == "expand" and t.dim() and t.shape[0]:
        return t[:1].expand(t.shape)
    if how == "reshape":
        return t.reshape(-1)
    return t


# tweak: a value of the same type nearby (an int +-2, another float, one tensor element), which
# often still loads; set: any value; tensor: its shape, dtype or layout, or one element
MUTATION = st.tuples(st.integers(0, 10**6), st.sampled_from(["drop", "add", "set", "tensor", "tweak", "tweak", "tweak"]),
                     VALUES,
                     st.sampled_from(["shrink", "grow", "value", "dtype", "view", "expand", "reshape"]),
                     st.integers(0, 10**6), st.floats(allow_nan=True, allow_infinity=True, width=32))


def _mutate(raw: dict, mutation) -> None:
    index, op, value, how, n, x = mutation
    paths = _paths(raw)
    path = paths[index % len(paths)]
    parent = raw
    for k in path[:-1]:
        parent = parent[k]
    key = path[-1]
    if op == "drop":
        del parent[key]
    elif op == "add" and isinstance(parent, dict):
        parent[f"extra{index % 3}"] = value
    elif op == "add":
        parent.append(value)
    elif op == "tensor" and isinstance(parent[key], torch.Tensor):
        parent[key] = _tensor_change(parent[key], how, n % 7 + 1, x)
    elif op == "tweak" and isinstance(parent[key], torch.Tensor):
        parent[key] = _tensor_change(parent[key], "value", n, x)
    elif op == "tweak" and type(parent[key]) is int:
        parent[key] += n % 5 - 2
    elif op == "tweak" and type(parent[key]) is float:
        parent[key] = x if n % 2 else round(x % 11 - 8, 3) if math.isfinite(x) else -1.5  # often in range
    else:
        parent[key] = value


def _assert_holds(trainer: Trainer, raw: dict) -> None:
    """The trainer now holds exactly what `raw` says."""
    assert trainer.step == raw["step"] and trainer.lr_exponent == raw["lr_exponent"]
    for name, t in zip(("C", "W1", "b1", "W2", "b2"), trainer.params.tensors()):
        assert torch.equal(t, raw["params"][name])
    lr, loss = trainer.history.tensors()
    assert torch.equal(lr, raw["history"]["lr"]) and torch.equal(loss, raw["history"]["loss"])
    assert trainer.evals == [EvalPoint(*e) for e in raw["evals"]]
    canonical = torch.Generator()
    canonical.set_state(raw["batch_rng_state"])  # the same stream; set_state ignores a few bytes
    assert torch.equal(trainer._batch_gen.get_state(), canonical.get_state())
    assert vars(trainer.model_config) == {"init": "lecture", **raw["model"]}  # without init: the lecture's


def loaded_or_refused_cleanly(trainer: Trainer, path: Path) -> bool:
    """True if `path` loaded; else its refusal was one printable line that left the trainer untouched."""
    before = fingerprint(trainer)
    try:
        trainer.load(path)
    except CheckpointError as e:
        assert "\n" not in str(e) and str(e).isprintable()
        assert_same(fingerprint(trainer), before)
        return False
    return True


@settings(max_examples=250, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations=st.lists(MUTATION, min_size=1, max_size=3))
def test_random_mutations_load_exactly_or_are_refused(subject, mutations):
    trainer, good, folder = subject
    raw = raw_of(good)
    for mutation in mutations:
        _mutate(raw, mutation)
    path = folder / "mutated.pt"
    try:
        torch.save(raw, path)
    except Exception:  # noqa: BLE001 - a value torch cannot save (e.g. an int past 64 bits): nothing to load
        return
    expected = copy.deepcopy(raw)
    if loaded_or_refused_cleanly(trainer, path):
        _assert_holds(trainer, expected)
        trainer.load(good)  # back to the subject for the next example


@settings(max_examples=150, deadline=None, database=None)
@given(flips=st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 255)), min_size=1, max_size=4))
def test_random_byte_flips_load_or_are_refused(subject, flips):
    trainer, good, folder = subject
    data = bytearray(good.read_bytes())
    for at, byte in flips:
        data[at % len(data)] = byte
    path = folder / "flipped.pt"
    path.write_bytes(bytes(data))
    if loaded_or_refused_cleanly(trainer, path):
        trainer.load(good)
