"""A session as a replayable script: every action applied, in the headless script language.

The app's keys become actions (core.actions); a run is recorded as `run N`. An action applied in
the middle of a run (an LR change, a decay, an evaluation, samples) splits it: `run 2400; lr -1.2;
run 7600`. Runs and minibatches are deterministic given the seed, so replaying the script with
`charmlp-tui --headless --script-file` reproduces the losses exactly. The eager and the compiled
steps differ in float rounding, so the script says which one ran where: it starts `engine eager`
and has `engine compiled` at the step the app switched (when the background build was done and
measured faster), after a comment with the measurement; a replay switches at the same steps (on
the same machine: the compiled steps are built for its CPU), without measuring again.
One caveat: the blow-up watch starts afresh with each `run`, so a run that blew up after a
mid-run change may stop at another step.
Free of torch.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.actions import Action
from core.verbs import VERBS
from core.errors import ConfigError
from core.files import check_target, replace_atomically, resolved


class SessionRecord:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self._run_start: int | None = None  # step where the current segment of a run began
        self._run_left = 0  # steps the current run still has to go, as requested
        self._engine: str | None = None  # the engine the last `engine` line named

    def applied(self, action: Action) -> None:
        """An action other than run, applied successfully. Saving is kept as a comment: a replay
        should not write over the files of the session it replays."""
        self.lines.append(str(action) if VERBS[action.verb].replayed else f"# {action}")

    def engine_switched(self, engine: str, at_step: int) -> None:
        """The steps from at_step on run on `engine` (core.ranges.ENGINES); may come mid-run."""
        self.split_run(at_step)
        self.lines.append(f"engine {engine}")
        self._engine = engine

    def engine_chosen(self, engine: str, at_step: int, why: str) -> None:
        """A measurement chose `engine` from at_step on: why, as a comment, and an `engine` line
        where it changes what runs (a run goes on unsplit where it does not)."""
        if engine != self._engine:
            self.split_run(at_step)
        self.lines += [f"# {part}" for part in why.splitlines()]
        if engine != self._engine:
            self.engine_switched(engine, at_step)

    def run_started(self, steps: int, at_step: int) -> None:
        self._run_start, self._run_left = at_step, steps

    def split_run(self, at_step: int) -> None:
        """An action is about to be applied mid-run: close the run's segment so far."""
        if self._run_start is not None and at_step > self._run_start:
            self.lines.append(f"run {at_step - self._run_start}")
            self._run_left -= at_step - self._run_start
            self._run_start = at_step

    def run_ended(self, stopped: bool, at_step: int) -> None:
        """A stopped run is recorded as the steps it took; one that ended by itself (finished, or
        blew up and rolled back) as the steps requested, so that a replay does the same."""
        if self._run_start is None:
            return
        steps = at_step - self._run_start if stopped else self._run_left
        if steps > 0:
            self.lines.append(f"run {steps}")
        self._run_start = None

    def script(self, header: list[str], now_at_step: int | None = None) -> str:
        """The script so far; during a run, its steps up to now_at_step are included."""
        # every physical line a comment: a file name with a line end in it must not become an action
        lines = [f"# {part}" for line in header for part in line.splitlines() or [""]] + self.lines
        if self._run_start is not None and now_at_step is not None and now_at_step > self._run_start:
            lines += [f"run {now_at_step - self._run_start}", "# (exported during a run: its remaining steps are not here)"]
        return "\n".join(lines) + "\n"


def write_script(path: Path, text: str, force: bool, written: set[Path]) -> Path:
    """Write a session script (core.files: asks for force over a file not in `written`, atomic)."""
    path = check_target(path, force, written, ConfigError, "session.txt", "overwrite it")
    replace_atomically(path, lambda f: f.write(text.encode("utf-8")), ConfigError, "the script",
                       exclusive=not os.path.lexists(path))
    written.add(resolved(path))
    return path
