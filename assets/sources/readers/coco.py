"""COCO instances reader: streams a JSON file of any size into columns.

A COCO file of hundreds of MB is never held as per-box Python objects. It is read through the
source's fsspec filesystem in blocks and scanned by :mod:`~vprim.assets.sources.readers.jsonscan`,
which decodes the elements of the ``images``, ``annotations`` and ``categories`` arrays in
batches, with msgspec, into Structs that declare only the fields the reader needs. Each batch
becomes NumPy/Arrow columns at once in its accumulator (``_Images``, ``_Annotations``,
``_Categories``) and its Structs are dropped. Polygon rings are kept as raw bytes by msgspec
and their numbers parsed in bulk by Arrow's CSV parser (no Python float per coordinate). A
batch that does not fit the fast Structs (a malformed bbox, string ids, ``NaN`` tokens that
msgspec rejects) is converted element by element from its generic decode: that is the rare
path. Images and categories are joined to annotations at the end with ``np.searchsorted`` over
sorted ids. The cyclic GC is paused while a file is read (it would rescan millions of
short-lived containers).

Semantics (``docs/FORMATS.md``, "coco"): ``image_id = str(image["id"])``; label = the category's
``name``; ``bbox`` xywh -> xyxy; ``is_crowd = iscrowd == 1`` or ``ignore`` set (``true`` or a
number other than 0: mmdetection's and Objects365's boxes to ignore); ``polygon`` = a non-empty
list of polygons (rings of numbers), null for RLE or anything else; ``attributes`` = the
annotation's ``attributes`` object with string values as they are and other values as compact
JSON text (``1``, ``true``, ``null``), plus ``ignore`` when that flag is set. Images are found
among the source's files (``readers/images.py``; folders tried: :func:`_image_places`).
Box-level rejects, first that applies: unknown image, the image's own problem (path escape,
no ``file_name``, image not among the source's files, no size in the file nor in the image
header), unknown or unnamed category, malformed bbox.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import math
import posixpath
import re
from itertools import chain
from operator import attrgetter
from typing import IO, Any, ClassVar

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from vprim.assets.contracts import schemas as S
from vprim.assets.contracts.reasons import Reason
from vprim.assets.sources.readers.base import (
    BoxReject,
    FormatReader,
    ParseError,
    ReadResult,
    Source,
    compression_of,
    plain_name,
)
from vprim.assets.sources.readers.images import Candidates, candidates, folder_of, resolve_column
from vprim.assets.sources.readers.jsonscan import ArrayStream, SlowPath, open_utf8

#: Bytes read per block; tests shrink it so that blocks cut through strings and numbers.
BLOCK_SIZE = 32 << 20
#: Elements decoded per msgspec call.
BATCH_SIZE = 50_000
#: Bytes ``detect`` reads from the head (and the tail) of a JSON file.
PEEK_BYTES = 64 << 10
#: JSON files ``detect`` looks at before giving up.
DETECT_MAX_FILES = 32

_INT64_MAX = 2**63 - 1
_INT32_MAX = 2**31 - 1

_NUMBER_BYTES = b"0123456789.eE+-,[] \t\r\n"  # all a ring of plain numbers may hold
_NUMBERS_TO_LINES = bytes.maketrans(b",[] \t\r", b"\n" * 6)
_COCO_IMAGES = re.compile(rb'"images"\s*:\s*\[')
_COCO_ANNOTATIONS = re.compile(rb'"annotations"\s*:\s*\[')


# --- msgspec Structs of the fast path (only the fields the reader needs) -------------------
class _RLE(msgspec.Struct):
    """Any JSON object in ``segmentation`` (an RLE mask): skipped, never a polygon."""


class _AnnFast(msgspec.Struct):
    image_id: int
    category_id: int
    bbox: tuple[float, float, float, float]
    iscrowd: int = 0
    ignore: Any = 0  # mmdetection's / Objects365's "ignore this box" flag
    segmentation: list[msgspec.Raw] | _RLE | None = None  # polygon rings, parsed in bulk
    attributes: dict[str, Any] | None = None


class _ImageFast(msgspec.Struct):
    id: int
    file_name: str
    width: int
    height: int


class _CategoryFast(msgspec.Struct):
    id: int
    name: str


# --- small pure helpers (shared with the rare path) ----------------------------------------
def _valid_key(value: object) -> bool:
    """Ids that can name an image or a category (JSON scalars other than null)."""
    return isinstance(value, str | int | float)


def _int_keys(values: list) -> np.ndarray | list:
    """int64 array when every id is a plain int that fits, else the list of Python values."""
    if all(type(v) is int for v in values):
        try:
            return np.array(values, dtype=np.int64)
        except OverflowError:
            pass
    return values


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _bbox_problem(bbox: object) -> str | None:
    """Why ``bbox`` is not four numbers, or None when it is."""
    if bbox is None:
        return "bbox is missing"
    if not isinstance(bbox, list):
        return f"bbox is {type(bbox).__name__}, not a list"
    if len(bbox) != 4:
        return f"bbox has {len(bbox)} values, expected 4"
    if not all(_is_number(v) for v in bbox):
        return "bbox has a non-numeric value"
    try:
        [float(v) for v in bbox]
    except OverflowError:
        return "bbox has a number out of range"
    return None


def _polygon(seg: object) -> list[list[float]] | None:
    """``segmentation`` as polygon rings when it is a non-empty list of lists of numbers."""
    if not isinstance(seg, list) or not seg:
        return None
    if not all(isinstance(r, list) and all(_is_number(v) for v in r) for r in seg):
        return None
    try:
        return [[float(v) for v in r] for r in seg]
    except OverflowError:
        return None


def _ring_polygons(segs: list) -> pa.Array:
    """Polygon column of a batch whose segmentations were decoded as lists of raw rings.

    The rings of the whole batch are joined into one buffer and their numbers parsed in bulk
    by Arrow's CSV reader (correctly rounded, as ``json`` is); ring lengths come from the
    commas. Anything but rings of plain numbers goes through ``_polygon`` seg by seg.
    """
    n = len(segs)
    n_rings = np.fromiter(
        (len(s) if s.__class__ is list else 0 for s in segs), dtype=np.int64, count=n
    )
    total = int(n_rings.sum())
    if total == 0:
        return pa.nulls(n, S.POLYGON_TYPE)
    rings = list(chain.from_iterable(s for s in segs if s.__class__ is list))
    joined = b"".join(rings)
    values = None
    if (
        joined.count(b"[") == total
        and joined.count(b"]") == total
        and not joined.translate(None, _NUMBER_BYTES)
    ):
        ring_ends = np.cumsum(np.fromiter(map(len, rings), dtype=np.int64, count=total))
        commas = np.flatnonzero(np.frombuffer(joined, dtype=np.uint8) == 0x2C)
        per_ring = np.diff(np.searchsorted(commas, ring_ends), prepend=0) + 1
        values = _parse_numbers(joined.translate(_NUMBERS_TO_LINES))
        if values is None or len(values) != int(per_ring.sum()):
            values = None  # an empty ring, or text Arrow reads differently: the slow way
    if values is None:
        return pa.array(
            [_polygon(_raw_rings(s)) if s.__class__ is list else None for s in segs],
            type=S.POLYGON_TYPE,
        )
    ring_offsets = np.zeros(total + 1, dtype=np.int32)
    np.cumsum(per_ring, out=ring_offsets[1:])
    inner = pa.ListArray.from_arrays(pa.array(ring_offsets), values)
    seg_offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(n_rings, out=seg_offsets[1:])
    return pa.ListArray.from_arrays(
        pa.array(seg_offsets), inner, type=S.POLYGON_TYPE, mask=pa.array(n_rings == 0)
    )


def _raw_rings(rings: list) -> object:
    data = b"".join((b"[", b",".join(rings), b"]"))
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError:
        return json.loads(data)


def _parse_numbers(lines: bytes) -> pa.Array | None:
    """float64 of one JSON number per line (empty lines skipped); None if any is not one."""
    try:
        table = pa_csv.read_csv(
            pa.py_buffer(lines),
            read_options=pa_csv.ReadOptions(
                autogenerate_column_names=True, block_size=max(1 << 20, len(lines) // 2 + 1)
            ),
            parse_options=pa_csv.ParseOptions(quote_char=False, ignore_empty_lines=True),
            convert_options=pa_csv.ConvertOptions(
                column_types={"f0": pa.float64()}, null_values=[], strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, ValueError):
        return None
    if table.num_columns != 1 or table.column(0).null_count:
        return None
    return table.column(0).combine_chunks()


def _attr_text(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _attribute_pairs(attrs: object) -> list[tuple[str, str]]:
    """The ``attributes`` object as (key, string value) pairs; anything else: none."""
    if not isinstance(attrs, dict):
        return []
    return [(str(k), _attr_text(v)) for k, v in attrs.items()]


def _ignored(ignores: list) -> np.ndarray | None:
    """Per annotation, whether its ``ignore`` flag is set (``true`` or a number other than
    0); None when none is (the common case: one list scan, no array)."""
    if ignores.count(0) == len(ignores):  # 0, 0.0 and false all equal 0
        return None
    return np.fromiter(
        (v is True or (_is_number(v) and v != 0) for v in ignores), dtype=bool, count=len(ignores)
    )


def _with_ignore(attrs: object, value: object) -> dict:
    """The annotation's attributes with its ``ignore`` flag added (its own key, if it has one,
    wins): the flag is kept, though ``is_crowd`` already says it."""
    merged = dict(attrs) if isinstance(attrs, dict) else {}
    merged.setdefault("ignore", value)
    return merged


def _size_value(value: object) -> int:
    """A width/height that can be used (a positive number, truncated), else -1."""
    if not _is_number(value):
        return -1
    try:
        number = float(value)
    except OverflowError:
        return -1
    return int(number) if math.isfinite(number) and 1 <= number <= _INT32_MAX else -1


def _map_chunk(pairs_per_row: list[list[tuple[str, str]]]) -> pa.Array:
    counts = np.fromiter(map(len, pairs_per_row), dtype=np.int32, count=len(pairs_per_row))
    offsets = np.zeros(len(pairs_per_row) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    flat = list(chain.from_iterable(pairs_per_row))
    keys = pa.array([k for k, _ in flat], pa.string())
    items = pa.array([v for _, v in flat], pa.string())
    return pa.MapArray.from_arrays(pa.array(offsets), keys, items, type=S.ATTRIBUTES_TYPE)


def _empty_maps(n: int) -> pa.Array:
    return pa.MapArray.from_arrays(
        pa.array(np.zeros(n + 1, dtype=np.int32)),
        pa.array([], pa.string()),
        pa.array([], pa.string()),
        type=S.ATTRIBUTES_TYPE,
    )


def _lookup_int(defined: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Index into ``defined`` of each of ``wanted`` (last definition wins), -1 when absent."""
    if len(defined) == 0:
        return np.full(len(wanted), -1, dtype=np.int64)
    order = np.argsort(defined, kind="stable")
    ids = defined[order]
    last = np.ones(len(ids), dtype=bool)
    last[:-1] = ids[1:] != ids[:-1]
    ids, rows = ids[last], order[last]
    at = np.minimum(np.searchsorted(ids, wanted), len(ids) - 1)
    return np.where(ids[at] == wanted, rows[at], -1)


