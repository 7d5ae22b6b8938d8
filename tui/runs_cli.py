"""`charmlp-tui runs …`: the kept runs (core.store) from the command line: list, show, export, rm, rename.

Free of textual and torch, so `runs list` answers at once; torch comes in (through core.run_blobs,
which reads the stored evaluations) only for `show` and `export`. A store that does not exist is a
store with no runs: nothing here creates one. Everything printed that came from the database (a
run's name, its data path, its script) goes through core.reading.printable, so a name holding an
ESC cannot drive the terminal. Every failure is one line on stderr: exit 2 (EXIT_USAGE) for a bad
flag, an unknown run or a store that cannot be read (damaged, locked, newer), 1 (EXIT_OUTPUT) for
an export file that could not be written; a closed pipe ends quietly (tui.cli.main).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from core import ranges
from core.errors import CharMLPError, StoreError
from core.files import check_target, expand, protect, replace_atomically
from core.reading import printable, shown_path
from core.store import RunRow, RunStore, default_path
from tui.runs_text import (CSV_COLUMNS, as_json, count, describe, dumps, export_csv, export_json, looked_at_test,
                            printable_lines, table)
from tui.settings import EXIT_OUTPUT, EXIT_USAGE, OneLineParser

if TYPE_CHECKING:
    from core.history import EvalPoint

PROG = "charmlp-tui runs"


class ExportError(CharMLPError):
    """The export file could not be written (a full disk, a read-only place): exit EXIT_OUTPUT."""


def run_runs(argv: list[str]) -> int:
    """`charmlp-tui runs ARGV…`: the exit code. Output is flushed here, so a closed pipe is
    reported (as BrokenPipeError) inside tui.cli.main, which ends quietly."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit:  # --help printed (or a bad flag): flushed here, where a closed pipe is still caught
        sys.stdout.flush()
        raise
    try:
        code: int = args.command(args)
    except ExportError as e:
        _fail(str(e))
        code = EXIT_OUTPUT
    except CharMLPError as e:
        _fail(str(e))
        code = EXIT_USAGE
    sys.stdout.flush()
    return code


def _fail(line: str) -> None:
    print(f"charmlp-tui: error: {printable(line)}", file=sys.stderr)


