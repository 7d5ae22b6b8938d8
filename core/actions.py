"""The action language shared by headless scripts, the app's keys and replayable sessions.

Parsing only, free of torch, so the command line can check a script before loading anything.

    sweep; lr -1; run 20000; decay; run 10000; eval; sample 10

Actions are separated by ';' or new lines; '#' starts a comment. A script is parsed and
checked whole before anything runs, so a typo in the last action costs nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.config import MAX_GRID_MODELS, MAX_RUN_STEPS, MAX_SWEEP_REPEATS, MAX_SWEEP_STEPS, check_lr_exponent
from core.errors import CharMLPError, ScriptError

# verb -> (usage, help): the source of truth for parsing errors, --help and the app's help screen
VERBS: dict[str, tuple[str, str]] = {
    "reset": ("reset", "new parameters from the seed; step and history start over"),
    "lr": ("lr EXP", "set the learning rate to 10**EXP (EXP from -8 to 3)"),
    "run": ("run N", f"train N minibatch steps (1 to {MAX_RUN_STEPS:,})"),
    "decay": ("decay [FACTOR]", "divide the learning rate by FACTOR (default 10)"),
    "undo": ("undo", "undo the last run: parameters, step, learning rate and history as they were before it"),
    "snapshot": ("snapshot NAME", "keep the current state (parameters, step, LR, history) under NAME; at most 10"),
    "restore": ("restore NAME", "go back to the state kept by 'snapshot NAME'"),
    "sweep": ("sweep [START END STEPS] [--repeats N]",
              "LR sweep: one step per LR at 10**linspace(START, END, STEPS), default -3 0 1000; parameters restored; "
              "--repeats N: N sweeps over different minibatches, their mean, band and the suggestions' spread"),
    "grid": ("grid [START END K STEPS]",
             "K copies of the model trained STEPS steps side by side at exponents evenly spaced in [START, END], "
             "default -3 0 32 500; the model itself untouched"),
    "eval": ("eval", "exact full train and dev loss now"),
    "sample": ("sample N", "N names drawn from the model (1 to 1000)"),
    "save": ("save PATH", "write a checkpoint"),
    "load": ("load PATH", "replace the model with a checkpoint's"),
    "engine": ("engine eager|compiled",
               "what runs the training steps from here: torch's eager step or the compiled (native) one; they differ "
               "in float rounding. A session exported from the app says where it switched, so a replay switches there too"),
}
ENGINES = ("eager", "compiled")


@dataclass(frozen=True)
class Action:
    verb: str
    args: tuple = ()

    def __str__(self) -> str:
        if self.verb == "sweep" and len(self.args) == 4:
            return f"{Action('sweep', self.args[:3])} --repeats {self.args[3]}"
        # 10 digits: an LR exponent is kept to 6 decimals, and a recorded session must replay it exactly
        return " ".join([self.verb, *(f"{a:.10g}" if isinstance(a, float) else str(a) for a in self.args)])


def _number(text: str, what: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ScriptError(f"{where}: {what} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ScriptError(f"{where}: {what} must be a finite number, got {text!r}")
    return value


def _count(text: str, what: str, where: str, low: int, high: int) -> int:
    value = _number(text.replace("_", ""), what, where)
    if value != int(value) or not low <= value <= high:
        raise ScriptError(f"{where}: {what} must be a whole number from {low:,} to {high:,}, got {text!r}")
    return int(value)


def parse_action(text: str, where: str = "action") -> Action:
    words = text.split()
    verb, args = words[0].lower(), words[1:]
    where = f"{where} {text.strip()!r}"
    if verb not in VERBS:
        raise ScriptError(f"{where}: unknown action {verb!r}; actions are {', '.join(VERBS)}")
    usage = VERBS[verb][0]
    repeats = None
    if verb == "sweep" and "--repeats" in args:
        at = args.index("--repeats")
        if at + 1 >= len(args):
            raise ScriptError(f"{where}: expected '{usage}'")
        repeats = _count(args[at + 1], "N", where, 1, MAX_SWEEP_REPEATS)
        args = args[:at] + args[at + 2 :]
    arity = {"grid": (0, 4), "reset": (0,), "eval": (0,), "undo": (0,), "snapshot": (1,), "restore": (1,), "lr": (1,), "run": (1,), "sample": (1,), "save": (1,), "load": (1,),
             "engine": (1,), "decay": (0, 1), "sweep": (0, 3)}[verb]
    if len(args) not in arity:
        raise ScriptError(f"{where}: expected '{usage}'")
    try:
        if verb == "lr":
            return Action(verb, (check_lr_exponent(_number(args[0], "EXP", where)),))
        if verb == "run":
            return Action(verb, (_count(args[0], "N", where, 1, MAX_RUN_STEPS),))
        if verb == "sample":
            return Action(verb, (_count(args[0], "N", where, 1, 1000),))
        if verb == "engine":
            if args[0].lower() not in ENGINES:
                raise ScriptError(f"{where}: expected '{usage}'")
            return Action(verb, (args[0].lower(),))
        if verb == "decay":
            factor = _number(args[0], "FACTOR", where) if args else 10.0
            if not 1 < factor <= 1e6:
                raise ScriptError(f"{where}: FACTOR must be above 1 and at most 1e6 (the LR is divided by it), got {args[0]!r}")
            return Action(verb, (factor,) if args else ())
        if verb == "grid" and args:
            start = check_lr_exponent(_number(args[0], "START", where), "START")
            end = check_lr_exponent(_number(args[1], "END", where), "END")
            if start >= end:
                raise ScriptError(f"{where}: START must be below END")
            return Action(verb, (start, end, _count(args[2], "K", where, 2, MAX_GRID_MODELS),
                                 _count(args[3], "STEPS", where, 10, MAX_SWEEP_STEPS)))
        if verb == "sweep" and (args or repeats):
            start = check_lr_exponent(_number(args[0], "START", where), "START") if args else -3.0
            end = check_lr_exponent(_number(args[1], "END", where), "END") if args else 0.0
            if start >= end:
                raise ScriptError(f"{where}: START must be below END")
            steps = _count(args[2], "STEPS", where, 10, MAX_SWEEP_STEPS) if args else 1000
            return Action(verb, (start, end, steps) + ((repeats,) if repeats else ()))
    except ScriptError:
        raise
    except CharMLPError as e:
        raise ScriptError(f"{where}: {e}") from None
    return Action(verb, tuple(args))


def parse_script(text: str) -> list[Action]:
    """Every action of a script, or ScriptError naming the first bad one (by number)."""
    actions = []
    pieces = [p.split("#", 1)[0].strip() for line in text.splitlines() for p in line.split(";")]
    for piece in (p for p in pieces if p):
        actions.append(parse_action(piece, f"action {len(actions) + 1}"))
    if not actions:
        raise ScriptError("the script has no actions")
    return actions
