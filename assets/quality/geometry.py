"""Geometric box checks and the source decisions of step II (plain Python, no Dagster).

Everything works on whole shards at once: coordinates become NumPy columns, string keys go
through Polars, polygons through shapely 2's bulk constructors. Nothing loops in Python per box.

Box checks (:func:`check_boxes`). Every box gets a ``flags`` bitmask of *all* the reasons that
apply (bit ``k`` is ``reasons.BOX_REASONS[k]``, see :data:`FLAG_BITS`) and one ``reason``: the
first flag in :data:`PRECEDENCE`. The precedence goes from "the numbers cannot be used at all"
to "the box is fine but redundant":

1. ``non_finite_box``  a coordinate is NaN/inf (or null).
2. ``degenerate_box``  zero or negative width/height (inverted boxes included), also after
   clipping (a box lying wholly outside the image, within the tolerance, clips to nothing).
3. ``out_of_bounds``   a side lies beyond the image by more than the tolerance; boxes within the
   tolerance are clipped to the image and judged clipped. An image without a positive size
   makes every finite box ``out_of_bounds`` (there is nothing it can lie inside).
4. ``oversized_box``   clipped area > ``oversized_area_frac`` of the image: classification data in
   disguise (report). It comes before ``truncated_box`` because such a box necessarily hugs the
   border; truncation says nothing more about it.
5. ``truncated_box``   the annotation says the object is truncated (attribute ``truncated``:
   Open Images' ``IsTruncated``, VOC's ``<truncated>``), or, where the attribute is absent, the
   clipped box touches a border within the margin. A ``truncated`` value of 0/false says the
   object is whole although it touches the border, and the box is kept.
6. ``tiny_box``        shortest side or area below the limits.
7. ``extreme_aspect``  long side / short side above the limit.
8. ``crowd_region``    ``is_crowd`` (COCO iscrowd, Open Images IsGroupOf): a region of many
   objects, not one object.
9. ``invalid_polygon`` a segmentation ring that is not a valid polygon (self-intersecting,
   fewer than 3 points, odd or non-finite coordinates), or whose bounds disagree with the box
   (IoU of the rings' joint bounds with the box below ``polygon_bbox_min_iou``).
10. ``duplicate_box``  same (source, image, normalised label), IoU above ``duplicate_iou`` with an
    earlier box. Only boxes with no other flag compete, so this flag is always alone.

Flags after ``out_of_bounds`` (4-7) are only computed for boxes that are finite, not degenerate
and within bounds: a size or an aspect of an unusable box means nothing. ``crowd_region`` and
the polygon's validity are computed for every box.

Source decisions (:func:`source_decisions`), one row per source, first reason wins:
``source_oversized_everywhere`` (an oversized box in every image of a seeded sample),
``source_missing_annotations`` (estimated miss rate above the threshold; see the function for the
estimator) and ``source_too_few_boxes`` (fewer clean boxes than ``min_clean_boxes``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from vprim.assets import boxes as B
from vprim.assets.contracts import hashing as H
from vprim.assets.contracts import reasons as R
from vprim.assets.contracts.reasons import Reason

#: bit of each box reason in ``flags``: stable, in ``reasons.BOX_REASONS`` order.
FLAG_BITS: dict[str, int] = {reason: 1 << k for k, reason in enumerate(R.BOX_REASONS)}

#: the order in which a box's flags name its single reject reason (module docstring says why).
PRECEDENCE: tuple[str, ...] = (
    Reason.NON_FINITE_BOX,
    Reason.DEGENERATE_BOX,
    Reason.OUT_OF_BOUNDS,
    Reason.OVERSIZED_BOX,
    Reason.TRUNCATED_BOX,
    Reason.TINY_BOX,
    Reason.EXTREME_ASPECT,
    Reason.CROWD_REGION,
    Reason.INVALID_POLYGON,
    Reason.DUPLICATE_BOX,
)

#: source-level codes of this stage, in decision precedence.
SOURCE_PRECEDENCE: tuple[str, ...] = (
    Reason.SOURCE_OVERSIZED_EVERYWHERE,
    Reason.SOURCE_MISSING_ANNOTATIONS,
    Reason.SOURCE_TOO_FEW_BOXES,
)

#: ``truncated`` attribute values (lower-cased, stripped) that say yes / no.
TRUNCATED_YES = ("1", "true", "yes", "y")
TRUNCATED_NO = ("0", "false", "no", "n")

assert set(PRECEDENCE) == set(R.BOX_REASONS)
assert set(SOURCE_PRECEDENCE) <= set(R.SOURCE_REASONS)


@dataclass(frozen=True)
class GeometryConfig:
    """Thresholds of the geometric checks. Comparisons are strict unless a field says otherwise:
    a value exactly at a threshold is kept.

    Args:
        oversized_area_frac: a box whose (clipped) area is *more than* this fraction of the image
            is ``oversized_box``. 0.90 is the report's figure: such a box labels the whole
            picture, which is classification data in disguise.
        duplicate_iou: a later box with IoU *above* this with an earlier box of the same
            (source, image, normalised label) is ``duplicate_box``. 0.9 catches copies and
            1-2 px jitter while two real, overlapping objects of one class (people in a queue,
            parked cars) almost never reach it.
        oob_tolerance_px, oob_tolerance_frac: a side may lie outside the image by up to
            ``max(px, frac * image side)`` and is then clipped; further out is
            ``out_of_bounds``. 2 px / 2% absorbs off-by-one conventions (1-based VOC, inclusive
            ``xmax = W``), rounding of normalised coordinates and small annotation slips;
            a box reaching >2% past the border was drawn on another frame or in the wrong
            coordinate system.
        truncation_margin_px, truncation_margin_frac: without a ``truncated`` attribute, a box
            whose clipped side lies within ``max(px, frac * image side)`` of the border
            (distance *<=* margin) touches it and is ``truncated_box``: the object is cut by
            the frame, so the box covers only part of it (report: reject boxes that cut
            through the object). 1 px / 0.5% is "visually touching" at any resolution.
        tiny_min_side_px: a box whose shorter side is below this is ``tiny_box``. Under 4 px
            the object is unrecognisable and the box rounds to 1-3 cells of the 0..999 grid
            after resizing to the model's 756 px input.
        tiny_min_area_frac: a box whose area is below this fraction of the image is
            ``tiny_box`` too (1e-4: smaller than 1% x 1% of the image, a few 0..999 cells).
        max_aspect: long side / short side *above* this is ``extreme_aspect``. Thin real
            objects (poles, ladders, rails) stay under ~10:1; beyond 15:1 the box is a line
            mark or a mis-drag, not an object the model can ground.
        polygon_bbox_min_iou: a segmentation whose joint ring bounds have IoU *below* this with
            the box disagrees with it (``invalid_polygon``). Bounds of a polygon and its box
            coincide in every format; 0.5 tolerates loose boxes and partial polygons while
            catching a polygon of another object or in another coordinate system.
        sample_images: images with boxes sampled per source for the oversized-everywhere
            decision; 3 is the report's figure.
        missing_annotation_rate: a source whose estimated miss rate is *above* this is
            ``source_missing_annotations``; 0.5 is the report's figure (">50% of objects").
        min_clean_boxes: a source left with fewer clean boxes than this is
            ``source_too_few_boxes``. The report gives no figure; 3 keeps any source that can
            contribute a handful of samples while dropping sources that checks emptied (or
            nearly so), whose remaining boxes are then not trustworthy either.
    """

    oversized_area_frac: float = 0.90
    duplicate_iou: float = 0.9
    oob_tolerance_px: float = 2.0
    oob_tolerance_frac: float = 0.02
    truncation_margin_px: float = 1.0
    truncation_margin_frac: float = 0.005
    tiny_min_side_px: float = 4.0
    tiny_min_area_frac: float = 1e-4
    max_aspect: float = 15.0
    polygon_bbox_min_iou: float = 0.5
    sample_images: int = 3
    missing_annotation_rate: float = 0.5
    min_clean_boxes: int = 3

    def __post_init__(self) -> None:
        fractions = ("oversized_area_frac", "duplicate_iou", "polygon_bbox_min_iou")
        for name in fractions:
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"GeometryConfig.{name} must be in (0, 1]")
        if not 0.0 <= self.missing_annotation_rate <= 1.0:
            raise ValueError("GeometryConfig.missing_annotation_rate must be in [0, 1]")
        for name in (
            "oob_tolerance_px",
            "oob_tolerance_frac",
            "truncation_margin_px",
            "truncation_margin_frac",
            "tiny_min_side_px",
            "tiny_min_area_frac",
        ):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"GeometryConfig.{name} must be >= 0")
        if not self.max_aspect >= 1.0:
            raise ValueError("GeometryConfig.max_aspect must be >= 1")
        if self.sample_images < 1 or self.min_clean_boxes < 0:
            raise ValueError("GeometryConfig.sample_images must be >= 1, min_clean_boxes >= 0")


CHECK_SCHEMA_FIELDS = [
    pa.field("flags", pa.uint16(), nullable=False),
    pa.field("reason", pa.string()),
    pa.field("detail", pa.string()),
    pa.field("x0", pa.float64()),
    pa.field("y0", pa.float64()),
    pa.field("x1", pa.float64()),
    pa.field("y1", pa.float64()),
]


# --- helpers ---------------------------------------------------------------------------------
def _floats(table: pa.Table, name: str) -> np.ndarray:
    """A numeric column as float64 NumPy (nulls -> NaN)."""
    col = pc.cast(table[name], pa.float64())
    return np.asarray(col.to_numpy(), dtype=np.float64)


def _ints_or(table: pa.Table, name: str, dtype: type, default: int = 0) -> np.ndarray:
    if name not in table.column_names:
        return np.full(table.num_rows, default, dtype=dtype)
    col = pc.fill_null(table[name], default)
    return np.asarray(col.to_numpy(), dtype=dtype)


def _bools(table: pa.Table, name: str) -> np.ndarray:
    if name not in table.column_names:
        return np.zeros(table.num_rows, dtype=bool)
    return np.asarray(pc.fill_null(table[name], False).to_numpy(), dtype=bool)


def flag_names(flags: np.ndarray | int) -> list[str] | str:
    """Comma-separated reason names of a flags value (or of each value of an array)."""
    if np.ndim(flags) == 0:
        return ",".join(r for r in R.BOX_REASONS if int(flags) & FLAG_BITS[r])
    return [flag_names(int(v)) for v in np.asarray(flags).tolist()]


def _codes_to_strings(codes: np.ndarray, names: list[str]) -> pa.Array:
    """int codes (-1 = null) -> a string array, through a dictionary (no per-row Python)."""
    codes = np.asarray(codes, dtype=np.int32)
    mask = codes < 0
    indices = pa.array(np.where(mask, 0, codes), type=pa.int32(), mask=mask)
    dictionary = pa.array(names if names else [""], type=pa.string())
    return pa.DictionaryArray.from_arrays(indices, dictionary).cast(pa.string())


# --- polygons --------------------------------------------------------------------------------
def _polygon_checks(
    table: pa.Table, boxes: tuple[np.ndarray, ...], box_ok: np.ndarray, min_iou: float
) -> np.ndarray:
    """``invalid_polygon`` per row: an invalid ring, or ring bounds that disagree with the box.

    Rings are COCO-style: each ring of a row is one polygon (a part of the object), never a
    hole. All rings of the shard are built in one ``shapely.linearrings`` call.
    """
    n = table.num_rows
    bad = np.zeros(n, dtype=bool)
    if "polygon" not in table.column_names or n == 0:
        return bad
    col = table["polygon"]
    if col.null_count == n:
        return bad
    outer = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    outer_off = np.asarray(outer.offsets.to_numpy(), dtype=np.int64)
    n_rings_of_row = np.diff(outer_off)
    if not n_rings_of_row.any():
        return bad
    inner = outer.values
    r0, r1 = int(outer_off[0]), int(outer_off[-1])
    inner_off = np.asarray(inner.offsets.to_numpy(), dtype=np.int64)[r0 : r1 + 1]
    v0, v1 = int(inner_off[0]), int(inner_off[-1])
    values = np.asarray(
        pc.cast(inner.values.slice(v0, v1 - v0), pa.float64()).to_numpy(zero_copy_only=False),
        dtype=np.float64,
    )
    ring_len = np.diff(inner_off)
    ring_row = np.repeat(np.arange(n), n_rings_of_row)
    n_rings = len(ring_len)
    # structure: >= 3 points, whole (x, y) pairs, every number finite
    finite_vals = np.isfinite(values)
    nonfinite_count = np.zeros(n_rings, dtype=np.int64)
    nonempty = ring_len > 0
    if nonempty.any():
        starts = (inner_off[:-1] - v0)[nonempty]
        nonfinite_count[nonempty] = np.add.reduceat((~finite_vals).astype(np.int64), starts)
    ring_ok = (ring_len >= 6) & (ring_len % 2 == 0) & (nonfinite_count == 0)
    ring_valid = np.zeros(n_rings, dtype=bool)
    ok_idx = np.flatnonzero(ring_ok)
    if len(ok_idx):
        coords = values[np.repeat(ring_ok, ring_len)].reshape(-1, 2)
        pts = ring_len[ok_idx] // 2
        indices = np.repeat(np.arange(len(ok_idx)), pts)
        rings = shapely.linearrings(coords, indices=indices)
        ring_valid[ok_idx] = shapely.is_valid(shapely.polygons(rings))
        # joint bounds of the rings of each row, compared with its box
        starts = np.concatenate([[0], np.cumsum(pts)[:-1]])
        rx0 = np.minimum.reduceat(coords[:, 0], starts)
        rx1 = np.maximum.reduceat(coords[:, 0], starts)
        ry0 = np.minimum.reduceat(coords[:, 1], starts)
        ry1 = np.maximum.reduceat(coords[:, 1], starts)
        rows = ring_row[ok_idx]
        first = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        urows = rows[first]
        bx0 = np.minimum.reduceat(rx0, first)
        by0 = np.minimum.reduceat(ry0, first)
        bx1 = np.maximum.reduceat(rx1, first)
        by1 = np.maximum.reduceat(ry1, first)
        check = box_ok[urows]
        if check.any():
            r = urows[check]
            box = tuple(c[r] for c in boxes)
            iou = B.iou((bx0[check], by0[check], bx1[check], by1[check]), box)
            bad[r[iou < min_iou]] = True
    bad_rings = ring_row[~ring_valid]
    bad[bad_rings] = True
    return bad


# --- duplicates ---
def _after(a: np.ndarray, b: np.ndarray, order: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Whether row ``a`` comes after row ``b``: by box_index, then instance_id, then row."""
    box_index, iid = order
    ka, kb = box_index[a], box_index[b]
    ia, ib = iid[a], iid[b]
    return (ka > kb) | ((ka == kb) & ((ia > ib) | ((ia == ib) & (a > b))))


