"""Checkpoints: a dict of tensors and plain values, read back with torch.load(weights_only=True).

Written to a temporary file beside the target and renamed over it, so a crash mid-save leaves
the previous checkpoint intact. Nothing in a checkpoint is ever unpickled as an object.
"""

from __future__ import annotations

import math
import pickle
import zipfile
from pathlib import Path

import torch

from core.config import ModelConfig
from core.errors import CheckpointError, ConfigError
from core.files import replace_atomically
from core.history import EvalPoint
from core.model import PARAM_NAMES, Params
from core.state import TrainingState

FORMAT = "charmlp-tui checkpoint"
VERSION = 1


def save_checkpoint(path: Path, state: TrainingState) -> None:
    path = Path(path)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model": {"block_size": state.model.block_size, "emb_dim": state.model.emb_dim,
                  "hidden": state.model.hidden, "seed": state.model.seed},
        "vocab": state.vocab_chars,
        "params": {k: v.detach().clone() for k, v in state.params.as_dict().items()},
        "step": state.step,
        "lr_exponent": state.lr_exponent,
        "history": {"lr": state.history_lr, "loss": state.history_loss},
        "evals": [[e.step, e.train, e.dev] for e in state.evals],
        "batch_rng_state": state.batch_rng,
    }
    replace_atomically(path, lambda f: torch.save(payload, f), CheckpointError, "checkpoint")


def load_checkpoint(path: Path) -> TrainingState:
    """Read and validate a checkpoint; raise CheckpointError with a one-line reason otherwise."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, not a checkpoint")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip; anything else would go to plain pickle
        raise CheckpointError(f"{path}: not a readable checkpoint (not a file written by torch.save); nothing was loaded")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        reason = str(e).splitlines()[0] if "weights_only" not in str(e) else "it holds Python objects that are not tensors or plain values"
        raise CheckpointError(f"{path}: refused, {reason[:200]}; nothing was loaded") from None
    except (RuntimeError, EOFError, ValueError, zipfile.BadZipFile, OSError, KeyError, IndexError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt: {first[:120]})") from None
    return _validate(path, raw)


def _validate(path: Path, raw: object) -> TrainingState:
    def bad(why: str) -> CheckpointError:
        return CheckpointError(f"{path}: not a valid charmlp-tui checkpoint ({why})")

    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise bad("missing its format marker")
    if raw.get("version") != VERSION:
        raise bad(f"version {raw.get('version')!r}, this program reads version {VERSION}")
    try:
        model = ModelConfig(**raw["model"])
        vocab = raw["vocab"]
        tensors = raw["params"]
        step = raw["step"]
        lr_exponent = raw["lr_exponent"]
        history = raw["history"]
        evals = [EvalPoint(int(s), tr, dv) for s, tr, dv in raw["evals"]]
        rng = raw["batch_rng_state"]
    except (KeyError, TypeError, ValueError, ConfigError) as e:
        raise bad(f"bad or missing field: {e}") from None
    if not isinstance(vocab, str) or not vocab:
        raise bad("vocabulary")
    V, E, T, H = len(vocab) + 1, model.emb_dim, model.block_size, model.hidden
    shapes = {"C": (V, E), "W1": (T * E, H), "b1": (H,), "W2": (H, V), "b2": (V,)}
    if not isinstance(tensors, dict) or set(tensors) != set(PARAM_NAMES):
        raise bad("parameter names")
    for name, shape in shapes.items():
        t = tensors[name]
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != shape or t.dtype != torch.float32:
            raise bad(f"{name} should be float32 {shape}, found {getattr(t, 'shape', type(t).__name__)}")
        if not torch.isfinite(t).all():
            raise bad(f"{name} holds non-finite values")
    if not isinstance(step, int) or step < 0 or not isinstance(lr_exponent, float) or not math.isfinite(lr_exponent):
        raise bad("step or learning rate")
    if not isinstance(history, dict) or not all(isinstance(history.get(k), torch.Tensor) for k in ("lr", "loss")):
        raise bad("history")
    if history["lr"].shape != (step,) or history["loss"].shape != (step,):
        raise bad("history length does not match the step count")
    if not isinstance(rng, torch.Tensor) or rng.dtype != torch.uint8:
        raise bad("minibatch generator state")
    params = Params(*(tensors[name] for name in PARAM_NAMES))
    return TrainingState(model, vocab, params, step, lr_exponent, history["lr"], history["loss"], tuple(evals), rng)
