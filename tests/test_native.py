"""The native training steps (core.native): same math as the eager step, built in the background,
switched to at a chunk boundary, and a failed build leaves the eager step in place."""

from __future__ import annotations

import threading

import pytest
import torch

from core import native
from core.config import DataConfig, ModelConfig, TrainConfig
from core.dataset import make_dataset
from core.grid import NativeGrid
from core.model import Params, init_params
from core.step import SGDStep
from core.trainer import Trainer


def new_trainer(words, **model) -> Trainer:
    return Trainer(make_dataset(words, model.get("block_size", 3), DataConfig()), ModelConfig(**model),
                   TrainConfig(chunk_steps=200))


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def kernel(cache_dir) -> native.NativeKernel:
    kernel, how = native.build(cache_dir)  # a real build, not one from the user's cache
    assert how.startswith("built with")
    return kernel


def minibatches(trainer: Trainer, k: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    train = trainer.dataset.train
    ix = torch.randint(0, len(train), (k, trainer.train_config.batch_size), generator=torch.Generator().manual_seed(seed))
    return train.X[ix], train.Y[ix]


@pytest.mark.parametrize("shape", [
    {},  # the lecture's: emb 2, hidden 100, batch 32
    {"block_size": 4, "emb_dim": 3, "hidden": 37, "batch": 50},  # nothing a whole number of vectors
    {"emb_dim": 10, "hidden": 200, "batch": 7},
])
def test_native_steps_match_the_eager_step_in_float64(kernel, small_words, shape):
    """Against the float64 eager step (itself checked against autograd): a wrong gradient would be
    far outside float32 rounding."""
    batch = shape.pop("batch", 32)
    trainer = Trainer(make_dataset(small_words, shape.get("block_size", 3), DataConfig()), ModelConfig(**shape),
                      TrainConfig(batch_size=batch))
    X, Y = minibatches(trainer, 20)
    start = init_params(trainer.model_config, trainer.dataset.vocab.size)
    start.W2.mul_(0.1)  # the lecture's init gives huge first losses: keep the steps in a calm regime
    exact = Params(*(t.double() for t in start.tensors()))
    exact_losses = SGDStep(exact, batch).run(X, Y, [0.1] * 20)
    params = start.clone()
    losses = kernel.run(params, X, Y, [0.1] * 20)
    torch.testing.assert_close(losses.double(), exact_losses, rtol=1e-5, atol=1e-5)
    for mine, theirs in zip(params.tensors(), exact.tensors()):
        torch.testing.assert_close(mine.double(), theirs, rtol=1e-4, atol=1e-5)


def test_a_chunk_split_in_two_calls_lands_exactly_where_one_call_does(kernel, trainer):
    """What a rollback's replay and a mid-run change rely on."""
    X, Y = minibatches(trainer, 300)
    lrs = torch.logspace(-2, -0.5, 300).tolist()  # a ramp, as a sweep runs it
    whole, split = trainer.params.clone(), trainer.params.clone()
    losses = kernel.run(whole, X, Y, lrs)
    first, second = kernel.run(split, X[:120], Y[:120], lrs[:120]), kernel.run(split, X[120:], Y[120:], lrs[120:])
    assert torch.equal(losses, torch.cat([first, second]))
    assert all(torch.equal(a, b) for a, b in zip(whole.tensors(), split.tensors()))


def test_each_model_of_the_native_grid_is_the_single_model_run(kernel, trainer):
    from concurrent.futures import ThreadPoolExecutor

    X, Y = minibatches(trainer, 100)
    lrs = [0.01, 0.1, 0.3, 1.0]
    with ThreadPoolExecutor(2) as pool:
        grid = NativeGrid(kernel, trainer.params, lrs, pool)
        grid_losses = grid.run(X, Y)  # (100, 4)
    for k, lr in enumerate(lrs):
        single = trainer.params.clone()
        assert torch.equal(grid_losses[:, k], kernel.run(single, X, Y, [lr] * 100))
        assert all(torch.equal(a, b) for a, b in zip(grid.models[k].tensors(), single.tensors()))


@pytest.fixture
def native_trainer(small_words, cache_dir, kernel):
    trainer = new_trainer(small_words)
    lines: list[str] = []
    trainer.start_compiling(lines.append, cache_dir).join(120)
    assert lines and "ready (from the cache" in lines[0] and "runs use them" in lines[0], lines
    assert trainer.compiled
    return trainer


def test_a_big_model_stays_on_the_eager_step(small_words, cache_dir, kernel):
    trainer = Trainer(make_dataset(small_words, 8, DataConfig()), ModelConfig(block_size=8, emb_dim=24, hidden=512),
                      TrainConfig(batch_size=256))
    lines: list[str] = []
    trainer.start_compiling(lines.append, cache_dir).join(120)
    assert "runs stay on the eager step" in lines[0] and not trainer.compiled
    assert isinstance(trainer._stepper(), SGDStep)


def test_native_runs_match_eager_runs(native_trainer, small_words, cache_dir):
    eager = new_trainer(small_words)
    assert not eager.compiled
    native_losses = [native_trainer.run(200).last_loss for _ in range(3)]
    eager_losses = [eager.run(200).last_loss for _ in range(3)]
    assert native_losses == pytest.approx(eager_losses, rel=1e-3)  # float noise over 600 steps
    for c, e in zip(native_trainer.params.tensors(), eager.params.tensors()):
        torch.testing.assert_close(c, e, rtol=1e-3, atol=1e-3)
    assert native_trainer.split_loss("dev") == pytest.approx(eager.split_loss("dev"), rel=1e-4)
    # a second trainer finds the library in the cache too
    lines: list[str] = []
    new_trainer(small_words).start_compiling(lines.append, cache_dir).join(120)
    assert "ready (from the cache" in lines[0]


def test_a_build_that_ends_mid_run_switches_at_a_chunk_boundary_that_a_script_can_replay(small_words, cache_dir,
                                                                                          kernel, monkeypatch):
    """The app's case: the build ends while a run goes on. The switch lands on a chunk boundary,
    on_switch names its step, and `engine` actions at that step reproduce the run bit for bit."""
    release = threading.Event()
    real_build = native.build
    monkeypatch.setattr(native, "build", lambda cache_dir=None: (release.wait(60), real_build(cache_dir))[1])
    live = new_trainer(small_words)
    switches: list[int] = []
    build = live.start_compiling(cache_dir=cache_dir, on_switch=switches.append)

    def release_at_step_1000(progress) -> None:
        if progress.step == 1000:
            release.set()
            build.join(120)

    live.run(3000, release_at_step_1000)
    assert switches == [1000] and live.compiled

    replay = new_trainer(small_words)
    replay.start_compiling(cache_dir=cache_dir, switch=False)  # as headless does for a script with engine lines
    assert replay.use_engine("eager") == "eager (torch's step)"
    replay.run(1000)
    assert replay.use_engine("compiled") == "compiled (native steps)"  # waits for the build
    replay.run(2000)
    assert torch.equal(live.history.tensors()[1], replay.history.tensors()[1])
    assert all(torch.equal(a, b) for a, b in zip(live.params.tensors(), replay.params.tensors()))
    eager = new_trainer(small_words)
    eager.run(3000)
    assert not torch.equal(live.params.C, eager.params.C)  # the engines do differ: the test can tell


def test_engine_compiled_without_a_build_says_why_and_stays_eager(small_words, tmp_path, monkeypatch):
    trainer = new_trainer(small_words)
    assert trainer.use_engine("compiled") == "eager: the compiled steps are not available (compiling is off)"
    monkeypatch.setenv("CXX", "false")
    trainer.start_compiling(cache_dir=tmp_path, switch=False)
    assert trainer.use_engine("compiled").startswith("eager: the compiled steps are not available (the build failed (BuildError")
    assert not trainer.compiled and isinstance(trainer._stepper(), SGDStep)


def test_a_partial_chunk_and_the_step_count(native_trainer):
    result = native_trainer.run(450)  # 200 + 200 + 50
    assert result.steps == native_trainer.step == len(native_trainer.history) == 450


def test_divergence_rolls_back_through_a_native_chunk(native_trainer):
    native_trainer.run(400)
    healthy = native_trainer.split_loss("train")
    native_trainer.set_lr_exponent(3)
    result = native_trainer.run(2000)
    assert result.divergence is not None
    assert result.divergence.restored_step == native_trainer.step == len(native_trainer.history)
    assert native_trainer.params.all_finite()
    assert native_trainer.split_loss("train") < 1.5 * healthy


def test_sweep_and_grid_use_the_native_steps_and_leave_the_model_alone(native_trainer):
    before = native_trainer.params.clone()
    sweep = native_trainer.sweep(-3, 0, 300)
    grid = native_trainer.grid(-3, 0, 8, 100)
    assert -2 < sweep.suggested_exponent < 0 and len(grid.losses) == 8 and grid.best_exponent is not None
    assert all(torch.equal(a, b) for a, b in zip(native_trainer.params.tensors(), before.tensors()))


def test_a_failed_build_leaves_the_eager_step(small_words, tmp_path, monkeypatch):
    monkeypatch.setenv("CXX", "false")  # a "compiler" that fails, as a broken toolchain would
    trainer = new_trainer(small_words)
    lines: list[str] = []
    trainer.start_compiling(lines.append, tmp_path).join(120)
    assert lines == ["compiling the training steps failed (BuildError: false failed: exit status 1); staying on the eager path"]
    assert not trainer.compiled and trainer.run(400).steps == 400


def test_no_compiler_at_all(small_words, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CXX", raising=False)
    with pytest.raises(native.BuildError, match="no C.. compiler found"):
        native.build(tmp_path)


def test_a_damaged_cached_library_is_built_again(tmp_path):
    cached = native._library_path(tmp_path, native._compiler())
    cached.write_bytes(b"not a shared library")  # as a disk that filled up mid-write might leave it
    _, how = native.build(tmp_path)
    assert how.startswith("built with") and cached.read_bytes() != b"not a shared library"


def test_a_cache_folder_that_cannot_be_made_builds_elsewhere(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    _, how = native.build(blocker / "cache")  # its parent is a file: mkdir fails
    assert how.startswith("built with") and not (blocker / "cache").exists()


def test_a_compiler_without_march_native_builds_with_the_next_flags(tmp_path, monkeypatch):
    """As Apple's clang on ARM, which takes -mcpu=native only."""
    fake = tmp_path / "cxx"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do [ "$a" = -march=native ] && '
                    '{ echo "error: unsupported option -march=native" >&2; exit 1; }; done\nexec c++ "$@"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("CXX", str(fake))
    kernel, how = native.build(tmp_path / "cache")
    assert how.startswith(f"built with {fake}")
    params = init_params(ModelConfig(), 27)
    X, Y = torch.zeros(5, 32, 3, dtype=torch.long), torch.ones(5, 32, dtype=torch.long)
    assert kernel.run(params, X, Y, [0.1] * 5).isfinite().all()
