"""Planted defects: the codes of planted boxes, and how a clean box becomes a defect.

While a source is generated every box carries a small int code (an index into
:data:`CODES`); 0 is a clean box. The box defects are ``reasons.BOX_REASONS``, one per planted
box; a box with a bad label carries its ``label_*`` code; two parse codes mark boxes of
images planted without a size or with a path escaping the source.
"""

from __future__ import annotations

import numpy as np

from vprim.assets.contracts import reasons as R
from vprim.assets.contracts.reasons import Reason

#: planted codes, as small ints while generating (0: clean)
CODES: tuple[str, ...] = (
    "",
    *R.BOX_REASONS,
    Reason.LABEL_GIBBERISH,
    Reason.LABEL_PRIVATE,
    Reason.LABEL_VAGUE,
    Reason.PARSE_MISSING_IMAGE_SIZE,
    Reason.PARSE_PATH_ESCAPE,
)
_C = {name: i for i, name in enumerate(CODES)}
NONFIN, DEGEN, OOB, TRUNC, OVERSIZE, TINY, ASPECT, DUP, CROWD, POLY = (
    _C[name] for name in R.BOX_REASONS
)
GIB, PRIV, VAGUE = (_C[Reason.LABEL_GIBBERISH], _C[Reason.LABEL_PRIVATE], _C[Reason.LABEL_VAGUE])
MISSING_SIZE, PATH_ESCAPE = _C[Reason.PARSE_MISSING_IMAGE_SIZE], _C[Reason.PARSE_PATH_ESCAPE]

#: how often each box defect is drawn, relative to the others
DEFECT_WEIGHT = {
    NONFIN: 1.0,
    DEGEN: 2.0,
    OOB: 2.0,
    TRUNC: 3.0,
    OVERSIZE: 1.5,
    TINY: 2.0,
    ASPECT: 1.0,
    DUP: 2.0,
    CROWD: 1.5,
    POLY: 1.0,
}


def box_defects(fmt: str, small_images: bool = False) -> tuple[int, ...]:
    """The box defect codes a format can express (crowd: COCO/Open Images; polygons: COCO,
    LabelMe, YOLO-seg). ``small_images`` (real-image sources, 64-200 px a side): no extreme
    aspect, whose long side (>= 26 x a short side over 4 px) does not fit such an image."""
    codes = [NONFIN, DEGEN, OOB, TRUNC, OVERSIZE, TINY, DUP]
    if not small_images:
        codes.insert(6, ASPECT)
    if fmt in ("coco", "openimages"):
        codes.append(CROWD)
    if fmt in ("coco", "labelme", "yolo"):
        codes.append(POLY)
    return tuple(codes)


def oversized_boxes(
    rng: np.random.Generator, W: np.ndarray, H: np.ndarray
) -> tuple[np.ndarray, ...]:
    """One box per image ``(W, H)`` (int arrays ``(n,)``) that covers all but a 1.2% margin
    of it: ``(x0, y0, x1, y1)`` float arrays ``(n,)``."""
    n = len(W)
    mx = np.maximum(1, np.floor(0.012 * W)).astype(np.int64)
    my = np.maximum(1, np.floor(0.012 * H)).astype(np.int64)
    x0 = rng.integers(1, mx + 1, n)
    y0 = rng.integers(1, my + 1, n)
    x1 = W - rng.integers(1, mx + 1, n)
    y1 = H - rng.integers(1, my + 1, n)
    return tuple(v.astype(np.float64) for v in (x0, y0, x1, y1))


