"""The app's keys that open a screen and turn its answer into a command: help, save, export,
load, the snapshots list, the new-run dialog, the runs screen (with the run store's answers
it forwards to that screen) and the diagnostics screen (with the worker's reports). tui.app's CharMLPApp derives from DialogActions, which leaves it the
worker, the status and `send`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import App

from core.actions import Action
from core.files import resolved
from tui.charts import TrainingChart, run_lines
from tui.diagnostics_screen import DiagnosticsScreen
from tui.messages import (Command, CurvesShown, DiagnosticsReport, DiagnosticsUpdated, Export, RunsListed, Save,
                          ShowCurves, TrainingStatus, WatchDiagnostics)
from tui.new_run import NewRunScreen
from tui.panels import StatusPanel
from tui.runs_screen import RunsScreen
from tui.screens import HelpScreen, PathScreen, SnapshotsScreen, ask_where

if TYPE_CHECKING:
    from tui.worker import TrainerWorker


class DialogActions(App[int]):
    status: TrainingStatus | None  # the latest the worker posted (None while loading)
    last_path: str  # the checkpoint path last saved or loaded: the next prompt's default
    written_paths: set[Path]  # files this app wrote: no question to overwrite them
    worker: TrainerWorker  # the app's: `stop` ends the running job at a chunk boundary
    diagnostics: DiagnosticsReport | None = None  # the latest report, while the diagnostics screen is open

    def send(self, command: Command) -> None:
        raise NotImplementedError  # the app's: to the worker

    @property
    def busy(self) -> bool:
        raise NotImplementedError

    @property
    def closing(self) -> bool:
        raise NotImplementedError

    def draw_charts(self) -> None:
        raise NotImplementedError  # the app's: the main screen's charts, as the latest status says

    @property
    def diagnostics_open(self) -> bool:
        return any(isinstance(screen, DiagnosticsScreen) for screen in self.screen_stack)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_save(self) -> None:
        def save(path: Path, force: bool) -> None:
            self.last_path = str(path)
            self.written_paths.add(resolved(path))
            self.send(Save(path, force))

        ask_where(self, "Save checkpoint to:", self.last_path, self.written_paths, save)

    def action_export(self) -> None:
        def export(path: Path, force: bool) -> None:
            self.written_paths.add(resolved(path))
            self.send(Export(path, force))

        ask_where(self, "Export the session as a script to:", "charmlp-session.txt", self.written_paths, export)

    def action_load(self) -> None:
        def chosen(path: Path | None) -> None:
            if path is not None:
                self.last_path = str(path)
                self.send(Action("load", (str(path),)))

        self.push_screen(PathScreen("Load checkpoint from:", self.last_path), chosen)

    def action_snapshots(self) -> None:
        def chosen(name: str | None) -> None:
            if name is not None:
                self.send(Action("restore", (name,)))

        self.push_screen(SnapshotsScreen(self.status.snapshots if self.status else ()), chosen)

    def action_new_run(self) -> None:
        def chosen(action: Action | None) -> None:
            if action is not None:
                self.send(action)

        if self.status is not None:
            self.push_screen(NewRunScreen(self.status.facts), chosen)

    def action_runs(self) -> None:
        """The runs screen; when it closes, the runs it had selected are overlaid on the training chart."""
        chart = self.query_one(TrainingChart)

        def closed(selected: tuple[str, ...] | None) -> None:
            if selected:
                self.send(ShowCurves(selected))  # answered with CurvesShown
            else:
                chart.set_overlay([])

        self.push_screen(RunsScreen(self.send, lambda: self.busy, self.written_paths, tuple(chart.overlay_labels)),
                         closed)

    def action_diagnostics(self) -> None:
        """The diagnostics screen; while it is open the worker posts its reports (and only then)."""
        if self.diagnostics_open:
            return

        def closed(_: None) -> None:
            self.send(WatchDiagnostics(False))
            self.diagnostics = None
            self.draw_charts()  # not drawn while the screen covered them

        self.push_screen(DiagnosticsScreen(self.diagnostics, self.worker.stop,
                                           lambda: self.status is not None and self.status.job is not None), closed)
        self.send(WatchDiagnostics(True))

    def on_diagnostics_updated(self, message: DiagnosticsUpdated) -> None:
        screens = [] if self.closing else [s for s in self.screen_stack if isinstance(s, DiagnosticsScreen)]
        for screen in screens:  # none: posted before the screen closed
            self.diagnostics = message.report
            screen.show(message.report)

    def on_runs_listed(self, message: RunsListed) -> None:
        if not message.error and not self.closing:  # the status panel's recent runs, where it is tall
            self.query_one(StatusPanel).show_runs(message.runs, message.open_run)
        for screen in self.screen_stack:  # beneath a rename or delete question too
            if isinstance(screen, RunsScreen):
                screen.show(message)

    def on_curves_shown(self, message: CurvesShown) -> None:
        if not self.closing:
            self.query_one(TrainingChart).set_overlay(run_lines(message.curves))
