"""LabelMe reader: one JSON file per image, boxes in ``shapes`` (docs/FORMATS.md, section labelme).

Box shapes are ``rectangle`` (two corners in any order: min/max), ``polygon`` (its bounding box,
polygon kept) and ``circle`` (centre and a rim point). ``point``, ``line`` and ``linestrip``
are not boxes and are not counted; any other shape type is a counted, malformed box.

A file is decoded by msgspec into typed Structs when it fits them (most files) and by the
stdlib ``json`` otherwise; both give the same ``_Doc``, and one loop applies the rules.
Corners and rings are computed with NumPy for all of a source's files at once
(:meth:`_LabelmeBoxes.convert`).
"""

from __future__ import annotations

import json
import posixpath
from itertools import chain
from typing import Any

import msgspec
import numpy as np

from vprim.assets.contracts.reasons import Reason
from vprim.assets.sources.readers.base import (
    PLAIN_NUMBER_TYPES,
    BoxReject,
    FormatReader,
    ParseError,
    ReadResult,
    Source,
    decode_text,
    image_dimension,
    json_number,
    kept_indexes,
    plain_name,
    reject_image,
)
from vprim.assets.sources.readers.columns import ImageBoxes, flat, one_ring_polygons, packed
from vprim.assets.sources.readers.images import (
    annotation_only,
    candidates,
    folder_of,
    index_of,
    missing,
    resolve,
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


def _flat_points(value: object) -> list[float] | str:
    """``[[x, y], ...]`` as flat floats ``[x0, y0, x1, y1, ...]`` (numbers, numeric strings,
    huge integers as +-inf), or what is wrong with it."""
    if not isinstance(value, list) or not value:
        return "no points" if not value else "points is not a list"
    plain = _plain_points(value)
    if plain is not None:  # the common case, checked over whole lists
        return plain
    out: list[float] = []
    for i, point in enumerate(value):
        if not isinstance(point, list) or len(point) != 2:
            return f"point {i} is not an [x, y] pair"
        x, y = json_number(point[0]), json_number(point[1])
        if x is None or y is None:
            return f"point {i} has a value that is not a number"
        out += (x, y)
    return out


_LIST_TYPE = frozenset({list})
_PAIR = frozenset({2})


def _plain_points(value: list) -> list[float] | None:
    """``[[x, y], ...]`` of plain JSON numbers, flat; None for anything else (numeric
    strings, huge integers, booleans, not pairs). The type checks run over whole lists
    (``map``), not a Python loop per point."""
    if set(map(type, value)) != _LIST_TYPE or set(map(len, value)) != _PAIR:
        return None
    flat_values = list(chain.from_iterable(value))
    if not PLAIN_NUMBER_TYPES.issuperset(map(type, flat_values)):
        return None
    try:
        return list(map(float, flat_values))
    except OverflowError:
        return None


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


# --- the two decoders: typed (msgspec) for the common file, json for any other ---------------
class _Shape(msgspec.Struct):
    """A shape as the file gives it. The typed decode fills it from JSON (a null reads as
    absent); the ``json`` decode builds it from a shape object, with ``points`` as (x, y)
    float pairs or a string saying what is wrong with them, and a ``shape_type`` that is not
    a string wrapped (:class:`_OddType`)."""

    label: str | int | None = None
    points: list[tuple[float, float]] | None = None
    shape_type: str | None = None
    flags: Any = None
    attributes: Any = None
    group_id: Any = None


class _Doc(msgspec.Struct):
    """A LabelMe file (its own key names)."""

    shapes: list[_Shape]
    imagePath: Any = None
    imageWidth: Any = None
    imageHeight: Any = None


_TYPED = msgspec.json.Decoder(_Doc)


def _typed_doc(data: bytes) -> _Doc | None:
    """The file decoded by msgspec into the typed Structs; None when they do not fit it.

    msgspec refuses what the stdlib ``json`` would read another way (NaN/Infinity tokens,
    1e400, lone surrogates, a BOM, booleans or strings where numbers belong), so a file it
    takes reads as :func:`_json_doc` reads it.
    """
    try:
        return _TYPED.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return None


def _json_doc(data: bytes, where: str) -> _Doc | None:
    """The file decoded by the stdlib ``json``; None for JSON that is not a LabelMe file."""
    try:
        doc = json.loads(decode_text(data, where))
    except (ValueError, RecursionError) as exc:
        raise ParseError(Reason.PARSE_INVALID_JSON, f"{where}: {exc}") from None
    if not isinstance(doc, dict) or "shapes" not in doc:
        return None  # another JSON file of the folder (a class list, a config)
    if not isinstance(doc["shapes"], list):
        raise ParseError(Reason.PARSE_INVALID_JSON, f"{where}: 'shapes' is not a list")
    shapes = [
        _Shape(
            shape.get("label"),
            _point_pairs(shape.get("points")),  # type: ignore[arg-type]
            _shape_type(shape.get("shape_type")),
            shape.get("flags"),
            shape.get("attributes"),
            shape.get("group_id"),
        )
        if isinstance(shape, dict)
        else _NOT_AN_OBJECT
        for shape in doc["shapes"]
    ]
    return _Doc(shapes, doc.get("imagePath"), doc.get("imageWidth"), doc.get("imageHeight"))


#: a shape that is not a JSON object (only the ``json`` decode makes one)
_NOT_AN_OBJECT = _Shape()


class _OddType:
    """A ``shape_type`` that is not a string: hashable, and printed as the value it holds."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __str__(self) -> str:
        return str(self.value)


def _shape_type(value: object) -> str | _OddType | None:
    return value if value is None or isinstance(value, str) else _OddType(value)


def _point_pairs(value: object) -> list[tuple[float, float]] | str:
    """``[[x, y], ...]`` (numbers, numeric strings, huge integers as +-inf) as float pairs,
    or what is wrong with it."""
    flat_values = _flat_points(value)
    if isinstance(flat_values, str):
        return flat_values
    return list(zip(flat_values[0::2], flat_values[1::2]))


def _shape_problem(shape: _Shape, shape_type: object) -> str:
    """What makes a box shape unusable, the first rule that applies (it has one)."""
    if shape is _NOT_AN_OBJECT:
        return "shape is not a JSON object"
    if not isinstance(shape_type, str) or shape_type not in BOX_SHAPES:
        return f"unsupported shape_type {str(shape_type)[:40]!r}"
    if not isinstance(_label(shape.label), str):
        return "no label string"
    points = shape.points
    if not points:
        return "no points"
    if isinstance(points, str):
        return points
    return f"{shape_type} has {len(points)} points, expected " + (
        "2 corners" if shape_type == "rectangle" else "centre and rim"
    )


def _label(label: object) -> str | None:
    """A shape's label: a string, or an integer as its digits; None otherwise."""
    if isinstance(label, str):
        return label
    if isinstance(label, int) and not isinstance(label, bool):
        return str(label)
    return None


class LabelmeReader(FormatReader):
    name = "labelme"
    read_ahead = True

    def detect(self, source: Source) -> bool:
        for path in source.walk((".json",))[:_DETECT_PEEK]:
            text = source.head_text(path) or ""
            if '"shapes"' in text and ('"imagePath"' in text or '"shape_type"' in text):
                return True
        return False

    def files(self, source: Source, context: object) -> list[str]:
        return source.walk((".json",))

    @staticmethod
    def _image_uri(source: Source, ref: object, path: str, where: str) -> str:
        """The image of the LabelMe file at ``path`` (docs/FORMATS.md "labelme"): ``imagePath``
        from the file's folder, then from the root; without one, an image with the file's
        stem beside it (``<stem>.jpg`` in an annotation-only source)."""
        own = folder_of(source, path)
        if isinstance(ref, str) and ref.strip():
            places = candidates((own, ""), posixpath.dirname(path))
            return resolve(source, ref.strip(), where, places)
        stem = posixpath.splitext(path)[0]
        index = index_of(source)
        if not index.present:
            annotation_only(source, index)
            return source.url(stem + ".jpg")
        found = index.with_stem(posixpath.splitext(plain_name(where))[0])
        if found is None:
            raise missing(f"{posixpath.basename(stem)}.<image extension>", (own,), where)
        return source.url(found)

    def read_file(self, source: Source, context: object, path: str) -> ReadResult:
        where = source.relpath(path)
        data = source.read_bytes(path)
        doc = _typed_doc(data) or _json_doc(data, where)
        if doc is None:
            return ReadResult()  # not an annotation: no image, nothing counted
        image_id = posixpath.splitext(plain_name(where))[0]

        # box shapes in order (point/line/linestrip are not boxes: not counted); those kept
        # go to the lists below, the others to `bad` with what is wrong with them
        labels: list[str] = []
        attributes: list[dict[str, str]] = []
        has_attributes = False
        kinds: list[int] = []
        counts: list[int] = []
        coords: list[float] = []
        bad: list[BoxReject] = []
        box_index = 0
        for shape in doc.shapes:
            shape_type = shape.shape_type
            if shape_type is None:
                shape_type = "polygon"  # LabelMe's own default
            elif shape_type in NOT_BOXES:
                continue
            kind = _SHAPE_CODES.get(shape_type)
            label, points = shape.label, shape.points
            if label.__class__ is not str:
                label = _label(label)
            if (
                kind is None
                or label is None
                or not points
                or points.__class__ is str
                or (kind != _POLYGON and len(points) != 2)
            ):
                detail = f"{where} shape {box_index}: {_shape_problem(shape, shape_type)}"
                bad.append(BoxReject(image_id, box_index, Reason.PARSE_MALFORMED_BOX, detail))
            else:
                labels.append(label)
                flags, extra, group_id = shape.flags, shape.attributes, shape.group_id
                if flags or extra or group_id is not None:
                    attributes.append(_attributes_of(flags, extra, group_id))
                    has_attributes = True
                else:
                    attributes.append(_NO_ATTRIBUTES)
                kinds.append(kind)
                counts.append(len(points))
                coords.extend(chain.from_iterable(points))
            box_index += 1

        try:
            image_uri = self._image_uri(source, doc.imagePath, path, where)
        except ParseError as exc:
            if not box_index:  # no box to reject, but the file must not vanish
                return ReadResult(record_errors=[exc])
            image_error: ParseError | None = exc
        else:
            if not box_index:
                return ReadResult(images=1)
            w, h = image_dimension(doc.imageWidth), image_dimension(doc.imageHeight)
            width, height, image_error = source.size_or_error(w, h, image_uri, where)
        if image_error is not None:
            return ReadResult(rejects=reject_image(image_id, bad, box_index, image_error), images=1)
        image = (image_id, image_uri, width, height)
        indexes = kept_indexes(bad, box_index) if bad else None  # None: 0, 1, ... all kept
        given = attributes if has_attributes else None
        geometry = (kinds, counts, packed("d", coords))
        boxes = _LabelmeBoxes(image, indexes, labels, given, geometry)
        return ReadResult(boxes, rejects=bad, images=1)


_SHAPE_CODES = {"rectangle": 0, "circle": 1, "polygon": 2}
_POLYGON = _SHAPE_CODES["polygon"]
_NO_ATTRIBUTES: dict[str, str] = {}  # read, never changed: one empty map serves all boxes


class _LabelmeBoxes(ImageBoxes):
    """The box shapes of one LabelMe file; geometry: ``(kinds, counts, coords)``, per box its
    kind (``_SHAPE_CODES``) and number of points, and the points, boxes end to end."""

    __slots__ = ()

    @classmethod
    def convert(cls, geometry: list[tuple], columns: dict) -> dict[str, object]:
        """Corners as each shape defines them: a rectangle's two corners and a polygon's
        points give their min/max, a circle is its centre +- the distance to its rim point.
        NaN stays NaN (min/max propagate it), so the quality stage sees the non-finite box."""
        kind_lists, count_lists, coord_lists = geometry or ((), (), ())
        coords = flat(coord_lists)
        counts = flat(count_lists, np.int64)
        kinds = flat(kind_lists, np.int8)
        xs, ys = coords[0::2], coords[1::2]
        starts = np.cumsum(counts) - counts
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
        polygon = one_ring_polygons(coords, 2 * counts, kinds == 2)
        x0, y0, x1, y1 = corners
        return {"x0": x0, "y0": y0, "x1": x1, "y1": y1, "polygon": polygon}
