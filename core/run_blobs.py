"""A run's tensors as the store keeps them, and back: raw little-endian arrays, no pickle.

Parameters are float32 in the order C, W1, b1, W2, b2 (shapes from the run's row); history rows
float32, each with the diagnostics measured after its steps (core.diagnose's float64 rows);
evaluations float64 triples (step, train, dev; NaN where a split is empty); the minibatch
generator's state its bytes. Reading checks every blob's length against what the run's shape
and step say before a tensor is made, then the values go through the checkpoint validator
(core.checkpoint_fields), so a stored state that lies is refused as a checkpoint that lies is.
"""

from __future__ import annotations

import dataclasses
import math
import sys

import torch

from core.diagnose import COLUMNS, no_rows
from core.errors import CheckpointError, StoreError
from core.history import EvalPoint
from core.model import PARAM_NAMES, Params
from core.checkpoint_fields import FORMAT, VERSION, validate
from core.state import ModelSnapshot, TrainingState
from core.store import History, RunRow, StoredSnapshot, StoredState

HISTORY_CHUNK_ROWS = 1 << 20  # a history rewritten whole is stored in rows of at most this many steps
DIAGNOSTICS_ROW_BYTES = 8 * COLUMNS

if sys.byteorder != "little":  # tensors' bytes are written as the machine holds them
    raise ImportError("the run store needs a little-endian machine")


def tensor_bytes(t: torch.Tensor) -> bytes:
    return t.detach().contiguous().numpy().tobytes()


def params_blob(params: Params) -> bytes:
    return b"".join(tensor_bytes(t.float()) for t in params.tensors())


def evals_blob(evals: tuple[EvalPoint, ...] | list[EvalPoint]) -> bytes:
    rows = [[e.step, math.nan if e.train is None else e.train, math.nan if e.dev is None else e.dev] for e in evals]
    return tensor_bytes(torch.tensor(rows, dtype=torch.float64).view(-1)) if rows else b""


def read_evals(blob: bytes, shown: str = "a run") -> tuple[EvalPoint, ...]:
    """(step, train, dev) records; the validator checks the losses and that no step is past the run's."""
    if len(blob) % 24:
        raise StoreError(f"{shown}: its evaluations are damaged (their size is not whole records)")
    if not blob:
        return ()
    rows = torch.frombuffer(bytearray(blob), dtype=torch.float64).view(-1, 3).tolist()
    if not all(math.isfinite(s) and s == int(s) and s >= 0 for s, _, _ in rows):  # int(nan) would raise
        raise StoreError(f"{shown}: its evaluations are damaged (a step that is not a whole number)")
    return tuple(EvalPoint(int(s), None if math.isnan(t) else t, None if math.isnan(d) else d) for s, t, d in rows)


def snapshot_blobs(kept: ModelSnapshot) -> StoredSnapshot:
    """A snapshot as the store keeps it: its state, and its history and diagnostics as one history row."""
    s = kept.state
    state = StoredState(s.step, s.lr_exponent, params_blob(s.params), tensor_bytes(s.batch_rng), evals_blob(s.evals),
                        "eager")
    return StoredSnapshot(kept.name, kept.dev_loss, state, tensor_bytes(s.history_lr), tensor_bytes(s.history_loss),
                          tensor_bytes(s.diagnostics))


def param_shapes(run: RunRow) -> dict[str, tuple[int, ...]]:
    V, E, T, H = len(run.vocab) + 1, run.emb_dim, run.block_size, run.hidden
    return {"C": (V, E), "W1": (T * E, H), "b1": (H,), "W2": (H, V), "b2": (V,)}


def history_chunks(lr: torch.Tensor, loss: torch.Tensor, diagnostics: torch.Tensor, start: int) -> list[History]:
    """History rows for the store: steps start, start + 1, … of these tensors, each with the rows of
    `diagnostics` (the log's, oldest first) measured after its steps."""
    at = diagnostics[:, 0]
    out = []
    for i in range(0, int(lr.shape[0]), HISTORY_CHUNK_ROWS):
        j = min(i + HISTORY_CHUNK_ROWS, int(lr.shape[0]))
        mine = diagnostics[(at > start + i) & (at <= start + j)]
        out.append(History(start + i, tensor_bytes(lr[i:j]), tensor_bytes(loss[i:j]), tensor_bytes(mine)))
    return out


