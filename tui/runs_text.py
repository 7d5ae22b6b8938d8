"""The kept runs as text: the `runs list` table, one run described for `runs show`, and the JSON
and CSV of `runs export`. Everything that came from the database goes through
core.reading.printable (text) or a \\u escape (JSON): a name holding an ESC cannot drive the terminal."""

from __future__ import annotations

import csv
import io
import json
import math
import shlex
import time
from typing import TYPE_CHECKING

from core.reading import printable, shown_path
from core.store import RunRow
from tui.output import finite_or_null

if TYPE_CHECKING:
    from core.history import EvalPoint


SHOW_EVALS = 12  # `runs show` lists at most this many evaluations (the first and the latest)


CSV_COLUMNS = ("name", "block", "emb", "hidden", "init", "params", "batch", "init_seed", "batch_seed", "step", "train", "dev")


def as_json(run: RunRow) -> dict[str, object]:
    try:
        out = run.as_json()
    except (ValueError, TypeError):  # argv that is not JSON (a database edited by hand): kept as its text
        out = {k: v for k, v in vars(run).items() if k not in ("script", "argv")}
        out["argv"], out["steps_per_s"] = run.argv, run.steps_per_s
    return out


def dumps(value: object) -> str:
    """One JSON text, ASCII only (any control or odd character in a name is a \\u escape)."""
    return json.dumps(finite_or_null(value), allow_nan=False, ensure_ascii=True)


def _loss(x: object) -> str:
    return f"{x:.4f}" if isinstance(x, (int, float)) else "-"


def count(n: object) -> str:
    return f"{n:,}" if isinstance(n, int) else printable(str(n))


