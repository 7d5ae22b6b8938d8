"""What the command line writes as JSON: strict JSON, which has no NaN or Infinity."""

from __future__ import annotations

import math


def finite_or_null(value: object) -> object:
    """`value` with every float that is not a finite number (a loss that blew up) made None (null)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(v) for v in value]
    return value
