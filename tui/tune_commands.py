"""A search (`tune`, core.search) as the worker runs it: its views posted to the app at a bounded rate,
its end posted once, and the one line that refuses a mid-run command while it runs.

Only the worker thread calls this; what it posts (tui.messages.SearchUpdated, SearchEnded) carries
core.search_view's immutable views, never the Trainer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from tui.messages import Facts, SearchEnded, SearchUpdated

if TYPE_CHECKING:
    from textual.message import Message

    from core.actions import Outcome
    from core.search_view import SearchView
    from core.trainer import Trainer

# a view comes at every rung of every trial, which for small models is many a second; each one redraws the
# trials screen's table and chart, UI time the training thread waits for (README: the app). A trial that
# started or ended is shown sooner, but never more than 10 times a second (small trials are pruned in ms)
SEARCH_INTERVAL_S, CHANGE_INTERVAL_S = 0.25, 0.1


def _shape(view: SearchView) -> tuple[tuple[int, str], ...]:
    """Which trials there are and in what state: a change here is posted sooner."""
    return tuple((t.number, t.state) for t in view.trials)


class SearchPosts:
    """The `on_search` of a `tune` job: a view once a trial started or ended (CHANGE_INTERVAL_S after the
    last post at the soonest), otherwise at most one per SEARCH_INTERVAL_S. A view holds the whole study, so
    one not posted loses nothing the next one does not show; `end` posts the last view with the search's
    summary (once)."""

    def __init__(self, post: Callable[[Message], object]) -> None:
        self.post = post
        self.last: SearchView | None = None  # the latest view seen, posted or not
        self._shown: tuple[tuple[int, str], ...] | None = None
        self._posted_at = -float("inf")
        self.first: int | None = None  # the first trial this search ran (the study may hold earlier ones)
        self.ended = False

    def __call__(self, view: SearchView) -> None:
        self.last = view
        if self.first is None:
            self.first = next((t.number for t in view.trials if t.state == "running"), None)
        now, shape = time.monotonic(), _shape(view)
        if now - self._posted_at >= (CHANGE_INTERVAL_S if shape != self._shown else SEARCH_INTERVAL_S):
            self._shown, self._posted_at = shape, now
            self.post(SearchUpdated(view))

    def end(self, job: str, outcome: Outcome | None, line: str = "", stopped: bool = False) -> tuple[str, int, int]:
        """The search returned (outcome: its view and summary) or failed (`line` says why); what the progress
        row says of it (TrainingStatus.last_job), counted in trials: done, or stopped after the finished ones."""
        view = outcome.search or self.last if outcome is not None else self.last
        if not self.ended:
            self.ended = True
            self.post(SearchEnded(view, outcome.summary, False) if outcome is not None else
                      SearchEnded(view, line, error=True))
        if outcome is None or view is None:
            return job, 0, 0  # "refused (see the log)"
        ran = [t for t in view.trials if self.first is not None and t.number >= self.first]  # not earlier sessions'
        finished = sum(t.state in ("complete", "pruned", "failed") for t in ran) - (1 if stopped else 0)
        return job, finished, finished + (1 if stopped else 0)


def refusal(command: object, job: str) -> str:
    """Why a command that may apply mid-run (lr, decay, eval, …) is not applied during a search: each
    trial trains on the recipe the sampler drew, and its dev loss is what the study compares."""
    return f"{command}: refused while the search runs ({job}): each trial trains as it was drawn; escape stops it"


def trial_facts(facts: Facts, trainer: Trainer, run: str) -> Facts:
    """The status panel's facts for the running trial: its model, batch and run. The rest holds for every
    trial (the words, their split, the bigram baseline), so nothing is counted again for a trial's block size."""
    t = trainer
    return replace(facts, model=t.model_config, n_params=t.n_params, run=run, batch_size=t.train_config.batch_size,
                   batch_seed=t.batch_seed)
