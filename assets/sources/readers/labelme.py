"""LabelMe reader: one JSON file per image, boxes in ``shapes`` (docs/FORMATS.md, section labelme).

Box shapes are ``rectangle`` (two corners in any order: min/max), ``polygon`` (its bounding box,
polygon kept) and ``circle`` (centre and a rim point). ``point``, ``line`` and ``linestrip``
are not boxes and are not counted; any other shape type is a counted, malformed box.
"""

from __future__ import annotations

import json
import posixpath
from itertools import chain
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa

from vprim.assets.contracts.reasons import Reason
from vprim.assets.sources.readers.base import (
    IMAGE_EXTENSIONS,
    PLAIN_NUMBER_TYPES,
    BoxColumns,
    BoxReject,
    FormatReader,
    ParseError,
    PerImageBulk,
    ReadResult,
    Source,
    image_dimension,
    json_number,
    one_ring_polygons,
    plain_utf8,
    reader_table,
)

NOT_BOXES = frozenset({"point", "line", "linestrip"})
BOX_SHAPES = frozenset({"rectangle", "polygon", "circle"})
_DETECT_PEEK = 20


def _as_string(value: object) -> str:
    """An attribute value as a string: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return str(value)


def _points(value: object) -> np.ndarray | str:
    """``[[x, y], ...]`` as an (n, 2) float array, or what is wrong with it."""
    if not isinstance(value, list) or not value:
        return "no points" if not value else "points is not a list"
    out = np.empty((len(value), 2), dtype=np.float64)
    for i, point in enumerate(value):
        if not isinstance(point, list) or len(point) != 2:
            return f"point {i} is not an [x, y] pair"
        x, y = json_number(point[0]), json_number(point[1])
        if x is None or y is None:
            return f"point {i} has a value that is not a number"
        out[i] = x, y
    return out


def _shape_box(
    shape_type: str, points: np.ndarray
) -> tuple[tuple[float, float, float, float], list[list[float]] | None] | str:
    """(xyxy, polygon) of a box shape, or what is wrong with it. NaN stays NaN (min/max
    propagate it), so the quality stage sees the non-finite box."""
    n = len(points)
    if shape_type == "rectangle":
        if n != 2:
            return f"rectangle has {n} points, expected 2 corners"
        lo, hi = np.minimum(points[0], points[1]), np.maximum(points[0], points[1])
        return (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])), None
    if shape_type == "circle":
        if n != 2:
            return f"circle has {n} points, expected centre and rim"
        (cx, cy), (rx, ry) = points
        r = float(np.hypot(rx - cx, ry - cy))
        return (cx - r, cy - r, cx + r, cy + r), None
    lo, hi = points.min(axis=0), points.max(axis=0)
    return (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])), [points.ravel().tolist()]


def _attributes(shape: dict) -> dict[str, str]:
    return _attributes_of(shape.get("flags"), shape.get("attributes"), shape.get("group_id"))


def _attributes_of(flags: object, extra: object, group_id: object) -> dict[str, str]:
    """A shape's attribute map: its true flags, its ``attributes`` and its ``group_id``."""
    attributes: dict[str, str] = {}
    if isinstance(flags, dict):
        for name, value in flags.items():
            if value is True:
                attributes[f"flag:{name}"] = "true"
    if isinstance(extra, dict):
        for name, value in extra.items():
            attributes[str(name)] = _as_string(value)
    if group_id is not None:
        attributes["group_id"] = _as_string(group_id)
    return attributes


