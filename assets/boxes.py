"""Box primitives that more than one stage needs (no stage imports another stage).

Boxes are columns: a tuple ``(x0, y0, x1, y1)`` of NumPy arrays of one length ``n``.
"""

from __future__ import annotations

import numpy as np


def iou(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> np.ndarray:
    """Elementwise intersection over union of two box columns.

    Args:
        a: ``(x0, y0, x1, y1)``, each an array of shape ``(n,)`` (or scalars).
        b: the same, broadcastable against ``a``.

    Returns:
        float array ``(n,)``. An inverted box has area 0; a pair whose union is empty, or that
        has a NaN coordinate, has IoU 0 (no warning is raised for NaN).
    """
    with np.errstate(invalid="ignore"):
        iw = np.clip(np.minimum(a[2], b[2]) - np.maximum(a[0], b[0]), 0.0, None)
        ih = np.clip(np.minimum(a[3], b[3]) - np.maximum(a[1], b[1]), 0.0, None)
        inter = iw * ih
        area_a = np.clip(a[2] - a[0], 0.0, None) * np.clip(a[3] - a[1], 0.0, None)
        area_b = np.clip(b[2] - b[0], 0.0, None) * np.clip(b[3] - b[1], 0.0, None)
        union = area_a + area_b - inter
        safe = np.where(union > 0, union, 1.0)
        return np.where(union > 0, inter / safe, 0.0)


__all__ = ["iou"]