def _lookup_generic(defined: list, wanted: list) -> np.ndarray:
    """Like ``_lookup_int`` for ids of any JSON type (Python equality, as a dict has it)."""
    index = {k: i for i, k in enumerate(defined) if _valid_key(k)}
    return np.fromiter(
        (index.get(k, -1) if _valid_key(k) else -1 for k in wanted),
        dtype=np.int64,
        count=len(wanted),
    )


def _ordinals(groups: np.ndarray) -> np.ndarray:
    """0-based position of each element among the elements of its group, in order."""
    n = len(groups)
    if n == 0:
        return np.zeros(0, dtype=np.int32)
    if n == 1 or bool(np.all(groups[1:] >= groups[:-1])):
        order = None
        sorted_groups = groups
    else:
        order = np.argsort(groups, kind="stable")
        sorted_groups = groups[order]
    starts = np.ones(n, dtype=bool)
    starts[1:] = sorted_groups[1:] != sorted_groups[:-1]
    first = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    ranks = (np.arange(n) - first).astype(np.int32)
    if order is None:
        return ranks
    out = np.empty(n, dtype=np.int32)
    out[order] = ranks
    return out


def _as_list(keys: np.ndarray | list) -> list:
    return keys.tolist() if isinstance(keys, np.ndarray) else keys


