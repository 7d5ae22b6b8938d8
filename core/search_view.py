"""What a search looks like at a moment: immutable rows for the trials screen, headless lines and JSON."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from core.search_space import describe_params

STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running", "WAITING": "waiting"}


@dataclass(frozen=True)
class TrialView:
    number: int
    state: str  # complete, pruned, failed, running, waiting
    params: tuple[tuple[str, Any], ...]
    dev: tuple[tuple[int, float], ...]  # (step, exact dev loss) at each rung reported
    value: float | None  # the objective: the exact dev loss at the end (complete trials)
    seconds: float | None
    run: str | None  # its run in the store
    note: str  # why pruned or failed, or what it is (the lecture's configuration)

    def describe(self) -> str:
        return describe_params(dict(self.params))

    @property
    def last_dev(self) -> float | None:
        return self.value if self.value is not None else (self.dev[-1][1] if self.dev else None)


@dataclass(frozen=True)
class SearchView:
    study: str
    storage: str
    trials: tuple[TrialView, ...]  # by number
    best: TrialView | None

    def counts(self) -> dict[str, int]:
        counts = {"complete": 0, "pruned": 0, "failed": 0}
        for t in self.trials:
            if t.state in counts:
                counts[t.state] += 1
        return counts

    def summary(self, stopped: bool, opened: str | None) -> str:
        """The search's one line: its counts, and its best trial (and the run opened from it)."""
        counts = self.counts()
        head = f"tune {self.study}: {counts['complete']} complete, {counts['pruned']} pruned, {counts['failed']} failed"
        if stopped:
            head += " (stopped)"
        best = self.best
        if best is None or best.value is None:
            return head + "; no trial finished yet"
        tail = f"; opened run {opened}" if opened else ""
        return f"{head}; best trial {best.number}: dev {best.value:.4f} ({best.describe()}){tail}"

    def json(self) -> dict[str, Any]:
        best = self.best
        return {"study": self.study, "storage": self.storage,
                "best": None if best is None else {"trial": best.number, "params": dict(best.params),
                                                   "dev_loss": best.value, "run": best.run},
                "trials": self.counts()}


def trial_view(trial: Any) -> TrialView:
    """From an Optuna FrozenTrial."""
    state = STATES.get(trial.state.name, trial.state.name.lower())
    dev = tuple(sorted((int(step), float(v)) for step, v in trial.intermediate_values.items() if math.isfinite(v)))
    attrs = trial.user_attrs
    value = float(trial.value) if trial.value is not None and state == "complete" else None
    seconds = attrs.get("seconds")
    if seconds is None and trial.datetime_start is not None and trial.datetime_complete is not None:
        seconds = (trial.datetime_complete - trial.datetime_start).total_seconds()
    note = "; ".join(str(attrs[k]) for k in ("note", "store") if attrs.get(k))  # why it ended; how its run was kept
    return TrialView(trial.number, state, tuple(sorted(trial.params.items())), dev, value, seconds,
                     attrs.get("run"), note)


def view_of(study: str, storage: str, trials: list[Any] | tuple[TrialView, ...], current: TrialView | None) -> SearchView:
    """The study's trials (Optuna's, or the rows of an earlier view), a running one here shown with its latest rungs."""
    rows = [t if isinstance(t, TrialView) else trial_view(t) for t in trials]
    if current is not None:
        rows = [current if r.number == current.number else r for r in rows]
    done = [r for r in rows if r.value is not None]
    best = min(done, key=lambda r: r.value if r.value is not None else math.inf) if done else None
    return SearchView(study, storage, tuple(sorted(rows, key=lambda r: r.number)), best)
