"""The runs screen's commands (tui.messages.RunsCommand), applied on the worker thread to the run
store through the session's RunKeeper (core.keeping): list, open, rename, delete, curves, export.

Each is answered with a message (RunsListed, or CurvesShown) and one line for the log; a refusal
(a StoreError, a name the store refuses, a path that cannot be written) is that line and changes
nothing. Only the worker thread calls this: the keeper and the trainer are its own.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import CharMLPError, ConfigError, StoreError
from core.files import check_target, replace_atomically, resolved
from core.reading import shown_path
from tui.messages import (CurvesShown, DeleteRun, ExportRuns, ListRuns, Logged, OpenRun, RenameRun, RunsCommand,
                          RunsListed, ShowCurves)

if TYPE_CHECKING:
    from textual.message import Message

    from core.keeping import RunKeeper
    from core.trainer import Trainer

EXPORT_FORMAT = "charmlp-tui runs 1"  # the exported file's "format": what a reader checks first


def apply_runs_command(command: RunsCommand, keeper: RunKeeper, trainer: Trainer, post: Callable[[Message], object],
                       job: str | None, written: set[Path]) -> bool:
    """Apply one command; returns True when the trainer now holds another run (OpenRun)."""
    try:
        line, opened = _apply(command, keeper, trainer, post, job, written)
    except CharMLPError as e:
        line = f"{_verb(command)}: {e}"
        post(Logged(line, error=True))
        post(_listed(keeper, line, error=True))
        return False
    if line:
        post(Logged(line))
    if not isinstance(command, ShowCurves):
        post(_listed(keeper, line, opened=opened))
    return opened is not None


def _apply(command: RunsCommand, keeper: RunKeeper, trainer: Trainer, post: Callable[[Message], object],
           job: str | None, written: set[Path]) -> tuple[str, str | None]:
    """(the line that says what was done, the run opened)."""
    if isinstance(command, ListRuns):
        return "", None
    if isinstance(command, OpenRun):
        if job is not None:
            raise StoreError(f"refused, {job} is running (close this screen and press escape to stop it)")
        run = keeper.switch_to(trainer, command.name)
        return f"opened run {run.name!r} at step {trainer.step:,} (block/emb/hidden {run.shape})", run.name
    if isinstance(command, RenameRun):
        keeper.rename(command.name, command.new)
        return f"renamed run {command.name!r} to {command.new!r}", None
    if isinstance(command, DeleteRun):
        keeper.delete(command.name)
        return f"deleted run {command.name!r}", None
    if isinstance(command, ShowCurves):
        shown = keeper.run.name if keeper.run else None
        post(CurvesShown(tuple(keeper.curves([n for n in command.names if n != shown]))))
        return "", None
    return _export(command, keeper, written), None


def _export(command: ExportRuns, keeper: RunKeeper, written: set[Path]) -> str:
    rows = {r.name: r for r in keeper.runs()}
    if missing := [n for n in command.names if n not in rows]:
        raise StoreError(f"no run named {missing[0]!r} any more")
    curves = dict(keeper.curves(list(command.names)))
    runs = [{**_finite(rows[name].as_json()),
             "evals": [{"step": e.step, "train": _number(e.train), "dev": _number(e.dev)} for e in curves[name]]}
            for name in command.names]
    text = json.dumps({"format": EXPORT_FORMAT, "runs": runs}, indent=1, allow_nan=False) + "\n"
    path = check_target(command.path, command.force, written, ConfigError, "runs.json", "overwrite it")
    replace_atomically(path, lambda f: f.write(text.encode("utf-8")), ConfigError, "the runs",
                       exclusive=not os.path.lexists(path))
    written.add(resolved(path))
    n = len(runs)
    return f"export: wrote {n} run{'s' * (n != 1)} to {shown_path(path)}"


def _number(value: float | None) -> float | None:
    """Strict JSON: a loss that is not a finite number is null."""
    return value if value is not None and math.isfinite(value) else None


def _finite(summary: dict[str, object]) -> dict[str, object]:
    return {k: _number(v) if isinstance(v, float) else v for k, v in summary.items()}


def _listed(keeper: RunKeeper, line: str, error: bool = False, opened: str | None = None) -> RunsListed:
    open_run = keeper.run.name if keeper.run else None
    try:
        runs = tuple(keeper.runs())
    except StoreError as e:  # runs not saved in this session, or the store failed
        return RunsListed((), open_run, line or str(e), True)
    return RunsListed(runs, open_run, line, error, opened)


def _verb(command: RunsCommand) -> str:
    return {ListRuns: "runs", OpenRun: "open", RenameRun: "rename", DeleteRun: "delete", ShowCurves: "curves",
            ExportRuns: "export"}[type(command)]
