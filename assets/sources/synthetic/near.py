"""Cases planted next to every threshold: just outside (a defect) and just inside (kept).

Far defects (``defects.apply_defects``) sit far past their thresholds, so a checker that is
off by a margin still finds them. The cases here sit next to the documented thresholds
(:data:`THRESHOLDS`, docs/REASONS.md): a *positive* just outside carries its reason code, a
*negative* just inside must be kept; both name the threshold in ``planted.near``
(docs/CONTRACTS.md#planted-synthetic-corpus-ground-truth).

Box cases (:data:`BOX_CASES`) are new images appended to a good source, one case per image
(a duplicate pair: two boxes), so nothing else in the image interferes. Each value is chosen
for the written numbers: VOC writes integer pixels, so its values are integers; COCO, ODVG and
LabelMe write pixels as they are, on a quarter-pixel grid here (exact in binary and decimal);
YOLO and Open Images write fractions of the image with 6 decimals (up to ~0.002 px off). A
value is rounded away from its threshold, and where the arithmetic is exact (integers, a
quarter grid) a negative sits *at* the threshold, which the strict comparisons keep: a 4 px
side, an aspect of exactly 15, an IoU of exactly 0.9 or 0.5, a 2 px overhang. The normalised
formats get a margin bigger than their rounding instead.

Where each case can be expressed (:func:`expressible`): the truncation margin applies only to
boxes without a ``truncated`` attribute (never VOC; Open Images only without attributes); an
out-of-bounds negative is clipped onto the border, so it is kept only when it says
``truncated = 0`` (VOC, and Open Images, COCO and LabelMe sources with attributes, where the
writer adds that attribute); a polygon can disagree with its box only in COCO (LabelMe and
YOLO derive the box from the polygon). The px floors of the tolerance (2 px) and margin (1 px)
bind only on small images (under 100 px and 200 px), so those cases use a 64x48 image.

Source cases (:data:`SOURCE_CASES`) are whole sources of their own (``plan.FORCED``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vprim.assets.contracts import schemas as S
from vprim.assets.contracts.reasons import Reason
from vprim.assets.sources.synthetic.defects import (
    ASPECT,
    DUP,
    OOB,
    OVERSIZE,
    POLY,
    TINY,
    TRUNC,
)
from vprim.assets.sources.synthetic.geometry import COMMON_SIZES
from vprim.assets.sources.synthetic.plan import GOOD, NEAR_SOURCES, SourcePlan

#: The documented thresholds the cases sit next to: docs/REASONS.md, the defaults of quality's
#: ``GeometryConfig`` and ``LabelConfig`` (a test compares them; the generator cannot import a
#: later stage).
THRESHOLDS: dict[str, float] = {
    "oob_tolerance_px": 2.0,
    "oob_tolerance_frac": 0.02,
    "truncation_margin_px": 1.0,
    "truncation_margin_frac": 0.005,
    "tiny_min_side_px": 4.0,
    "tiny_min_area_frac": 1e-4,
    "max_aspect": 15.0,
    "oversized_area_frac": 0.90,
    "duplicate_iou": 0.9,
    "polygon_bbox_min_iou": 0.5,
    "missing_annotation_rate": 0.5,
    "min_clean_boxes": 3,
    "source_bad_label_fraction": 0.5,
}


#: the image of the cases whose px floor must bind (2% and 0.5% of 64 px are under 2 px, 1 px)
SMALL_IMAGE = (64, 48)

#: formats that write pixels exactly (VOC as integers)
EXACT_FORMATS = ("coco", "voc", "odvg", "labelme")


@dataclass(frozen=True)
class Case:
    """One near-threshold case: ``threshold`` (a key of :data:`THRESHOLDS`), the reason
    ``code`` it tests, and its side: ``positive`` (just outside, planted as ``code``) or not
    (just inside, planted as ``near:<code>``)."""

    threshold: str
    code: str
    positive: bool

    @property
    def name(self) -> str:
        return f"{self.threshold}:{'pos' if self.positive else 'neg'}"

    @property
    def defect(self) -> str:
        return str(self.code) if self.positive else S.PLANTED_NEAR_PREFIX + self.code


def _both(threshold: str, code: str) -> tuple[Case, Case]:
    return Case(threshold, code, True), Case(threshold, code, False)


BOX_CASES: tuple[Case, ...] = (
    *_both("oob_tolerance_frac", Reason.OUT_OF_BOUNDS),
    *_both("oob_tolerance_px", Reason.OUT_OF_BOUNDS),
    *_both("truncation_margin_frac", Reason.TRUNCATED_BOX),
    *_both("truncation_margin_px", Reason.TRUNCATED_BOX),
    *_both("tiny_min_side_px", Reason.TINY_BOX),
    *_both("tiny_min_area_frac", Reason.TINY_BOX),
    *_both("max_aspect", Reason.EXTREME_ASPECT),
    *_both("oversized_area_frac", Reason.OVERSIZED_BOX),
    *_both("duplicate_iou", Reason.DUPLICATE_BOX),
    *_both("polygon_bbox_min_iou", Reason.INVALID_POLYGON),
)

_MISSING = _both("missing_annotation_rate", Reason.SOURCE_MISSING_ANNOTATIONS)
_LABELS = _both("source_bad_label_fraction", Reason.SOURCE_LABEL_QUALITY)
_FEW = _both("min_clean_boxes", Reason.SOURCE_TOO_FEW_BOXES)

#: the case of each source-level near source, by the name ``plan.FORCED`` gives it: 20 images,
#: 11 (pos) or 10 (neg, exactly half) without boxes; 21 boxes with 11 bad labels (pos) or 20
#: with 10 (neg, exactly half), one good box in every image; 2 (pos) or 3 (neg) clean boxes
SOURCE_CASES: dict[str, Case] = {
    "near_missing_pos": _MISSING[0],
    "near_missing_neg": _MISSING[1],
    "near_labels_pos": _LABELS[0],
    "near_labels_neg": _LABELS[1],
    "near_few_pos": _FEW[0],
    "near_few_neg": _FEW[1],
}
assert set(SOURCE_CASES) == set(NEAR_SOURCES)

_CODE_INT = {
    Reason.OUT_OF_BOUNDS: OOB,
    Reason.TRUNCATED_BOX: TRUNC,
    Reason.TINY_BOX: TINY,
    Reason.EXTREME_ASPECT: ASPECT,
    Reason.OVERSIZED_BOX: OVERSIZE,
    Reason.DUPLICATE_BOX: DUP,
    Reason.INVALID_POLYGON: POLY,
}

#: share of the drawn good sources (no file defect) that get a few box cases
NEAR_RATE = 0.25


def expressible(case: Case, fmt: str, attributes: bool) -> bool:
    """Whether a source of format ``fmt`` (with or without attributes) can carry ``case``."""
    if case.code == Reason.TRUNCATED_BOX:  # the margin rule: boxes without the attribute
        return fmt in ("coco", "yolo", "odvg", "labelme") or (
            fmt == "openimages" and not attributes
        )
    if case.code == Reason.OUT_OF_BOUNDS and not case.positive:  # kept only if truncated = 0
        return fmt == "voc" or (fmt in ("openimages", "coco", "labelme") and attributes)
    if case.code == Reason.INVALID_POLYGON:
        return fmt == "coco"
    return True


def cases_of(plan: SourcePlan, rng: np.random.Generator) -> list[Case]:
    """The box cases a source carries: every one its format can express in a source that
    plants every defect (``forced_all``), a few drawn ones in :data:`NEAR_RATE` of the other
    good sources without a file defect, none elsewhere (nor in real-image sources, whose
    images are small files). ``rng``: stream 5 of the source."""
    if plan.kind != GOOD or plan.file_defect or plan.near or plan.layout:
        return []
    ok = [c for c in BOX_CASES if expressible(c, plan.fmt, plan.attributes)]
    if plan.forced_all:
        return ok
    if rng.random() >= NEAR_RATE:
        return []
    k = min(len(ok), 1 + int(rng.poisson(1.0)))
    return [ok[i] for i in sorted(rng.choice(len(ok), k, replace=False).tolist())]


# --- the boxes of one case -------------------------------------------------------------------
def _down(v: float, g: float) -> float:
    return math.floor(v / g + 1e-9) * g


def _up(v: float, g: float) -> float:
    return math.ceil(v / g - 1e-9) * g


def _inside(rng: np.random.Generator, size: int, length: float) -> float:
    """A start so that ``[start, start + length]`` keeps >= 5% of ``size`` from both borders."""
    m = math.ceil(0.05 * size)
    return float(m + math.floor(rng.random() * (size - 2 * m - length + 1)))


def _at_edge(
    rng: np.random.Generator, W: int, H: int, w: float, h: float, edge: int, beyond: float
) -> tuple[float, float, float, float]:
    """A ``w`` x ``h`` box whose side on ``edge`` (0 left, 1 right, 2 top, 3 bottom) lies
    ``beyond`` px past that border (negative: that far inside), the other axis inside."""
    if edge < 2:
        y0 = _inside(rng, H, h)
        x0 = -beyond if edge == 0 else W + beyond - w
        return x0, y0, x0 + w, y0 + h
    x0 = _inside(rng, W, w)
    y0 = -beyond if edge == 2 else H + beyond - h
    return x0, y0, x0 + w, y0 + h


def _centred(rng: np.random.Generator, W: int, H: int, w: float, h: float) -> tuple[float, ...]:
    x0, y0 = _inside(rng, W, w), _inside(rng, H, h)
    return x0, y0, x0 + w, y0 + h


def _image_size(rng: np.random.Generator, case: Case) -> tuple[int, int]:
    if case.threshold in ("oob_tolerance_px", "truncation_margin_px"):
        return SMALL_IMAGE
    sizes = COMMON_SIZES
    if case.threshold == "tiny_min_side_px":  # a 4 x 40 px box must stay above 1e-4 of it
        sizes = tuple(s for s in COMMON_SIZES if s[0] * s[1] <= 1_300_000)
    elif case.threshold == "tiny_min_area_frac":  # 1e-4 of it must allow sides of >= 6 px
        sizes = tuple(s for s in COMMON_SIZES if s[0] * s[1] >= 700_000)
    return sizes[int(rng.integers(0, len(sizes)))]


def case_boxes(
    case: Case, fmt: str, rng: np.random.Generator, W: int, H: int
) -> list[tuple[tuple[float, float, float, float], int]]:
    """The boxes of one case in a ``W`` x ``H`` image as ``(x0, y0, x1, y1)`` pixels with a
    polygon kind (0 none; 3, 4: a rectangle whose bounds have IoU 1/2, 12/25 with the box,
    see ``text.polygon_texts``). The case's box is the last one (a duplicate's original
    comes first)."""
    exact = fmt in EXACT_FORMATS
    g = 1.0 if fmt == "voc" else 0.25
    t, pos = case.threshold, case.positive
    T = THRESHOLDS
    if t in ("oob_tolerance_frac", "oob_tolerance_px", "truncation_margin_frac",
             "truncation_margin_px"):  # fmt: skip
        edge = int(rng.integers(0, 4))
        side = W if edge < 2 else H
        w = float(max(6, round(rng.uniform(0.15, 0.3) * W)))
        h = float(max(6, round(rng.uniform(0.15, 0.3) * H)))
        if t.startswith("oob"):
            tol = max(T["oob_tolerance_px"], T["oob_tolerance_frac"] * side)
            if pos:
                beyond = _up(1.25 * tol, g)
            elif t == "oob_tolerance_px" and exact:
                beyond = tol  # exactly at the tolerance: kept
            else:
                beyond = _down(0.75 * tol, g)
        else:
            margin = max(T["truncation_margin_px"], T["truncation_margin_frac"] * side)
            if pos and t == "truncation_margin_px" and exact:
                dist = margin  # exactly at the margin: truncated
            elif pos:
                dist = _down(0.75 * margin, g)
            else:
                dist = _up(1.25 * margin, g)
            beyond = -dist
        return [(_at_edge(rng, W, H, w, h, edge, beyond), 0)]
    if t == "tiny_min_side_px":
        short = (3.0 if g == 1.0 else 3.5) if pos else (4.0 if exact else 4.5)
        return [(_oriented(rng, W, H, short, 10 * short), 0)]
    if t == "tiny_min_area_frac":
        target = (0.85 if pos else 1.15) * T["tiny_min_area_frac"] * W * H
        h = float(math.floor(math.sqrt(target / 1.5)))
        w = float(math.floor(target / h) if pos else math.ceil(target / h))
        return [(_centred(rng, W, H, w, h), 0)]
    if t == "max_aspect":
        long = 155.0 if pos else (150.0 if exact else 145.0)
        return [(_oriented(rng, W, H, 10.0, long), 0)]
    if t == "oversized_area_frac":
        f = math.sqrt(0.92 if pos else 0.88)
        rounding = math.ceil if pos else math.floor
        w, h = float(rounding(f * W)), float(rounding(f * H))
        x0, y0 = float((W - int(w)) // 2), float((H - int(h)) // 2)
        return [((x0, y0, x0 + w, y0 + h), 0)]
    if t == "duplicate_iou":
        # a copy shifted by d along x has IoU (w - d) / (w + d): 0.92, exactly 0.9, 0.88
        w, d = (192.0, 8.0) if pos else ((190.0, 10.0) if exact else (188.0, 12.0))
        h = float(round(rng.uniform(0.2, 0.5) * H))
        x0, y0 = _inside(rng, W, w + d), _inside(rng, H, h)
        first = (x0, y0, x0 + w, y0 + h)
        return [(first, 0), ((x0 + d, y0, x0 + d + w, y0 + h), 0)]
    if t == "polygon_bbox_min_iou":
        w = 148.0 if pos else 150.0  # shifted by 13w/37 (IoU 0.48) or w/3 (exactly 0.5)
        h = float(round(rng.uniform(0.2, 0.5) * H))
        return [(_centred(rng, W, H, w, h), 4 if pos else 3)]
    raise ValueError(f"no box case for threshold {t!r}")


def _oriented(
    rng: np.random.Generator, W: int, H: int, short: float, long: float
) -> tuple[float, float, float, float]:
    if rng.random() < 0.5:
        return _centred(rng, W, H, long, short)
    return _centred(rng, W, H, short, long)


def near_boxes(
    cases: list[Case], fmt: str, rng: np.random.Generator, good: np.ndarray, uid0: int,
    img0: int,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:  # fmt: skip
    """The images (widths, heights) and box columns (``SourceData.b``'s, plus ``near``: the
    index of the case in :data:`BOX_CASES` + 1) of ``cases``, one image each, numbered from
    ``img0``; labels drawn from the good label entries ``good``, uids from ``uid0``."""
    W, H, rows = [], [], []
    for k, case in enumerate(cases):
        w, h = _image_size(rng, case)
        W.append(w)
        H.append(h)
        lab = int(good[int(rng.integers(0, len(good)))])
        boxes = case_boxes(case, fmt, rng, w, h)
        for j, (xyxy, poly) in enumerate(boxes):
            mine = j == len(boxes) - 1
            code = _CODE_INT[case.code] if mine and case.positive else 0
            near = BOX_CASES.index(case) + 1 if mine else 0
            dup = uid0 + len(rows) - 1 if mine and j > 0 else -1
            rows.append((img0 + k, float(j), lab, *xyxy, code, poly, uid0 + len(rows), dup, near))
    cols = list(zip(*rows)) if rows else [()] * 12
    b = {
        "img": np.array(cols[0], dtype=np.int64),
        "pos": np.array(cols[1], dtype=np.float64),
        "lab": np.array(cols[2], dtype=np.int64),
        "x0": np.array(cols[3], dtype=np.float64),
        "y0": np.array(cols[4], dtype=np.float64),
        "x1": np.array(cols[5], dtype=np.float64),
        "y1": np.array(cols[6], dtype=np.float64),
        "code": np.array(cols[7], dtype=np.int8),
        "crowd": np.zeros(len(rows), dtype=bool),
        "poly": np.array(cols[8], dtype=np.int8),
        "uid": np.array(cols[9], dtype=np.int64),
        "dup": np.array(cols[10], dtype=np.int64),
        "near": np.array(cols[11], dtype=np.int8),
    }
    return np.array(W, dtype=np.int64), np.array(H, dtype=np.int64), b