def _concat_keys(chunks: list) -> np.ndarray | list:
    if all(isinstance(c, np.ndarray) for c in chunks):
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)
    return list(chain.from_iterable(c.tolist() if isinstance(c, np.ndarray) else c for c in chunks))


# --- accumulators: one per tracked array, fed batch by batch -------------------------------
class _Images:
    fast_type = list[_ImageFast]

    def __init__(self) -> None:
        self.ids: list = []
        self.widths: list[np.ndarray] = []
        self.heights: list[np.ndarray] = []
        self.names: list[pa.Array] = []
        self.count = 0

    def fast(self, items: list[_ImageFast]) -> None:
        ids = _int_keys(list(map(attrgetter("id"), items)))
        if not isinstance(ids, np.ndarray):
            raise SlowPath
        w = np.array(list(map(attrgetter("width"), items)), dtype=object)
        h = np.array(list(map(attrgetter("height"), items)), dtype=object)
        ok_w = (w > 0) & (w <= _INT32_MAX)
        ok_h = (h > 0) & (h <= _INT32_MAX)
        self.ids.append(ids)
        self.widths.append(np.where(ok_w, w, -1).astype(np.int64))
        self.heights.append(np.where(ok_h, h, -1).astype(np.int64))
        self.names.append(pa.array(list(map(attrgetter("file_name"), items)), pa.string()))
        self.count += len(items)

    def slow(self, items: list, where: str) -> None:
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise ParseError(
                    Reason.PARSE_INVALID_JSON, f"{where}images[{self.count + i}] is not an object"
                )
        self.ids.append(_int_keys([item.get("id") for item in items]))
        self.widths.append(np.array([_size_value(it.get("width")) for it in items], np.int64))
        self.heights.append(np.array([_size_value(it.get("height")) for it in items], np.int64))
        names = [it.get("file_name") for it in items]
        self.names.append(pa.array([n if isinstance(n, str) else None for n in names], pa.string()))
        self.count += len(items)