# --- duplicates ------------------------------------------------------------------------------
def _duplicates(
    table: pa.Table,
    competing: np.ndarray,
    boxes: tuple[np.ndarray, ...],
    order: tuple[np.ndarray, np.ndarray],
    label_key: str,
    threshold: float,
) -> np.ndarray:
    """Rows that have IoU > ``threshold`` with an earlier competing box of their group.

    Sort-based sweep: the competing boxes are sorted by (source, image, label, x0). For a pair
    (i, j) with x0_j >= x0_i, IoU > t forces the intersection width above t * w_i, hence
    ``x0_j < x0_i + (1 - t) * w_i``; so each box only looks ahead while that holds and the
    group is the same. Each step of the sweep compares every still-active box with its k-th
    successor at once (NumPy), and the active set only shrinks. "Earlier" compares ``order``
    (box_index, instance_id), then the row: a box is a duplicate when any earlier competing
    box matches it (not only a kept one), so the first box of every cluster is kept.
    """
    n = table.num_rows
    dup = np.zeros(n, dtype=bool)
    cand = np.flatnonzero(competing)
    if len(cand) < 2:
        return dup
    keys = table.select(["source_id", "image_id", label_key]).take(pa.array(cand))
    df = pl.from_arrow(keys).rename({"source_id": "s", "image_id": "i", label_key: "l"})
    df = df.with_columns(
        pl.col("l").cast(pl.String).str.to_lowercase().str.strip_chars(),
        pl.Series("x0", boxes[0][cand]),
        pl.Series("pos", np.arange(len(cand), dtype=np.int64)),
    )
    srt = df.sort(["s", "i", "l", "x0"], maintain_order=False).with_columns(
        new=pl.any_horizontal([pl.col(c).ne_missing(pl.col(c).shift(1)) for c in ("s", "i", "l")])
    )
    pos = srt["pos"].to_numpy()
    new = srt["new"].to_numpy().copy()
    new[0] = True
    gid = np.cumsum(new)
    rows = cand[pos]
    x0, y0, x1, y1 = (c[rows] for c in boxes)
    w = x1 - x0
    reach = x0 + (1.0 - threshold) * w + 1e-9 * (1.0 + np.abs(x0))
    m = len(rows)
    active = np.arange(m - 1)
    later_hits: list[np.ndarray] = []
    k = 1
    while active.size:
        j = active + k
        inside = j < m
        active, j = active[inside], j[inside]
        near = (gid[j] == gid[active]) & (x0[j] <= reach[active])
        active, j = active[near], j[near]
        if not active.size:
            break
        iou = B.iou((x0[active], y0[active], x1[active], y1[active]), (x0[j], y0[j], x1[j], y1[j]))
        hit = iou > threshold
        if hit.any():
            a, b = rows[active[hit]], rows[j[hit]]
            later_hits.append(np.where(_after(a, b, order), a, b))
        k += 1
    if later_hits:
        dup[np.concatenate(later_hits)] = True
    return dup