# ---- the parser ---------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    db_help = (f"the run store, an SQLite file (default: {shown_path(default_path())}, the runs the app and "
               "--headless keep); a file that does not exist holds no runs and is never created here")
    parser = OneLineParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill("The runs charmlp-tui keeps (every run of the app and of --headless, unless "
                                  "--no-runs): "
                    "list them, show one, export them for a spreadsheet or a script, remove or rename them.", 79),
        epilog="examples:\n"
               "  charmlp-tui runs list\n"
               "  charmlp-tui runs show run3\n"
               "  charmlp-tui runs export --csv --output runs.csv\n"
               "  charmlp-tui runs rm run1 run2\n"
               "  charmlp-tui runs rename run3 lecture-recipe\n\n"
               "Each command's flags: charmlp-tui runs COMMAND --help. Choose a model by its dev\n"
               "loss; the test loss is for the end of an experiment (runs whose test loss was\n"
               "looked at are marked).",
    )
    parser.add_argument("--runs-db", dest="top_runs_db", type=Path, metavar="PATH", help=db_help)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def command(name: str, run: Callable[[argparse.Namespace], int], summary: str, description: str,
                epilog: str | None = None) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = commands.add_parser(
            name, help=summary, description=textwrap.fill(description, 79), epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.set_defaults(command=run)
        sub.add_argument("--runs-db", type=Path, metavar="PATH", help=db_help)
        return sub

    ls = command("list", _list, "a table of the runs (--json: a JSON array)",
                 "A table of the kept runs, oldest first: name; shape (block/emb/hidden); parameters; steps "
                 "trained; train and dev: the losses of the latest exact evaluation (the `eval` action, or the "
                 "app's); best: the best dev loss of its evaluations; time: spent training; test: 'seen' where the "
                 "run's test loss was looked at (the column is left out when none was); the learning-rate schedule "
                 "(exponent × steps). The schedule is cut to fit the terminal ($COLUMNS; 80 columns in a pipe): "
                 "`runs show` and --json hold it whole.")
    ls.add_argument("--json", action="store_true",
                    help="print one JSON array instead: an object per run with every stored field (name, params, "
                         "steps, train_loss, dev_loss (the latest exact evaluation, null if none), best_dev_loss, "
                         "test_loss, schedule, argv, …); a loss that is not a finite number is null")

    show = command("show", _show, "everything about one run",
                   "Everything about one run: its data, split, shape, seeds, batch, parameters, steps, learning-rate "
                   "schedule, losses, best, test (if looked at), time, when it was created and last saved, the flags "
                   "that rebuild it and the script of the actions applied to it, and its exact evaluations.")
    show.add_argument("name", metavar="NAME", help="the run (as `runs list` names it)")
    show.add_argument("--script", action="store_true",
                      help="print only the run's script (the actions applied to it, one per line), to save and "
                           "replay: charmlp-tui --headless FLAGS --script-file FILE, FLAGS as `runs show` gives them")

    export = command("export", _export, "the runs as JSON or CSV, to stdout or a file",
                     "Export the named runs (default: all), oldest first.",
                     epilog="\n\n".join([
                         textwrap.fill("JSON (the default): {\"runs\": [RUN, …]}, each RUN an object with every field "
                                       "of `runs list --json` plus \"evals\": [[step, train, dev], …] (its exact "
                                       "evaluations; null where a split is empty) and \"script\": the actions "
                                       "applied to it, one per line.", 79),
                         textwrap.fill("CSV: one row per exact evaluation of each run, for a spreadsheet's pivot "
                                       "table or chart (dev loss against step, one series per run); a run never "
                                       "evaluated is one row with step, train and dev empty. Columns:", 79)
                         + f"\n  {','.join(CSV_COLUMNS)}\n"
                         + textwrap.fill("block, emb, hidden: the shape; batch: the minibatch size; step: the step of "
                                         "the evaluation; train, dev: the loss on the whole split there (empty if "
                                         "not a finite number).", 79)]))
    form = export.add_mutually_exclusive_group()
    form.add_argument("--json", dest="format", action="store_const", const="json",
                      help="JSON (the default, unless --output ends in .csv)")
    form.add_argument("--csv", dest="format", action="store_const", const="csv",
                      help="CSV, one row per evaluation (the default for an --output ending in .csv)")
    export.add_argument("--output", "-o", type=Path, metavar="FILE",
                        help="write to FILE (atomically: the whole file or none of it) instead of stdout; an existing "
                             "file is refused unless --force")
    export.add_argument("--force", action="store_true", help="let --output replace an existing file")
    export.add_argument("names", nargs="*", metavar="NAME", help="the runs to export (default: all)")

    rm = command("rm", _rm, "remove runs (their history, state and snapshots)",
                 "Remove runs from the store, with their history, state and snapshots. Every NAME is checked "
                 "before any is removed; a run another live charmlp-tui is training is refused.")
    rm.add_argument("names", nargs="+", metavar="NAME", help="the runs to remove")

    rename = command("rename", _rename, "rename a run", "Rename a run (refused if NEW is taken).")
    rename.add_argument("name", metavar="NAME", help="the run")
    rename.add_argument("new", metavar="NEW", help=f"its new name: {_name_rule()}")
    return parser


def _name_rule() -> str:
    r = ranges.RUN_NAME
    return f"1 to {r.max_length} printable characters without spaces, ';' or '#'"


# ---- the store ----------------------------------------------------------------------------------
def _path(args: argparse.Namespace) -> Path:
    given = args.runs_db if args.runs_db is not None else args.top_runs_db
    return default_path() if given is None else expand(given, StoreError)


def _open(args: argparse.Namespace) -> tuple[RunStore | None, str]:
    """(the store, its path as shown), or (None, …) when its file does not exist: no runs, nothing created."""
    path = _path(args)
    if not os.path.lexists(path):
        return None, shown_path(path)
    store = RunStore(path)
    return store, store.shown


def _get(store: RunStore | None, shown: str, name: str) -> RunRow:
    if store is None:
        raise StoreError(f"{shown}: no run named {name!r}; there are no runs yet")
    return store.get(name)


def _close(store: RunStore | None) -> None:
    if store is not None:
        store.close()


def _evals(store: RunStore, run: RunRow) -> tuple[EvalPoint, ...]:
    from core.run_blobs import read_evals  # torch: only here

    try:
        return read_evals(store.evals(run.id))
    except StoreError as e:
        raise StoreError(f"run {run.name!r}: {e}") from None


# ---- formatting ---------------------------------------------------------------------------------


# ---- list ---------------------------------------------------------------------------------------


def _list(args: argparse.Namespace) -> int:
    store, shown = _open(args)
    try:
        runs = store.runs() if store is not None else []
    finally:
        _close(store)
    if args.json:
        print(dumps([as_json(r) for r in runs]))
        return 0
    print(table(runs, shutil.get_terminal_size((80, 24)).columns))
    if not runs:
        print(f"no runs yet in {shown}: every run of the app or of --headless is kept here")
    elif any(looked_at_test(r) for r in runs):
        print("test seen: that run's test loss was looked at; choose models by their dev loss, never by test")
    return 0


# ---- show ---------------------------------------------------------------------------------------
def _show(args: argparse.Namespace) -> int:
    store, shown = _open(args)
    try:
        run = _get(store, shown, args.name)
        if args.script:
            if run.script:
                print(printable_lines(run.script))
            return 0
        assert store is not None
        try:
            evals: tuple[EvalPoint, ...] | str = _evals(store, run)
        except StoreError as e:
            evals = str(e)
    finally:
        _close(store)
    given = args.runs_db if args.runs_db is not None else args.top_runs_db
    print(describe(run, evals, "" if given is None else f" --runs-db {shlex.quote(shown)}"))
    return 0


# ---- export -------------------------------------------------------------------------------------
def _export(args: argparse.Namespace) -> int:
    path = _path(args)
    fmt = args.format or ("csv" if args.output is not None and args.output.suffix.lower() == ".csv" else "json")
    target = None
    if args.output is not None:
        for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            protect(p, "run store")
        target = check_target(args.output, args.force, set(), StoreError, f"runs.{fmt}", "give --force to replace it")
        folder = target.parent if str(target.parent) else Path(".")
        if not folder.is_dir():
            raise StoreError(f"{shown_path(target)}: the folder {shown_path(folder)} does not exist")
    store, shown = _open(args)
    try:
        names = list(dict.fromkeys(args.names))
        runs = [_get(store, shown, n) for n in names] if names else store.runs() if store is not None else []
        evals = [_evals(store, r) if store is not None else () for r in runs]
    finally:
        _close(store)
    text = export_json(runs, evals) if fmt == "json" else export_csv(runs, evals)
    if target is None:
        sys.stdout.write(text)
        return 0
    replace_atomically(target, lambda f: f.write(text.encode("utf-8")), ExportError, "the export",
                       exclusive=not args.force)
    print(f"exported {len(runs)} run{'s' * (len(runs) != 1)} to {shown_path(target)} ({fmt.upper()})", file=sys.stderr)
    return 0


# ---- rm, rename ---------------------------------------------------------------------------------
def _rm(args: argparse.Namespace) -> int:
    store, shown = _open(args)
    try:
        names = list(dict.fromkeys(args.names))
        runs = [_get(store, shown, n) for n in names]  # every name known before any is removed
        assert store is not None
        for run in runs:
            store.delete(run.name)
            print(f"removed run {printable(run.name)} ({count(run.steps)} steps)")
    finally:
        _close(store)
    return 0


def _rename(args: argparse.Namespace) -> int:
    ranges.RUN_NAME.check(args.new, "NEW")
    store, shown = _open(args)
    try:
        _get(store, shown, args.name)
        assert store is not None
        store.rename(args.name, args.new)
    finally:
        _close(store)
    print(f"renamed run {printable(args.name)} to {printable(args.new)}")
    return 0