class _Categories:
    fast_type = list[_CategoryFast]

    def __init__(self) -> None:
        self.ids: list = []
        self.names: list[pa.Array] = []
        self.count = 0

    def fast(self, items: list[_CategoryFast]) -> None:
        ids = _int_keys(list(map(attrgetter("id"), items)))
        if not isinstance(ids, np.ndarray):
            raise SlowPath
        self.ids.append(ids)
        self.names.append(pa.array(list(map(attrgetter("name"), items)), pa.string()))
        self.count += len(items)

    def slow(self, items: list, where: str) -> None:
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise ParseError(
                    Reason.PARSE_INVALID_JSON,
                    f"{where}categories[{self.count + i}] is not an object",
                )
        self.ids.append(_int_keys([item.get("id") for item in items]))
        names = [item.get("name") for item in items]
        self.names.append(pa.array([n if isinstance(n, str) else None for n in names], pa.string()))
        self.count += len(items)


class _Annotations:
    fast_type = list[_AnnFast]

    def __init__(self) -> None:
        self.images: list = []
        self.categories: list = []
        self.boxes: list[np.ndarray] = []  # (n, 4) x, y, w, h
        self.crowd: list[np.ndarray] = []
        self.polygons: list[pa.Array] = []
        self.attributes: list[pa.Array | int] = []  # an int n: n empty maps
        self.bad_boxes: dict[int, str] = {}  # annotation index -> why its bbox is malformed
        self.count = 0

    def fast(self, items: list[_AnnFast]) -> None:
        n = len(items)
        try:  # msgspec checked they are ints; one may still not fit int64
            images = np.array(list(map(attrgetter("image_id"), items)), dtype=np.int64)
            categories = np.array(list(map(attrgetter("category_id"), items)), dtype=np.int64)
            crowd = np.array(list(map(attrgetter("iscrowd"), items)), dtype=np.int64) == 1
        except OverflowError:
            raise SlowPath from None
        boxes = np.fromiter(
            chain.from_iterable(map(attrgetter("bbox"), items)), dtype=np.float64, count=4 * n
        )
        polygons = _ring_polygons(list(map(attrgetter("segmentation"), items)))
        attrs = list(map(attrgetter("attributes"), items))
        ignores = list(map(attrgetter("ignore"), items))
        self._add(images, categories, boxes.reshape(n, 4), crowd, polygons, attrs, ignores)

    def slow(self, items: list, where: str) -> None:
        n = len(items)
        boxes = np.full((n, 4), np.nan)
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise ParseError(
                    Reason.PARSE_INVALID_JSON,
                    f"{where}annotations[{self.count + i}] is not an object",
                )
            bbox = item.get("bbox")
            problem = _bbox_problem(bbox)
            if problem is None:
                boxes[i] = [float(v) for v in bbox]
            else:
                self.bad_boxes[self.count + i] = problem
        images = _int_keys([item.get("image_id") for item in items])
        categories = _int_keys([item.get("category_id") for item in items])
        crowd = np.array([item.get("iscrowd", 0) == 1 for item in items], dtype=bool)
        polygons = pa.array(
            [_polygon(item.get("segmentation")) for item in items], type=S.POLYGON_TYPE
        )
        attrs = [item.get("attributes") for item in items]
        ignores = [item.get("ignore", 0) for item in items]
        self._add(images, categories, boxes, crowd, polygons, attrs, ignores)

    def _add(
        self, images, categories, boxes, crowd, polygons: pa.Array, attrs: list, ignores: list
    ) -> None:
        n = len(boxes)
        ignored = _ignored(ignores)
        if ignored is not None:  # boxes to ignore are crowd boxes, as mmdetection has them
            crowd = crowd | ignored
            attrs = [
                _with_ignore(a, v) if flag else a
                for a, v, flag in zip(attrs, ignores, ignored.tolist())
            ]
        self.images.append(images)
        self.categories.append(categories)
        self.boxes.append(boxes)
        self.crowd.append(crowd)
        self.polygons.append(polygons)
        if attrs.count(None) != n:
            self.attributes.append(_map_chunk([_attribute_pairs(a) for a in attrs]))
        else:
            self.attributes.append(n)
        self.count += n