def _duration(s: object) -> str:
    if not isinstance(s, (int, float)) or not math.isfinite(s) or s < 0:
        return "-"
    if s < 60:
        return f"{s:.1f}s"
    m = int(s // 60)
    return f"{m}m{int(s % 60):02d}s" if m < 60 else f"{m // 60}h{m % 60:02d}m"


def _when(t: float) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
    except (TypeError, ValueError, OverflowError, OSError):
        return printable(str(t))


def looked_at_test(run: RunRow) -> bool:
    return run.test_loss is not None or run.test_step is not None


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


_HEADER = ("name", "shape", "params", "steps", "train", "dev", "best", "time", "test", "schedule")


_RIGHT = {"params", "steps", "train", "dev", "best", "time"}


NAME_WIDTH = 32  # a longer name is cut in the table (runs show and --json give it whole)


SCHEDULE_MIN = 12  # the schedule keeps at least this much of a line, even past the width


def table(runs: list[RunRow], width: int = 80) -> str:
    """The runs as aligned columns (the test column only if a run's test loss was looked at); the
    schedule, last, cut at a segment so that a line fits in `width`."""
    cells: list[tuple[str, ...]] = [_HEADER]
    cells += [(_cut(printable(r.name), NAME_WIDTH), printable(r.shape), count(r.params), count(r.steps),
               _loss(r.train_loss), _loss(r.dev_loss), _loss(r.best_dev_loss), _duration(r.train_s),
               "seen" if looked_at_test(r) else "", printable(r.schedule) or "-") for r in runs]
    keep = [i for i, head in enumerate(_HEADER) if head != "test" or any(looked_at_test(r) for r in runs)]
    rows = [tuple(row[i] for i in keep) for row in cells]
    heads = rows[0]
    widths = [max(len(row[i]) for row in rows) for i in range(len(heads) - 1)]
    # two spaces after the name and before the schedule, one between the others (they stay apart, right-aligned)
    gaps = ["  " if heads[i] == "name" or heads[i + 1] == "schedule" else " " for i in range(len(heads) - 1)]
    room = max(width - 1 - sum(widths) - sum(map(len, gaps)), SCHEDULE_MIN)  # - 1: a full line would wrap
    lines = []
    for row in rows:
        line = ""
        for cell, w, head, gap in zip(row, widths, heads, gaps):
            line += (cell.rjust(w) if head in _RIGHT else cell.ljust(w)) + gap
        lines.append((line + _cut_schedule(row[-1], room)).rstrip())
    return "\n".join(lines)


def _cut_schedule(text: str, width: int) -> str:
    """'-0.9×20k, -1.9×10k, -2.9×5k' cut to `width` between segments ('-0.9×20k, …'), or within one."""
    if len(text) <= width:
        return text
    parts = text.split(", ")
    for n in range(len(parts) - 1, 0, -1):
        cut = ", ".join(parts[:n]) + ", …"
        if len(cut) <= width:
            return cut
    return _cut(text, width)


def printable_lines(text: str) -> str:
    """Multi-line text from the database, each line made printable (a tab kept)."""
    return "\n".join(printable(line.replace("\t", " ")) for line in text.splitlines())


def _argv(run: RunRow) -> str:
    try:
        argv = json.loads(run.argv)
        if not isinstance(argv, list):
            raise ValueError
        return " ".join(shlex.quote(str(a)) for a in argv)
    except ValueError:
        return f"(not readable: {run.argv[:60]!r})"


def describe(run: RunRow, evals: tuple[EvalPoint, ...] | str, store_flag: str = "") -> str:
    """What `runs show` prints: one run, every field, its script and evaluations (store_flag: the
    --runs-db to resume it from, when not the default store)."""
    data = printable(run.data_source)
    if run.data_path and run.data_path != run.data_source:
        data += f" ({shown_path(run.data_path)})"
    rate = run.steps_per_s
    last = evals[-1] if isinstance(evals, tuple) and evals else None
    at = f" at step {last.step:,}" if last is not None else ""
    lines = [
        f"run {printable(run.name)}",
        f"  data      {data}, digest {printable(run.data_digest[:12])}, vocab {len(run.vocab) + 1} tokens",
        f"  split     {printable(run.split)} (train, dev, test)",
        f"  shape     block {run.block_size}, emb {run.emb_dim}, hidden {run.hidden}: {count(run.params)} parameters",
        f"  init      {printable(run.init)}; seeds init {run.init_seed}, batch {run.batch_seed}",
        f"  batch     {run.batch_size}",
        f"  steps     {count(run.steps)}, lr exponent now {run.lr_exponent:.4g} (lr {10 ** run.lr_exponent:.4g})",
        f"  schedule  {printable(run.schedule) or '-'} (lr exponent × steps)",
        f"  loss      train {_loss(run.train_loss)}, dev {_loss(run.dev_loss)} (the latest exact evaluation{at})"
        if run.train_loss is not None or run.dev_loss is not None
        else "  loss      not evaluated yet (the eval action)",
        f"  best      train {_loss(run.best_train_loss)}, dev {_loss(run.best_dev_loss)}",
        f"  test      {_loss(run.test_loss)} at step {count(run.test_step)}: looked at; choose by dev, never by test"
        if looked_at_test(run) else "  test      not looked at",
        f"  time      {_duration(run.train_s)} training, {_duration(run.wall_s)} open"
        + (f", {rate:,.0f} steps/s" if rate is not None else ""),
        f"  created   {_when(run.created)}",
        f"  saved     {_when(run.updated)}",
    ]
    if run.writer:
        lines.append(f"  open in   {printable(run.writer)} (host:pid; while that process lives, only it trains "
                     "this run)")
    lines += [
        "",
        "rebuild it from scratch (save the script below to FILE):",
        f"  charmlp-tui --headless {printable(_argv(run))} --script-file FILE",
        f"or continue it exactly: charmlp-tui --resume {printable(shlex.quote(run.name))}{store_flag}",
        "",
        "script (the actions applied to it; `runs show NAME --script` prints it alone):",
    ]
    lines += [f"  {line}" for line in printable_lines(run.script).splitlines()] or ["  (none)"]
    lines += ["", "evaluations (exact losses on the whole splits):"]
    if isinstance(evals, str):
        lines.append(f"  cannot be read: {printable(evals)}")
    elif not evals:
        lines.append("  none yet")
    else:
        lines.append(f"  {'step':>9}  {'train':>7}  {'dev':>7}")
        shown: list[EvalPoint | None] = list(evals)
        if len(evals) > SHOW_EVALS:
            shown = [*evals[:2], None, *evals[-(SHOW_EVALS - 3):]]
        for e in shown:
            lines.append(f"  {'…':>9}  ({len(evals) - SHOW_EVALS + 1} more: `runs export` has them all)" if e is None
                         else f"  {e.step:>9,}  {_loss(e.train):>7}  {_loss(e.dev):>7}")
    return "\n".join(lines)


def export_json(runs: list[RunRow], evals: list[tuple[EvalPoint, ...]]) -> str:
    out = []
    for run, points in zip(runs, evals):
        item = as_json(run)
        item["evals"] = [[e.step, e.train, e.dev] for e in points]
        item["script"] = run.script
        out.append(item)
    return dumps({"runs": out}) + "\n"


def export_csv(runs: list[RunRow], evals: list[tuple[EvalPoint, ...]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)

    def number(x: float | None) -> str:
        return repr(x) if isinstance(x, float) and math.isfinite(x) else ""

    for run, points in zip(runs, evals):
        summary = [printable(run.name), run.block_size, run.emb_dim, run.hidden, printable(run.init), run.params,
                   run.batch_size, run.init_seed, run.batch_seed]
        for e in points or [None]:
            writer.writerow(summary + (["", "", ""] if e is None else [e.step, number(e.train), number(e.dev)]))
    return buffer.getvalue()
