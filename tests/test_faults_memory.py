"""Products of sizes (issue 12, class 2): each flag is in range, their product is not.

Every case is a headless process running the command line (`python -m tui --headless
--no-compile …`, or the same entry point in a process forked from one that has imported it)
under an address-space limit (RLIMIT_AS, as `prlimit --as` sets it) and a timeout: a product too
big for the limit exits 2 with one line naming the product and the limit, at once and with no
traceback; one that fits works. The processes run a few at a time (each spends seconds importing
torch). Then the app, the exact evaluation's new paths, and the estimates of core.budget against
the peak RSS they stand for, measured in forked processes.
"""

from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import REPO

GiB = 1 << 30
LIMIT = 3 * GiB  # the address space each case may use: torch itself maps ~0.7 GB of it
TIMEOUT_S = 120
REFUSED_WITHIN_S = 30  # a refusal comes before anything big is built


def _cjk(n: int) -> list[str]:
    """n distinct printable CJK ideographs (the unified block, extension A, extension B)."""
    ranges = (range(0x4E00, 0xA000), range(0x3400, 0x4DC0), range(0x20000, 0x2A6E0))
    chars = (chr(c) for r in ranges for c in r if chr(c).isprintable())
    return [c for c, _ in zip(chars, range(n))]


def _files(root: Path) -> dict[str, Path]:
    from core.words import load_words

    names = load_words(None)
    rng = random.Random(0)
    files = {
        "cjk": "\n".join(_cjk(30_000)),  # one character per word: a vocabulary of 30,001
        "400k": "\n".join(rng.choice(names) for _ in range(400_000)),  # ~3 MB, 2.9M examples
        "long": "\n".join("".join(rng.choice("abcdefghij") for _ in range(200)) for _ in range(12_000)),  # 2.4M
        "few": "\n".join(names[:60]),
    }
    paths = {}
    for name, text in files.items():
        paths[name] = root / f"{name}.txt"
        paths[name].write_text(text + "\n", encoding="utf-8")
    return paths


# (case, arguments with {file} placeholders, address-space limit, None if it must work, else what the
# one line names). Cases marked FORK run in a child forked from one process that has imported
# everything already (tui.cli.main with the arguments, the same limit, its own stdout and stderr):
# the same code path without the seconds of importing torch each time; the others start a fresh
# `python -m tui`.
FORK = "fork"
CASES = [
    # the model: block x emb x hidden, hidden x vocabulary
    ("model: block x emb x hidden at the top of every range", ["--block-size", "64", "--emb-dim", "1024",
     "--hidden", "16384"], LIMIT, "(block 64 + 1) x emb 1024 x hidden 16384 + 16384 = 1.09e9 first-layer weights"),
    ("model: block x emb x hidden, 2 GB of weights", ["--block-size", "32", "--emb-dim", "512", "--hidden", "8192",
     FORK], LIMIT, "(block 32 + 1) x emb 512 x hidden 8192 + 8192 = 1.38e8 first-layer weights x 4 B x 4"),
    ("model just under the budget works", ["--data", "{few}", "--split", "1,0,0", "--block-size", "32", "--emb-dim",
     "256", "--hidden", "10240"], LIMIT, None),
    ("the same model just over a smaller budget", ["--data", "{few}", "--split", "1,0,0", "--block-size", "32",
     "--emb-dim", "256", "--hidden", "10240", FORK], 2 * GiB, "first-layer weights"),
    # grid: K copies x the model
    ("grid: K 128 x a 4.4M-parameter model", ["--block-size", "8", "--emb-dim", "64", "--hidden", "8192",
     "--script", "grid -2 -1 128 10"], LIMIT, "grid K 128 x 4,425,435 parameters"),
    ("grid: K 64 x a 4.6M-parameter model", ["--block-size", "16", "--emb-dim", "16", "--hidden", "16384",
     "--script", "grid -2 -1 64 10", FORK], LIMIT, "grid K 64 x 4,653,515 parameters"),
    ("grid: K 8 of the lecture's model works", ["--script", "grid -2 -1 8 10"], LIMIT, None),
    # vocabulary x evaluation chunk, x hidden, x batch
    ("a vocabulary of 30,001 characters works", ["--data", "{cjk}", "--hidden", "10", "--script",
     "run 10; sample 2"], LIMIT, None),
    ("vocabulary 30,001 x hidden 16384", ["--data", "{cjk}", "--hidden", "16384", FORK], LIMIT,
     "(hidden 16384 + 1) x vocabulary 30,001"),
    # a big batch makes a chunk one step (core.jobs.chunk_for): what is left is one step's logits
    ("vocabulary 30,001 x batch 65536", ["--data", "{cjk}", "--batch-size", "65536", FORK], LIMIT,
     "(1 step per chunk + 2) x batch 65536 x vocabulary 30,001"),
    # words x block: building the dataset
    # the dataset's build peaks at little more than its size at rest: the exact evaluation's counts refuse first
    ("400k words x block 64", ["--data", "{400k}", "--block-size", "64", FORK], LIMIT,
     "2,901,409 examples x block 64 to count for evaluation"),
    ("12k words of 200 characters x block 48", ["--data", "{long}", "--block-size", "48", FORK], LIMIT,
     "2,412,000 examples x block 48 to count for evaluation"),
    ("32k names x block 64 works", ["--block-size", "64", "--script", "run 10"], LIMIT, None),
    # batch x block x emb: the step's inputs and a chunk of minibatches
    ("batch x block x emb at the top of every range", ["--batch-size", "65536", "--block-size", "64", "--emb-dim",
     "1024", "--hidden", "1", FORK], LIMIT, "batch 65536 x (block 64 + 1) x emb 1024"),
    # a chunk of minibatch ids (steps x batch x block) no longer outgrows one step's: chunk_for bounds steps x batch
    ("batch 65536 on the lecture's model works: a chunk is one step", ["--batch-size", "65536", "--script",
     "run 2"], LIMIT, None),
]

