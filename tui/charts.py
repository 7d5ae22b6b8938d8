"""Charts drawn with plotext 6 into Textual widgets, sized to the widget, redrawn on demand.

plotext 6's public figure API builds a character matrix we turn into rich Text; no private
plotext module is touched (the reason we do not use textual-plotext, see README).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import plotext
from rich.text import Text
from textual.content import Content
from textual.widgets import Static

from core.reading import printable
from tui.keys import OVERLAID_SWEEPS, SWEEP_REPEATS_KEY

if TYPE_CHECKING:
    import torch

    from core.grid import GridResult
    from core.history import EvalPoint, HistoryView
    from core.sweep import SweepResult

MIN_WIDTH, MIN_HEIGHT = 20, 5  # below this a chart says so instead of drawing garbage
RAW, TRAIN, DEV, SUGGESTED = 8, "cyan", "yellow", "red"  # ANSI colours: Textual maps them to its theme
RAW_MARKUP = "bright_black"  # ANSI 8, as markup for the legend
EARLIER_COLORS = ("blue", "magenta", "yellow")[:OVERLAID_SWEEPS]  # one per earlier sweep overlaid
GRID = "green"  # the LR grid's points
OVERLAY_COLORS = ("magenta", "green", "blue", "red", "bright_white")  # one per run overlaid on the training chart
OVERLAY_LABEL = 10  # characters of a run's name in the legend

plotext.terminal.limit(False, False)  # the widget decides the size, not the terminal plotext finds (80x24 in tests)


def _new_figure(width: int, height: int):
    """The shared plotext figure, cleared and sized. Only the UI thread draws, one chart at a time."""
    figure = plotext.figure
    figure.clear()
    figure.theme("simple")  # no colours on the frame: the widget's theme shows through
    figure.plot_size(width, height)
    return figure


def _line(figure, xs: Sequence[float], ys: Sequence[float], color: str | int | None = None):
    signal = figure.signal(xs, ys, marker=plotext.marker("hd", pixel=color) if color is not None else None)
    signal.lines()
    figure.draw(signal)
    return signal


class Chart(Static):
    """A plotext drawing that fills the widget: redrawn on demand and whenever the widget resizes."""

    DEFAULT_CLASSES = "chart"

    def redraw(self) -> None:
        self.update(self._draw(), layout=False)  # sized by app.tcss, not by what it draws

    def on_resize(self) -> None:  # after layout: content_size is the new one
        self.redraw()

    def _draw(self) -> Text:
        raise NotImplementedError


@dataclass(frozen=True)
class OverlayLine:
    """A line drawn over the training chart: another run's losses against step, in log10 as the rest."""

    label: str  # the legend's name for it: lines with one label share a colour (a run's dev and train)
    steps: tuple[int, ...]
    losses: tuple[float, ...]
    dotted: bool = False  # drawn fainter, in fine dots: a run's train curve beside its dev line


def run_lines(curves: Sequence[tuple[str, Sequence[EvalPoint]]]) -> list[OverlayLine]:
    """Each run's dev losses as a line and its train losses dotted, labelled by the run's name."""
    lines = []
    for name, evals in curves[: len(OVERLAY_COLORS)]:
        for attribute, dotted in (("train", True), ("dev", False)):  # the dev line drawn over the train dots
            points = [(e.step, v) for e in evals if (v := getattr(e, attribute)) is not None and math.isfinite(v)]
            lines.append(OverlayLine(name, tuple(p[0] for p in points), tuple(p[1] for p in points), dotted))
    return lines


def _log10(values: Sequence[float]) -> list[float]:
    return [math.log10(max(v, 1e-9)) for v in values]


