"""The learning-rate charts (plotext, tui.plot): the ramp sweep, with earlier sweeps overlaid on
request, and the LR grid, each on the y range its own numbers need.

The grid has a chart of its own: after a sweep from the fresh init (losses 2 to 20) a grid from a
trained model (2.2 to 2.6) would sit on one row of a shared axis. Overlaid sweeps from different
steps are drawn as each one's loss above its own minimum, in percent, so that where each one's
basin lies and where it rises can be compared though their losses differ tenfold.
"""

from __future__ import annotations

import math
import statistics
from typing import TYPE_CHECKING, Any

from rich.text import Text

from tui.keys import OVERLAID_SWEEPS, SWEEP_REPEATS_KEY
from tui.plot import MIN_HEIGHT, MIN_WIDTH, Chart, axis, fitted, line, marks, new_figure, padded, rendered
from tui.ticks import value_ticks

if TYPE_CHECKING:
    from core.grid import GridResult
    from core.sweep import SweepResult

RAW, SUGGESTED, RISE = 8, "red", "magenta"  # ANSI colours: Textual maps them to its theme
RAW_MARKUP = "bright_black"  # ANSI 8, as markup for the legend
EARLIER_COLORS = ("blue", "green", "yellow")[:OVERLAID_SWEEPS]  # one per earlier sweep overlaid
GRID, BEST, ABOVE = "green", "cyan", "▲"
RELATIVE_TOP = 50.0  # overlaid sweeps: the y axis runs from each one's minimum to 50% above it
# the grid's y axis stops at 3x the median's distance above the best, within 1.05x to 1.5x the best loss: the rates
# near the best are what to compare; a model above the top is a ▲ on the top edge
GRID_TOP_SPREAD, GRID_TOP_RANGE = 3.0, (1.05, 1.5)


def _percent_ticks(low: float, high: float, most: int) -> tuple[list[float], list[str]]:
    positions, labels = value_ticks(low, high, most)
    return positions, [f"{text}%" for text in labels]


def _grid_top(best: float, losses: list[float]) -> float:
    low, high = GRID_TOP_RANGE
    median = statistics.median(losses) if losses else best
    return min(max(best + GRID_TOP_SPREAD * (median - best), low * best), high * best)


def _vertical(figure: Any, x: float, low: float, high: float, color: str) -> None:
    line(figure, [x, x], [low, high], color)


class SweepChart(Chart):
    """Loss against LR exponent: the latest ramp sweep (raw, or for repeated sweeps the band of one
    standard deviation; smoothed; the suggestion marked, or where a flat sweep's loss rises), and
    the earlier sweeps on request (o)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.result: SweepResult | None = None
        self.earlier: list[SweepResult] = []  # the sweeps before it, overlaid when `overlay` is on
        self.overlay = False
        self.border_title = "LR sweep: loss vs log10 lr"

    def show_result(self, result: SweepResult, earlier: list[SweepResult]) -> None:
        self.result, self.earlier = result, earlier[-len(EARLIER_COLORS):]
        self.redraw()  # its title too

    def toggle_overlay(self) -> None:
        self.overlay = not self.overlay
        self.redraw()

    @property
    def relative(self) -> bool:
        """Earlier sweeps are overlaid: each drawn as its loss above its own minimum."""
        return self.overlay and any(len(e.smoothed) > 1 for e in self.earlier)

    def _title(self, width: int) -> str:
        """The sweep's finding, and the axes' units where they fit the border."""
        r = self.result
        if r is None:
            return "LR sweep: loss vs log10 lr"
        suggestion, spread, rise = r.suggested_exponent, r.suggestion_spread, r.rise_exponent
        if suggestion is not None:
            found, medium, brief = f"suggested {suggestion:g}", f"suggested {suggestion:g}", f"{suggestion:g}"
        elif r.flat_from_start and rise is not None:
            found = f"flat, rises beyond {rise:g}; the grid (G) compares rates over many steps"
            medium, brief = f"flat, rises beyond {rise:g}; try G", f"rises >{rise:g}, try G"
        elif r.flat_from_start:
            found, medium, brief = "flat from the start: try G", "flat from the start: try G", "flat"
        else:
            found, medium, brief = "no suggestion", "no suggestion", "none"
        if r.repeats > 1:
            found += f" (mean of {r.repeats}" + (f"; each {spread[0]:g} to {spread[1]:g})" if spread else ")")
            brief += f" ({spread[0]:g}…{spread[1]:g})" if spread else ""
            medium = f"{medium} (mean of {r.repeats})"
        axes = "loss above each one's minimum, % vs log10 lr" if self.relative else "loss vs log10 lr"
        full = f"LR sweep at step {r.at_step:,}: {found}"
        return fitted(f"{full} · {axes}", full, f"LR sweep at step {r.at_step:,}: {medium}",
                      f"LR sweep @{r.at_step:,}: {brief}", width=width)

    def _legend(self) -> str:
        r = self.result
        if r is None:
            return ""
        first = "smoothed mean · [{0}]± 1 std[/]" if r.repeats > 1 else "[{0}]raw[/] · smoothed"
        legend = [first.format(RAW_MARKUP)]
        if self.relative:
            legend = [f"step {r.at_step:,}"] + [f"[{c}]step {e.at_step:,}[/]" for e, c in zip(self.earlier, EARLIER_COLORS)]
        if r.suggested_exponent is not None:
            legend.append(f"[{SUGGESTED}]│ suggested[/]")
        elif r.rise_exponent is not None and r.flat_from_start:
            legend.append(f"[{RISE}]│ rises[/]")
        return " · ".join(legend)

    def _draw(self) -> Text:
        w, h = self.content_size.width, self.content_size.height
        r = self.result
        if r is None:
            return Text(f"No sweep yet: press s (S: {SWEEP_REPEATS_KEY} sweeps and their mean).", style="dim")
        self.border_title, self.border_subtitle = self._title(self.size.width), self._legend()
        if w < MIN_WIDTH or h < MIN_HEIGHT:
            return Text("(too small)")
        if len(r.losses) < 2:
            return Text("The sweep stopped before its second step.", style="dim")
        figure = new_figure(w, h)
        if self.relative:
            low, high = self._draw_relative(figure, r)
        else:
            low, high = self._draw_alone(figure, r)
        if r.suggested_exponent is not None:
            _vertical(figure, r.suggested_exponent, low, high, SUGGESTED)
        elif r.flat_from_start and r.rise_exponent is not None:
            _vertical(figure, r.rise_exponent, low, high, RISE)
        axis(figure, "y", low, high, h, _percent_ticks if self.relative else value_ticks)
        axis(figure, "x", r.exponents[0], r.exponents[-1], w, value_ticks)
        return rendered(figure)

    def _draw_alone(self, figure: Any, r: SweepResult) -> tuple[float, float]:
        if r.band:
            upper = [m + b for m, b in zip(r.smoothed, r.band)]
            lower = [m - b for m, b in zip(r.smoothed, r.band)]
            line(figure, r.exponents, upper, RAW)
            line(figure, r.exponents, lower, RAW)
            low, high = min(lower), max(upper)
        else:
            line(figure, r.exponents, r.losses, RAW)
            low, high = min(r.losses), max(r.losses)
        line(figure, r.exponents, r.smoothed)
        return padded(low, high, 0.02)

    def _draw_relative(self, figure: Any, r: SweepResult) -> tuple[float, float]:
        """Each sweep's smoothed loss as % above its own minimum, cut at RELATIVE_TOP."""
        def above(s: SweepResult) -> list[float]:
            best = min(s.smoothed)
            return [min(RELATIVE_TOP, 100 * (v / best - 1)) for v in s.smoothed]

        for earlier, color in zip(self.earlier, EARLIER_COLORS):
            if len(earlier.smoothed) > 1:
                line(figure, earlier.exponents[: len(earlier.smoothed)], above(earlier), color)
        line(figure, r.exponents, above(r))
        return -1.0, RELATIVE_TOP + 1


