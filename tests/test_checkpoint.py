import os
import pickle

import pytest
import torch

from core.config import DataConfig
from core.dataset import make_dataset
from core.errors import CheckpointError
from core.trainer import Trainer


def test_round_trip_continues_identically(trainer, tmp_path):
    trainer.run(200)
    trainer.evaluate()
    path = trainer.save(tmp_path / "model.pt")
    trainer.run(100)
    resumed = Trainer(trainer.dataset, trainer.model_config, trainer.train_config)
    resumed.load(path)
    assert resumed.step == 200 and len(resumed.history) == 200 and resumed.evals[-1].step == 200
    resumed.run(100)
    for a, b in zip(trainer.params.tensors(), resumed.params.tensors()):
        assert torch.equal(a, b)


def test_save_never_overwrites_a_file_it_did_not_write(trainer, tmp_path):
    other = tmp_path / "notes.txt"
    other.write_text("precious")
    with pytest.raises(CheckpointError, match="already exists"):
        trainer.save(other)
    assert other.read_text() == "precious"
    trainer.save(tmp_path / "mine.pt")
    trainer.save(tmp_path / "mine.pt")  # its own file: fine
    trainer.save(other, force=True)
    assert other.read_bytes() != b"precious"


def assert_refused(trainer, path, match):
    before = trainer.params.clone()
    with pytest.raises(CheckpointError, match=match) as err:
        trainer.load(path)
    assert "\n" not in str(err.value)
    for a, b in zip(trainer.params.tensors(), before.tensors()):
        assert torch.equal(a, b)


def test_truncated_and_random_files_are_refused(trainer, tmp_path):
    good = trainer.save(tmp_path / "good.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(good[: len(good) // 2])
    assert_refused(trainer, tmp_path / "cut.pt", "not a readable checkpoint")
    (tmp_path / "noise.pt").write_bytes(os.urandom(4096))
    assert_refused(trainer, tmp_path / "noise.pt", "not a readable checkpoint")
    assert_refused(trainer, tmp_path / "absent.pt", "no such checkpoint")


class RunsCode:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_a_pickled_object_is_never_executed(trainer, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"format": "charmlp-tui checkpoint", "evil": RunsCode()}, tmp_path / "evil.pt")
    assert_refused(trainer, tmp_path / "evil.pt", "refused")
    with open(tmp_path / "plain.pkl", "wb") as f:
        pickle.dump(RunsCode(), f)
    assert_refused(trainer, tmp_path / "plain.pkl", "refused|not a readable")
    assert not (tmp_path / "PWNED").exists()


def test_other_vocabulary_or_shape_is_refused(trainer, tmp_path):
    other = Trainer(make_dataset(["xyz", "zzy"], 3, DataConfig(split=(1, 0, 0))))
    assert_refused(trainer, other.save(tmp_path / "vocab.pt"), "vocabulary")
    tensors = torch.load(trainer.save(tmp_path / "shape.pt"), weights_only=True)
    tensors["params"]["W1"] = torch.zeros(5, 5)
    torch.save(tensors, tmp_path / "shape.pt")
    assert_refused(trainer, tmp_path / "shape.pt", "W1 should be")
