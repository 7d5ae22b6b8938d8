"""Headless mode: run a parsed script on a trainer, with a rich progress bar on stderr."""

from __future__ import annotations

import json
import signal
import time
from types import FrameType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from core import native
from core.actions import Action, Job, Outcome
from core.errors import CharMLPError
from core.jobs import Progress as TrainProgress
from core.keeping import RunKeeper
from core.session import autosave, open_session
from core.trainer import Trainer
from core.verbs import VERBS
from tui.output import finite_or_null
from tui.settings import EXIT_INTERRUPTED, EXIT_OUTPUT, EXIT_USAGE, Settings

COMPILE_FROM_STEPS = 50_000  # model-steps below which a ~1 s first build of the native steps does not pay for itself


class StopFlag:
    """Set by SIGINT / SIGTERM / SIGHUP; the trainer sees it at the next chunk boundary."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def __call__(self) -> bool:
        return self.signal is not None

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.signal is not None:  # a second Ctrl+C: the user means it
            raise KeyboardInterrupt
        self.signal = signum


def run_headless(settings: Settings, actions: list[Action]) -> int:
    err = Console(stderr=True)
    started = time.perf_counter()
    stop = StopFlag()
    previous = {sig: signal.signal(sig, stop.handle) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        return _run_headless(settings, actions, err, stop, started)
    except KeyboardInterrupt:  # a second Ctrl+C: stop now, without the summary (the autosave has run)
        err.print("charmlp-tui: interrupted", soft_wrap=True)
        return EXIT_INTERRUPTED
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_headless(settings: Settings, actions: list[Action], err: Console, stop: StopFlag, started: float) -> int:
    s = settings
    try:
        with err.status("loading data and building the dataset…"):
            trainer, keeper, lines = open_session(s.data, s.model, s.train, s.load, s.keep_runs, s.runs_db,
                                                  s.run_name, s.resume, s.argv_for)
    except CharMLPError as e:
        _say(err, f"charmlp-tui: error: {e}")
        return EXIT_USAGE
    for line in lines:
        _say(err, f"charmlp-tui: {line}")
    _describe(trainer, err)
    if keeper.on or not s.keep_runs:
        _say(err, f"runs: {keeper.line()}")
    else:  # the store failed: one line, and training goes on
        _say(err, f"charmlp-tui: runs are {keeper.line()} (training goes on)")
    keeper.record.engine_switched("eager", trainer.step)
    if settings.compile:
        _start_compiling(trainer, keeper, actions, err)
    saved = True
    try:
        code = _run_actions(trainer, keeper, actions, settings, err, stop, started)
    finally:
        if (closing := keeper.close(trainer)) is not None:
            _say(err, f"charmlp-tui: {closing}")
        elif keeper.run is not None and keeper.store is not None:
            _say(err, f"charmlp-tui: run {keeper.run.name} kept in {keeper.store.shown} (charmlp-tui runs show "
                      f"{keeper.run.name})")
        if settings.autosave is not None:  # however the script ends: done, a bad action, a signal
            saved, line = autosave(trainer, settings.autosave)
            err.print(f"charmlp-tui: {line}", markup=False, highlight=False, soft_wrap=True)
    return EXIT_OUTPUT if code == 0 and not saved else code  # a lost model is not a success


def _say(err: Console, line: str) -> None:
    err.print(line, markup=False, highlight=False, soft_wrap=True)


def _start_compiling(trainer: Trainer, keeper: RunKeeper, actions: list[Action], err: Console) -> None:
    def log(line: str) -> None:
        _say(err, line)

    engines = {VERBS["engine"].values(a)["engine"] for a in actions if a.verb == "engine"}
    if engines:  # the script says where each engine runs (a recorded session): built alongside, used there
        if "compiled" in engines:
            trainer.start_compiling(log, switch=False)
    elif _model_steps(actions) >= COMPILE_FROM_STEPS or (_model_steps(actions) and native.is_cached()):
        # built (or loaded from the cache, in milliseconds) and measured before the first action, not
        # alongside as in the app: every step of the script then runs on one engine, so its losses do
        # not depend on when the build finished
        decisions: list[str] = []

        def chosen(engine: str, step: int, why: str) -> None:
            if decisions:  # the first one the build's line has said
                log(f"charmlp-tui: step {step:,}: {why}")
            decisions.append(engine)
            keeper.record.engine_chosen(engine, step, why)

        trainer.start_compiling(log, on_switch=chosen).join()


def _model_steps(actions: list[Action]) -> int:
    """The training steps a script's long actions take, every model of a grid counted."""
    total = 0
    for a in actions:
        values = VERBS[a.verb].values(a) if a.verb in ("run", "sweep", "grid") else {}
        if a.verb == "run":
            total += values["steps"]
        elif a.verb == "sweep":
            total += values["steps"] * values["repeats"]
        elif a.verb == "grid":
            total += values["models"] * values["steps"]
    return total


