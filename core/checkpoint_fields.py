"""The values of a checkpoint, checked before any of them reaches the Trainer: every field for type,
range and finiteness, every tensor for dtype, shape and layout (contiguous, from the start of a
storage that holds exactly its elements: no expand() or as_strided() view claiming more elements
than were stored), the minibatch generator's state by setting it on a scratch generator."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from core import ranges
from core.config import ModelConfig
from core.diagnose import no_rows
from core.errors import CheckpointError, ConfigError
from core.history import EvalPoint
from core.model import PARAM_NAMES, Params
from core.reading import printable
from core.state import TrainingState
from core.words import BOUNDARY

FORMAT = "charmlp-tui checkpoint"
VERSION = 1
FIELDS = frozenset({"format", "version", "model", "vocab", "params", "step", "lr_exponent", "history", "evals",
                    "batch_rng_state"})
MODEL_FIELDS = frozenset({"block_size", "emb_dim", "hidden", "seed"})
INIT_FIELD = "init"  # optional: checkpoints from before it have the lecture's init
HISTORY_FIELDS = frozenset({"lr", "loss"})
RNG_BYTES = torch.Generator().get_state().numel()  # a CPU generator's state: mt19937 and its normal cache

_Bad = Callable[[str], CheckpointError]  # makes the one-line refusal of a field


def first_line(e: BaseException, limit: int = 120) -> str:
    return printable((str(e).splitlines() or [""])[0][:limit] or type(e).__name__)


def _kind(value: object) -> str:
    """A value as a message may show it: short, one line, never a tensor's or a container's repr."""
    if isinstance(value, bool) or value is None or (isinstance(value, (int, float)) and len(repr(value)) <= 24):
        return repr(value)
    if isinstance(value, str) and len(value) <= 24:
        return repr(value)
    return f"a {type(value).__name__}"


def validate(shown: str, raw: object) -> TrainingState:
    """The TrainingState a checkpoint's unpickled dict describes, or one CheckpointError line."""
    def bad(why: str) -> CheckpointError:
        return CheckpointError(f"{shown}: not a valid charmlp-tui checkpoint ({why}); nothing was loaded")

    if not isinstance(raw, dict) or type(raw.get("format")) is not str or raw["format"] != FORMAT:
        raise bad("missing its format marker")
    version = raw.get("version")
    if type(version) is not int or version != VERSION:
        raise bad(f"version {_kind(version)}, this program reads version {VERSION}")
    _check_fields(raw, FIELDS, "", bad)
    model_fields = raw["model"]
    if not isinstance(model_fields, dict):
        raise bad(f"model is {_kind(model_fields)}, not a dict of its sizes")
    init = model_fields.get(INIT_FIELD, "lecture")
    _check_fields({k: v for k, v in model_fields.items() if k != INIT_FIELD}, MODEL_FIELDS, "model ", bad)
    if init not in ranges.INITS:
        raise bad(f"model init is {_kind(init)}, not {' or '.join(ranges.INITS)}")
    try:
        model = ModelConfig(**{k: _whole(model_fields[k], f"model {k}", bad) for k in MODEL_FIELDS}, init=init)
    except ConfigError as e:
        raise bad(str(e)) from None
    vocab = _vocab(raw["vocab"], bad)
    step = _step(raw["step"], bad)
    lr_exponent = _lr_exponent(raw["lr_exponent"], bad)
    V, E, T, H = len(vocab) + 1, model.emb_dim, model.block_size, model.hidden
    shapes = {"C": (V, E), "W1": (T * E, H), "b1": (H,), "W2": (H, V), "b2": (V,)}
    tensors = raw["params"]
    if not isinstance(tensors, dict):
        raise bad(f"params is {_kind(tensors)}, not a dict of tensors")
    _check_fields(tensors, frozenset(PARAM_NAMES), "parameter ", bad)
    params = Params(*(_tensor(tensors[name], shapes[name], torch.float32, name, bad) for name in PARAM_NAMES))
    for name, t in zip(PARAM_NAMES, params.tensors()):
        if not bool(torch.isfinite(t).all()):
            raise bad(f"{name} holds non-finite values")
    history = raw["history"]
    if not isinstance(history, dict):
        raise bad(f"history is {_kind(history)}, not a dict of tensors")
    _check_fields(history, HISTORY_FIELDS, "history ", bad)
    lr = _tensor(history["lr"], (step,), torch.float32, "history lr", bad)
    loss = _tensor(history["loss"], (step,), torch.float32, "history loss", bad)
    if not bool(torch.isfinite(lr).all()) or not bool((lr > 0).all()):
        raise bad("history lr holds a learning rate that is not a positive finite number")
    if not bool(torch.isfinite(loss).all()):  # a run stops at a non-finite loss and never records it
        raise bad("history loss holds non-finite values")
    evals = _evals(raw["evals"], step, bad)
    rng = _tensor(raw["batch_rng_state"], (RNG_BYTES,), torch.uint8, "minibatch generator state", bad)
    scratch = torch.Generator()
    try:
        scratch.set_state(rng)  # torch checks the state's own fields (seeded, position in range)
    except (RuntimeError, TypeError, ValueError) as e:
        raise bad(f"minibatch generator state: {first_line(e)}") from None
    # kept as the generator gives it back: set_state ignores some bytes (the upper halves of the
    # old 64-bit words, padding), so this is the same stream with nothing in it that is not used
    rng = scratch.get_state()
    return TrainingState(model, vocab, params, step, lr_exponent, lr, loss, evals, rng, no_rows())


