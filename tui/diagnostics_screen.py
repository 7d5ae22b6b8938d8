"""The diagnostics screen (D): is the step size right, while training? makemore part 3's answer, drawn
from what the worker posts (tui.messages.DiagnosticsReport, core.diagnostics' immutable history).

On top, the update-to-data ratio of each tensor against step, log10, with the rule of thumb's guide at
10^-3, and the reading in words; below, the tanh layer's saturation against step and the histogram of
its activations now. The main screen's keys work here too (space runs, d decays, ↑ ↓ move the LR), so
the ratios can be read while they change. The screen holds no trainer: the app forwards the reports.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Label, Static

from core.diagnostics import GUIDE, reading
from tui.diagnostics_chart import TENSOR_COLORS, ActivationHistogram, RatioChart, SaturationChart
from tui.keys import DIAGNOSTICS_KEYS, bindings
from tui.messages import DiagnosticsReport


def title(report: DiagnosticsReport | None) -> str:
    if report is None:
        return "Is the step size right? (measuring…)"
    current = report.current
    lr = f" · lr 10^{current.lr_exponent:.2f}" if current is not None else ""
    every = f"a run measures one minibatch every {report.every:,} steps" if report.every else "runs measure nothing"
    where = f"running {report.job}" if report.job else f"step {report.step:,}"
    return f"Is the step size right? {where}{lr} · {every}"


def now_line(report: DiagnosticsReport | None) -> Content:
    """The latest measurement's figures: each tensor's ratio in its chart colour, then the tanh layer's."""
    current = report.current if report is not None else None
    if current is None:
        return Content("")
    parts: list[str | tuple[str, str]] = ["log10 update/data "]
    for (name, value), color in zip(current.update_ratio_log10.items(), TENSOR_COLORS):
        parts += [(f"{name} {value:.2f}" if math.isfinite(value) else f"{name} n/a", color), "  "]
    parts.append(f"· tanh {current.saturation:.1%} saturated, {current.dead_units}/{current.hidden} dead, "
                 f"pre-activation std {current.preact_std:.3g} · max prob {current.max_prob:.2f}")
    return Content.assemble(*parts)


class DiagnosticsScreen(Screen[None]):
    DEFAULT_CSS = """
    DiagnosticsScreen #diag-title {
        text-style: bold;
        padding: 0 1;
        width: 1fr;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    DiagnosticsScreen #diag-reading {
        padding: 0 1;
        height: auto;
        max-height: 2;
        color: $text-accent;
    }
    DiagnosticsScreen #diag-ratios {
        height: 1fr;
        min-height: 7;
    }
    DiagnosticsScreen #diag-lower {
        height: 1fr;
        min-height: 7;
    }
    DiagnosticsScreen #diag-lower .chart {
        width: 1fr;
    }
    DiagnosticsScreen #diag-now {
        padding: 0 1;
        height: auto;
        max-height: 2;
        color: $text-muted;
    }
    """

    BINDINGS = bindings(DIAGNOSTICS_KEYS)

    def __init__(self, report: DiagnosticsReport | None, stop: Callable[[], None], running: Callable[[], bool]) -> None:
        super().__init__()
        self.report = report
        self.stop, self.running = stop, running

    def compose(self) -> ComposeResult:
        yield Label(title(self.report), id="diag-title")
        yield Static("", id="diag-reading")
        yield RatioChart(id="diag-ratios")
        with Horizontal(id="diag-lower"):
            yield SaturationChart(id="diag-saturation")
            yield ActivationHistogram(id="diag-histogram")
        yield Static("", id="diag-now")
        yield Footer()

    def on_mount(self) -> None:
        if self.report is not None:
            self.show(self.report)

    def show(self, report: DiagnosticsReport) -> None:
        self.report = report
        self.query_one("#diag-title", Label).update(title(report), layout=False)  # one line, cut to fit
        current = report.current
        if current is None:
            said = f"no measurement yet: a run records one every {report.every:,} steps (guide: 10^{GUIDE:g})"
        else:  # steadied over the last measurements, as the status panel's row; the one just made if none
            said = reading(report.history.recent_ratios(current.lr_exponent) or current.update_ratio_log10)
        self.query_one("#diag-reading", Static).update(Content(said))
        for chart in (self.query_one(RatioChart), self.query_one(SaturationChart), self.query_one(ActivationHistogram)):
            chart.show(report.history, current)
        self.query_one("#diag-now", Static).update(now_line(report))

    def action_close(self) -> None:
        if self.is_active:  # a second key before the pop is done must not pop the screen beneath
            self.dismiss(None)

    def action_stop_or_close(self) -> None:
        if self.running():
            self.stop()
        else:
            self.action_close()
