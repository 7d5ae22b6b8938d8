"""`charmlp-tui`: check the flags and the script, then start the app or the headless runner."""

from __future__ import annotations

import sys

from core.actions import Action
from core.errors import CharMLPError
from core.verbs import parse_script
from tui.settings import EXIT_USAGE, parse_settings


def main(argv: list[str] | None = None) -> int:
    settings = parse_settings(argv)
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
