"""The training chart (log10 loss against step, other runs' curves overlaid on request) and the
embedding map, drawn with plotext (tui.plot). The LR sweep and grid are in tui.lr_charts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.content import Content

from core.reading import printable
from core.smoothing import centred_mean
from tui.plot import MIN_HEIGHT, MIN_WIDTH, Chart, axis, line, marks, new_figure, padded, rendered
from tui.ticks import log_value_ticks, step_ticks, value_ticks

if TYPE_CHECKING:
    import torch

    from core.history import EvalPoint, HistoryView

RAW, TRAIN, DEV = 8, "cyan", "yellow"  # ANSI colours: Textual maps them to its theme
RAW_MARKUP = "bright_black"  # ANSI 8, as markup for the legend
OVERLAY_COLORS = ("magenta", "green", "blue", "red", "bright_white")  # one per run overlaid on the training chart
OVERLAY_LABEL = 10  # characters of a run's name in the legend
# the smoothed line: each point the mean of the points within 1/50 of them either side, or 200 steps where that
# is more (a short run's points are a few steps each: noisy), at most 1/10
SMOOTHING, SMOOTHING_STEPS, SMOOTHING_MOST = 50, 200, 10


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

    LEGEND = f"batch [{RAW_MARKUP}]raw[/]/smoothed · [{TRAIN}]● train[/] [{DEV}]◆ dev[/]"
    TITLE = "training: loss (log axis) vs step"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.history: HistoryView | None = None  # from the latest status (tui.messages)
        self.evals: tuple[EvalPoint, ...] = ()
        self.overlay: list[OverlayLine] = []
        self.border_title = self.TITLE
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
        figure = new_figure(w, h)
        log_losses = _log10(losses)
        if steps:  # the raw minibatch losses (bucket means) dim, their centred mean over them
            line(figure, steps, log_losses, RAW)
            n = len(log_losses)
            half = max(n // SMOOTHING, math.ceil(SMOOTHING_STEPS * n / len(self.history)))
            line(figure, steps, centred_mean(log_losses, min(half, n // SMOOTHING_MOST)))
        colors = self._colors()
        for overlaid in self.overlay:
            if overlaid.steps:
                color = colors[overlaid.label]
                line(figure, overlaid.steps, _log10(overlaid.losses), (color, None, "dim") if overlaid.dotted else color,
                     fine=overlaid.dotted)
        for attribute, symbol, color in (("train", "●", TRAIN), ("dev", "◆", DEV)):
            points = [(e.step, v) for e in self.evals if (v := getattr(e, attribute))]
            marks(figure, [p[0] for p in points], _log10([p[1] for p in points]), symbol, color)
        low, high = self._loss_range(log_losses)
        axis(figure, "y", low, high, h, log_value_ticks)
        last = max([len(self.history), *(e.step for e in self.evals[-1:]), *(o.steps[-1] for o in self.overlay if o.steps)])
        axis(figure, "x", 0, last, w, step_ticks)
        return rendered(figure)

    def _loss_range(self, log_losses: list[float]) -> tuple[float, float]:
        """The y range in log10. The first steps from init (loss ~20) would flatten the rest: the top
        is the highest after the first 5% (of the points; of an overlaid run's steps: its evaluations
        are few)."""
        curves = [log_losses] + [_log10(o.losses) for o in self.overlay if o.losses]
        curves.append(_log10([v for e in self.evals for v in (e.train, e.dev) if v]))
        tails = [log_losses[len(log_losses) // 20 :]] if len(log_losses) > 20 else [log_losses]
        for o in self.overlay:
            if o.steps:
                tails.append(_log10([v for s, v in zip(o.steps, o.losses) if s >= o.steps[-1] / 20]))
        low = min(min(c) for c in curves if c)
        high = max(max(t) for t in tails if t)
        return low - 0.02 * (high - low), high + 0.05 * (high - low)


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
        figure = new_figure(w, h)
        xs, ys = [p[0] for p in self.points], [p[1] for p in self.points]
        axis(figure, "x", *padded(min(xs), max(xs)), w, value_ticks)
        axis(figure, "y", *padded(min(ys), max(ys)), h, value_ticks)
        for (x, y), label in zip(self.points, self.labels):
            figure.draw(figure.text(x, y, label, alignment="center"))
        return rendered(figure)