#: the tracked top-level arrays and the sink of each
_SINKS = {"images": _Images, "annotations": _Annotations, "categories": _Categories}


def _stream_tail(f: IO[bytes], read: int) -> tuple[int, bytes]:
    """(size, last PEEK_BYTES) of a stream ``read`` bytes into, read to its end; the tail is
    empty for a file of at most 2 * PEEK_BYTES, as :meth:`CocoReader._peek` has it."""
    size, tail = read, b""
    while block := f.read(1 << 20):
        size += len(block)
        tail = (tail + block)[-PEEK_BYTES:]
    return size, tail if size > 2 * PEEK_BYTES else b""


# --- the reader -----------------------------------------------------------------------------
class CocoReader(FormatReader):
    """COCO instances JSON (``docs/FORMATS.md`` "coco").

    Args:
        block_size: bytes read per block (tests use a few bytes to cut through every token).
        batch_size: elements decoded per msgspec call.
    """

    name: ClassVar[str] = "coco"

    def __init__(self, block_size: int = BLOCK_SIZE, batch_size: int = BATCH_SIZE):
        if block_size < 1 or batch_size < 1:
            raise ValueError("block_size and batch_size must be positive")
        self.block_size = block_size
        self.batch_size = batch_size

    def detect(self, source: Source) -> bool:
        for path in source.walk((".json",))[:DETECT_MAX_FILES]:
            try:
                peek = self._peek(source, path)
            except (OSError, ValueError, ParseError):
                continue
            if _COCO_IMAGES.search(peek) and (
                _COCO_ANNOTATIONS.search(peek)
                or all(k in peek for k in (b'"image_id"', b'"bbox"', b'"category_id"'))
            ):
                return True
        return False

    @staticmethod
    def _peek(source: Source, path: str) -> bytes:
        """The first and the last PEEK_BYTES of a file, as UTF-8 bytes (a compressed file
        cannot seek: it is decompressed to its end, which only ``format=auto`` pays)."""
        with source.open(path) as f:
            head = f.read(PEEK_BYTES)
            if compression_of(path):
                size, tail = _stream_tail(f, len(head))
            else:
                size = source.fs.size(path) or 0
                tail = b""
                if size > 2 * PEEK_BYTES:
                    f.seek(size - PEEK_BYTES)
                    tail = f.read(PEEK_BYTES)
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with its BOM
            codec = "utf-16-le" if head.startswith(b"\xff\xfe") else "utf-16-be"
            head = head[2:].decode(codec, errors="ignore").encode()
            tail = tail[(size - PEEK_BYTES) % 2 :].decode(codec, errors="ignore").encode()
        return head + b"\n" + tail

    def files(self, source: Source, context: object) -> list[str]:
        return source.walk((".json",))  # .json.gz and .json.zst too

    def prepare(self, source: Source) -> object:
        """How many COCO files the source has: with several, image ids get the file's name."""
        return len(self.files(source, None))

    def read_file(self, source: Source, context: object, path: str) -> ReadResult:
        gc_enabled = gc.isenabled()
        gc.disable()  # millions of short-lived containers, no cycles: the GC only slows it down
        try:
            result = self._read(source, path)
        finally:
            if gc_enabled:
                gc.enable()
        if isinstance(context, int) and context > 1:
            stem = plain_name(source.relpath(path))[: -len(".json")]
            result = _with_file_prefix(result, stem + ":")
        return result

    def _read(self, source: Source, path: str) -> ReadResult:
        where = source.relpath(path)
        stream = ArrayStream(where, self.batch_size, _SINKS)
        try:
            with source.open(path) as raw:
                f, first = open_utf8(raw, where)
                if first:
                    stream.feed(first)
                while block := f.read(self.block_size):
                    stream.feed(block)
        except FileNotFoundError:
            raise ParseError(Reason.PARSE_MISSING_FILE, f"{where} does not exist") from None
        top = stream.finish()
        for key in _SINKS:
            if key in top and top[key] is not None and not isinstance(top[key], list):
                raise stream.invalid(f"{key!r} is {type(top[key]).__name__}, not a list")
        if "images" not in top and "annotations" not in top:
            raise stream.invalid("no 'images' or 'annotations' list: not a COCO file")
        images = stream.sinks.get("images") or _Images()
        categories = stream.sinks.get("categories") or _Categories()
        annotations = stream.sinks.get("annotations") or _Annotations()
        del stream
        return _assemble(source, path, images, categories, annotations)


