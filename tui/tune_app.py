"""The app's part of a search (`tune`): T opens the search dialog, or the trials screen while a search
runs; t brings the trials screen back afterwards; the worker's SearchUpdated and SearchEnded go to
that screen. The search itself runs on the worker thread (tui.worker, tui.tune_commands).

tui.app's CharMLPApp derives from TuneActions, which leaves it the worker, the status, `send` and
`busy` (through DialogActions).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.actions import Action
from core.search_view import SearchView
from tui.app_dialogs import DialogActions
from tui.messages import SearchEnded, SearchUpdated
from tui.tune_dialog import TuneDialog
from tui.tune_screen import TrialsScreen

if TYPE_CHECKING:
    from tui.worker import TrainerWorker

TUNE_ACTIONS = ("tune", "trials")  # the keys whose state TuneActions.check_tune says


class TuneActions(DialogActions):
    worker: TrainerWorker  # the app's: `stop` ends the running job at a chunk boundary

    search: SearchView | None = None  # the latest view of the search running now, or of the last one
    search_end: SearchEnded | None = None  # how the last search ended (None while it runs)
    tune_action: Action | None = None  # the last search this session started: the dialog's prefill

    @property
    def tuning(self) -> bool:
        """A search is the running job."""
        job = self.status.job if self.status is not None else None
        return job is not None and job.split()[0] == "tune"

    def check_tune(self, action: str) -> bool | None:
        """For check_action: T while nothing runs (the dialog) or while a search does (its trials); t once
        a search has been started."""
        if self.status is None:
            return None
        if action == "trials":
            return True if self.tune_action is not None else None
        return True if self.tuning or not self.busy else None

    def action_tune(self) -> None:
        if self.tuning:
            self.action_trials()
            return
        if self.busy:
            return

        def chosen(action: Action | None) -> None:
            if action is None:
                return
            while isinstance(self.screen, TrialsScreen):  # the last search's, beneath the dialog
                self.pop_screen()
            self.search, self.search_end, self.tune_action = None, None, action
            self.send(action)
            self.action_trials()

        self.push_screen(TuneDialog(self.tune_action), chosen)

    def action_trials(self) -> None:
        if self.tune_action is None or isinstance(self.screen, TrialsScreen):
            return
        self.push_screen(TrialsScreen(self.search, self.search_end, self.worker.stop, self.send, lambda: self.busy,
                                      lambda: self.status.facts.run if self.status is not None else None))

    def _trials_screens(self) -> list[TrialsScreen]:
        return [] if self.closing else [s for s in self.screen_stack if isinstance(s, TrialsScreen)]

    def on_search_updated(self, message: SearchUpdated) -> None:
        if self.search_end is not None:  # a view that was on its way when the search ended
            return
        self.search = message.view
        for screen in self._trials_screens():
            screen.show(message.view)

    def on_search_ended(self, message: SearchEnded) -> None:
        self.search_end = message
        self.search = message.view or self.search
        for screen in self._trials_screens():
            screen.end(message)

