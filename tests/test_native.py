"""The native training steps (core.native): same math as the eager step for every ISA level this
machine can run (x86: the baseline, v2, v3 and native), built in the background, switched to at a
chunk boundary where measured faster, and a failed build leaves the eager step in place."""

from __future__ import annotations

import os
import platform
import threading
import time
from pathlib import Path

import pytest
import torch

from core import environment, native
from core.config import DataConfig, ModelConfig, TrainConfig
from core.dataset import make_dataset
from core.grid import NativeGrid
from core.model import Params, init_params
from core.step import SGDStep
from core.trainer import Trainer

X86 = platform.machine().lower() in ("x86_64", "amd64")
# every -march level CHARMLP_NATIVE_ARCH can name that this machine runs: checked against eager each
ARCHES = ["native", "x86-64", "x86-64-v2", "x86-64-v3"] if X86 else ["native"]


def new_trainer(words, **model) -> Trainer:
    return Trainer(make_dataset(words, model.get("block_size", 3), DataConfig()), ModelConfig(**model),
                   TrainConfig(chunk_steps=200))


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def build_for(arch: str, cache_dir: Path) -> tuple[native.NativeKernel, str]:
    """native.build with CHARMLP_NATIVE_ARCH=arch (module fixtures cannot use monkeypatch)."""
    before = os.environ.get(environment.NATIVE_ARCH)
    os.environ[environment.NATIVE_ARCH] = arch
    try:
        return native.build(cache_dir)
    finally:
        if before is None:
            del os.environ[environment.NATIVE_ARCH]
        else:
            os.environ[environment.NATIVE_ARCH] = before


@pytest.fixture(scope="module")
def kernels(cache_dir) -> dict[str, native.NativeKernel]:
    """A real build per ISA level, not one from the user's cache."""
    built = {}
    for arch in ARCHES:
        built[arch], how = build_for(arch, cache_dir)
        assert f"-march={arch}" in how and "built with" in how, how
    return built


@pytest.fixture(scope="module")
def kernel(kernels) -> native.NativeKernel:
    return kernels["native"]


