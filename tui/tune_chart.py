"""The trials screen's chart: each trial's exact dev loss against its number (plotext, tui.plot).

A complete trial is a point at its final dev loss; a pruned (or failed, or running) one at the last
value it reported, marked otherwise: it stopped at an earlier rung, so it is not the same measure.
The y axis is fitted to the complete trials, where the comparison is; a trial far above them sits on
the top edge as ▲. A line marks the best so far.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text

from tui.plot import MIN_HEIGHT, MIN_WIDTH, Chart, axis, line, marks, new_figure, rendered
from tui.ticks import step_ticks, value_ticks

if TYPE_CHECKING:
    from core.search_view import SearchView

COMPLETE, PRUNED, RUNNING, BEST = "green", "bright_black", "yellow", "cyan"
MARKS = {"complete": ("●", COMPLETE), "pruned": ("×", PRUNED), "failed": ("×", "red"), "running": ("◆", RUNNING)}
ABOVE = "▲"  # a last value above the chart's top


def _limits(points: list[tuple[int, float, str]]) -> tuple[float, float]:
    """The y range: the complete trials' with a margin as wide again, at least 3% of their worst (all of them
    while none is complete): close complete trials stay apart, the pruned ones mostly sit on the top edge."""
    done = [v for _, v, state in points if state == "complete"] or [v for _, v, _ in points]
    low, high = min(v for _, v, _ in points), max(done)
    span = max(high - min(done), 0.03 * high)
    return low - 0.05 * span, high + span


class TrialsChart(Chart):
    LEGEND = (f"[{COMPLETE}]● complete[/] · [{PRUNED}]× pruned[/] · [{RUNNING}]◆ running[/] · "
              f"{ABOVE} above · [{BEST}]─ best[/]")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.view: SearchView | None = None
        self.border_title = "dev loss by trial"
        self.border_subtitle = self.LEGEND

    def show(self, view: SearchView) -> None:
        self.view = view
        self.redraw()

    def _draw(self) -> Text:
        w, h = self.content_size.width, self.content_size.height
        view = self.view
        points = [(t.number, v, t.state) for t in (view.trials if view else ()) if (v := t.last_dev) is not None]
        if not points:
            return Text("No dev loss yet: the first comes at a trial's first rung.", style="dim")
        if w < MIN_WIDTH or h < MIN_HEIGHT:
            return Text("(too small)")
        figure = new_figure(w, h)
        low, high = _limits(points)
        first, last = points[0][0], points[-1][0]
        axis(figure, "y", low, high, h, value_ticks)
        axis(figure, "x", first - 0.5, last + 0.5, w, step_ticks)
        best = view.best if view else None
        if best is not None and best.value is not None and last > first:
            line(figure, [first - 0.5, last + 0.5], [best.value] * 2, BEST)
        for state, (symbol, color) in MARKS.items():
            inside = [(n, v) for n, v, s in points if s == state and v <= high]
            above = [(n, high) for n, v, s in points if s == state and v > high]
            for marked, mark in ((inside, symbol), (above, ABOVE)):
                marks(figure, [p[0] for p in marked], [p[1] for p in marked], mark, color)
        return rendered(figure)