class GridChart(Chart):
    """The latest LR grid: each model's loss over its last 20% of steps against its exponent, on
    the y range of the grid's own losses, the best marked."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.grid: GridResult | None = None
        self.border_title = "LR grid: loss vs log10 lr"

    def show_grid(self, grid: GridResult) -> None:
        self.grid = grid
        self.redraw()  # its title too

    def _title(self, width: int) -> str:
        g = self.grid
        assert g is not None
        best = g.best_exponent
        if best is None:
            return fitted(f"LR grid at step {g.at_step:,}: every model blew up", f"LR grid @{g.at_step:,}: none",
                          width=width)
        loss = min(v for v in g.losses if math.isfinite(v))
        full = f"LR grid at step {g.at_step:,}: best {best:g}, loss {loss:.3f}"
        return fitted(f"{full} · loss vs log10 lr", full, f"LR grid @{g.at_step:,}: best {best:g} ({loss:.3f})",
                      f"grid @{g.at_step:,}: {best:g}", width=width)

    def _legend(self) -> str:
        g = self.grid
        assert g is not None
        return (f"[{GRID}]● loss, last 20% of {g.steps:,} steps[/] · [{BEST}]│ best[/] · "
                f"[red]{ABOVE}[/] above / blew up")

    def _draw(self) -> Text:
        w, h = self.content_size.width, self.content_size.height
        g = self.grid
        if g is None:
            return Text("No grid yet: press G (copies of the model trained side by side, one rate each).",
                        style="dim")
        self.border_title, self.border_subtitle = self._title(self.size.width), self._legend()
        if w < MIN_WIDTH or h < MIN_HEIGHT:
            return Text("(too small)")
        figure = new_figure(w, h)
        finite = [(e, v) for e, v in zip(g.exponents, g.losses) if math.isfinite(v)]
        best = min(v for _, v in finite) if finite else 1.0
        top = min(max((v for _, v in finite), default=best), _grid_top(best, [v for _, v in finite]))
        low, high = padded(best, top)
        inside = [(e, v) for e, v in finite if v <= top]
        line(figure, [e for e, _ in inside], [v for _, v in inside], RAW)
        marks(figure, [e for e, _ in inside], [v for _, v in inside], "●", GRID)
        outside = [e for e, v in zip(g.exponents, g.losses) if not v <= top]
        marks(figure, outside, [high] * len(outside), ABOVE, "red")
        if g.best_exponent is not None:
            _vertical(figure, g.best_exponent, low, high, BEST)
        axis(figure, "y", low, high, h, value_ticks)
        axis(figure, "x", *padded(min(g.exponents), max(g.exponents), 0.02), w, value_ticks)
        return rendered(figure)