def read_history(chunks: list[History], steps: int, shown: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The history's (lr, loss, diagnostics) from its rows, which must follow each other from step 0
    to `steps`, each measurement after a step of its own row, in step order."""
    at, measured = 0, []
    for h in chunks:
        if h.start != at or len(h.lr) != len(h.loss) or len(h.lr) % 4:
            raise StoreError(f"{shown}: its history is damaged (a gap or a torn row at step {at:,}); it cannot be resumed")
        at += len(h.lr) // 4
        if len(h.diagnostics) % DIAGNOSTICS_ROW_BYTES:
            raise StoreError(f"{shown}: its diagnostics are damaged (a torn row by step {at:,}); it cannot be resumed")
        if h.diagnostics:
            rows = torch.frombuffer(bytearray(h.diagnostics), dtype=torch.float64).view(-1, COLUMNS)
            s = rows[:, 0]  # NaN fails every comparison
            if not bool(((s > h.start) & (s <= at) & (s == s.floor())).all() and (s[1:] > s[:-1]).all()):
                raise StoreError(f"{shown}: its diagnostics are damaged (a measurement not at a step of its row, "
                                 f"by step {at:,}); it cannot be resumed")
            measured.append(rows)
    if at != steps:
        raise StoreError(f"{shown}: its history holds {at:,} steps, its state {steps:,}; it cannot be resumed")

    def join(blobs: list[bytes]) -> torch.Tensor:
        return torch.frombuffer(bytearray(b"".join(blobs)), dtype=torch.float32) if steps else torch.empty(0)
    return (join([h.lr for h in chunks]), join([h.loss for h in chunks]),
            torch.cat(measured) if measured else no_rows())


def read_state(run: RunRow, stored: StoredState, chunks: list[History], shown: str) -> TrainingState:
    """The run's latest state, checked as a checkpoint is (core.checkpoint_fields), or one StoreError line."""
    shapes = param_shapes(run)
    sizes = [math.prod(s) for s in shapes.values()]
    if len(stored.params) != 4 * sum(sizes):
        raise StoreError(f"{shown}: its parameters are {len(stored.params):,} bytes, its shape {run.shape} needs "
                         f"{4 * sum(sizes):,}; it cannot be resumed")
    lr, loss, diagnostics = read_history(chunks, stored.step, shown)
    flat = torch.frombuffer(bytearray(stored.params), dtype=torch.float32)
    tensors, at = {}, 0
    for name, n in zip(PARAM_NAMES, sizes):
        tensors[name] = flat[at : at + n].clone().view(shapes[name])  # each its own storage, as a checkpoint's
        at += n
    raw = {
        "format": FORMAT, "version": VERSION,
        "model": {"block_size": run.block_size, "emb_dim": run.emb_dim, "hidden": run.hidden, "seed": run.init_seed,
                  "init": run.init},
        "vocab": run.vocab, "params": tensors, "step": stored.step, "lr_exponent": stored.lr_exponent,
        "history": {"lr": lr, "loss": loss},
        "evals": [[e.step, e.train, e.dev] for e in read_evals(stored.evals, shown)],
        "batch_rng_state": torch.frombuffer(bytearray(stored.batch_rng), dtype=torch.uint8) if stored.batch_rng
        else torch.empty(0, dtype=torch.uint8),
    }
    try:
        return dataclasses.replace(validate(shown, raw), diagnostics=diagnostics)
    except CheckpointError as e:
        raise StoreError(str(e).replace("not a valid charmlp-tui checkpoint", "its stored state is damaged")) from None


Segments = list[tuple[str, int]]  # (LR exponent as shown, steps): a history's learning-rate schedule


def segments(lr: torch.Tensor, before: Segments | None = None) -> Segments:
    """The schedule of `before` followed by these rows' learning rates. Rates that round to the same
    exponent make one segment, so a keeper can extend a schedule with each save's new rows only."""
    out = list(before or [])
    n = int(lr.shape[0])
    if n == 0:
        return out
    changes = (torch.nonzero(lr[1:] != lr[:-1]).view(-1) + 1).tolist()
    bounds = [0, *changes, n]
    for a, b in zip(bounds, bounds[1:]):
        exponent = f"{math.log10(float(lr[a])):.2g}"
        if out and out[-1][0] == exponent:
            out[-1] = (exponent, out[-1][1] + b - a)
        else:
            out.append((exponent, b - a))
    return out


def schedule(parts: Segments, most: int = 6) -> str:
    """A schedule in one line: '-0.9×20k, -1.9×10k' (exponent × steps)."""
    shown = [f"{e}×{_short(k)}" for e, k in parts]
    return ", ".join(shown if len(shown) <= most else [*shown[: most - 1], "…", shown[-1]])


def _short(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.3g}M"
    return f"{n / 1000:.3g}k" if n >= 1000 else str(n)
