"""EXIF orientation: displayed sizes, the stored-to-displayed coordinate map, and the size rule.

An image file stores its pixels in one orientation and may carry an EXIF ``Orientation`` tag
(0x0112, values 1-8) that tells a viewer how to show them: what Pillow's
``ImageOps.exif_transpose`` does. Orientations 5-8 swap the axes, so a 4000x3000 stored photo
with orientation 6 is displayed 3000x4000 (Ultralytics' ``exif_size`` swaps for 6 and 8 only,
and only for JPEG; we follow the EXIF specification and Pillow: 5-8, any format that has the
tag).

Annotations are taken to be in the displayed orientation, what annotation tools show. The one
evidence otherwise is the size an annotation states (:func:`resolve_sizes`). Everything here
works on NumPy columns, one call per table, no per-box Python.

Coordinates are continuous pixels: the corner of the image is (0, 0), the far corner is
(width, height), so a point maps by mirroring about the image edges (``W - x``), not the
last pixel centre (``W - 1 - x``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: EXIF tag of the orientation
ORIENTATION_TAG = 0x0112
#: orientations whose display swaps width and height (transpose, rotate 90, transverse, 270)
SWAPS_AXES = (5, 6, 7, 8)
# Displaying orientation o: transpose first when o swaps the axes, then mirror the displayed
# x axis (FLIP_U) and/or y axis (FLIP_V). Pillow's exif_transpose does the same per o:
# 2 FLIP_LEFT_RIGHT, 3 ROTATE_180, 4 FLIP_TOP_BOTTOM, 5 TRANSPOSE, 6 ROTATE_270,
# 7 TRANSVERSE, 8 ROTATE_90 (tests/sources/test_images.py checks every o against it).
_SWAP = np.array([False, False, False, False, False, True, True, True, True])
_FLIP_U = np.array([False, False, True, True, False, False, True, True, False])
_FLIP_V = np.array([False, False, False, True, True, False, False, True, True])


def valid_orientation(value: object) -> int:
    """The EXIF orientation as an int 1-8; 1 for absent, malformed or out-of-range values."""
    if isinstance(value, bytes | tuple | list) and len(value) == 1:  # some writers wrap it
        value = value[0]
    if isinstance(value, int | np.integer) and 1 <= int(value) <= 8:
        return int(value)
    return 1


def _orientations(orientation: np.ndarray | int, n: int) -> np.ndarray:
    """Orientation column as int64 indices; out-of-range values (and 0) count as 1."""
    o = np.broadcast_to(np.asarray(orientation, dtype=np.int64), (n,))
    return np.where((o >= 1) & (o <= 8), o, 1)


def displayed_size(
    width: np.ndarray, height: np.ndarray, orientation: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(width, height) as displayed: swapped for orientations 5-8.

    Args:
        width, height: stored sizes, shape ``(n,)``.
        orientation: EXIF orientations, shape ``(n,)`` (or a scalar).
    """
    width, height = np.asarray(width), np.asarray(height)
    swap = _SWAP[_orientations(orientation, width.shape[0])]
    return np.where(swap, height, width), np.where(swap, width, height)