# --- the join at the end ----------------------------------------------------------------------
_OK, _UNKNOWN_IMAGE, _IMAGE_PROBLEM, _UNKNOWN_CATEGORY, _MALFORMED = range(5)


def _image_places(source: Source, path: str) -> Candidates:
    """Where a COCO file's images are looked for (docs/FORMATS.md "coco"): the official
    layout's ``<subset>/`` (``annotations/instances_val2017.json`` beside ``val2017/``), then
    ``images/<subset>/``, ``images/``, the file's own folder (a Roboflow export) and the root;
    an annotation-only source's refs hang from ``images/`` (the old default)."""
    stem = posixpath.basename(plain_name(path)).rsplit(".", 1)[0]
    subset = stem[len("instances_") :] if stem.startswith("instances_") else stem
    subset_folders = [subset, f"images/{subset}"] if subset else []
    folders = [*subset_folders, "images", folder_of(source, path), ""]
    return candidates(folders, posixpath.join(source.root, "images"))


def _assemble(
    source: Source, path: str, images: _Images, categories: _Categories, anns: _Annotations
) -> ReadResult:
    n = anns.count
    img_keys = _concat_keys(images.ids)
    ann_img = _concat_keys(anns.images)
    int_images = isinstance(img_keys, np.ndarray) and isinstance(ann_img, np.ndarray)
    if int_images:
        img_row = _lookup_int(img_keys, ann_img)
    else:
        img_keys, ann_img = _as_list(img_keys), _as_list(ann_img)
        img_row = _lookup_generic(img_keys, ann_img)
    cat_keys = _concat_keys(categories.ids)
    ann_cat = _concat_keys(anns.categories)
    if isinstance(cat_keys, np.ndarray) and isinstance(ann_cat, np.ndarray):
        cat_row = _lookup_int(cat_keys, ann_cat)
    else:
        cat_keys, ann_cat = _as_list(cat_keys), _as_list(ann_cat)
        cat_row = _lookup_generic(cat_keys, ann_cat)
    cat_names = (
        pa.concat_arrays(categories.names) if categories.names else pa.array([], pa.string())
    )
    unnamed = np.zeros(n, dtype=bool)
    if cat_names.null_count:
        known = cat_row >= 0
        named = ~cat_names.is_null().to_numpy(zero_copy_only=False)
        unnamed[known] = ~named[cat_row[known]]

    # image_id strings and box_index (ordinal among the boxes of the same image_id)
    if int_images:
        image_id = pa.array(ann_img, pa.int64()).cast(pa.string())
        box_index = _ordinals(ann_img)
    else:
        ids = [str(img_keys[r]) if r >= 0 else str(a) for r, a in zip(img_row.tolist(), ann_img)]
        codes: dict[str, int] = {}
        box_index = _ordinals(np.array([codes.setdefault(s, len(codes)) for s in ids], np.int64))
        image_id = pa.array(ids, pa.string())

    # the images that boxes use: URI, size, problems
    used = np.unique(img_row[img_row >= 0])
    names = pa.concat_arrays(images.names) if images.names else pa.array([], pa.string())
    widths = np.concatenate(images.widths) if images.widths else np.zeros(0, np.int64)
    heights = np.concatenate(images.heights) if images.heights else np.zeros(0, np.int64)
    used_names = names.take(pa.array(used))
    where = source.relpath(path)
    uris, errors = resolve_column(source, used_names, where, _image_places(source, path))
    problems = {i: (error.reason, error.detail) for i, error in errors.items()}
    no_size = np.flatnonzero((widths[used] < 0) | (heights[used] < 0))
    for i in no_size.tolist():
        if i in problems:
            continue
        size = source.image_size(uris[i].as_py())
        if size is None:
            problems[i] = (
                Reason.PARSE_MISSING_IMAGE_SIZE,
                "no width/height in the file and the image is unreadable",
            )
        else:
            widths[used[i]], heights[used[i]] = size

    # reason of each annotation: the first that applies
    reason = np.full(n, _OK, dtype=np.int8)
    used_at = np.searchsorted(used, img_row) if used.size else np.zeros(n, dtype=np.int64)
    bad_image = np.zeros(len(used), dtype=bool)
    bad_image[list(problems)] = True
    if anns.bad_boxes:
        reason[list(anns.bad_boxes)] = _MALFORMED
    reason[(cat_row < 0) | unnamed] = _UNKNOWN_CATEGORY
    found = img_row >= 0
    if bad_image.any():
        reason[found & bad_image[np.minimum(used_at, max(len(used) - 1, 0))]] = _IMAGE_PROBLEM
    reason[~found] = _UNKNOWN_IMAGE

    rejects = _rejects(
        reason, image_id, box_index, ann_img, ann_cat, anns, used_at, problems, unnamed
    )
    keep = np.flatnonzero(reason == _OK)
    take = None if len(keep) == n else pa.array(keep)

    def pick(arr):
        return arr if take is None else arr.take(take)

    rows = img_row if take is None else img_row[keep]
    at = used_at if take is None else used_at[keep]
    boxes = np.concatenate(anns.boxes) if anns.boxes else np.zeros((0, 4))
    if take is not None:
        boxes = boxes[keep]
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf is nan, judged later
        x1, y1 = boxes[:, 0] + boxes[:, 2], boxes[:, 1] + boxes[:, 3]
    crowd = np.concatenate(anns.crowd) if anns.crowd else np.zeros(0, dtype=bool)
    attributes = pa.chunked_array(
        [_empty_maps(c) if isinstance(c, int) else c for c in anns.attributes],
        type=S.ATTRIBUTES_TYPE,
    )
    polygons = pa.chunked_array(anns.polygons, type=S.POLYGON_TYPE)
    columns = [
        pick(image_id),
        uris.take(pa.array(at)) if len(at) else pa.array([], pa.string()),
        pa.array(widths[rows] if len(rows) else [], pa.int32()),
        pa.array(heights[rows] if len(rows) else [], pa.int32()),
        pa.array(box_index if take is None else box_index[keep], pa.int32()),
        cat_names.take(pa.array(cat_row if take is None else cat_row[keep])),
        pa.array(boxes[:, 0]),
        pa.array(boxes[:, 1]),
        pa.array(x1),
        pa.array(y1),
        pa.array(crowd if take is None else crowd[keep]),
        pick(attributes),
        pick(polygons),
    ]
    table = pa.Table.from_arrays(columns, schema=S.READER_SCHEMA)
    return ReadResult(boxes=table, rejects=rejects, images=images.count)