# the forked cases: one process imports everything, then forks a child per case
ZYGOTE = r'''
import json, os, resource, signal, sys, tempfile, time, traceback
import torch  # imported, never run here: the children start torch's threads themselves
import core.session, core.trainer, tui.headless
from tui.cli import main

results = []
for argv, limit, timeout in json.loads(sys.argv[1]):
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        signal.alarm(timeout)
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            code = main(["--headless", "--no-compile", *argv])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 2
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    out.seek(0), err.seek(0)
    code = os.waitstatus_to_exitcode(status)
    results.append([code, out.read().decode(), err.read().decode(), time.monotonic() - t0])
print(json.dumps(results))
'''


def _limited(args: list[str], limit: int) -> tuple[int, str, str, float]:
    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "tui", "--headless", "--no-compile", *args], cwd=REPO,
                         capture_output=True, text=True, timeout=TIMEOUT_S, preexec_fn=preexec)
    return out.returncode, out.stdout, out.stderr, time.monotonic() - t0


def _forked(cases: list[tuple[list[str], int]]) -> list[tuple[int, str, str, float]]:
    jobs = json.dumps([[argv, limit, TIMEOUT_S] for argv, limit in cases])
    out = subprocess.run([sys.executable, "-c", ZYGOTE, jobs], cwd=REPO, capture_output=True, text=True,
                         timeout=TIMEOUT_S + 10 * len(cases))
    assert out.returncode == 0, out.stderr
    return [tuple(r) for r in json.loads(out.stdout)]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Every case started at once, a few processes at a time (the estimates' measurement too);
    each test waits for its own."""
    files = _files(tmp_path_factory.mktemp("memory"))
    futures: dict[str, Future] = {}
    forked, direct = [], []
    for case, args, limit, _ in CASES:
        argv = [a.format(**{k: str(v) for k, v in files.items()}) for a in args if a != FORK]
        argv = argv if "--script" in argv else [*argv, "--script", "run 2"]
        (forked if FORK in args else direct).append((case, argv, limit))
    with ThreadPoolExecutor(3) as pool:
        batch = pool.submit(_forked, [(argv, limit) for _, argv, limit in forked])
        futures["measure"] = pool.submit(_measure, files["cjk"])
        for case, argv, limit in direct:
            futures[case] = pool.submit(_limited, argv, limit)
        for i, (case, _, _) in enumerate(forked):
            futures[case] = one = Future()
            batch.add_done_callback(lambda b, one=one, i=i: one.set_result(b.result()[i]) if b.exception() is None
                                    else one.set_exception(b.exception()))
        yield futures


@pytest.mark.parametrize(("case", "expected"), [(c[0], c[3]) for c in CASES], ids=[c[0] for c in CASES])
def test_product_of_sizes(outcomes, case, expected):
    code, out, err, seconds = outcomes[case].result()
    assert "Traceback" not in err and "Error" not in err.replace("error:", ""), err
    if expected is None:
        assert code == 0, err
        assert "final: step" in out
        return
    assert code == 2, (out, err)
    errors = [line for line in err.splitlines() if line.strip() and not line.startswith(("data: ", "model: ", "runs: "))]
    assert len(errors) == 1, err  # the dataset and model lines of headless mode precede a refused action
    line = errors[0]
    assert line.startswith("charmlp-tui: error: ") and "not enough memory for" in line, line
    assert expected in line, line
    # the limit is named: the address space, or MemAvailable if the machine has even less free
    assert ("available (the address-space limit, ulimit -v" in line or "available (MemAvailable" in line), line
    assert "; choose a smaller" in line, line
    assert seconds < REFUSED_WITHIN_S


# ---- what the machine has --------------------------------------------------------------------------
def test_the_address_space_limit_is_read():
    code = ("import resource; from core import memory; resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30)); "
            "a = memory.available(); print(a.bytes, a.source)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    room, source = out.stdout.split(" ", 1)
    assert 0 < int(room) < 2 * GiB * 0.8 and source.startswith("the address-space limit, ulimit -v"), out


def test_nothing_readable_falls_back_to_the_physical_memory(monkeypatch):
    from core import budget, memory

    monkeypatch.setattr(memory, "_read", lambda path: None)
    monkeypatch.setattr(memory.resource, "getrlimit", lambda which: (memory.resource.RLIM_INFINITY,) * 2)
    have = memory.available()
    assert have.source.startswith("the physical memory") and have.bytes > 0
    assert budget.size(have.bytes).endswith("GiB")


# ---- exact evaluation's new paths: huge keys, sparse bigram ------------------------------------------
def test_long_keys_rank_contexts_as_row_unique_does():
    import torch

    from core.evaluate import count_contexts

    gen = torch.Generator().manual_seed(0)
    for V, T in ((30_001, 5), (27, 30), (3, 64)):  # keys of 30001**5, 27**30, 3**64: past int64
        X = torch.randint(0, min(V, 4), (3000, T), generator=gen)  # few distinct values: contexts repeat
        Y = torch.randint(0, V, (3000,), generator=gen)
        counts = count_contexts(X, Y, V)
        contexts, inverse = torch.unique(X, dim=0, return_inverse=True)
        pairs, n = torch.unique(inverse * V + Y, return_counts=True)
        assert torch.equal(counts.contexts, contexts) and torch.equal(counts.pair_context, pairs // V)
        assert torch.equal(counts.pair_target, pairs % V) and torch.equal(counts.pair_count, n.double())
    empty = count_contexts(torch.empty(0, 32, dtype=torch.long), torch.empty(0, dtype=torch.long), 27)
    assert empty.contexts.shape == (0, 32) and empty.n_examples == 0


def test_sparse_bigram_equals_the_dense_table(small_words):
    import torch

    from core.config import DataConfig
    from core.dataset import make_dataset
    from core.evaluate import bigram_loss

    ds = make_dataset(small_words, 3, DataConfig())
    V, tr, dev = ds.vocab.size, ds.train, ds.dev
    table = torch.ones(V * V, dtype=torch.float64)
    table.index_add_(0, tr.X[:, -1] * V + tr.Y, torch.ones(len(tr), dtype=torch.float64))
    logp = (table.view(V, V) / table.view(V, V).sum(1, keepdim=True)).log()
    assert bigram_loss(tr.X, tr.Y, dev.X, dev.Y, V) == float(-logp[dev.X[:, -1], dev.Y].mean())


# ---- the app: a huge vocabulary opens, a product too big is an error notice, not "loading…" ---------
async def test_app_opens_a_vocabulary_of_30001(tmp_path):
    from app_helpers import app_settings, log_text, settle
    from tui.app import CharMLPApp

    path = tmp_path / "cjk.txt"
    path.write_text("\n".join(_cjk(30_000)) + "\n", encoding="utf-8")
    app = CharMLPApp(app_settings(path, "--hidden", "10"))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, timeout=60)
        assert app.status is not None and app.status.facts.n_params == 30_001 * 2 + 3 * 2 * 10 + 10 + 10 * 30_001 + 30_001
        assert "error" not in log_text(app)
        await pilot.press("q")


async def test_app_refuses_a_product_in_one_line(tmp_path):
    from app_helpers import app_settings, log_text, wait_for_error
    from tui.app import CharMLPApp

    path = tmp_path / "cjk.txt"
    path.write_text("\n".join(_cjk(30_000)) + "\n", encoding="utf-8")
    app = CharMLPApp(app_settings(path, "--batch-size", "65536"))  # 1.5e12 logits per chunk: no machine has that
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_error(app)
        assert "not enough memory for a session on" in log_text(app)
        assert "batch 65536 x vocabulary 30,001" in log_text(app)
        assert app.check_action("run", ()) is None
        await pilot.press("q")


# ---- the estimates against the peak RSS they stand for ---------------------------------------------
MEASURE = r'''
import json, os, random, sys
import torch
torch.set_num_threads(1)
from core import budget
from core.config import DataConfig, ModelConfig, TrainConfig
from core.dataset import make_dataset
from core.grid import BatchedSGD, train_grid
from core.trainer import Trainer
from core.words import load_words

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

def peak(action):
    """Peak RSS of action() above the RSS before it, in a forked child: (measured, estimated)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        prepare = action()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # VmHWM starts again from VmRSS
        before = status("VmRSS")
        estimate = prepare()
        os.write(write, json.dumps([status("VmHWM") - before, estimate]).encode())
        os._exit(0)
    os.close(write)
    answer = os.read(read, 1000)
    os.waitpid(pid, 0)
    return json.loads(answer)

names = load_words(None)
cjk = open(sys.argv[1], encoding="utf-8").read().split()[:10_000]
# torch's code paged in, on one thread: a child forked from a process whose OpenMP threads have
# started could hang in its own parallel regions
warm = Trainer(make_dataset(names[:300], 3, DataConfig()), ModelConfig(emb_dim=4, hidden=32), TrainConfig(batch_size=64))
warm.run(20); warm.evaluate(); warm.bigram_dev_loss(); warm.sample(5)
BatchedSGD(warm.params, [0.01, 0.02], 64).run(*warm.dataset.train.get_batch(5, 64, torch.Generator()))

def dataset():
    words = [random.Random(0).choice(names) for _ in range(100_000)]
    def go():
        make_dataset(words, 16, DataConfig())
        return budget.dataset_needs(len(words), sum(map(len, words)), 16, (0.8, 0.1, 0.1))[0].bytes
    return go

def session():
    ds = make_dataset(cjk, 3, DataConfig())
    model, train = ModelConfig(hidden=10), TrainConfig(batch_size=128, chunk_steps=50)
    def go():
        t = Trainer(ds, model, train)
        t.run(100); t.evaluate(); t.bigram_dev_loss(); t.sample(20)
        needs = budget.trainer_needs(model, ds.vocab.size, train) + budget.evaluation_needs(
            list(ds.sizes().values()), model, ds.vocab.size)
        return sum(n.bytes for n in needs)
    return go

def grid():
    t = Trainer(make_dataset(names[:2000], 8, DataConfig()), ModelConfig(block_size=8, emb_dim=64, hidden=4096))
    def go():
        train_grid(t.params, None, t.dataset.train, 32, 10, 0, 0, [-2.0] * 16, 10, lambda p: None, lambda: False)
        return sum(n.bytes for n in budget.grid_needs(16, 8, 64, 4096, 27, 32, 10, native=False))
    return go

print(json.dumps({"dataset": peak(dataset), "session": peak(session), "grid": peak(grid)}))
'''


def _measure(cjk: Path) -> dict[str, list[int]]:
    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (4 * GiB, 4 * GiB))

    out = subprocess.run([sys.executable, "-c", MEASURE, str(cjk)], cwd=REPO, capture_output=True, text=True,
                         timeout=TIMEOUT_S, preexec_fn=preexec)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_estimates_are_within_2x_above_the_measured_peak(outcomes):
    for case, (measured, estimated) in outcomes["measure"].result().items():
        assert measured > 50 * (1 << 20), case  # big enough to mean something
        assert measured <= estimated <= 2 * measured, (case, measured / (1 << 20), estimated / (1 << 20))