class TrainingChart(Chart):
    """log10 minibatch loss against step, with the periodic full-split losses on top, and other runs'
    curves overlaid on request (the runs screen)."""

    LEGEND = f"minibatch · [{TRAIN}]● train[/] · [{DEV}]◆ dev[/]"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.history: HistoryView | None = None  # from the latest status (tui.messages)
        self.evals: tuple[EvalPoint, ...] = ()
        self.overlay: list[OverlayLine] = []
        self.border_title = "training: log10 loss vs step"
        self.border_subtitle = self.LEGEND

    def show(self, history: HistoryView, evals: tuple[EvalPoint, ...]) -> None:
        self.history, self.evals = history, evals
        self.redraw()

    def set_overlay(self, lines: Sequence[OverlayLine]) -> None:
        """Lines to draw over the chart from now on (none: the chart alone again)."""
        self.overlay = list(lines)
        self.border_subtitle = self._legend() if self.overlay else self.LEGEND
        self.redraw()

    @property
    def overlay_labels(self) -> list[str]:
        return list(dict.fromkeys(line.label for line in self.overlay))

    def _colors(self) -> dict[str, str]:
        return dict(zip(self.overlay_labels, OVERLAY_COLORS))

    def _legend(self) -> Content:
        """Short, for 80 columns: the runs' names in their colours (text, never markup), then what is what."""
        parts: list[str | tuple[str, str]] = []
        for label, color in self._colors().items():
            name = printable(label)
            parts += [(name if len(name) <= OVERLAY_LABEL else name[: OVERLAY_LABEL - 1] + "…", color), " "]
        return Content.assemble(*parts, ("(─ dev ⠒ train)", "dim"))

    def _draw(self) -> Text:
        w, h = self.content_size.width, self.content_size.height
        if self.history is None or w < MIN_WIDTH or h < MIN_HEIGHT:
            return Text("(too small)" if self.history is not None else "")
        steps, losses = self.history.downsampled(max(8, 2 * w))
        if not steps and not self.overlay:
            return Text("No steps yet: press space to run.", style="dim")
        figure = _new_figure(w, h)
        log_losses = _log10(losses)
        if steps:
            _line(figure, steps, log_losses)
        colors = self._colors()
        for line in self.overlay:
            if line.steps:
                pixel = (colors[line.label], None, "dim") if line.dotted else colors[line.label]
                marker = plotext.marker("braille" if line.dotted else "hd", pixel=pixel)
                signal = figure.signal(list(line.steps), _log10(line.losses), marker=marker)
                signal.lines()
                figure.draw(signal)
        # the first steps from init (loss ~20) would flatten the rest: the top is the highest after
        # the first 5% (of the points; of an overlaid run's steps: its evaluations are few)
        curves = [log_losses] + [_log10(line.losses) for line in self.overlay if line.losses]
        tails = [log_losses[len(log_losses) // 20 :]] if len(log_losses) > 20 else []
        for line in self.overlay:
            if line.steps:
                tails.append(_log10([v for s, v in zip(line.steps, line.losses) if s >= line.steps[-1] / 20]))
        if tails:
            low, high = min(min(c) for c in curves if c), max(max(t) for t in tails)
            figure.ruler("y").lim(low, high + 0.05 * (high - low or 1))
        evals = self.evals
        for attribute, symbol, color in (("train", "●", TRAIN), ("dev", "◆", DEV)):
            points = [(e.step, getattr(e, attribute)) for e in evals if getattr(e, attribute)]
            if points:
                marker = plotext.marker(symbol, pixel=color)
                figure.draw(figure.signal([p[0] for p in points], [math.log10(p[1]) for p in points], marker=marker))
        return Text.from_ansi(figure.build().string())


class SweepChart(Chart):
    """Loss against LR exponent: the latest ramp sweep (raw, or for repeated sweeps the band of one
    standard deviation; smoothed; the suggestion marked), earlier sweeps on request, and the latest
    LR grid's points (each model's loss after its steps)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.result: SweepResult | None = None
        self.earlier: list[SweepResult] = []  # the sweeps before it, overlaid when `overlay` is on
        self.grid: GridResult | None = None
        self.overlay = False
        self.border_title = "LR sweep: loss vs lr exponent"

    def show_result(self, result: SweepResult, earlier: list[SweepResult]) -> None:
        self.result, self.earlier = result, earlier[-len(EARLIER_COLORS):]
        self.redraw()  # its title too

    def show_grid(self, grid: GridResult) -> None:
        self.grid = grid
        self.redraw()  # its title too

    def toggle_overlay(self) -> None:
        self.overlay = not self.overlay
        self.redraw()

    def _title(self, width: int) -> str:
        """The sweep's and the grid's findings; shorter where the full words do not fit the border."""
        full, short = [], []
        if self.result is not None:
            r = self.result
            suggestion, spread = r.suggested_exponent, r.suggestion_spread
            found = (f"suggested {suggestion:g}" if suggestion is not None
                     else "flat from the start: try G" if r.flat_from_start else "no suggestion")
            part = f"sweep at step {r.at_step:,}: {found}"
            brief = f"sweep @{r.at_step:,}: " + (f"{suggestion:g}" if suggestion is not None
                                                  else "flat" if r.flat_from_start else "none")
            if r.repeats > 1:
                part += f" (mean of {r.repeats}" + (f"; each {spread[0]:g} to {spread[1]:g})" if spread else ")")
                brief += f" ({spread[0]:g}…{spread[1]:g})" if spread else ""
            full.append(part)
            short.append(brief)
        if self.grid is not None:
            best = self.grid.best_exponent
            best_text = "none" if best is None else f"{best:g}"
            full.append(f"grid at step {self.grid.at_step:,}: best {best_text}")
            short.append(f"grid @{self.grid.at_step:,}: {best_text}")
        title = "LR " + " · ".join(full)
        return title if len(title) + 6 <= width else "LR " + " · ".join(short)

    def _legend(self) -> str:
        legend = []
        if self.result is not None:
            first = "smoothed mean · [{0}]± 1 std[/]" if self.result.repeats > 1 else "[{0}]raw[/] · smoothed"
            legend.append(first.format(RAW_MARKUP) + f" · [{SUGGESTED}]│ suggested[/]")
            if self.overlay:
                legend += [f"[{color}]step {e.at_step:,}[/]" for e, color in zip(self.earlier, EARLIER_COLORS)]
        if self.grid is not None:
            legend.append(f"[{GRID}]● grid, {self.grid.steps} steps[/]")
        return " · ".join(legend)

    def _draw(self) -> Text:
        w, h = self.content_size.width, self.content_size.height
        r, grid = self.result, self.grid
        if r is None and grid is None:
            return Text(f"No sweep yet: press s (S: {SWEEP_REPEATS_KEY} sweeps and their mean; G: an LR grid).",
                        style="dim")
        self.border_title, self.border_subtitle = self._title(self.size.width), self._legend()
        if w < MIN_WIDTH or h < MIN_HEIGHT:
            return Text("(too small)")
        figure = _new_figure(w, h)
        if r is not None and len(r.losses) > 1:
            if r.band:
                _line(figure, r.exponents, [m + b for m, b in zip(r.smoothed, r.band)], RAW)
                _line(figure, r.exponents, [m - b for m, b in zip(r.smoothed, r.band)], RAW)
            else:
                _line(figure, r.exponents, r.losses, RAW)
            for earlier, color in zip(self.earlier if self.overlay else [], EARLIER_COLORS):
                if len(earlier.smoothed) > 1:
                    _line(figure, earlier.exponents, earlier.smoothed, color)
            _line(figure, r.exponents, r.smoothed)
            if r.suggested_exponent is not None:
                _line(figure, [r.suggested_exponent] * 2, [min(r.losses), max(r.losses)], SUGGESTED)
        if grid is not None:
            points = [(e, v) for e, v in zip(grid.exponents, grid.losses) if math.isfinite(v)]
            if points:
                marker = plotext.marker("●", pixel=GRID)
                figure.draw(figure.signal([p[0] for p in points], [p[1] for p in points], marker=marker))
        return Text.from_ansi(figure.build().string())


class EmbeddingChart(Chart):
    """The characters' embeddings as points labelled by their character, as the lecture draws
    them for emb 2 (the first two principal components for a wider embedding)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.points: list[tuple[float, float]] = []
        self.labels: list[str] = []
        self.border_title = "embeddings"

    def show_points(self, points: torch.Tensor, labels: list[str], kind: str, step: int) -> None:
        self.points, self.labels = [(float(x), float(y)) for x, y in points.tolist()], labels
        self.border_title = f"embeddings at step {step:,}: {kind}"
        self.redraw()

    def _draw(self) -> Text:
        w, h = self.content_size.width, self.content_size.height
        if not self.points:
            return Text("")
        if w < MIN_WIDTH or h < MIN_HEIGHT:
            return Text("(too small)")
        figure = _new_figure(w, h)
        xs, ys = [p[0] for p in self.points], [p[1] for p in self.points]
        pad_x, pad_y = 0.05 * (max(xs) - min(xs) or 1), 0.05 * (max(ys) - min(ys) or 1)
        figure.ruler("x").lim(min(xs) - pad_x, max(xs) + pad_x)
        figure.ruler("y").lim(min(ys) - pad_y, max(ys) + pad_y)
        for (x, y), label in zip(self.points, self.labels):
            figure.draw(figure.text(x, y, label, alignment="center"))
        return Text.from_ansi(figure.build().string())