def _check_fields(fields: dict[object, object], expected: frozenset[str], what: str, bad: _Bad) -> None:
    missing = sorted(expected - set(fields))
    unknown = [k for k in fields if k not in expected]
    if missing:
        raise bad(f"missing {what}field{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    if unknown:
        shown = ", ".join(_kind(k) for k in unknown[:3]) + (", ..." if len(unknown) > 3 else "")
        raise bad(f"unknown {what}field{'s' if len(unknown) > 1 else ''} {shown}")


def _whole(value: object, what: str, bad: _Bad) -> int:
    if type(value) is not int:
        raise bad(f"{what} is {_kind(value)}, not a whole number")
    return value


def _step(value: object, bad: _Bad) -> int:
    try:
        return ranges.STEP.check(_whole(value, "step", bad))
    except ConfigError as e:
        raise bad(str(e)) from None


def _lr_exponent(value: object, bad: _Bad) -> float:
    if type(value) not in (int, float):
        raise bad(f"lr exponent is {_kind(value)}, not a number")
    try:
        return ranges.LR_EXPONENT.check(value)  # 400 would overflow 10**exp; -inf or nan are no rate
    except ConfigError as e:
        raise bad(str(e)) from None


def _vocab(value: object, bad: _Bad) -> str:
    """As core.words.Vocab builds it: the sorted distinct characters of the words, printable, no boundary."""
    if type(value) is not str or not value:
        raise bad(f"vocabulary is {_kind(value)}, not a string of characters")
    if BOUNDARY in value:
        raise bad(f"vocabulary holds the boundary token {BOUNDARY!r}")
    if not value.isprintable():
        raise bad("vocabulary holds a character that is not printable")
    if any(a >= b for a, b in zip(value, value[1:])):
        raise bad("vocabulary is not sorted distinct characters")
    return value


def _tensor(value: object, shape: tuple[int, ...], dtype: torch.dtype, what: str, bad: _Bad) -> torch.Tensor:
    """A plain CPU tensor of this dtype and shape that owns exactly its elements' bytes. Checked on
    its metadata only, before any value is read: an expand()ed or as_strided() tensor of a small
    storage can claim any number of elements, and reading them would allocate as many."""
    if type(value) is not torch.Tensor:  # a Parameter or another subclass is not what save_checkpoint writes
        raise bad(f"{what} is {_kind(value)}, not a tensor")
    t = value
    if t.layout != torch.strided or t.device.type != "cpu" or t.is_quantized or t.requires_grad:
        raise bad(f"{what} is not a plain tensor")
    if t.dtype != dtype or tuple(t.shape) != shape:
        raise bad(f"{what} should be {str(dtype).removeprefix('torch.')} {shape}, found "
                  f"{str(t.dtype).removeprefix('torch.')} {tuple(t.shape)}")
    if (not t.is_contiguous() or t.storage_offset() != 0 or t.is_conj() or t.is_neg()
            or t.untyped_storage().nbytes() != t.numel() * t.element_size()):
        raise bad(f"{what} is a view of other memory, not a tensor of its own")
    return t


def _evals(value: object, step: int, bad: _Bad) -> tuple[EvalPoint, ...]:
    if not isinstance(value, (list, tuple)):
        raise bad(f"evaluations are {_kind(value)}, not a list")
    points = []
    for i, record in enumerate(value):
        if not isinstance(record, (list, tuple)) or len(record) != 3:
            raise bad(f"evaluation {i} is {_kind(record)}, not [step, train loss, dev loss]")
        at, train, dev = record
        if type(at) is not int or not 0 <= at <= step:
            raise bad(f"evaluation {i} is at step {_kind(at)}, not a step from 0 to {step}")
        for name, loss in (("train", train), ("dev", dev)):
            if loss is not None and (type(loss) is not float or not math.isfinite(loss) or loss < 0):
                raise bad(f"evaluation {i} has {name} loss {_kind(loss)}, not a finite number >= 0 or None")
        points.append(EvalPoint(at, train, dev))
    return tuple(points)