def _run_actions(trainer: Trainer, keeper: RunKeeper, actions: list[Action], settings: Settings, err: Console,
                 stop: StopFlag, started: float) -> int:
    summary: dict = {"samples": [], "divergences": []}
    steps = 0
    train_seconds = 0.0
    for action in actions:
        if stop():
            break
        keeper.before(trainer, action)
        try:
            outcome = _execute_with_progress(trainer, keeper, action, settings, err, stop)
        except CharMLPError as e:
            _say(err, f"charmlp-tui: error: {action}: {e}")
            return EXIT_USAGE
        if (line := keeper.after(trainer, action, outcome)) is not None:
            _say(err, f"charmlp-tui: {line}")
        print(outcome.summary, flush=True)
        summary["samples"] += outcome.samples
        if outcome.run is not None:
            steps += outcome.run.steps
            train_seconds += outcome.run.train_seconds
            if outcome.run.divergence is not None:
                summary["divergences"].append(vars(outcome.run.divergence))
        if outcome.grid is not None:
            g = outcome.grid
            summary["grid"] = {"exponents": [round(e, 6) for e in g.exponents],
                               "losses": [round(v, 6) if v != float("inf") else None for v in g.losses],
                               "best_exponent": g.best_exponent, "steps": g.steps, "at_step": g.at_step}
        if outcome.sweep is not None:
            s = outcome.sweep
            summary["sweep"] = {"suggested_exponent": s.suggested_exponent, "at_step": s.at_step,
                                "stopped_early": s.stopped_early, "repeats": s.repeats, "suggestions": s.suggestions,
                                "band": [round(b, 6) for b in s.band],
                                "points": [[round(e, 6), round(v, 6)] for e, v in zip(s.exponents, s.losses)]}
    losses = {"train": trainer.split_loss("train"), "dev": trainer.split_loss("dev")}
    print(f"final: step {trainer.step}, lr exponent {trainer.lr_exponent:.3g}, "
          f"train loss {_fmt(losses['train'])}, dev loss {_fmt(losses['dev'])}", flush=True)
    if stop():
        err.print(f"charmlp-tui: interrupted by signal {stop.signal}; stopped at step {trainer.step}", soft_wrap=True)
    if settings.json:
        ds = trainer.dataset
        summary.update({
            "data": ds.source, "words": ds.n_words, "vocab_size": ds.vocab.size, "params": trainer.n_params,
            "block_size": trainer.model_config.block_size, "emb_dim": trainer.model_config.emb_dim,
            "hidden": trainer.model_config.hidden, "init": trainer.model_config.init,
            "batch_size": trainer.train_config.batch_size,
            "examples": ds.sizes(), "step": trainer.step, "lr_exponent": trainer.lr_exponent, "loss": losses,
            "diagnostics": trainer.diagnose().as_json(),
            "elapsed_s": round(time.perf_counter() - started, 3),
            "steps_per_s": round(steps / train_seconds, 1) if train_seconds else None,
            "interrupted": stop(), "compiled": trainer.compiled, "engine": _engine(trainer),
            "run": keeper.run.name if keeper.run else None,
        })
        print(json.dumps(finite_or_null(summary), allow_nan=False), flush=True)
    return 128 + stop.signal if stop.signal is not None else 0  # 130 for SIGINT, 143 SIGTERM, 129 SIGHUP, as a shell reports


def _execute_with_progress(trainer: Trainer, keeper: RunKeeper, action: Action, settings: Settings, err: Console,
                           stop: StopFlag) -> Outcome:
    if not VERBS[action.verb].long:
        return VERBS.execute(trainer, action, Job(force=settings.force))
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TextColumn("loss {task.fields[loss]}"), TimeRemainingColumn()]
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task(str(action), total=None, rate="", loss="")

        def on_progress(p: TrainProgress) -> None:
            rate = f"{p.done / p.elapsed_s:,.0f} steps/s" if p.elapsed_s > 0 else ""
            bar.update(task, completed=p.done, total=p.total, rate=rate, loss=f"{p.loss:.4f}")
            if p.kind == "run" and (line := keeper.on_chunk(trainer, p.elapsed_s)) is not None:
                _say(err, f"charmlp-tui: {line}")

        return VERBS.execute(trainer, action, Job(on_progress, stop, settings.force, keeper=keeper))


def _engine(trainer: Trainer) -> dict[str, str | None]:
    """What ran the steps at the end, and for the compiled steps the -march they were built for."""
    kernel = trainer.engine.kernel
    if trainer.compiled and kernel is not None:
        return {"kind": "compiled", "arch": kernel.arch}
    return {"kind": "eager", "arch": None}


def _describe(trainer: Trainer, err: Console) -> None:
    ds, m = trainer.dataset, trainer.model_config
    sizes = ds.sizes()
    err.print(f"data: {ds.source}, {ds.n_words:,} words, vocab {ds.vocab.size}, examples "
              f"train {sizes['train']:,} / dev {sizes['dev']:,} / test {sizes['test']:,}", markup=False, highlight=False, soft_wrap=True)
    err.print(f"model: block {m.block_size}, emb {m.emb_dim}, hidden {m.hidden}, init {m.init}, "
              f"{trainer.n_params:,} parameters; "
              f"step {trainer.step}, lr exponent {trainer.lr_exponent:g}", markup=False, highlight=False, soft_wrap=True)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


