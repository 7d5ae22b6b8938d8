"""Charts drawn with plotext 6 into Textual widgets: the base widget and the figure helpers that
every chart (tui.charts, tui.lr_charts, tui.tune_chart) draws with.

plotext 6's public figure API builds a character matrix we turn into rich Text; no private
plotext module is touched (the reason we do not use textual-plotext, see README). Every axis
gets round ticks (tui.ticks) set explicitly: plotext's own fall on whatever the data's ends are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import plotext
from rich.text import Text
from textual.widgets import Static

from tui.ticks import ticks_across

MIN_WIDTH, MIN_HEIGHT = 20, 5  # below this a chart says so instead of drawing garbage
X_LABEL_EVERY, Y_LABEL_EVERY = 10, 2  # columns, rows: at most one tick label that often
Color = str | int | tuple[Any, ...] | None  # a plotext pixel: an ANSI colour name or number, with styles

plotext.terminal.limit(False, False)  # the widget decides the size, not the terminal plotext finds (80x24 in tests)

Ticks = Callable[[float, float, int], tuple[list[float], list[str]]]  # (low, high, most) -> positions, labels


def new_figure(width: int, height: int) -> Any:
    """The shared plotext figure, cleared and sized. Only the UI thread draws, one chart at a time."""
    figure = plotext.figure
    figure.clear()
    figure.theme("simple")  # no colours on the frame: the widget's theme shows through
    figure.plot_size(width, height)
    return figure


def line(figure: Any, xs: Sequence[float], ys: Sequence[float], color: Color = None, fine: bool = False) -> None:
    """A line through the points: in half blocks, or `fine` in braille dots (fainter, for what sits behind)."""
    marker = plotext.marker("braille" if fine else "hd", pixel=color) if color is not None or fine else None
    signal = figure.signal(list(xs), list(ys), marker=marker)
    signal.lines()
    figure.draw(signal)


def marks(figure: Any, xs: Sequence[float], ys: Sequence[float], symbol: str, color: Color) -> None:
    """One `symbol` at each point."""
    if xs:
        figure.draw(figure.signal(list(xs), list(ys), marker=plotext.marker(symbol, pixel=color)))


def axis(figure: Any, which: str, low: float, high: float, length: int, ticks: Ticks) -> None:
    """An axis from `low` to `high` with round ticks, as many as `length` cells hold labels apart."""
    if high <= low:  # one value: a range around it, so it sits inside the frame
        low, high = low - 0.5 * (abs(low) or 1), high + 0.5 * (abs(high) or 1)
    ruler = figure.ruler(which)
    ruler.lim(low, high)
    every = X_LABEL_EVERY if which == "x" else Y_LABEL_EVERY
    positions, labels = ticks(low, high, ticks_across(length - 3, every))  # the frame and the labels' row take 3
    if positions:
        ruler.ticks(positions, labels)


def padded(low: float, high: float, fraction: float = 0.05) -> tuple[float, float]:
    """The range widened by `fraction` either side, so that no point sits on the frame."""
    pad = fraction * (high - low or abs(high) or 1)
    return low - pad, high + pad


def rendered(figure: Any) -> Text:
    return Text.from_ansi(figure.build().string())


def fitted(title: str | None, *shorter: str | None, width: int) -> str:
    """The first of the titles, longest first, that fits a border `width` cells wide."""
    choices = [t for t in (title, *shorter) if t]
    return next((t for t in choices if len(t) + 6 <= width), choices[-1] if choices else "")


class Chart(Static):
    """A plotext drawing that fills the widget: redrawn on demand and whenever the widget resizes."""

    DEFAULT_CLASSES = "chart"

    def redraw(self) -> None:
        """Draw now, if in sight (tui.charts_panel redraws a chart when it comes into sight)."""
        if self.display:
            self.update(self._draw(), layout=False)  # sized by app.tcss, not by what it draws

    def on_resize(self) -> None:  # after layout: content_size is the new one
        self.redraw()

    def _draw(self) -> Text:
        raise NotImplementedError