# --- the box checks --------------------------------------------------------------------------
def check_boxes(
    table: pa.Table, config: GeometryConfig | None = None, label_key: str = "raw_label"
) -> pa.Table:
    """Judge every box of a shard geometrically.

    Args:
        table: ``raw_instances`` rows (needs ``x0, y0, x1, y1, image_width, image_height,
            source_id, image_id`` and ``label_key``; uses ``is_crowd``, ``attributes``,
            ``polygon``, ``box_index`` and ``instance_id`` when present).
        config: thresholds; :class:`GeometryConfig` defaults when None.
        label_key: the column whose lower-cased, stripped value groups duplicates.

    Returns:
        a table aligned with ``table``'s rows: ``instance_id`` (when the input has it),
        ``flags`` (uint16, bit per reason: :data:`FLAG_BITS`), ``reason`` (first flag in
        :data:`PRECEDENCE`, null when clean), ``detail`` (every flag's name, comma-separated,
        null when clean) and ``x0, y0, x1, y1``: clipped to the image for boxes within the
        out-of-bounds tolerance, as read for non-finite and out-of-bounds boxes.
    """
    config = config or GeometryConfig()
    n = table.num_rows
    x0, y0, x1, y1 = (_floats(table, c) for c in ("x0", "y0", "x1", "y1"))
    W, H = _floats(table, "image_width"), _floats(table, "image_height")
    flags = np.zeros(n, dtype=np.uint16)

    def put(reason: str, mask: np.ndarray) -> None:
        flags[mask] |= np.uint16(FLAG_BITS[reason])

    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        finite = np.isfinite(x0) & np.isfinite(y0) & np.isfinite(x1) & np.isfinite(y1)
        put(Reason.NON_FINITE_BOX, ~finite)
        degenerate = finite & ((x1 <= x0) | (y1 <= y0))
        size_ok = np.isfinite(W) & np.isfinite(H) & (W > 0) & (H > 0)
        tol_x = np.maximum(config.oob_tolerance_px, config.oob_tolerance_frac * W)
        tol_y = np.maximum(config.oob_tolerance_px, config.oob_tolerance_frac * H)
        beyond = (
            (np.minimum(x0, x1) < -tol_x)
            | (np.maximum(x0, x1) > W + tol_x)
            | (np.minimum(y0, y1) < -tol_y)
            | (np.maximum(y0, y1) > H + tol_y)
        )
        oob = finite & (~size_ok | beyond)
        put(Reason.OUT_OF_BOUNDS, oob)
        clip = finite & ~oob
        cx0 = np.where(clip, np.clip(x0, 0.0, W), x0)
        cx1 = np.where(clip, np.clip(x1, 0.0, W), x1)
        cy0 = np.where(clip, np.clip(y0, 0.0, H), y0)
        cy1 = np.where(clip, np.clip(y1, 0.0, H), y1)
        degenerate |= clip & ((cx1 <= cx0) | (cy1 <= cy0))
        put(Reason.DEGENERATE_BOX, degenerate)
        usable = clip & ~degenerate
        w, h = cx1 - cx0, cy1 - cy0
        area = w * h
        image_area = W * H
        put(Reason.OVERSIZED_BOX, usable & (area > config.oversized_area_frac * image_area))
        # truncation: the attribute when it says yes or no, else the border margin
        says_yes = np.zeros(n, dtype=bool)
        says_no = np.zeros(n, dtype=bool)
        if "attributes" in table.column_names and n:
            attr = pc.map_lookup(table["attributes"], pa.scalar("truncated"), "first")
            attr = pc.utf8_trim_whitespace(pc.utf8_lower(attr))
            says_yes = np.asarray(pc.fill_null(pc.is_in(attr, pa.array(TRUNCATED_YES)), False))
            says_no = np.asarray(pc.fill_null(pc.is_in(attr, pa.array(TRUNCATED_NO)), False))
        mx = np.maximum(config.truncation_margin_px, config.truncation_margin_frac * W)
        my = np.maximum(config.truncation_margin_px, config.truncation_margin_frac * H)
        touching = (cx0 <= mx) | (cy0 <= my) | (cx1 >= W - mx) | (cy1 >= H - my)
        put(Reason.TRUNCATED_BOX, usable & (says_yes | (touching & ~says_no)))
        short, long = np.minimum(w, h), np.maximum(w, h)
        tiny = (short < config.tiny_min_side_px) | (area < config.tiny_min_area_frac * image_area)
        put(Reason.TINY_BOX, usable & tiny)
        put(Reason.EXTREME_ASPECT, usable & (long > config.max_aspect * short))
    put(Reason.CROWD_REGION, _bools(table, "is_crowd"))
    read_box = finite & ~degenerate
    put(
        Reason.INVALID_POLYGON,
        _polygon_checks(table, (x0, y0, x1, y1), read_box, config.polygon_bbox_min_iou),
    )
    # duplicates: only boxes with no other flag compete
    box_index = _ints_or(table, "box_index", np.int64)
    iid = _ints_or(table, "instance_id", np.uint64)
    competing = flags == 0
    dup = _duplicates(
        table, competing, (cx0, cy0, cx1, cy1), (box_index, iid), label_key, config.duplicate_iou
    )
    put(Reason.DUPLICATE_BOX, dup)
    return _result(table, flags, (cx0, cy0, cx1, cy1))


