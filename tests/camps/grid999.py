"""An independent reference of the 0..999 grid for the camps' tests: the exact value of the
float ``v / side * 999`` rounded by :mod:`decimal` (``ROUND_HALF_UP``: ties away from zero),
then clamped. No numpy, no ``round``: nothing shared with ``contracts.coords``."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal


def grid(v: float, side: float) -> int:
    """One coordinate on the grid."""
    exact = Decimal(float(v) / float(side) * 999)  # the float's exact value
    return min(999, max(0, int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))))


def grid_box(box, width: float, height: float) -> list[int]:
    """One ``x0, y0, x1, y1`` box on the grid."""
    x0, y0, x1, y1 = box
    return [grid(x0, width), grid(y0, height), grid(x1, width), grid(y1, height)]
