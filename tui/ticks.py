"""Round, evenly spaced axis ticks (1-2-5 steps) and their labels, for the charts; no UI here.

People read an axis by its round numbers: 0, 50k, 100k rather than 5.4e2, 2.1e3; -3, -2.5, -2
rather than -2.93, -2.41. A loss axis drawn in log10 is labelled in loss values (2, 5, 10, 20
over a wide range; 2.2, 2.3, 2.4 over a narrow one), each tick placed at its log10.
"""

from __future__ import annotations

import math

STEPS = (1.0, 2.0, 5.0)  # the mantissas of a tick step: 0.1, 0.2, 0.5, 1, 2, 5, 10, …
WIDE_LOG_RANGE = 3.0  # a loss axis spanning more than this factor is ticked at 1-2-5 values per decade


def nice_step(span: float, most: int) -> float:
    """The smallest 1-2-5 step that cuts `span` into at most `most` intervals (at least 1)."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    rough = span / max(1, most)
    decade = 10.0 ** math.floor(math.log10(rough))
    for mantissa in (*STEPS, 10.0):
        if mantissa * decade >= rough * (1 - 1e-9):
            return mantissa * decade
    return 10 * decade  # pragma: no cover (10.0 above always answers)


def nice_ticks(low: float, high: float, most: int) -> tuple[list[float], float]:
    """Multiples of the smallest 1-2-5 step of which at most `most` + 1 fall inside [low, high], and the step."""
    if not (math.isfinite(low) and math.isfinite(high)) or high < low:
        return [], 1.0
    step = nice_step(high - low, max(1, most) + 1)  # a step smaller than this always gives too many
    while True:
        first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
        if last - first <= max(1, most):
            return [_clean(i * step) for i in range(first, last + 1)], step
        step = nice_step(step * 1.01, 1)  # the next 1-2-5 step


def _clean(value: float) -> float:
    """0.30000000000000004 → 0.3, and no negative zero."""
    return round(value, 12) + 0.0


def decimals(step: float) -> int:
    """How many decimals tell ticks `step` apart: 0 for steps of 1 and more, 1 for 0.5, 2 for 0.05."""
    return max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 0


def label(value: float, step: float) -> str:
    """A tick's label with the decimals its step needs (never "-0")."""
    text = f"{value:.{decimals(step)}f}"
    return text.lstrip("-") if float(text) == 0 else text


def si_label(value: float, step: float) -> str:
    """Steps as people say them: 500, 10k, 2.5k, 200k, 1M, 1.5M."""
    for factor, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            text = f"{value / factor:.{decimals(step / factor)}f}"
            return (text.rstrip("0").rstrip(".") if "." in text else text) + suffix
    return f"{value:.0f}"


def step_ticks(low: float, high: float, most: int) -> tuple[list[float], list[str]]:
    """Ticks for a step axis: whole steps, SI suffixes."""
    ticks, step = nice_ticks(low, high, most)
    step = max(step, 1.0)
    ticks = [t for t in ticks if t == int(t)]
    return ticks, [si_label(t, step) for t in ticks]


def value_ticks(low: float, high: float, most: int) -> tuple[list[float], list[str]]:
    """Ticks for a linear axis of plain numbers (an LR exponent, a loss, an embedding coordinate)."""
    ticks, step = nice_ticks(low, high, most)
    return ticks, [label(t, step) for t in ticks]


def log_value_ticks(low: float, high: float, most: int) -> tuple[list[float], list[str]]:
    """Ticks for an axis drawn in log10 of positive values, labelled in the values themselves.
    `low` and `high` are the axis' ends in log10; the positions returned are log10 too.

    Over a wide range (more than 3x), 1-2-5 values per decade (only 1s where those are too many);
    over a narrow one, plain 1-2-5 steps of the value: 2.2, 2.3, 2.4 are evenly spaced to the eye
    at that zoom, and each is a loss one can read."""
    lo, hi = 10.0**low, 10.0**high
    if hi / lo <= WIDE_LOG_RANGE:
        ticks, step = nice_ticks(lo, hi, most)
        return [math.log10(t) for t in ticks if t > 0], [label(t, step) for t in ticks if t > 0]
    for mantissas in (STEPS, (1.0,)):
        values = [m * 10.0**d for d in range(math.floor(low) - 1, math.ceil(high) + 1) for m in mantissas]
        inside = [v for v in values if lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9)]
        if len(inside) <= most + 1:
            break
    return [math.log10(v) for v in inside], [f"{v:g}" for v in inside]


def ticks_across(length: int, per: int) -> int:
    """How many intervals fit an axis of `length` cells with a label every `per` cells or more."""
    return max(1, length // per)
