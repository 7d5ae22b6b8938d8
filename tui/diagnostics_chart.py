"""The diagnostics screen's charts (plotext, as tui.charts): each tensor's log10 update-to-data ratio
against step with the rule of thumb's guide at -3, the tanh layer's saturation against step, and the
histogram of its activations now. They draw what a tui.messages.DiagnosticsReport holds."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import plotext
from rich.text import Text

from core.diagnostics import DEAD, EVERY_STEPS, GUIDE, HISTOGRAM_BINS, SATURATED
from tui.plot import MIN_HEIGHT, MIN_WIDTH, Chart, axis, line, new_figure, padded, rendered
from tui.ticks import step_ticks, value_ticks

if TYPE_CHECKING:
    from core.diagnostics import Diagnostics, DiagnosticsHistory

TENSOR_COLORS = ("magenta", "cyan", "blue", "yellow", "green")  # C, W1, b1, W2, b2: the tensors in order
GUIDE_COLOR, SATURATION_COLOR, DEAD_COLOR, HISTOGRAM_COLOR = "red", "cyan", "red", "cyan"
MAX_POINTS = 400  # per line: a long run's thousands of measurements, thinned evenly


def _thinned(steps: list[int], values: list[float]) -> tuple[list[int], list[float]]:
    """At most MAX_POINTS of them, evenly spaced, the finite ones only (a tensor with no spread yet has none)."""
    stride = max(1, -(-len(steps) // MAX_POINTS))
    kept = [(s, v) for s, v in zip(steps[::stride], values[::stride]) if math.isfinite(v)]
    return [s for s, _ in kept], [v for _, v in kept]


class _DiagnosticsChart(Chart):
    EMPTY = ""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.history: DiagnosticsHistory | None = None
        self.current: Diagnostics | None = None

    def show(self, history: DiagnosticsHistory, current: Diagnostics | None) -> None:
        self.history, self.current = history, current
        self.redraw()

    def _drawable_size(self) -> tuple[int, int] | Text:
        w, h = self.content_size.width, self.content_size.height
        return Text("(too small)") if w < MIN_WIDTH or h < MIN_HEIGHT else (w, h)


class RatioChart(_DiagnosticsChart):
    """log10 std(lr·grad) / std(param) of each tensor against step, and the guide at -3."""

    EMPTY = f"No measurement recorded yet: a run records one every {EVERY_STEPS:,} steps."

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.border_title = "update / data: log10 std(lr·grad) / std(param)"

    def _legend(self, tensors: tuple[str, ...]) -> str:
        return " ".join(f"[{c}]─ {n}[/]" for n, c in zip(tensors, TENSOR_COLORS)) + f" · [{GUIDE_COLOR}]─ {GUIDE:g} guide[/]"

    def _draw(self) -> Text:
        history = self.history
        if history is None or not len(history):
            return Text(self.EMPTY, style="dim")
        size = self._drawable_size()
        if isinstance(size, Text):
            return size
        self.border_subtitle = self._legend(history.tensors)
        figure = new_figure(*size)
        steps, lines = history.steps, {name: _thinned(history.steps, history.ratios(name)) for name in history.tensors}
        values = [v for _, ys in lines.values() for v in ys] + [GUIDE]
        low, high = min(values), max(values)
        axis(figure, "y", *padded(low, high), size[1], value_ticks)
        first, last = steps[0], steps[-1]
        axis(figure, "x", first, last, size[0], step_ticks)
        line(figure, [first, last] if last > first else [first - 1, first + 1], [GUIDE, GUIDE], GUIDE_COLOR)
        for (xs, ys), color in zip(lines.values(), TENSOR_COLORS):
            if xs:
                line(figure, xs, ys, color)
        return rendered(figure)


class SaturationChart(_DiagnosticsChart):
    """The tanh outputs past SATURATED, in % of all, against step; the dead units' share beside."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.border_title = f"tanh saturated: % of |h| > {SATURATED:g}"
        self.border_subtitle = f"[{SATURATION_COLOR}]─ saturated[/] · [{DEAD_COLOR}]─ dead units[/]"

    def _draw(self) -> Text:
        history, current = self.history, self.current
        if history is None or not len(history):
            now = f"now {current.saturation:.1%}; " if current is not None else ""
            return Text(f"{now}dead: |h| > {DEAD:g} for every example of the minibatch", style="dim")
        size = self._drawable_size()
        if isinstance(size, Text):
            return size
        figure = new_figure(*size)
        hidden = self.current.hidden if self.current is not None else None
        steps = history.steps
        axis(figure, "y", 0, 100, size[1], value_ticks)
        axis(figure, "x", steps[0], steps[-1], size[0], step_ticks)
        xs, saturated = _thinned(steps, [100 * v for v in history.column("saturation")])
        if len(xs) == 1:  # one measurement: a short flat line, visible
            xs, saturated = [xs[0] - 1, xs[0] + 1], saturated * 2
        line(figure, xs, saturated, SATURATION_COLOR)
        if hidden:
            dx, dead = _thinned(steps, [100 * v / hidden for v in history.column("dead_units")])
            if len(dx) == 1:
                dx, dead = [dx[0] - 1, dx[0] + 1], dead * 2
            line(figure, dx, dead, DEAD_COLOR)
        return rendered(figure)


class ActivationHistogram(_DiagnosticsChart):
    """How the tanh outputs of one minibatch spread over [-1, 1] now: piled at ±1 is saturated."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.border_title = "h now: % of values per bin of [-1, 1]"

    def _draw(self) -> Text:
        d = self.current
        if d is None or not d.histogram:
            return Text("")
        size = self._drawable_size()
        if isinstance(size, Text):
            return size
        self.border_title = f"h at step {d.step:,}: % of values per bin of [-1, 1]"
        figure = new_figure(*size)
        width, total = 2 / HISTOGRAM_BINS, sum(d.histogram) or 1
        centres = [-1 + width * (i + 0.5) for i in range(HISTOGRAM_BINS)]
        shares = [100 * count / total for count in d.histogram]
        bars = figure.bar(centres, shares, width=0.8, marker=plotext.marker("full", pixel=HISTOGRAM_COLOR))
        figure.draw(bars)
        axis(figure, "x", -1, 1, size[0], value_ticks)
        axis(figure, "y", 0, max(shares) * 1.05 or 1, size[1], value_ticks)
        return rendered(figure)