def _rejects(
    reason: np.ndarray,
    image_id: pa.Array,
    box_index: np.ndarray,
    ann_img: np.ndarray | list,
    ann_cat: np.ndarray | list,
    anns: _Annotations,
    used_at: np.ndarray,
    problems: dict[int, tuple[str, str]],
    unnamed: np.ndarray,
) -> list[BoxReject]:
    out = []
    for i in np.flatnonzero(reason != _OK).tolist():
        code = int(reason[i])
        if code == _UNKNOWN_IMAGE:
            why, detail = (
                Reason.PARSE_UNKNOWN_IMAGE,
                (f"annotations[{i}]: image_id {_show(ann_img[i])} is not defined in 'images'"),
            )
        elif code == _IMAGE_PROBLEM:
            why, detail = problems[int(used_at[i])]
        elif code == _UNKNOWN_CATEGORY:
            what = "has no name" if unnamed[i] else "is not defined in 'categories'"
            why, detail = (
                Reason.PARSE_UNKNOWN_CATEGORY,
                (f"annotations[{i}]: category_id {_show(ann_cat[i])} {what}"),
            )
        else:
            why, detail = Reason.PARSE_MALFORMED_BOX, f"annotations[{i}]: {anns.bad_boxes[i]}"
        out.append(BoxReject(image_id[i].as_py(), int(box_index[i]), why, detail))
    return out


def _show(value: object) -> str:
    if isinstance(value, np.integer):
        value = int(value)
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text[:80]


def _with_file_prefix(result: ReadResult, prefix: str) -> ReadResult:
    """Image ids of one file of a multi-file source: ``<file stem>:<id>`` (docs/FORMATS.md).

    COCO ids are unique within a file only; train/val/test exports often restart them.
    """
    boxes = result.boxes
    index = boxes.schema.get_field_index("image_id")
    prefixed = pc.binary_join_element_wise(pa.scalar(prefix), boxes["image_id"], "")
    rejects = [dataclasses.replace(r, image_id=prefix + r.image_id) for r in result.rejects]
    return ReadResult(
        boxes=boxes.set_column(index, "image_id", prefixed),
        rejects=rejects,
        images=result.images,
        record_errors=result.record_errors,
    )