def _result(table: pa.Table, flags: np.ndarray, boxes: tuple[np.ndarray, ...]) -> pa.Table:
    n = len(flags)
    code = np.full(n, -1, dtype=np.int32)
    for k in range(len(PRECEDENCE) - 1, -1, -1):
        code[(flags & np.uint16(FLAG_BITS[PRECEDENCE[k]])) != 0] = k
    uniq, inverse = np.unique(flags, return_inverse=True)
    detail_names = [flag_names(int(v)) for v in uniq.tolist()]
    detail_code = np.where(flags == 0, -1, inverse.reshape(-1))
    columns: dict[str, pa.Array] = {}
    fields = list(CHECK_SCHEMA_FIELDS)
    if "instance_id" in table.column_names:
        columns["instance_id"] = pc.cast(table["instance_id"], pa.uint64())
        fields.insert(0, pa.field("instance_id", pa.uint64()))
    columns["flags"] = pa.array(flags, type=pa.uint16())
    columns["reason"] = _codes_to_strings(code, list(PRECEDENCE))
    columns["detail"] = _codes_to_strings(detail_code, detail_names)
    for name, values in zip(("x0", "y0", "x1", "y1"), boxes):
        columns[name] = pa.array(values, type=pa.float64())
    return pa.table(columns, schema=pa.schema(fields))