def apply_defects(
    rng: np.random.Generator, b: dict[str, np.ndarray], idx: np.ndarray, codes: np.ndarray,
    W: np.ndarray, H: np.ndarray, fmt: str,
) -> None:  # fmt: skip
    """Turn the clean boxes ``idx`` into defects ``codes`` in place (all but duplicates)."""
    normalised = fmt in ("yolo", "openimages")
    for code in np.unique(codes).tolist():
        sel = idx[codes == code]
        m = len(sel)
        wi = W[b["img"][sel]].astype(np.float64)
        hi = H[b["img"][sel]].astype(np.float64)
        x0, y0, x1, y1 = (b[k][sel].copy() for k in ("x0", "y0", "x1", "y1"))
        b["code"][sel] = code
        if code == NONFIN:
            values = rng.choice(np.array([np.nan, np.inf, -np.inf]), m, p=[0.6, 0.25, 0.15])
            if fmt == "labelme":  # min/max of the corners: NaN on both x keeps it non-finite
                x0[:] = np.nan
                x1[:] = np.nan
            else:
                col = rng.integers(0, 4, m)
                for k, arr in enumerate((x0, y0, x1, y1)):
                    arr[col == k] = values[col == k]
        elif code == DEGEN:
            variant = rng.integers(0, 2 if fmt == "labelme" else 4, m)
            x1 = np.where(variant == 0, x0, x1)
            y1 = np.where(variant == 1, y0, y1)
            x1 = np.where(variant == 2, x0 - rng.integers(1, 20, m), x1)
            inv = variant == 3
            x0[inv], x1[inv] = x1[inv].copy(), x0[inv].copy()
            y0[inv], y1[inv] = y1[inv].copy(), y0[inv].copy()
        elif code == OOB:
            edge = rng.integers(0, 4, m)
            dim = np.where(edge < 2, wi, hi)
            out = np.round(rng.uniform(0.12, 0.3, m) * dim)
            inside = np.round(rng.uniform(0.1, 0.3, m) * dim)
            x0 = np.where(edge == 0, -out, np.where(edge == 1, wi - inside, x0))
            x1 = np.where(edge == 0, inside, np.where(edge == 1, wi + out, x1))
            y0 = np.where(edge == 2, -out, np.where(edge == 3, hi - inside, y0))
            y1 = np.where(edge == 2, inside, np.where(edge == 3, hi + out, y1))
        elif code == TRUNC:
            edge = rng.choice(np.array([0, 2]), m) if normalised else rng.integers(0, 4, m)
            dim = np.where(edge < 2, wi, hi)
            side = np.round(rng.uniform(0.12, 0.5, m) * dim)
            x0 = np.where(edge == 0, 0.0, np.where(edge == 1, wi - side, x0))
            x1 = np.where(edge == 0, side, np.where(edge == 1, wi, x1))
            y0 = np.where(edge == 2, 0.0, np.where(edge == 3, hi - side, y0))
            y1 = np.where(edge == 2, side, np.where(edge == 3, hi, y1))
        elif code == OVERSIZE:
            x0, y0, x1, y1 = oversized_boxes(rng, wi.astype(np.int64), hi.astype(np.int64))
        elif code == TINY:
            x1 = x0 + rng.integers(2, 4, m)
            y1 = y0 + rng.integers(2, 4, m)
        elif code == ASPECT:
            t = rng.integers(6, 11, m).astype(np.float64)
            horizontal = rng.random(m) < 0.5
            dim = np.where(horizontal, wi, hi)
            other = np.where(horizontal, hi, wi)
            length = np.minimum(np.round(t * rng.uniform(30, 45, m)), np.floor(0.9 * dim))
            t = np.minimum(t, np.floor(length / 26))
            m_long, m_short = np.ceil(0.04 * dim), np.ceil(0.04 * other)
            a0 = m_long + np.floor(rng.random(m) * (dim - 2 * m_long - length + 1))
            b0 = m_short + np.floor(rng.random(m) * (other - 2 * m_short - t + 1))
            x0 = np.where(horizontal, a0, b0)
            x1 = np.where(horizontal, a0 + length, b0 + t)
            y0 = np.where(horizontal, b0, a0)
            y1 = np.where(horizontal, b0 + t, a0 + length)
        elif code == CROWD:
            b["crowd"][sel] = True
        elif code == POLY:
            b["poly"][sel] = 2
        for k, arr in zip(("x0", "y0", "x1", "y1"), (x0, y0, x1, y1)):
            b[k][sel] = arr
        if code not in (CROWD, POLY):
            b["poly"][sel] = 0
