"""Commands to the worker and which keys apply now: the app's `send`, `busy`, and `check_action`,
which the footer, the help and the palette ask of each key (core.verbs says which actions may apply
mid-run; a key that may not is greyed out while a job runs or such a command waits).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.actions import Action
from core.verbs import VERBS
from tui import keys
from tui.messages import Command, OpenRun
from tui.tune_app import TUNE_ACTIONS, TuneActions

if TYPE_CHECKING:
    from core.grid import GridResult
    from core.sweep import SweepResult


class KeyStates(TuneActions):
    pending: int  # the number of the latest command sent that may not apply mid-run
    keys_shown: tuple[bool | None, ...] = ()  # each key's state (check_action) the footer last showed
    sweeps: list[SweepResult]  # the latest last
    grid: GridResult | None
    last_finder: str | None  # "sweep" or "grid": what `a` adopts from

    def send(self, command: Command) -> None:
        number = self.worker.send(command)
        if isinstance(command, OpenRun) or isinstance(command, Action) and not VERBS[command.verb].mid_run:
            self.pending = number
        self.keys_changed()

    def keys_changed(self) -> None:
        """Refresh the footer where a key turned on or off: Textual's Footer builds all its keys anew at
        each refresh (~50 ms at 160 columns), UI time the training thread would lose several times a run."""
        state = tuple(self.check_action(name, ()) for name in (*keys.BY_NAME, *TUNE_ACTIONS))
        if state != self.keys_shown:
            self.keys_shown = state
            self.refresh_bindings()

    @property
    def busy(self) -> bool:
        """A job runs, or a command that may not apply mid-run is not taken up yet (quick ones just queue)."""
        s = self.status
        return s is None or s.job is not None or s.taken < self.pending

    def suggestion(self) -> float | None:
        if self.last_finder == "grid" and self.grid is not None:
            return self.grid.best_exponent
        return self.sweeps[-1].suggested_exponent if self.last_finder == "sweep" else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in TUNE_ACTIONS:
            return self.check_tune(action)
        key = keys.BY_NAME.get(action)
        if key is None or (key.verb is None and action != "stop"):  # Textual's own, or no model needed
            return True
        if self.status is None:  # still loading
            return None
        if action == "stop":
            return True if self.status.job else None
        assert key.verb is not None
        if not VERBS[key.verb].mid_run and self.busy:
            return None
        if action == "undo":
            return True if self.status.can_undo else None
        if action == "adopt":
            return True if self.suggestion() is not None else None
        return True