class LabelmeReader(FormatReader):
    name = "labelme"

    def detect(self, source: Source) -> bool:
        for path in source.walk((".json",))[:_DETECT_PEEK]:
            text = source.head_text(path) or ""
            if '"shapes"' in text and ('"imagePath"' in text or '"shape_type"' in text):
                return True
        return False

    def files(self, source: Source, context: object) -> list[str]:
        return source.walk((".json",))

    def _image_uri(self, source: Source, doc: dict, path: str) -> str:
        folder = posixpath.dirname(path)
        ref = doc.get("imagePath")
        if isinstance(ref, str) and ref.strip():
            return source.image_uri(ref.strip(), base=folder)
        # No imagePath: an image with the JSON's stem beside it (default <stem>.jpg).
        stem = posixpath.splitext(path)[0]
        for ext in IMAGE_EXTENSIONS:
            if source.fs.exists(stem + ext):
                return source.url(stem + ext)
        return source.url(stem + ".jpg")

    def read_file(self, source: Source, context: object, path: str) -> ReadResult:
        where = source.relpath(path)
        try:
            doc = json.loads(source.read_text(path))
        except (ValueError, RecursionError) as exc:
            raise ParseError(Reason.PARSE_INVALID_JSON, f"{where}: {exc}") from None
        if not isinstance(doc, dict) or "shapes" not in doc:
            # Another JSON file of the folder (a class list, a config): not an annotation.
            return ReadResult(boxes=BoxColumns().table(), images=0)
        shapes = doc["shapes"]
        if not isinstance(shapes, list):
            raise ParseError(Reason.PARSE_INVALID_JSON, f"{where}: 'shapes' is not a list")
        image_id = posixpath.splitext(where)[0]

        # (box_index, shape, shape_type); point/line/linestrip are not boxes: not counted
        boxes: list[tuple[int, object, object]] = []
        for shape in shapes:
            shape_type = shape.get("shape_type") if isinstance(shape, dict) else None
            if shape_type is None:
                shape_type = "polygon"  # LabelMe's own default
            if isinstance(shape_type, str) and shape_type in NOT_BOXES:
                continue
            boxes.append((len(boxes), shape, shape_type))

        image_error: ParseError | None = None
        image_uri = ""
        width = height = 0
        try:
            image_uri = self._image_uri(source, doc, path)
        except ParseError as exc:
            image_error = exc
        if image_error is not None and not boxes:
            return ReadResult(boxes=BoxColumns().table(), images=0, record_errors=[image_error])
        if image_error is None and boxes:
            w, h = image_dimension(doc.get("imageWidth")), image_dimension(doc.get("imageHeight"))
            width, height, image_error = source.size_or_error(w, h, image_uri, where)

        columns = BoxColumns()
        rejects: list[BoxReject] = []
        for box_index, shape, shape_type in boxes:
            result = self._box(shape, shape_type)
            if isinstance(result, str):
                detail = f"{where} shape {box_index}: {result}"
                rejects.append(BoxReject(image_id, box_index, Reason.PARSE_MALFORMED_BOX, detail))
                continue
            if image_error is not None:
                rejects.append(BoxReject.of(image_id, box_index, image_error))
                continue
            label, xyxy, polygon = result
            assert isinstance(shape, dict)
            columns.add(
                image_id=image_id,
                image_uri=image_uri,
                width=width,
                height=height,
                box_index=box_index,
                label=label,
                xyxy=xyxy,
                attributes=_attributes(shape),
                polygon=polygon,
            )
        return ReadResult(boxes=columns, rejects=rejects, images=1)

    @staticmethod
    def _box(
        shape: object, shape_type: object
    ) -> tuple[str, tuple[float, float, float, float], list[list[float]] | None] | str:
        """(label, xyxy, polygon) of one box shape, or what is wrong with it."""
        if not isinstance(shape, dict):
            return "shape is not a JSON object"
        if not isinstance(shape_type, str) or shape_type not in BOX_SHAPES:
            return f"unsupported shape_type {str(shape_type)[:40]!r}"
        label = shape.get("label")
        if isinstance(label, int) and not isinstance(label, bool):
            label = str(label)
        if not isinstance(label, str):
            return "no label string"
        points = _points(shape.get("points"))
        if isinstance(points, str):
            return points
        box = _shape_box(shape_type, points)
        if isinstance(box, str):
            return box
        xyxy, polygon = box
        return label, xyxy, polygon

    def bulk(self, source: Source, context: object) -> _LabelmeBulk:
        return _LabelmeBulk(self, source)