def points_to_displayed(
    x: np.ndarray,
    y: np.ndarray,
    width: np.ndarray,
    height: np.ndarray,
    orientation: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Map points in stored pixels to displayed pixels.

    Args:
        x, y: float coordinates in the stored image, shape ``(n,)``.
        width, height: the STORED size of each point's image, shape ``(n,)``.
        orientation: EXIF orientation of each point's image, shape ``(n,)`` (or a scalar).

    Returns:
        ``(x, y)`` in the displayed image (orientation 1 and invalid values: unchanged).
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    o = _orientations(orientation, x.shape[0])
    swap = _SWAP[o]
    u, v = np.where(swap, y, x), np.where(swap, x, y)
    du, dv = displayed_size(width, height, o)
    return np.where(_FLIP_U[o], du - u, u), np.where(_FLIP_V[o], dv - v, v)


def boxes_to_displayed(
    x0: np.ndarray,
    y0: np.ndarray,
    x1: np.ndarray,
    y1: np.ndarray,
    width: np.ndarray,
    height: np.ndarray,
    orientation: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Map boxes ``x0, y0, x1, y1`` in stored pixels to displayed pixels.

    A proper box (``x0 < x1``, ``y0 < y1``) stays proper. The map is taken edge by edge, not
    corner by corner with a min/max, so an inverted box stays inverted and the geometry stage
    still sees it (docs/FORMATS.md: coordinates are never reordered).

    Args:
        x0, y0, x1, y1: shape ``(n,)`` each.
        width, height: the STORED image sizes, shape ``(n,)``.
        orientation: shape ``(n,)`` (or a scalar).
    """
    x0, y0, x1, y1 = (np.asarray(a, dtype=np.float64) for a in (x0, y0, x1, y1))
    o = _orientations(orientation, x0.shape[0])
    swap = _SWAP[o]
    u0, v0 = np.where(swap, y0, x0), np.where(swap, x0, y0)
    u1, v1 = np.where(swap, y1, x1), np.where(swap, x1, y1)
    du, dv = displayed_size(width, height, o)
    flip_u, flip_v = _FLIP_U[o], _FLIP_V[o]
    # mirroring exchanges the two edges: the new left edge is the mirror of the old right one
    return (
        np.where(flip_u, du - u1, u0),
        np.where(flip_v, dv - v1, v0),
        np.where(flip_u, du - u0, u1),
        np.where(flip_v, dv - v0, v1),
    )


def polygons_to_displayed(
    polygons: pa.Array | pa.ChunkedArray,
    width: np.ndarray,
    height: np.ndarray,
    orientation: np.ndarray,
) -> pa.Array:
    """Map a ``polygon`` column (rows of rings, each ring a flat ``[x0, y0, x1, y1, ...]``).

    Null rows stay null and every ring keeps its length. A ring of odd length keeps its last,
    unpaired value as it is (the geometry stage judges such a ring).

    Args:
        polygons: ``list<list<float64>>``, one row per box, shape ``(n,)``.
        width, height: the STORED image size of each row, shape ``(n,)``.
        orientation: the orientation of each row, shape ``(n,)`` (or a scalar).
    """
    if isinstance(polygons, pa.ChunkedArray):
        polygons = polygons.combine_chunks()
    polygons = pa.concat_arrays([polygons])  # a fresh array: offsets start at 0
    rings = polygons.values
    values = rings.values.to_numpy(zero_copy_only=False).astype(np.float64, copy=True)
    ring_of_value = pc.list_parent_indices(rings).to_numpy()
    row_of_ring = pc.list_parent_indices(polygons).to_numpy()
    row = row_of_ring[ring_of_value]
    ring_start = rings.offsets.to_numpy()[:-1]
    ring_end = rings.offsets.to_numpy()[1:]
    position = np.arange(values.shape[0]) - ring_start[ring_of_value]
    # a point is (values[k], values[k + 1]) with k even within its ring and k + 1 in the ring
    first = np.flatnonzero(
        (position % 2 == 0) & (np.arange(values.shape[0]) + 1 < ring_end[ring_of_value])
    )
    o = _orientations(orientation, len(polygons))[row[first]]
    w = np.asarray(width)[row[first]]
    h = np.asarray(height)[row[first]]
    x, y = points_to_displayed(values[first], values[first + 1], w, h, o)
    values[first], values[first + 1] = x, y
    new_rings = pa.ListArray.from_arrays(rings.offsets, pa.array(values, pa.float64()))
    return pa.ListArray.from_arrays(
        polygons.offsets, new_rings, type=polygons.type, mask=polygons.is_null()
    )


class SizeResolution(NamedTuple):
    """What :func:`resolve_sizes` decides per row (each of shape ``(n,)``).

    ``width``, ``height``: the image size the row carries from now on (the displayed size;
    meaningless where ``mismatch``). ``to_displayed``: the row's coordinates are in stored
    pixels and must go through :func:`boxes_to_displayed` / :func:`polygons_to_displayed`.
    ``mismatch``: the stated size is neither the stored nor the displayed size
    (``image_size_mismatch``).
    """

    width: np.ndarray
    height: np.ndarray
    to_displayed: np.ndarray
    mismatch: np.ndarray


def resolve_sizes(
    annotated_width: np.ndarray,
    annotated_height: np.ndarray,
    stored_width: np.ndarray,
    stored_height: np.ndarray,
    orientation: np.ndarray,
) -> SizeResolution:
    """Apply the EXIF size rule (docs/FORMATS.md, "images") to each annotation row.

    - No size of its own (null/NaN or <= 0 in either axis; YOLO, whose size comes from the
      header): the displayed size, coordinates as they are.
    - Stated size equal to the displayed size: as it is (square images always land here).
    - Orientation 5-8 and stated size equal to the stored size (not the displayed one): the
      coordinates are in stored pixels; ``to_displayed`` and the displayed size.
    - Anything else, one pixel off included: ``mismatch``.

    Args:
        annotated_width, annotated_height: the size the annotation states, shape ``(n,)``.
        stored_width, stored_height: the header's stored size (probe status ``ok``).
        orientation: the header's EXIF orientation, shape ``(n,)``.
    """
    aw = np.asarray(annotated_width, dtype=np.float64)
    ah = np.asarray(annotated_height, dtype=np.float64)
    sw = np.asarray(stored_width, dtype=np.int64)
    sh = np.asarray(stored_height, dtype=np.int64)
    o = _orientations(orientation, aw.shape[0])
    dw, dh = displayed_size(sw, sh, o)
    with np.errstate(invalid="ignore"):
        stated = (aw > 0) & (ah > 0)  # NaN compares False: no size of its own
    is_displayed = stated & (aw == dw) & (ah == dh)
    is_stored = stated & _SWAP[o] & (aw == sw) & (ah == sh) & ~is_displayed
    return SizeResolution(
        width=dw,
        height=dh,
        to_displayed=is_stored,
        mismatch=stated & ~is_displayed & ~is_stored,
    )
