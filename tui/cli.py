"""`charmlp-tui`: check the flags and the script, then start the app or the headless runner;
`charmlp-tui runs …` manages the kept runs (tui.runs_cli) instead."""

from __future__ import annotations

import os
import signal
import sys

from core import budget
from core.actions import Action
from core.errors import CharMLPError
from core.verbs import parse_script
from tui.settings import EXIT_OUTPUT, EXIT_USAGE, parse_settings


def main(argv: list[str] | None = None) -> int:
    """Standard streams as Unix tools treat them: a closed pipe (`… | head -1`) ends the program
    quietly, a full disk says so in one line, a name the locale cannot encode is escaped."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        return _main(argv)
    except BrokenPipeError:
        _silence_stdout()
        return 128 + signal.SIGPIPE
    except OSError as e:  # everything else the program reads or writes is reported where it happens
        _silence_stdout()
        try:
            print(f"charmlp-tui: error: cannot write the output ({e.strerror or e})", file=sys.stderr, flush=True)
        except OSError:
            pass
        return EXIT_OUTPUT


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush at exit finds nowhere to fail."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, sys.stdout.fileno())
    except (OSError, ValueError):  # no real stdout (a test's capture): nothing to flush into
        pass
    finally:
        os.close(null)


def _main(argv: list[str] | None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["runs"]:  # `charmlp-tui runs list|show|export|rm|rename`: no training flags, no torch
        from tui.runs_cli import run_runs

        return run_runs(args[1:])
    if args[:1] == ["tune"]:  # `charmlp-tui tune …`: a hyperparameter search (its own flags)
        from tui.tune_cli import run_tune

        return run_tune(args[1:])
    settings = parse_settings(args)
    if not settings.headless and not (sys.stdin.isatty() and sys.stderr.isatty()):  # Textual reads one, draws on the other
        print("charmlp-tui: error: the app needs a terminal (standard input and standard error); to run without one "
              "use --headless --script", file=sys.stderr)
        return EXIT_USAGE
    try:
        budget.check(f"{settings.threads} torch threads", budget.threads_needs(settings.threads))
    except CharMLPError as e:
        print(f"charmlp-tui: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    actions: list[Action] = []
    if settings.script is not None:  # refuse a bad script before anything is loaded
        try:
            actions = parse_script(settings.script)
        except CharMLPError as e:
            print(f"charmlp-tui: error: {e}", file=sys.stderr)
            return EXIT_USAGE
    if settings.headless:
        import torch

        from tui.headless import run_headless

        torch.set_num_threads(settings.threads)
        return run_headless(settings, actions)
    from tui.app import CharMLPApp  # torch loads on the app's worker thread, behind the first frame

    app = CharMLPApp(settings, actions)
    app.run()
    if app.exit_note:  # e.g. where the autosave went: shown once the terminal is back
        print(f"charmlp-tui: {app.exit_note}", file=sys.stderr)
    return app.return_code or 0