# --- source decisions ------------------------------------------------------------------------
def source_decisions(
    boxes: pa.Table,
    source_stats: pa.Table,
    config: GeometryConfig | None = None,
    seed: int = 0,
) -> pa.Table:
    """Keep or drop every source on geometric grounds.

    Args:
        boxes: one row per box that reached this stage: ``source_id``, ``image_id``, ``flags``
            (from :func:`check_boxes`) and ``reason`` (null when clean; a caller may merge label
            reasons in, which then count as not clean).
        source_stats: ``source_id``, ``images`` (every image the files described, with or
            without boxes), ``boxes_seen``.
        config: thresholds; defaults when None.
        seed: seeds the image sample; the same inputs and seed give the same rows.

    Returns:
        one row per source of either table, sorted by ``source_id``: ``source_id``,
        ``decision`` (keep | drop), ``reason`` (first of :data:`SOURCE_PRECEDENCE` that holds,
        null when kept), ``detail``, ``images_sampled``, ``oversized_in_sample``, ``images``,
        ``images_with_boxes``, ``miss_rate_estimate``, ``boxes``, ``clean_boxes``.

    Decisions:

    - oversized everywhere: the images of the source that have boxes are ordered by
      ``contracts.hashing.md5_64(seed, source_id, image_id)`` and the first
      ``sample_images`` are sampled (all of them when fewer). The source is dropped when every
      sampled image holds a box flagged ``oversized_box`` (report: drop the source when such
      boxes appear in all sampled images, else only those boxes).
    - missing annotations: the report judged this by looking at sampled images; no pixels are
      read here, so the miss rate is *estimated* as the fraction of the source's images that
      carry no box at all: ``1 - images_with_boxes / images``, with ``images`` from
      ``source_stats``. An image without any box is the clearest trace of objects left
      unannotated; the estimate misses images that are only partly annotated (it is a lower
      bound in that sense) and overcounts on sources that ship deliberate negative images
      (background-only frames), which is why only a majority of empty images triggers a drop.
      Sources with ``images == 0`` get no estimate (null) and are not dropped for it.
    - too few boxes: fewer than ``min_clean_boxes`` boxes with a null ``reason``.
    """
    config = config or GeometryConfig()
    bit = FLAG_BITS[Reason.OVERSIZED_BOX]
    b = pl.from_arrow(boxes.select(["source_id", "image_id", "flags", "reason"]))
    if not isinstance(b, pl.DataFrame):  # pragma: no cover - from_arrow of a table is a frame
        b = b.to_frame()
    b = b.with_columns(pl.col("source_id").cast(pl.String), pl.col("image_id").cast(pl.String))
    images = b.group_by(["source_id", "image_id"]).agg(
        ((pl.col("flags").cast(pl.UInt32) & bit) != 0).any().alias("oversized")
    )
    seeded = pl.concat_str(
        [pl.lit(str(int(seed))), pl.col("source_id"), pl.col("image_id")], separator="\x1f"
    )
    key_strings = images.select(seeded.alias("k"))["k"].to_arrow()
    images = images.with_columns(pl.Series("key", H.md5_64_array(key_strings)))
    sample = (
        images.sort(["source_id", "key", "image_id"])
        .with_columns(pl.int_range(pl.len()).over("source_id").alias("rank"))
        .filter(pl.col("rank") < config.sample_images)
        .group_by("source_id")
        .agg(
            pl.len().cast(pl.Int64).alias("images_sampled"),
            pl.col("oversized").sum().cast(pl.Int64).alias("oversized_in_sample"),
        )
    )
    per_source = b.group_by("source_id").agg(
        pl.len().cast(pl.Int64).alias("boxes"),
        pl.col("reason").is_null().sum().cast(pl.Int64).alias("clean_boxes"),
        pl.col("image_id").n_unique().cast(pl.Int64).alias("images_with_boxes"),
    )
    stats = pl.from_arrow(source_stats.select(["source_id", "images"])).with_columns(
        pl.col("source_id").cast(pl.String), pl.col("images").cast(pl.Int64)
    )
    stats = stats.group_by("source_id").agg(pl.col("images").sum())
    out = (
        stats.join(per_source, on="source_id", how="full", coalesce=True)
        .join(sample, on="source_id", how="left")
        .with_columns(
            pl.col(c).fill_null(0)
            for c in ("boxes", "clean_boxes", "images_with_boxes", "images_sampled")
        )
        .with_columns(pl.col("oversized_in_sample").fill_null(0))
    )
    empty_frac = 1.0 - pl.col("images_with_boxes") / pl.col("images")
    out = out.with_columns(
        pl.when(pl.col("images") > 0)
        .then(empty_frac.clip(0.0, 1.0))
        .otherwise(None)
        .alias("miss_rate_estimate")
    )
    oversized = (pl.col("images_sampled") > 0) & (
        pl.col("oversized_in_sample") == pl.col("images_sampled")
    )
    missing = pl.col("miss_rate_estimate").fill_null(0.0) > config.missing_annotation_rate
    too_few = pl.col("clean_boxes") < config.min_clean_boxes
    reason = (
        pl.when(oversized)
        .then(pl.lit(SOURCE_PRECEDENCE[0]))
        .when(missing)
        .then(pl.lit(SOURCE_PRECEDENCE[1]))
        .when(too_few)
        .then(pl.lit(SOURCE_PRECEDENCE[2]))
        .otherwise(None)
    )
    miss_text = pl.col("miss_rate_estimate").round(3).cast(pl.String).fill_null("n/a")
    detail = pl.format(
        "oversized box in {}/{} sampled images; estimated miss rate {} "
        "({} of {} images without boxes); {} clean of {} boxes",
        pl.col("oversized_in_sample"),
        pl.col("images_sampled"),
        miss_text,
        (pl.col("images").fill_null(0) - pl.col("images_with_boxes")).clip(0, None),
        pl.col("images").fill_null(0),
        pl.col("clean_boxes"),
        pl.col("boxes"),
    )
    out = out.with_columns(reason.alias("reason"), detail.alias("detail")).with_columns(
        pl.when(pl.col("reason").is_null())
        .then(pl.lit("keep"))
        .otherwise(pl.lit("drop"))
        .alias("decision")
    )
    out = out.sort("source_id").select(
        "source_id",
        "decision",
        "reason",
        "detail",
        "images_sampled",
        "oversized_in_sample",
        pl.col("images").fill_null(0),
        "images_with_boxes",
        "miss_rate_estimate",
        "boxes",
        "clean_boxes",
    )
    return pa.table(
        {name: out[name].to_arrow() for name in out.columns},
    ).cast(SOURCE_DECISIONS_SCHEMA)


SOURCE_DECISIONS_SCHEMA = pa.schema(
    [
        pa.field("source_id", pa.string()),
        pa.field("decision", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("detail", pa.string()),
        pa.field("images_sampled", pa.int64()),
        pa.field("oversized_in_sample", pa.int64()),
        pa.field("images", pa.int64()),
        pa.field("images_with_boxes", pa.int64()),
        pa.field("miss_rate_estimate", pa.float64()),
        pa.field("boxes", pa.int64()),
        pa.field("clean_boxes", pa.int64()),
    ]
)


__all__ = [
    "FLAG_BITS",
    "PRECEDENCE",
    "SOURCE_DECISIONS_SCHEMA",
    "SOURCE_PRECEDENCE",
    "GeometryConfig",
    "check_boxes",
    "flag_names",
    "source_decisions",
]
