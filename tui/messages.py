"""What goes between the UI thread and the worker thread that owns the Trainer, in both directions.

Commands go to the worker (TrainerWorker.send numbers them); messages come back to the app with
immutable payloads built on the worker thread at a chunk boundary. The UI never holds the
Trainer: what it draws is here.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from textual.message import Message

from core.actions import Action

if TYPE_CHECKING:
    import torch

    from core.config import ModelConfig
    from core.diagnostics import Diagnostics, DiagnosticsHistory
    from core.grid import GridResult
    from core.history import EvalPoint, HistoryView
    from core.search_view import SearchView
    from core.store import RunRow
    from core.sweep import SweepResult
    from core.trainer import Trainer


# ---- commands: UI -> worker ----------------------------------------------------------------------
@dataclass(frozen=True)
class LrStep:
    delta: float  # change of the LR exponent, applied to whatever it is when the command arrives


@dataclass(frozen=True)
class Save:
    path: Path
    force: bool


@dataclass(frozen=True)
class Export:
    path: Path
    force: bool


@dataclass(frozen=True)
class Refresh:
    """Post the state now (something outside the queue changed, e.g. a compile finished)."""


@dataclass(frozen=True)
class WatchDiagnostics:
    """The diagnostics screen opened (on) or closed: while it is open the worker posts DiagnosticsUpdated."""

    on: bool


@dataclass(frozen=True)
class Probe:
    """Call `read` with the Trainer on the worker thread between commands and put what it returns
    in `answer`: how tests and benchmarks look inside. The app itself never sends one."""

    read: Callable[[Trainer], Any]
    answer: Future[Any]


# the run store (core.keeping.RunKeeper, on the worker thread): the runs screen's commands. Each
# is answered with RunsListed (ShowCurves with CurvesShown); a refusal is its line, nothing changed.
@dataclass(frozen=True)
class ListRuns:
    pass


@dataclass(frozen=True)
class OpenRun:
    """Open (resume) another stored run in this session: refused while a job runs."""

    name: str


@dataclass(frozen=True)
class RenameRun:
    name: str
    new: str


@dataclass(frozen=True)
class DeleteRun:
    name: str  # never the open run


@dataclass(frozen=True)
class ShowCurves:
    """The named runs' evaluations, for the training chart to overlay (the open run's own is the chart's)."""

    names: tuple[str, ...]


@dataclass(frozen=True)
class ExportRuns:
    """Write the named runs' summaries and evaluations as JSON."""

    names: tuple[str, ...]
    path: Path
    force: bool


RunsCommand = ListRuns | OpenRun | RenameRun | DeleteRun | ShowCurves | ExportRuns
Command = Action | LrStep | Save | Export | Refresh | WatchDiagnostics | Probe | RunsCommand


# ---- payloads ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Facts:
    """What stays put while a model trains: shown at the top of the status panel. New after a load."""

    source: str  # where the words came from
    n_words: int
    vocab: str  # every token in index order, the boundary '.' first
    examples: tuple[int, int, int]  # train, dev, test
    model: ModelConfig
    n_params: int
    bigram_dev: float | None  # the count-based bigram model's dev loss: the baseline to beat
    run: str = ""  # the run in a few words: its name in the store, "not saved", … (RunKeeper.label)
    batch_size: int = 32  # what `new` keeps unless told otherwise (the new-run dialog's defaults)
    batch_seed: int = 0  # the minibatch order's seed (the init seed is model.seed)


@dataclass(frozen=True)
class SnapshotRow:
    """One kept state, as the snapshots list shows it."""

    name: str
    step: int
    lr_exponent: float
    dev_loss: float | None


@dataclass(frozen=True)
class TrainingStatus:
    """Where training stands: the status panel, the progress bar and the charts draw from this."""

    facts: Facts
    step: int
    lr_exponent: float
    last_loss: float | None  # latest minibatch loss
    last_eval: EvalPoint | None
    history: HistoryView  # every step's LR and minibatch loss so far, never changed afterwards
    evals: tuple[EvalPoint, ...]
    taken: int  # the number of the latest command the worker has taken up (TrainerWorker.send)
    job: str | None = None  # the action running now, e.g. "run 10000"
    last_job: tuple[str, int, int] | None = None  # (action, steps done, of total) of the latest job that ended
    done: int = 0
    total: int = 0
    rate: float = 0.0  # steps per second of the running job
    engine: str = "eager"  # what runs the training steps: "eager", "eager, compiling…" or "compiled"
    can_undo: bool = False  # a run has happened since the start, the last reset, load or undo
    embedding: torch.Tensor | None = None  # (V, 2): the characters' embeddings as drawn (core.model.embedding_2d)
    embedding_kind: str = ""  # how they were projected to 2-D
    snapshots: tuple[SnapshotRow, ...] = ()  # oldest first
    # each tensor's update-to-data ratio at the LR now, steadied over the last measurements (core.diagnostics)
    update_ratios: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class DiagnosticsReport:
    """What the diagnostics screen draws (core.diagnostics): the measurements the runs recorded, and
    the latest: at the current parameters and LR when no job runs, the latest recorded while one does."""

    history: DiagnosticsHistory  # never changed afterwards
    current: Diagnostics | None
    step: int
    every: int  # steps between the measurements a run records (0: none)
    job: str | None  # the action running now


# ---- messages: worker -> UI ----------------------------------------------------------------------
@dataclass
class TrainerReady(Message):
    facts: Facts


@dataclass
class TrainerFailed(Message):
    error: str


@dataclass
class StateChanged(Message):
    status: TrainingStatus

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StateChanged)  # only the newest state matters


@dataclass
class DiagnosticsUpdated(Message):
    report: DiagnosticsReport

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, DiagnosticsUpdated)  # a newer report holds everything an older one did


@dataclass
class Logged(Message):
    text: str
    error: bool = False


@dataclass
class SweepFinished(Message):
    result: SweepResult


@dataclass
class GridFinished(Message):
    result: GridResult


@dataclass
class Sampled(Message):
    """Names drawn from the model at `step`: the status panel lists the latest where it has room."""

    names: tuple[str, ...]
    step: int


@dataclass
class RunsListed(Message):
    """The store's runs (oldest first) and the open one's name; `line`: what the command that asked
    did, or why it was refused (`error`); `opened`: the run a successful OpenRun opened."""

    runs: tuple[RunRow, ...]
    open_run: str | None
    line: str = ""
    error: bool = False
    opened: str | None = None


@dataclass
class CurvesShown(Message):
    curves: tuple[tuple[str, tuple[EvalPoint, ...]], ...]  # (run name, its evaluations)


@dataclass
class SearchUpdated(Message):
    """A running search (`tune`) as it stands: its trials so far (core.search_view, immutable). At most a
    few a second (tui.tune_commands); a newer one holds everything an older one did."""

    view: SearchView

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SearchUpdated)


@dataclass
class SearchEnded(Message):
    """The search is over: its last view (None if it failed before its first trial) and its summary,
    or the line saying why it failed (`error`)."""

    view: SearchView | None
    line: str
    error: bool = False