def minibatches(trainer: Trainer, k: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    train = trainer.dataset.train
    ix = torch.randint(0, len(train), (k, trainer.train_config.batch_size), generator=torch.Generator().manual_seed(seed))
    return train.X[ix], train.Y[ix]


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("shape", [
    {},  # the lecture's: emb 2, hidden 100, batch 32
    {"block_size": 4, "emb_dim": 3, "hidden": 37, "batch": 50},  # nothing a whole number of vectors
    {"emb_dim": 10, "hidden": 200, "batch": 7},
    {"hidden": 500, "batch": 40},  # padded to 512: the blocked transposes at a 2 KB stride
])
def test_native_steps_match_the_eager_step_in_float64(kernels, small_words, shape, arch):
    """Against the float64 eager step (itself checked against autograd): a wrong gradient would be
    far outside float32 rounding. Each ISA level has its own vector width and its own code."""
    kernel = kernels[arch]
    shape = dict(shape)
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


@pytest.mark.parametrize("arch", ARCHES)
def test_steps_on_packed_rows_land_exactly_where_steps_on_x_and_y_do(kernels, trainer, arch):
    """A run reads its minibatches from the split's packed rows; a replay may take either way."""
    train = trainer.dataset.train
    batches = train.draw(150, trainer.train_config.batch_size, torch.Generator().manual_seed(3))
    assert train.rows is not None
    lrs = torch.logspace(-2, -0.5, 150).tolist()
    from_rows, from_tensors = trainer.params.clone(), trainer.params.clone()
    losses = kernels[arch].run_rows(from_rows, train.rows, batches.ix, lrs)
    assert torch.equal(losses, kernels[arch].run(from_tensors, *batches.tensors(), lrs))
    assert all(torch.equal(a, b) for a, b in zip(from_rows.tensors(), from_tensors.tensors()))


def test_each_model_of_the_native_grid_is_the_single_model_run(kernel, trainer):
    from concurrent.futures import ThreadPoolExecutor

    X, Y = minibatches(trainer, 100)
    lrs = [0.01, 0.1, 0.3, 1.0]
    with ThreadPoolExecutor(2) as pool:
        grid = NativeGrid(kernel, trainer.params, lrs, pool, 2)
        grid_losses = torch.cat([grid.run(X[:50], Y[:50]), grid.run(X[50:], Y[50:])])  # two models alone, then the pool
    assert set(grid.choice.seconds) == {1, 2}
    for k, lr in enumerate(lrs):
        single = trainer.params.clone()
        assert torch.equal(grid_losses[:, k], kernel.run(single, X, Y, [lr] * 100))
        assert all(torch.equal(a, b) for a, b in zip(grid.models[k].tensors(), single.tensors()))


@pytest.mark.parametrize("eager_faster", [True, False])
def test_the_native_grid_hands_its_models_to_the_batched_steps_where_they_were_faster(kernel, trainer, eager_faster):
    """After its first DECIDE_STEPS steps the native grid compares them with the batched steps'
    measured time; where those were faster, every model goes on there from where it stands."""
    from concurrent.futures import ThreadPoolExecutor

    from core.grid import DECIDE_STEPS, BatchedSGD

    X, Y = minibatches(trainer, 2 * DECIDE_STEPS)
    lrs = [0.01, 0.1, 0.3, 1.0]
    with ThreadPoolExecutor(2) as pool:
        grid = NativeGrid(kernel, trainer.params, lrs, pool, 2, eager_s=0.0 if eager_faster else float("inf"))
        losses = grid.run(X, Y)
    assert (grid.batched is not None) == eager_faster and grid.eager_s is None
    singles = [trainer.params.clone() for _ in lrs]
    head = torch.stack([kernel.run(p, X[:DECIDE_STEPS], Y[:DECIDE_STEPS], [lr] * DECIDE_STEPS)
                        for p, lr in zip(singles, lrs)], 1)
    assert torch.equal(losses[:DECIDE_STEPS], head)  # the first steps: the native ones, model by model
    if eager_faster:
        rest = BatchedSGD(singles, lrs, Y.shape[1])
        assert torch.equal(losses[DECIDE_STEPS:], rest.run(X[DECIDE_STEPS:], Y[DECIDE_STEPS:]))
        assert torch.equal(grid.batched.W1, rest.W1) and torch.equal(grid.batched.C, rest.C)
    else:
        tail = torch.stack([kernel.run(p, X[DECIDE_STEPS:], Y[DECIDE_STEPS:], [lr] * DECIDE_STEPS)
                            for p, lr in zip(singles, lrs)], 1)
        assert torch.equal(losses[DECIDE_STEPS:], tail)


@pytest.fixture
def native_trainer(small_words, cache_dir, kernel):
    trainer = new_trainer(small_words)
    lines: list[str] = []
    trainer.start_compiling(lines.append, cache_dir).join(120)
    assert lines and "from the cache" in lines[0] and "runs use the compiled steps" in lines[0], lines
    assert trainer.compiled
    return trainer


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
    assert "from the cache" in lines[0]


def test_a_build_that_ends_mid_run_switches_at_a_chunk_boundary_that_a_script_can_replay(small_words, cache_dir,
                                                                                          kernel, monkeypatch):
    """The app's case: the build ends while a run goes on. The switch lands on a chunk boundary,
    on_switch names its step, and `engine` actions at that step reproduce the run bit for bit."""
    release = threading.Event()
    real_build = native.build
    monkeypatch.setattr(native, "build", lambda cache_dir=None: (release.wait(60), real_build(cache_dir))[1])
    live = new_trainer(small_words)
    switches: list[tuple[str, int]] = []
    build = live.start_compiling(cache_dir=cache_dir, on_switch=lambda engine, step, why: switches.append((engine, step)))

    def release_at_step_1000(progress) -> None:
        if progress.step == 1000:
            release.set()
            build.join(120)

    live.run(3000, release_at_step_1000)
    assert switches == [("compiled", 1000)] and live.compiled

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
    cached = native._library_path(tmp_path, native._compiler(), native.target_arch())
    cached.write_bytes(b"not a shared library")  # as a disk that filled up mid-write might leave it
    _, how = native.build(tmp_path)
    assert "built with" in how and cached.read_bytes() != b"not a shared library"


def test_a_cache_folder_that_cannot_be_made_builds_elsewhere(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    _, how = native.build(blocker / "cache")  # its parent is a file: mkdir fails
    assert "built with" in how and not (blocker / "cache").exists()


def test_a_compiler_without_march_native_builds_with_the_next_flags(tmp_path, monkeypatch):
    """As Apple's clang on ARM, which takes -mcpu=native only."""
    fake = tmp_path / "cxx"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do [ "$a" = -march=native ] && '
                    '{ echo "error: unsupported option -march=native" >&2; exit 1; }; done\nexec c++ "$@"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("CXX", str(fake))
    kernel, how = native.build(tmp_path / "cache")
    assert f"built with {fake}" in how
    params = init_params(ModelConfig(), 27)
    X, Y = torch.zeros(5, 32, 3, dtype=torch.long), torch.ones(5, 32, dtype=torch.long)
    assert kernel.run(params, X, Y, [0.1] * 5).isfinite().all()


# ---- the target: CHARMLP_NATIVE_ARCH and the vector width ------------------------------------------
VECTOR_FLOATS = {"x86-64": 4, "x86-64-v2": 4, "x86-64-v3": 8}  # SSE2, SSE4.2, AVX2: the registers' width


@pytest.mark.skipif(not X86, reason="x86 ISA levels")
def test_each_isa_level_gets_vectors_as_wide_as_its_registers(kernels):
    """A vector wider than the registers spills: 16-float vectors built for AVX2 ran 6-9x slower."""
    for arch, floats in VECTOR_FLOATS.items():
        assert kernels[arch].vector_floats == floats and kernels[arch].arch == arch
    assert kernels["native"].vector_floats in (4, 8, 16)


def test_a_bogus_target_gets_one_line_and_the_eager_step(small_words, tmp_path, monkeypatch):
    trainer = new_trainer(small_words)
    lines: list[str] = []
    for bogus, said in [("x86-64; rm -rf ~", "is not a -march value"), ("no-such-cpu", "CHARMLP_NATIVE_ARCH=no-such-cpu: ")]:
        monkeypatch.setenv(environment.NATIVE_ARCH, bogus)
        trainer.start_compiling(lines.append, tmp_path).join(120)
        assert len(lines) == 1 and said in lines[0] and "staying on the eager path" in lines.pop(), bogus
        assert "\n" not in said and not trainer.compiled and isinstance(trainer._stepper(), SGDStep)


def test_a_library_this_cpu_cannot_run_is_refused_before_it_is_called(kernel, monkeypatch):
    """A target wider than the CPU (a shared home directory): the kernel would die of SIGILL."""
    import ctypes

    library = ctypes.CDLL(str(kernel.path))
    monkeypatch.setattr(ctypes, "CDLL", lambda path: type("Lib", (), {"sgd_chunk": library.sgd_chunk,
                        "sgd_chunk_rows": library.sgd_chunk_rows, "sgd_vector_floats": library.sgd_vector_floats, "sgd_runs_here": lambda self=None: 0})())
    with pytest.raises(native.BuildError, match="whose instructions this CPU lacks"):
        native.NativeKernel(kernel.path, "x86-64-v4")


CROSS_COMPILER = "aarch64-linux-gnu-g++"  # Debian's g++-aarch64-linux-gnu


def aarch64_compiler() -> str:
    """Debian's cross compiler, installed with apt-get where missing (as scripts/with-postgres
    installs postgresql); skipped only where it cannot be installed."""
    import shutil
    import subprocess

    found = shutil.which(CROSS_COMPILER)
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    if not shutil.which("apt-get") or (sudo and not shutil.which("sudo")):
        pytest.skip(f"{CROSS_COMPILER} is missing and cannot be installed here (no apt-get, or not root and no sudo)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "g++-aarch64-linux-gnu"]):
        done = subprocess.run([*sudo, *command], env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["?"])[-1]
            pytest.skip(f"{CROSS_COMPILER} is missing and apt-get could not install it (Debian's package archive "
                        f"unreachable?): {' '.join(command)}: {last}")
    return shutil.which(CROSS_COMPILER) or pytest.fail(f"apt-get installed g++-aarch64-linux-gnu but no {CROSS_COMPILER}")


@pytest.mark.parametrize("target, floats", [("aarch64", 4)] + ([("x86-64", 4), ("x86-64-v3", 8), ("x86-64-v4", 16)]
                                                               if X86 else []))
def test_the_kernel_compiles_for_each_target_with_its_vector_width(tmp_path, target, floats):
    """NEON (AArch64: Apple Silicon, ARM servers) included, with Debian's cross compiler: the
    source must build there and pick 4-float vectors; and each x86 level its own width."""
    import subprocess

    compiler, march = (aarch64_compiler(), "armv8-a") if target == "aarch64" else ("c++", target)
    check = tmp_path / "check.cpp"
    check.write_text(f'#include "{native.SOURCE}"\nstatic_assert(VW == {floats}, "vector width");\n')
    done = subprocess.run([compiler, *native.FLAGS, f"-march={march}", "-o", str(tmp_path / "k.so"), str(check)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


# ---- the calibration: the faster engine, measured ----------------------------------------------------
class SlowKernel:
    """A real kernel made slow, as one built for the wrong vector width was (6-9x the eager step)."""

    def __init__(self, kernel: native.NativeKernel) -> None:
        self.kernel, self.path, self.arch, self.vector_floats = kernel, kernel.path, kernel.arch, kernel.vector_floats
        self.cache_dir = kernel.cache_dir

    def run(self, params, X, Y, lrs):
        import time

        t0 = time.thread_time()
        losses = self.kernel.run(params, X, Y, lrs)
        while time.thread_time() - t0 < 300e-6 * len(lrs):  # burns CPU: the calibration's clock sees it
            pass
        return losses


def test_a_slow_compiled_engine_is_not_chosen(small_words, tmp_path, kernel, monkeypatch):
    monkeypatch.setattr(native, "build", lambda cache_dir=None: (SlowKernel(kernel), "slow on purpose"))
    trainer = new_trainer(small_words)
    lines: list[str] = []
    chosen: list[tuple[str, int, str]] = []
    trainer.start_compiling(lines.append, tmp_path, on_switch=lambda *c: chosen.append(c)).join(120)
    assert "runs use the eager steps" in lines[0] and "compiled" in lines[0] and "slower" in lines[0], lines
    assert not trainer.compiled and isinstance(trainer._stepper(), SGDStep)
    assert chosen == [("eager", 0, lines[0].split("; ", 1)[1])]  # the why, for the log and the session
    trainer.run(400)
    assert len(chosen) == 1 and not trainer.compiled
    # cached per shape: a second trainer of the same shape decides without measuring
    again: list[str] = []
    new_trainer(small_words).start_compiling(again.append, tmp_path).join(120)
    assert "from the cache" in again[0] and "runs use the eager steps" in again[0]


class ColdFirstStep:
    """A stepper whose first call is slow, as a process's first torch or kernel step is (~50x a
    warm one), then steady; it burns CPU time (the calibration's clock) and notes each call's steps."""

    def __init__(self, step_s: float, calls: list[int]) -> None:
        self.step_s, self.calls = step_s, calls

    def run(self, X, Y, lrs):
        t0 = time.thread_time()
        burn = 2e-3 if not self.calls else self.step_s * len(lrs)
        self.calls.append(len(lrs))
        while time.thread_time() - t0 < burn:
            pass
        return torch.zeros(len(lrs))


def test_a_cold_first_step_does_not_shorten_the_calibrations_rounds(kernel, monkeypatch):
    """The rounds' length is sized from warm steps: sized from the first step, they were 2 steps
    long, and the cached figures overstated the eager step by ~1.5x (7x once)."""
    from core.native import calibration

    eager: list[int] = []
    compiled: list[int] = []
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)  # the thread's CPU time: preemption is not counted
    monkeypatch.setattr(calibration, "SGDStep", lambda params, B: ColdFirstStep(30e-6, eager))
    monkeypatch.setattr(calibration, "NativeSteps", lambda kernel, params: ColdFirstStep(10e-6, compiled))
    found = calibration.measure(kernel, init_params(ModelConfig(), 27), 32)
    timed = eager[2:]  # after the warm-up and the sizing round
    assert len(timed) == calibration.ROUNDS and min(timed) >= 64, eager
    assert compiled[2:] == timed and found.engine == "compiled"


def test_each_new_shape_is_measured_at_its_first_job(small_words, tmp_path, kernel, monkeypatch):
    """Another shape (`new`, a load) may favour the other engine; the choice comes, with its reason,
    through on_switch at a job's start, where the session records it."""
    from core.native import calibration, engine
    from core.recording import SessionRecord

    def by_hidden(kernel, params, batch_size, cache_dir):
        wide = params.W1.shape[1] >= 300
        return calibration.Calibration(100.0, 150.0 if wide else 30.0, "CPU")

    monkeypatch.setattr(engine, "calibrate", by_hidden)
    trainer = new_trainer(small_words)
    record = SessionRecord()
    record.engine_switched("eager", 0)
    trainer.start_compiling(cache_dir=tmp_path, on_switch=lambda e, step, why: record.engine_chosen(e, step, why)).join()
    record.run_started(400, 0)
    trainer.run(400)
    record.run_ended(False, 400)
    assert trainer.compiled
    trainer.new_model(ModelConfig(hidden=300), trainer.train_config)
    assert not trainer.compiled  # measured on the training thread, here
    trainer.run(200)
    lines = record.lines
    assert lines[0] == "engine eager" and lines[1].startswith("# calibration: compiled 30.0") and lines[2] == "engine compiled"
    assert lines[3] == "run 400" and lines[4].startswith("# calibration: compiled 150.0") and lines[5] == "engine eager"


def test_forcing_the_compiled_steps_overrides_the_measurement(small_words, tmp_path, kernel, monkeypatch):
    """A replay follows its script's `engine` lines, never a measurement of its own."""
    monkeypatch.setattr(native, "build", lambda cache_dir=None: (SlowKernel(kernel), "slow on purpose"))
    trainer = new_trainer(small_words)
    trainer.start_compiling(cache_dir=tmp_path, switch=False)
    assert trainer.use_engine("compiled") == "compiled (native steps)" and trainer.compiled


def test_shapes_calibrated_at_the_same_moment_are_all_kept(tmp_path):
    """Each calibration read the cache, measured (tens of ms), then wrote back what it had read
    plus its entry: of several at once (processes starting together) only the last writer's stayed."""
    import json
    from types import SimpleNamespace

    from core.native import calibration

    stand_in = SimpleNamespace(path=tmp_path / "sgd_chunk-native-0123456789abcdef.so", cache_dir=tmp_path)
    params = init_params(ModelConfig(), 27)
    batches = [16, 24, 32, 48, 64, 96]
    all_read = threading.Barrier(len(batches), timeout=30)

    def slow_measure(kernel, params, batch_size):
        all_read.wait()  # every calibration has read the cache before any writes it
        time.sleep(0.02)
        return calibration.Calibration(float(batch_size), 1.0, "CPU")

    threads = [threading.Thread(target=calibration.calibrate, args=(stand_in, params, b, tmp_path, slow_measure))
               for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    entries = json.loads((tmp_path / calibration.CACHE_NAME).read_text())
    assert sorted(e["eager_us"] for e in entries.values()) == batches

    def no_measure(kernel, params, batch_size):
        raise AssertionError("measured again: its entry was lost")

    assert all(calibration.calibrate(stand_in, params, b, tmp_path, no_measure).cached for b in batches)


# ---- headless: long actions on the faster engine, and the summary says which -------------------------
def test_a_headless_grid_runs_on_the_compiled_steps_when_cached_and_says_so(small_file, tmp_path, monkeypatch, capsys):
    """A grid or sweep alone is too short to pay for a cold build (~1 s), but a cached library loads
    in milliseconds: headless then measures and uses the faster engine for them too."""
    import json

    from tui.cli import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    script = ["--headless", "--data", str(small_file), "--script", "grid -3 0 8 100; sweep -3 0 100", "--json"]
    assert main([*script, "--no-runs"]) == 0  # nothing cached: the eager step, no build
    out, err = capsys.readouterr()
    assert json.loads(out.splitlines()[-1])["engine"] == {"kind": "eager", "arch": None} and "compiled" not in err
    native.build()
    assert native.is_cached()
    assert main([*script, "--no-runs"]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out.splitlines()[-1])
    assert "calibration: compiled" in err and "runs use the compiled steps" in err, err
    assert summary["engine"] == {"kind": "compiled", "arch": "native"} and summary["compiled"] is True
    assert len(summary["grid"]["losses"]) == 8 and summary["sweep"]["points"]


def test_the_cache_key_covers_every_source_file(tmp_path, monkeypatch):
    """A change to sgd_vectors.h alone must build a new library, not load the old one."""
    for source in native.SOURCES:
        (tmp_path / source.name).write_text(source.read_text())
    monkeypatch.setattr(native, "SOURCES", tuple(tmp_path / source.name for source in native.SOURCES))
    before = native._library_path(tmp_path, native._compiler(), "native")
    header = tmp_path / "sgd_vectors.h"
    header.write_text(header.read_text() + "\n// changed\n")
    assert native._library_path(tmp_path, native._compiler(), "native") != before