_SHAPE_CODES = {"rectangle": 0, "circle": 1, "polygon": 2}


# --- msgspec Structs of the bulk path's typed decode ------------------------------------------
class _FastShape(msgspec.Struct):
    """A shape whose fields have the types the bulk path takes (a JSON null reads as absent)."""

    label: str | int | None = None
    points: list[tuple[float, float]] | None = None
    shape_type: str | None = None
    flags: Any = None
    attributes: Any = None
    group_id: Any = None


class _FastDoc(msgspec.Struct):
    """A LabelMe file (its own key names)."""

    shapes: list[_FastShape]
    imagePath: Any = None
    imageWidth: Any = None
    imageHeight: Any = None


_FAST_DECODER = msgspec.json.Decoder(_FastDoc)


class _LabelmeBulk(PerImageBulk):
    """LabelMe files in bulk: JSON is decoded and checked per file, corners and rings are
    computed with NumPy once per source. Declined: a file with a bad shape, points that are
    not plain numbers, no usable size or image path, a BOM."""

    def __init__(self, reader: LabelmeReader, source: Source) -> None:
        super().__init__(source)
        self.reader = reader
        self.kinds: list[int] = []  # _SHAPE_CODES
        self.points_per_box: list[int] = []
        self.coords: list[float] = []

    def add(self, path: str) -> int:
        data = self.source.read_bytes(path)
        try:
            fast = _FAST_DECODER.decode(data)
        except (msgspec.DecodeError, RecursionError):
            return self._add_doc(path, self._doc(data))
        return self._add_fast(path, fast)

    def _add_fast(self, path: str, doc: _FastDoc) -> int:
        """A file msgspec decoded into the typed Structs: numbers are plain JSON numbers and
        points are pairs already, so what is left to check is per shape, not per point.
        msgspec rejects what the stdlib reads another way (NaN, 1e400, lone surrogates)."""
        width, height = image_dimension(doc.imageWidth), image_dimension(doc.imageHeight)
        if width is None or height is None:
            return -1
        labels, kinds, counts, coords, attributes = [], [], [], [], []
        for shape in doc.shapes:
            shape_type = "polygon" if shape.shape_type is None else shape.shape_type
            if shape_type in NOT_BOXES:
                continue
            kind = _SHAPE_CODES.get(shape_type)
            label, points = shape.label, shape.points
            if kind is None or label is None or not points or (kind != 2 and len(points) != 2):
                return -1  # a rectangle or circle is two points
            labels.append(label if isinstance(label, str) else str(label))
            kinds.append(kind)
            counts.append(len(points))
            coords.extend(chain.from_iterable(points))
            has_attributes = shape.flags or shape.attributes or shape.group_id is not None
            attributes.append(
                _attributes_of(shape.flags, shape.attributes, shape.group_id)
                if has_attributes
                else {}
            )
        return self._take(path, {"imagePath": doc.imagePath}, kinds, counts, coords,
                          (width, height, labels, attributes))  # fmt: skip

    def _add_doc(self, path: str, doc: dict | None) -> int:
        if doc is None:
            return -1
        width, height = (
            image_dimension(doc.get("imageWidth")),
            image_dimension(doc.get("imageHeight")),
        )
        if width is None or height is None:
            return -1
        labels, kinds, counts, coords, attributes = [], [], [], [], []
        for shape in doc["shapes"]:
            if not isinstance(shape, dict):
                return -1
            shape_type = shape.get("shape_type")
            shape_type = "polygon" if shape_type is None else shape_type
            if isinstance(shape_type, str) and shape_type in NOT_BOXES:
                continue
            kind = _SHAPE_CODES.get(shape_type) if isinstance(shape_type, str) else None
            label = shape.get("label")
            if isinstance(label, int) and not isinstance(label, bool):
                label = str(label)
            points = _plain_points(shape.get("points"))
            if kind is None or not isinstance(label, str) or points is None:
                return -1
            if kind != 2 and len(points) != 4:
                return -1  # a rectangle or circle is two points
            labels.append(label)
            kinds.append(kind)
            counts.append(len(points) // 2)
            coords.extend(points)
            attributes.append(_attributes(shape))
        return self._take(path, doc, kinds, counts, coords, (width, height, labels, attributes))

    def _take(self, path: str, doc: dict, kinds, counts, coords, image) -> int:
        """Record a file every box of which was taken; -1 (declined) if its image path is."""
        width, height, labels, attributes = image
        image_id = posixpath.splitext(self.source.relpath(path))[0]
        try:
            image_uri = self.reader._image_uri(self.source, doc, path)
        except ParseError:
            return -1
        self.kinds.extend(kinds)
        self.points_per_box.extend(counts)
        self.coords.extend(coords)
        return self.take_image((image_id, image_uri, width, height), labels, attributes)

    @staticmethod
    def _doc(data: bytes) -> dict | None:
        try:
            text = plain_utf8(data)
            doc = json.loads(text) if text is not None else None
        except (ParseError, ValueError, RecursionError):
            return None
        if not isinstance(doc, dict) or not isinstance(doc.get("shapes"), list):
            return None
        return doc

    def table(self) -> pa.Table:
        corners, rings, is_polygon = _corners(
            np.array(self.coords, dtype=np.float64),
            np.array(self.points_per_box, dtype=np.int64),
            np.array(self.kinds, dtype=np.int8),
        )
        return reader_table(
            {
                **self.image_columns(),
                "x0": corners[0],
                "y0": corners[1],
                "x1": corners[2],
                "y1": corners[3],
                "polygon": one_ring_polygons(
                    rings, 2 * np.array(self.points_per_box, dtype=np.int64), is_polygon
                ),
            }
        )


_LIST_TYPE = frozenset({list})
_PAIR = frozenset({2})


def _plain_points(value: object) -> list[float] | None:
    """``[[x, y], ...]`` of plain JSON numbers, flat; None for anything :func:`_points` would
    reject or read another way (numeric strings, huge integers, booleans). The type checks run
    over whole lists (``map``), not a Python loop per point."""
    if not isinstance(value, list) or not value:
        return None
    if set(map(type, value)) != _LIST_TYPE or set(map(len, value)) != _PAIR:
        return None
    flat = list(chain.from_iterable(value))
    if not PLAIN_NUMBER_TYPES.issuperset(map(type, flat)):
        return None
    try:
        return list(map(float, flat))
    except OverflowError:
        return None


def _corners(coords: np.ndarray, counts: np.ndarray, kinds: np.ndarray):
    """``x0, y0, x1, y1`` of every shape as :func:`_shape_box` computes them, the coordinates,
    and which shapes are polygons (whose ring is kept)."""
    xs, ys = coords[0::2], coords[1::2]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    if len(counts):
        corners = [
            np.minimum.reduceat(xs, starts),
            np.minimum.reduceat(ys, starts),
            np.maximum.reduceat(xs, starts),
            np.maximum.reduceat(ys, starts),
        ]
    else:
        corners = [np.zeros(0) for _ in range(4)]
    circle = np.flatnonzero(kinds == 1)
    if len(circle):
        cx, cy = xs[starts[circle]], ys[starts[circle]]
        r = np.hypot(xs[starts[circle] + 1] - cx, ys[starts[circle] + 1] - cy)
        for i, value in enumerate((cx - r, cy - r, cx + r, cy + r)):
            corners[i][circle] = value
    return corners, coords, kinds == 2
