"""What the format writers share: number and string texts, polygons and attributes.

Every writer returns ``(files, image_ids, file_rows)``: the files of the source as
``(relative path, bytes)`` pairs (:data:`Files`), the image id of each image as the reader
reports it, and how many files were planted unreadable.
"""

from __future__ import annotations

import json
import math

import numpy as np

from vprim.assets.contracts.reasons import Reason
from vprim.assets.sources.synthetic.near import BOX_CASES
from vprim.assets.sources.synthetic.source import COLOURS, POSES, SourceData

#: ``near`` values of the out-of-bounds negatives: clipped onto the border, kept only as
#: ``truncated = 0``
OOB_NEGATIVES = frozenset(
    k + 1 for k, c in enumerate(BOX_CASES) if c.code == Reason.OUT_OF_BOUNDS and not c.positive
)

Files = list[tuple[str, bytes]]


def num_texts(a: np.ndarray, json_style: bool = True) -> list[str]:
    """Numbers as text: integral values without a fraction, non-finite like Python's json
    (``NaN``, ``Infinity``) or like C's printf (``nan``, ``inf``)."""
    a = np.asarray(a, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        fin = np.isfinite(a)
        r = np.where(fin, np.round(a), 0.0)
        isint = fin & (r == a) & (np.abs(r) < 1e15)
    out = r.astype(np.int64).astype(str).tolist()
    for k in np.flatnonzero(~isint).tolist():
        v = float(a[k])
        if v != v:
            out[k] = "NaN" if json_style else "nan"
        elif math.isinf(v):
            if json_style:
                out[k] = "Infinity" if v > 0 else "-Infinity"
            else:
                out[k] = "inf" if v > 0 else "-inf"
        else:
            out[k] = repr(v)
    return out


def f6_texts(a: np.ndarray) -> list[str]:
    """Numbers with 6 decimals (normalised coordinates)."""
    return [f"{v:.6f}" for v in np.asarray(a, dtype=np.float64).tolist()]


def json_str(s: str) -> str:
    """A JSON string literal, non-ASCII kept as is."""
    return json.dumps(s, ensure_ascii=False)


def xml_escape(s: str) -> str:
    """Text escaped for an XML element."""
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def csv_field(s: str) -> str:
    """A CSV field, quoted when it needs to be."""
    if any(c in s for c in ',"\n\r'):
        return '"' + s.replace('"', '""') + '"'
    return s


def polygon_texts(data: SourceData, normalised: bool = False) -> dict[int, list[str]]:
    """The polygon of each box that carries one, as number texts (flat x, y, ...): an octagon
    inscribed in the box (valid, ``poly`` 1), a bow-tie over its corners (``invalid_polygon``,
    2), or the box's rectangle shifted along x by w/3 (3: its bounds have IoU exactly 1/2 with
    the box) or by 13w/37 (4: IoU 12/25, ``invalid_polygon``). Pixels as JSON numbers, or
    (``normalised``) fractions of the image with 6 decimals."""
    b = data.b
    out: dict[int, list[str]] = {}
    for kind in (1, 2, 3, 4):
        sel = np.flatnonzero(b["poly"] == kind)
        if not len(sel):
            continue
        x0, y0, x1, y1 = (b[k][sel] for k in ("x0", "y0", "x1", "y1"))
        if kind == 1:
            ax = np.round(0.29 * (x1 - x0), 1)
            ay = np.round(0.29 * (y1 - y0), 1)
            pts = np.stack(
                [x0 + ax, y0, x1 - ax, y0, x1, y0 + ay, x1, y1 - ay,
                 x1 - ax, y1, x0 + ax, y1, x0, y1 - ay, x0, y0 + ay],
                axis=1,
            )  # fmt: skip
            pts = np.round(pts, 1)
        elif kind == 2:
            pts = np.stack([x0, y0, x1, y1, x1, y0, x0, y1], axis=1)
        else:
            d = (x1 - x0) / 3 if kind == 3 else (x1 - x0) * 13 / 37
            pts = np.stack([x0 + d, y0, x1 + d, y0, x1 + d, y1, x0 + d, y1], axis=1)
        if normalised:
            pts[:, 0::2] /= data.W[b["img"][sel]][:, None]
            pts[:, 1::2] /= data.H[b["img"][sel]][:, None]
            texts = f6_texts(pts.ravel())
        else:
            texts = num_texts(pts.ravel())
        w = pts.shape[1]
        for k, p in enumerate(sel.tolist()):
            out[p] = texts[k * w : (k + 1) * w]
    return out


def attr_pairs(data: SourceData, p: int) -> list[tuple[str, str]]:
    """The attributes of box ``p`` as (name, value) texts; none without attributes; no colour
    where it is unknown (-1: a copied picture whose colours no attribute named). An
    out-of-bounds near-threshold negative also says ``truncated = 0`` (``near.py``)."""
    if data.colour is None:
        return []
    colour = [("colour", COLOURS[data.colour[p]])] if data.colour[p] >= 0 else []
    pairs = [
        *colour,
        ("pose", POSES[data.pose[p]]),
        ("occluded", str(int(data.occluded[p]))),
    ]
    if data.b["near"][p] in OOB_NEGATIVES:
        pairs.append(("truncated", "0"))
    return pairs
