"""Every key of the app, declared once: the bindings, the footer, the help screen, the command
palette and the README's key table all come from KEYS."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding, BindingType

from core.actions import Action
from core.verbs import VERBS

STEPS_PER_RUN = (100, 1_000, 10_000, 100_000, 1_000_000)  # what [ and ] step through
DEFAULT_STEPS_PER_RUN = 10_000
LR_STEP = 0.1  # what ↑ and ↓ add to the LR exponent
SAMPLES_PER_PRESS = 10
SWEEP_REPEATS_KEY = 5  # S: how many sweeps
OVERLAID_SWEEPS = 3  # o: how many earlier sweeps the sweep chart overlays
CHART_VIEWS = (  # (view, key, its tab's label, what it shows): the charts, one at a time at small sizes (tui.charts_panel)
    ("training", "1", "training", "the training chart"), ("sweep", "2", "sweep", "the LR sweep chart"),
    ("grid", "3", "grid", "the LR grid chart"), ("embedding", "4", "emb", "the embedding map (as m)"),
)


@dataclass(frozen=True)
class Key:
    keys: str  # Textual key names, comma-separated
    action: str  # the app's action, with its arguments: "lr(1)"
    label: str  # in the footer
    help: str  # on the help screen, in the palette and the README
    shown: str  # the keys as people read them: "space / enter"; the footer shows the first
    footer: bool = True
    verb: str | None = None  # the action verb it sends (core.verbs): greyed out during a job unless mid_run
    bound: bool = True  # False: Textual binds it itself (the command palette)
    priority: bool = False  # before the focused widget's own binding of the key (a table's enter)

    def __post_init__(self) -> None:
        """Keys whose verb applies mid-run say so: written once, in core.verbs."""
        if self.verb is not None and VERBS[self.verb].mid_run:
            object.__setattr__(self, "help", f"{self.help} (mid-run too)")

    @property
    def name(self) -> str:
        """The action without its arguments, as check_action gets it."""
        return self.action.split("(")[0]


def _short(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k" if n >= 1000 else str(n)


def _decay_factor() -> str:
    return f"{VERBS['decay'].values(Action('decay'))['factor']:g}"


def _grid_help() -> str:
    d = VERBS["grid"].values(Action("grid"))
    return (f"LR grid: {d['models']} copies of the model, {d['steps']} steps each at exponents {d['start']:g} … "
            f"{d['end']:g}, side by side")


KEYS = (
    Key("space,enter", "run", "run N", "run N steps at the current learning rate", "space / enter", verb="run"),
    Key("right_square_bracket", "steps(1)", "N+", f"N larger ({', '.join(map(_short, STEPS_PER_RUN))})", "]", footer=False),
    Key("left_square_bracket", "steps(-1)", "N-", "N smaller", "[", footer=False),
    Key("s", "sweep", "sweep", "LR sweep from the current parameters (restored afterwards)", "s", verb="sweep"),
    Key("S", f"sweep({SWEEP_REPEATS_KEY})", f"{SWEEP_REPEATS_KEY} sweeps",
        f"{SWEEP_REPEATS_KEY} sweeps over different minibatches: their mean, band and the suggestions' spread", "S",
        footer=False, verb="sweep"),
    Key("G", "grid", "LR grid", _grid_help(), "G", footer=False, verb="grid"),
    Key("o", "overlay", "overlay", f"overlay the earlier sweeps (up to {OVERLAID_SWEEPS}, labelled by step) on the sweep chart", "o",
        footer=False),
    Key("a", "adopt", "adopt", "adopt the suggestion of the latest sweep, or the latest grid's best exponent", "a",
        verb="lr"),
    Key("up,plus", "lr(1)", "LR+", f"learning-rate exponent +{LR_STEP}", "↑ / +", verb="lr"),
    Key("down,minus", "lr(-1)", "LR-", f"learning-rate exponent -{LR_STEP}", "↓ / -", verb="lr"),
    Key("d", "decay", "decay", f"decay: learning rate / {_decay_factor()}", "d", verb="decay"),
    Key("e", "evaluate", "eval", "exact full train and dev loss now", "e", verb="eval"),
    Key("g", "sample", "sample", f"sample {SAMPLES_PER_PRESS} names", "g", verb="sample"),
    Key("u", "undo", "undo", "undo the last run: parameters, step, LR and history as before it", "u", verb="undo"),
    Key("z", "snapshot", "snapshot", "take a snapshot of the state", "z", footer=False, verb="snapshot"),
    Key("Z", "snapshots", "snapshots", "list the snapshots with their dev loss; enter restores one", "Z", footer=False,
        verb="restore"),
    Key("r", "reset", "reset", "reset: new parameters from the seed, history cleared", "r", verb="reset"),
    Key("n", "new_run", "new run", "new run: another shape, batch size or seeds (the current run stays in the store)",
        "n", footer=False, verb="new"),
    Key("R", "runs", "runs", "the stored runs: compare, overlay their curves, open, rename, delete, export", "R",
        footer=False),
    Key("T", "tune", "tune", "hyperparameter search: trials, steps, a timeout, the study and the search space's ranges "
        "in a dialog; each trial is a run, the best is opened after (while a search runs: its trials screen)", "T",
        footer=False, verb="tune"),
    Key("t", "trials", "trials", "the trials of the search running now, or of the latest one in this session", "t",
        footer=False),
    Key("ctrl+s", "save", "save", "save a checkpoint", "ctrl+s", footer=False, verb="save"),
    Key("ctrl+o", "load", "load", "load a checkpoint", "ctrl+o", footer=False, verb="load"),
    Key("ctrl+e", "export", "export", "export this session as a script that --headless --script-file replays", "ctrl+e",
        footer=False),
    Key("D", "diagnostics", "diagnostics", "is the step size right: each tensor's update-to-data ratio over the steps "
        "(guide: 10^-3, makemore part 3's rule of thumb), the tanh layer's saturation and its histogram now; the "
        "training keys work there too", "D", footer=False),
    Key("m", "toggle_embedding", "emb map", "show the characters' embeddings instead of the LR charts, and back", "m",
        footer=False),
    *(Key(key, f"view('{view}')", tab, f"show {what}" + (" (in a small terminal the charts take turns, tabs above "
          "them)" if key == "1" else ""), key, footer=False) for view, key, tab, what in CHART_VIEWS),
    Key("escape", "stop", "stop", "stop the running job at the next chunk boundary", "escape"),
    Key("ctrl+z", "suspend_process", "suspend", "suspend to the shell; fg brings the app back", "ctrl+z",
        footer=False),
    Key("ctrl+p", "command_palette", "palette", "command palette", "ctrl+p", bound=False),
    Key("f1,question_mark", "help", "help", "this help", "? / F1"),
    Key("q", "quit", "quit", "quit (stops a run cleanly)", "q"),
)
BY_NAME = {k.name: k for k in KEYS}

# inside the runs screen (R; tui.runs_screen): its bindings, its footer and its part of the help
RUNS_KEYS = (
    Key("space", "select", "select", "select or deselect the run under the cursor (several)", "space"),
    Key("enter", "open", "open", "open the run under the cursor: it resumes at its step (not while a job runs)",
        "enter", priority=True),
    Key("s", "sort", "sort", "sort by the next column (or click a column's header); ▲▼ marks it, again reverses",
        "s"),
    Key("r", "rename", "rename", "rename the run under the cursor", "r"),
    Key("x,delete", "delete", "delete", "delete the run under the cursor, after a yes (never the open run)",
        "x / delete"),
    Key("E", "export", "export", "export the selected runs (none: the one under the cursor) as JSON: summaries "
        "and evaluations", "E"),
    Key("c,escape", "close", "close", "close; the selected runs' dev curves (train dotted) are overlaid on the "
        "training chart", "c / escape"),
)

# inside the diagnostics screen (D; tui.diagnostics_screen); the main screen's keys work there too
DIAGNOSTICS_KEYS = (
    Key("D,c", "close", "close", "close: back to the training screen (runs go on recording the statistics)",
        "D / c"),
    Key("escape", "stop_or_close", "stop / close", "stop the running job at the next chunk boundary; when none "
        "runs: close", "escape"),
)

# inside the trials screen (T, t; tui.tune_screen)
TRIALS_KEYS = (
    Key("escape", "stop", "stop / close", "stop the search at the next chunk boundary (the running trial fails, the "
        "finished ones stay, the best is opened); once it has ended: close", "escape"),
    Key("c", "close", "close", "close: the search goes on (T or t brings this screen back)", "c"),
    Key("enter", "open", "open", "open the run of the trial under the cursor: it resumes at its step (not while a "
        "job runs)", "enter", priority=True),
)


def bindings(keys: tuple[Key, ...] = KEYS) -> list[BindingType]:  # what App.BINDINGS is declared as
    return [Binding(k.keys, k.action, k.label, key_display=k.shown.split(" / ")[0], show=k.footer,
                    priority=k.priority) for k in keys if k.bound]


def palette_rows() -> list[tuple[str, str, str]]:
    """(what it does, action, key) for the command palette: every key but the palette's and help's own."""
    return [(k.help[0].upper() + k.help[1:], k.action, f"key: {k.shown}") for k in KEYS
            if k.name not in ("command_palette", "help")]
