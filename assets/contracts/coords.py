"""The 0..999 coordinate grid every target and every lake row uses, defined once.

A pixel coordinate ``v`` on an image side of ``side`` pixels is ``round(v / side * 999)``,
clamped to 0..999, where ``v / side * 999`` is computed in float64 in that order and ``round``
rounds half away from zero (``4.5 -> 5``, ``1.5 -> 2``, ``-0.5 -> -1``), as C's ``round`` and
DuckDB's ``round`` do, not half to even as Python's ``round`` does.

The lake computes the same numbers in SQL with the macro ``to_999`` (``sql/macros/to_999.sql``);
``tests/camps/test_coords.py`` holds the two together, on exact ties included.
"""

from __future__ import annotations

import numpy as np

GRID_MAX = 999  # the largest coordinate


def round_half_away(x) -> np.ndarray:
    """``x`` (a float or an array) rounded to the nearest integer, halves away from zero, as
    float64 (exact: ``|x| - floor(|x|)`` has no rounding error, unlike ``floor(x + 0.5)``)."""
    a = np.abs(np.asarray(x, dtype=np.float64))
    whole = np.floor(a)
    return np.copysign(whole + (a - whole >= 0.5), x)


def to_999_array(values, side) -> np.ndarray:
    """Pixel coordinates (any shape) on sides ``side`` (a number, or an array that broadcasts)
    as int64 on the 0..999 grid."""
    scaled = np.asarray(values, dtype=np.float64) / np.asarray(side, dtype=np.float64) * GRID_MAX
    return np.clip(round_half_away(scaled), 0, GRID_MAX).astype(np.int64)


def to_999(v: float, side: float) -> int:
    """One pixel coordinate on a side of ``side`` pixels, on the 0..999 grid."""
    return int(to_999_array(v, side))


def boxes_to_999(boxes, width: float, height: float) -> list[list[int]]:
    """Boxes ``(n, 4)`` ``x0, y0, x1, y1`` in pixels as ``n`` lists on the 0..999 grid, in
    the given order."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return to_999_array(b, np.array([width, height, width, height], dtype=np.float64)).tolist()


__all__ = ["GRID_MAX", "boxes_to_999", "round_half_away", "to_999", "to_999_array"]
