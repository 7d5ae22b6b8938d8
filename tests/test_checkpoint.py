
import torch

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
