"""Hugging Face datasets Parquet reader: detection datasets as the Hub publishes them
(docs/FORMATS.md, section hf_parquet).

One row per image: an ``objects`` column, a struct of lists (``Sequence({...})``) or a list of
structs (``List({...})``), with ``bbox`` and ``category`` (optional ``iscrowd``); an ``image``
column, the ``Image`` feature (a struct {bytes, path}) or a path string; optional
``image_id``, ``width`` and ``height``. Class names come from the ``ClassLabel`` feature in the
schema metadata ``datasets`` writes (key ``huggingface``).

A file is read columnar, row group by row group, only the columns it needs. Image bytes are
read only for a row group that has a row whose size the table does not give (the embedded
image's header gives it). An embedded image's URI names its row (``<file url>?row=<n>``);
:func:`read_embedded_image` opens it.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vprim.assets.contracts import schemas as S
from vprim.assets.contracts.reasons import Reason
from vprim.assets.sources.readers.base import (
    MAX_INT32,
    BoxReject,
    FormatReader,
    ParseError,
    ReadResult,
    Source,
)
from vprim.assets.sources.readers.columns import reader_table

OBJECTS, IMAGE = "objects", "image"
#: ``datasets`` feature types that wrap the feature of each element of a list
_LIST_FEATURES = frozenset({"Sequence", "List", "LargeList"})
#: a box convention other than COCO's ``[x, y, w, h]``, as a feature description would say it
_XYXY = re.compile(
    r"(?i)\bxyxy\b|\bpascal_voc\b|x_?min\W+y_?min\W+x_?max\W+y_?max|\bx1\W+y1\W+x2\W+y2\b"
)
#: an embedded image: ``<url of a .parquet file>?row=<row index in that file>``
_EMBEDDED = re.compile(r"(?s)(.+\.parquet)\?row=([0-9]+)", re.IGNORECASE)
#: ``format=auto`` reads the footers of at most this many Parquet files
DETECT_FILES = 16

# reason codes of a box, in priority order (the first that applies is reported)
_OK, _MALFORMED, _UNKNOWN, _IMAGE = 0, 1, 2, 3
# why a bbox is malformed, and why a category has no name (details of the rejects)
_NO_BBOX, _NULL_BBOX, _BBOX_SIZE, _NULL_NUMBER, _BBOX_TYPE = 1, 2, 3, 4, 5
_BBOX_PROBLEMS = {
    _NO_BBOX: "no bbox",
    _NULL_BBOX: "bbox is null",
    _BBOX_SIZE: "bbox of {size} numbers, expected 4",
    _NULL_NUMBER: "a bbox number is null",
    _BBOX_TYPE: "bbox is not a list of numbers",
}
_NO_CATEGORY, _EMPTY_CATEGORY, _UNNAMED_ID, _NO_NAMES, _CATEGORY_TYPE = 1, 2, 3, 4, 5
_LABEL_PROBLEMS = {
    _NO_CATEGORY: "no category",
    _EMPTY_CATEGORY: "empty category",
    _UNNAMED_ID: "category {value} is not among the {names} ClassLabel names",
    _NO_NAMES: "category {value} and no ClassLabel names in the schema metadata",
    _CATEGORY_TYPE: "category of type {type} (expected a ClassLabel id or a string)",
}


# --- embedded images ----------------------------------------------------------------------------
def is_embedded_image_uri(uri: str) -> bool:
    """Whether ``uri`` names an image embedded in a Parquet file (``<file>.parquet?row=<n>``)."""
    return _EMBEDDED.fullmatch(uri) is not None


def read_embedded_image(uri: str) -> bytes | None:
    """The bytes of the image an embedded-image URI names; None when the URI is not one, the
    file or row does not exist, or the row's ``image`` has no bytes.

    Reads the footer, then the ``image.bytes`` column of the one row group that holds the row
    (to read many, :func:`iter_embedded_images` reads each row group once).
    """
    return next(iter_embedded_images([uri]))[1]


def iter_embedded_images(uris: Iterable[str]) -> Iterator[tuple[str, bytes | None]]:
    """``(uri, bytes or None)`` for each URI (as :func:`read_embedded_image`), grouped by file
    and row group: each row group's ``image.bytes`` is read once, and one is held at a time."""
    by_file: dict[str, list[tuple[int, str]]] = {}
    for uri in uris:
        match = _EMBEDDED.fullmatch(uri)
        if match is None:
            yield uri, None
        else:
            by_file.setdefault(match.group(1), []).append((int(match.group(2)), uri))
    for file_url, rows in by_file.items():
        done: set[str] = set()
        try:
            for uri, data in _file_images(file_url, sorted(rows)):
                done.add(uri)
                yield uri, data
        except (OSError, ValueError, pa.ArrowException):
            pass  # a missing or unreadable file: its images have no bytes
        yield from ((uri, None) for _, uri in rows if uri not in done)


def _file_images(file_url: str, rows: list[tuple[int, str]]) -> Iterator[tuple[str, bytes | None]]:
    """The images of ``rows`` (row index, uri; sorted) of one Parquet file."""
    with fsspec.open(file_url, "rb") as f:
        parquet = pq.ParquetFile(f)
        if not _has_image_bytes(parquet.schema_arrow):
            return
        meta = parquet.metadata
        ends = np.cumsum([meta.row_group(g).num_rows for g in range(meta.num_row_groups)])
        groups = np.searchsorted(ends, [row for row, _ in rows], side="right")
        for group, members in groupby(zip(groups.tolist(), rows), key=itemgetter(0)):
            if group >= meta.num_row_groups:
                return  # rows past the end
            start = int(ends[group - 1]) if group else 0
            image = parquet.read_row_group(group, columns=[f"{IMAGE}.bytes"]).column(IMAGE)
            data = _struct_field(image.combine_chunks(), "bytes")
            for _, (row, uri) in members:
                yield uri, data[row - start].as_py()


def _has_image_bytes(schema: pa.Schema) -> bool:
    if IMAGE not in schema.names:
        return False
    kind = schema.field(IMAGE).type
    return pa.types.is_struct(kind) and kind.get_field_index("bytes") >= 0


def _struct_field(column: pa.StructArray, name: str) -> pa.Array:
    """A field of a struct column, null where the struct itself is null."""
    return column.flatten()[column.type.get_field_index(name)]


def _image_header_size(data: bytes | None) -> tuple[int, int] | None:
    """(width, height) from an image's header (Pillow opens lazily: no pixel is decoded)."""
    if not data:
        return None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return None


# --- schema and features --------------------------------------------------------------------------
@dataclass(frozen=True)
class _Layout:
    """Which columns a file has and how its objects are stored."""

    objects_is_list: bool  # list of structs (else a struct of lists)
    object_fields: tuple[str, ...]  # bbox, category and iscrowd, those present
    image: str | None  # "struct" ({bytes, path}), "string" (a path) or None
    extra: tuple[str, ...]  # image_id, width, height, those present


def _object_struct(schema: pa.Schema) -> tuple[pa.StructType, bool] | None:
    """The struct of the ``objects`` column and whether it is a list of structs."""
    if OBJECTS not in schema.names:
        return None
    kind = schema.field(OBJECTS).type
    if pa.types.is_struct(kind):
        return kind, False
    if (pa.types.is_list(kind) or pa.types.is_large_list(kind)) and pa.types.is_struct(
        kind.value_type
    ):
        return kind.value_type, True
    return None


def _layout(schema: pa.Schema) -> _Layout | None:
    """The layout of a detection shard; None when it has no ``objects`` column with a bbox."""
    found = _object_struct(schema)
    if found is None or found[0].get_field_index("bbox") < 0:
        return None
    struct, is_list = found
    fields = tuple(f for f in ("bbox", "category", "iscrowd") if struct.get_field_index(f) >= 0)
    image = None
    if IMAGE in schema.names:
        kind = schema.field(IMAGE).type
        if pa.types.is_struct(kind) and kind.get_field_index("path") >= 0:
            image = "struct"
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            image = "string"
    extra = tuple(c for c in ("image_id", "width", "height") if c in schema.names)
    return _Layout(is_list, fields, image, extra)


def _unwrap(feature: object) -> object:
    """The element feature of a ``datasets`` list feature (``Sequence``, ``List``, ``[f]``)."""
    while True:
        if isinstance(feature, list) and len(feature) == 1:
            feature = feature[0]
        elif isinstance(feature, dict) and feature.get("_type") in _LIST_FEATURES:
            feature = feature.get("feature")
        else:
            return feature


@dataclass(frozen=True)
class _Features:
    """What the ``huggingface`` schema metadata says about the boxes."""

    names: list[str] | None  # the ClassLabel names of ``objects.category``
    xyxy: bool  # the bbox is described as [x_min, y_min, x_max, y_max]


def _features(metadata: dict[bytes, bytes] | None) -> _Features:
    """Class names and box convention from the schema metadata; none when it is absent or not
    the JSON ``datasets`` writes (the boxes are still read, ids then have no names)."""
    try:
        info = json.loads((metadata or {})[b"huggingface"])["info"]
        objects = _unwrap(info["features"][OBJECTS])
        assert isinstance(objects, dict)
    except (KeyError, TypeError, ValueError, AssertionError):
        return _Features(None, False)
    category = _unwrap(objects.get("category"))
    names = category.get("names") if isinstance(category, dict) else None
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        names = None
    described = json.dumps(objects.get("bbox")) + " " + str(info.get("description") or "")
    return _Features(names, _XYXY.search(described) is not None)


# --- the reader -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class HfParquetContext:
    files: list[str]
    listed: pa.Array  # every file under the root: image paths are looked up among them


class HfParquetReader(FormatReader):
    name = "hf_parquet"

    def detect(self, source: Source) -> bool:
        for path in source.walk((".parquet",))[:DETECT_FILES]:
            try:
                with source.fs.open(path, "rb") as f:
                    schema = pq.read_schema(f)  # the footer only
            except (OSError, ValueError, pa.ArrowException):
                continue
            if _layout(schema) is not None:
                return True
        return False

    def prepare(self, source: Source) -> HfParquetContext:
        return HfParquetContext(
            files=source.walk((".parquet",)), listed=pa.array(source.find(), pa.string())
        )

    def files(self, source: Source, context: object) -> list[str]:
        assert isinstance(context, HfParquetContext)
        return list(context.files)

    def read_file(self, source: Source, context: object, path: str) -> ReadResult:
        assert isinstance(context, HfParquetContext)
        where = source.relpath(path)
        with _open_parquet(source, path, where) as parquet:
            layout = _layout(parquet.schema_arrow)
            if layout is None:
                raise ParseError(
                    Reason.PARSE_INVALID_CSV, f"{where}: no `objects` column with a `bbox` field"
                )
            if parquet.metadata.num_rows == 0:
                raise ParseError(Reason.PARSE_EMPTY_FILE, f"{where} has no rows")
            shard = _Shard(source, context, path, parquet, layout)
            tables, rejects = [], []
            for group in range(parquet.num_row_groups):
                table, group_rejects = shard.read_group(group)
                tables.append(table)
                rejects.extend(group_rejects)
        return ReadResult(
            boxes=pa.concat_tables(tables), rejects=rejects, images=parquet.metadata.num_rows
        )


@contextmanager
def _open_parquet(source: Source, path: str, where: str) -> Iterator[pq.ParquetFile]:
    """The file as a ParquetFile (footer read); an empty or unreadable file is a ParseError."""
    try:
        with source.fs.open(path, "rb") as f:
            if source.fs.size(path) == 0:
                raise ParseError(Reason.PARSE_EMPTY_FILE, f"{where} is empty")
            try:
                parquet = pq.ParquetFile(f)
            except (ValueError, pa.ArrowException) as exc:
                raise ParseError(
                    Reason.PARSE_INVALID_CSV, f"{where} is not a readable Parquet file: {exc}"
                ) from None
            yield parquet
    except FileNotFoundError:
        raise ParseError(Reason.PARSE_MISSING_FILE, f"{where} does not exist") from None


@dataclass
class _Boxes:
    """The boxes of a row group, laid end to end (B boxes over R rows)."""

    row: np.ndarray  # (B,) the row of each box
    index: np.ndarray  # (B,) box_index: position among its row's objects
    xyxy: np.ndarray  # (B, 4) float64, NaN where malformed
    bbox_problem: np.ndarray  # (B,) int8 key of _BBOX_PROBLEMS, 0 when the bbox is usable
    bbox_size: np.ndarray  # (B,) numbers in the bbox (-1: none)
    labels: pa.Array  # (B,) string
    label_problem: np.ndarray  # (B,) int8 key of _LABEL_PROBLEMS, 0 when it has a name
    categories: pa.Array  # (B,) the category as stored (for the detail of a reject)
    crowd: np.ndarray  # (B,) bool


class _Shard:
    """One Parquet file being read, row group by row group."""

    def __init__(
        self,
        source: Source,
        context: HfParquetContext,
        path: str,
        parquet: pq.ParquetFile,
        layout: _Layout,
    ):
        self.source, self.context, self.parquet, self.layout = source, context, parquet, layout
        self.where = source.relpath(path)
        self.file_url = source.url(path)
        self.features = _features(parquet.schema_arrow.metadata)
        # image ids of a source with several files name their file: splits restart ids
        stem = self.where[: -len(".parquet")]
        self.id_prefix = f"{stem}:" if len(context.files) > 1 else ""
        self.row_prefix = f"{stem}:row" if "image_id" in layout.extra else f"{stem}:"
        self.first_row = 0

    def read_group(self, group: int) -> tuple[pa.Table, list[BoxReject]]:
        try:
            table = self.parquet.read_row_group(group, columns=self._columns())
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise ParseError(
                Reason.PARSE_INVALID_CSV, f"{self.where} row group {group} is not readable: {exc}"
            ) from None
        first_row, self.first_row = self.first_row, self.first_row + table.num_rows
        boxes = self._boxes(table)
        reason = np.where(boxes.bbox_problem != 0, _MALFORMED, _OK).astype(np.int8)
        reason[(reason == _OK) & (boxes.label_problem != 0)] = _UNKNOWN
        ids = self._image_ids(table, first_row)
        needed = np.unique(boxes.row[reason == _OK])
        uris, widths, heights, errors = _Images(self, table, group, first_row).resolve(needed)
        bad_image = np.zeros(table.num_rows, dtype=bool)
        bad_image[list(errors)] = True
        reason[(reason == _OK) & bad_image[boxes.row]] = _IMAGE
        rejects = self._rejects(boxes, reason, ids, errors, first_row)
        return self._kept(boxes, reason == _OK, ids, uris, widths, heights), rejects

    def _columns(self) -> list[str]:
        """The Parquet column paths to read (image bytes never: see :class:`_Images`)."""
        columns = [self._object_column(field) for field in self.layout.object_fields]
        if self.layout.image == "struct":
            columns.append(f"{IMAGE}.path")
        elif self.layout.image == "string":
            columns.append(IMAGE)
        return columns + list(self.layout.extra)

    def _object_column(self, field: str) -> str:
        """The path of ``objects``' field ``field`` (``objects.list.element.bbox`` in a list)."""
        if not self.layout.objects_is_list:
            return f"{OBJECTS}.{field}"
        schema = self.parquet.schema
        for i in range(len(schema)):
            parts = schema.column(i).path.split(".")
            if parts[0] == OBJECTS and field in parts[2:]:
                return ".".join(parts[: parts.index(field, 2) + 1])
        raise AssertionError(f"{self.where}: no Parquet column for {OBJECTS}.{field}")

    # -- boxes -------------------------------------------------------------------------------
    def _boxes(self, table: pa.Table) -> _Boxes:
        """Every box of the row group: its row, index, corners, label and crowd flag."""
        objects = table.column(OBJECTS).combine_chunks()
        fields = self.layout.object_fields
        if self.layout.objects_is_list:  # one struct per box: its fields align
            counts = _lengths(objects)
            per_box = dict(zip(objects.type.value_type.names, objects.flatten().flatten()))
            at = {f: np.arange(int(counts.sum())) for f in fields}
            values = {f: per_box[f] for f in fields}
        else:  # one list per field: a row's lists may differ in length
            per_row = dict(zip(objects.type.names, objects.flatten()))
            lengths = {f: _lengths(per_row[f]) for f in fields}
            counts = np.maximum(lengths["bbox"], lengths.get("category", 0))
            at = {f: _positions(lengths[f], counts) for f in fields}
            values = {f: per_row[f].flatten() for f in fields}
        row = np.repeat(np.arange(len(counts)), counts)
        index = np.arange(len(row)) - np.repeat(np.cumsum(counts) - counts, counts)
        xyxy, bbox_problem, bbox_size = self._corners(values["bbox"], at["bbox"])
        categories = pa.nulls(len(row), pa.string())
        if "category" in values:
            categories = _taken(values["category"], at["category"])
        labels, label_problem = self._labels(categories)
        crowd = np.zeros(len(row), dtype=bool)
        if "iscrowd" in values:
            crowd = _crowd(values["iscrowd"], at["iscrowd"])
        return _Boxes(
            row, index, xyxy, bbox_problem, bbox_size, labels, label_problem, categories, crowd
        )

    def _corners(
        self, bboxes: pa.Array, at: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(B, 4) corners ``x0, y0, x1, y1``, the problem of each bbox and its size."""
        numbers, problem, size = _bbox_numbers(bboxes)
        present = at >= 0
        corners = np.full((len(at), 4), np.nan)
        corners[present] = numbers[at[present]]
        if not self.features.xyxy:  # COCO [x, y, w, h]
            corners[:, 2:] += corners[:, :2]
        box_problem = np.full(len(at), _NO_BBOX, dtype=np.int8)
        box_problem[present] = problem[at[present]]
        box_size = np.full(len(at), -1, dtype=np.int64)
        box_size[present] = size[at[present]]
        return corners, box_problem, box_size

    def _labels(self, categories: pa.Array) -> tuple[pa.Array, np.ndarray]:
        """Per box its label (a ClassLabel name, or the string itself) and its problem."""
        if pa.types.is_dictionary(categories.type):
            categories = categories.dictionary_decode()
        kind = categories.type
        missing = pc.is_null(categories).to_numpy(zero_copy_only=False)
        problem = np.where(missing, _NO_CATEGORY, 0).astype(np.int8)
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            labels = categories.cast(pa.string())
            empty = pc.fill_null(pc.equal(pc.utf8_length(labels), 0), False)
            problem[empty.to_numpy(zero_copy_only=False)] = _EMPTY_CATEGORY
            return labels, problem
        if not pa.types.is_integer(kind):
            problem[~missing] = _CATEGORY_TYPE
            return pa.nulls(len(categories), pa.string()), problem
        names = self.features.names or []
        ids = pc.fill_null(categories.cast(pa.int64()), -1).to_numpy(zero_copy_only=False)
        known = (ids >= 0) & (ids < len(names))
        problem[~missing & ~known] = _UNNAMED_ID if names else _NO_NAMES
        labels = pa.array(names or [""], pa.string()).take(pa.array(np.where(known, ids, 0)))
        return labels, problem

    # -- ids, rejects and kept rows ------------------------------------------------------------
    def _image_ids(self, table: pa.Table, first_row: int) -> pa.Array:
        """Per row: ``image_id`` (prefixed with the file when the source has several), else
        ``<file>:<row>`` (``<file>:row<row>`` where a row's image_id is null)."""
        rows = pa.array(np.arange(first_row, first_row + table.num_rows)).cast(pa.string())
        by_row = pc.binary_join_element_wise(self.row_prefix, rows, "")
        if "image_id" not in self.layout.extra:
            return by_row
        try:
            given = table.column("image_id").combine_chunks().cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return by_row  # ids of a type with no text form (binary, nested): the rows name them
        named = pc.binary_join_element_wise(self.id_prefix, given, "")
        return pc.coalesce(named, by_row)

    def _rejects(
        self,
        boxes: _Boxes,
        reason: np.ndarray,
        ids: pa.Array,
        errors: dict[int, ParseError],
        first_row: int,
    ) -> list[BoxReject]:
        """The box-level rejects, their details written here (one Python step per reject)."""
        names = len(self.features.names or ())
        out = []
        for k in np.flatnonzero(reason != _OK).tolist():
            row = int(boxes.row[k])
            image_id, box_index = ids[row].as_py(), int(boxes.index[k])
            if reason[k] == _IMAGE:
                out.append(BoxReject.of(image_id, box_index, errors[row]))
                continue
            if reason[k] == _MALFORMED:
                code = Reason.PARSE_MALFORMED_BOX
                problem = _BBOX_PROBLEMS[boxes.bbox_problem[k]].format(size=boxes.bbox_size[k])
            else:
                code = Reason.PARSE_UNKNOWN_CATEGORY
                problem = _LABEL_PROBLEMS[boxes.label_problem[k]].format(
                    value=boxes.categories[k].as_py(), names=names, type=boxes.categories.type
                )
            at = f"{self.where} row {first_row + row} object {box_index}"
            out.append(BoxReject(image_id, box_index, code, f"{at}: {problem}"))
        return out

    @staticmethod
    def _kept(
        boxes: _Boxes,
        keep: np.ndarray,
        ids: pa.Array,
        uris: pa.Array,
        widths: np.ndarray,
        heights: np.ndarray,
    ) -> pa.Table:
        rows = boxes.row[keep]
        take = pa.array(rows, pa.int64())
        corners = boxes.xyxy[keep]
        n = len(rows)
        return reader_table(
            {
                "image_id": ids.take(take),
                "image_uri": uris.take(take),
                "image_width": widths[rows].astype(np.int32),
                "image_height": heights[rows].astype(np.int32),
                "box_index": boxes.index[keep].astype(np.int32),
                "raw_label": boxes.labels.filter(pa.array(keep)),
                "x0": corners[:, 0],
                "y0": corners[:, 1],
                "x1": corners[:, 2],
                "y1": corners[:, 3],
                "is_crowd": boxes.crowd[keep],
                "attributes": _empty_maps(n),
            }
        )


class _Images:
    """The image (URI, width, height) of each row of a row group that has a usable box."""

    def __init__(self, shard: _Shard, table: pa.Table, group: int, first_row: int):
        self.shard, self.table, self.group, self.first_row = shard, table, group, first_row
        self._bytes: pa.Array | None = None

    def resolve(
        self, needed: np.ndarray
    ) -> tuple[pa.Array, np.ndarray, np.ndarray, dict[int, ParseError]]:
        """Per row: URI, width, height (0 where not resolved) and the errors, by row."""
        uris, embedded, errors = self._uris(needed)
        widths, heights = self._given_sizes()
        for row in needed.tolist():
            if row in errors or (widths[row] and heights[row]):
                continue
            size = self._header_size(row, uris[row].as_py(), embedded[row])
            if size is None:
                errors[row] = ParseError(
                    Reason.PARSE_MISSING_IMAGE_SIZE,
                    f"{self.shard.where} row {self.first_row + row}: no width/height and the "
                    "image header is not readable",
                )
            else:
                widths[row], heights[row] = size
        return uris, widths, heights, errors

    def _uris(self, needed: np.ndarray) -> tuple[pa.Array, np.ndarray, dict[int, ParseError]]:
        """Per row its image URI, whether that names the embedded bytes, and the errors."""
        shard, n = self.shard, self.table.num_rows
        rows = pa.array(np.arange(self.first_row, self.first_row + n)).cast(pa.string())
        embedded = pc.binary_join_element_wise(f"{shard.file_url}?row=", rows, "")
        errors: dict[int, ParseError] = {}
        if shard.layout.image is None:
            for row in needed.tolist():
                errors[row] = ParseError(
                    Reason.IMAGE_MISSING, f"{shard.where}: no `{IMAGE}` column"
                )
            return embedded, np.ones(n, dtype=bool), errors
        column = self.table.column(IMAGE).combine_chunks()
        if shard.layout.image == "string":
            return self._path_uris(column, needed, errors)
        paths = _struct_field(column, "path")
        local = _local_files(shard.source, shard.context.listed, paths)
        if not local.any():  # the usual Hub shard: every image embedded
            return embedded, ~local, errors
        uris = embedded.to_pylist()
        for row in np.flatnonzero(local).tolist():
            uris[row] = shard.source.url(shard.source.inside(paths[row].as_py()))
        return pa.array(uris, pa.string()), ~local, errors

    def _path_uris(
        self, paths: pa.Array, needed: np.ndarray, errors: dict[int, ParseError]
    ) -> tuple[pa.Array, np.ndarray, dict[int, ParseError]]:
        """URIs of an ``image`` column of path strings: remote as they are, else in the root."""
        shard = self.shard
        uris: list[str] = [""] * len(paths)
        for row in needed.tolist():
            path = paths[row].as_py()
            try:
                if not path:
                    raise ParseError(
                        Reason.IMAGE_MISSING,
                        f"{shard.where} row {self.first_row + row}: no image path",
                    )
                uris[row] = shard.source.image_uri(path)
            except ParseError as exc:
                errors[row] = exc
        return pa.array(uris, pa.string()), np.zeros(len(paths), dtype=bool), errors

    def _given_sizes(self) -> tuple[np.ndarray, np.ndarray]:
        """``width``/``height`` columns as int64 (0 where absent, null or unusable)."""
        n = self.table.num_rows
        sizes = []
        for name in ("width", "height"):
            if name not in self.shard.layout.extra:
                sizes.append(np.zeros(n, dtype=np.int64))
                continue
            values = self.table.column(name).combine_chunks()
            try:
                values = values.cast(pa.float64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                sizes.append(np.zeros(n, dtype=np.int64))
                continue
            number = pc.fill_null(values, 0.0).to_numpy(zero_copy_only=False)
            usable = np.isfinite(number) & (number == np.floor(number))
            usable &= (number > 0) & (number <= MAX_INT32)
            sizes.append(np.where(usable, number, 0).astype(np.int64))
        return sizes[0], sizes[1]

    def _header_size(self, row: int, uri: str, embedded: bool) -> tuple[int, int] | None:
        """The size in the image's header: the embedded bytes', or the file's at ``uri``."""
        if not embedded:
            return self.shard.source.image_size(uri)
        if self._bytes is None:  # the row group's image bytes, read once and only when needed
            image = self.shard.parquet.read_row_group(self.group, columns=[f"{IMAGE}.bytes"])
            self._bytes = _struct_field(image.column(IMAGE).combine_chunks(), "bytes")
        return _image_header_size(self._bytes[row].as_py())


# --- column helpers ---------------------------------------------------------------------------
def _empty_maps(n: int) -> pa.MapArray:
    """``n`` empty attribute maps (the format has no box attributes)."""
    offsets = pa.array(np.zeros(n + 1, dtype=np.int32))
    empty = pa.array([], pa.string())
    return pa.MapArray.from_arrays(offsets, empty, empty, type=S.ATTRIBUTES_TYPE)


def _lengths(lists: pa.Array) -> np.ndarray:
    """The length of each list (0 for a null list), as int64."""
    return (
        pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    )


def _positions(lengths: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per box (``counts`` per row), its position in a field's flattened values, or -1 where
    the row's list of that field is shorter than the row's objects."""
    within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    starts = np.repeat(np.cumsum(lengths) - lengths, counts)
    return np.where(within < np.repeat(lengths, counts), starts + within, -1)


def _bbox_numbers(bboxes: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bbox (a list of numbers): its 4 numbers as float64 ``(n, 4)`` (NaN where unusable),
    its problem (a key of ``_BBOX_PROBLEMS``, 0 when usable) and its size (-1 when null)."""
    n = len(bboxes)
    if not _is_number_list(bboxes.type):
        return np.full((n, 4), np.nan), np.full(n, _BBOX_TYPE, np.int8), np.full(n, -1)
    size = pc.fill_null(pc.list_value_length(bboxes), -1).to_numpy(zero_copy_only=False)
    size = size.astype(np.int64)
    flat = bboxes.flatten().cast(pa.float64())  # null lists hold no values here
    null = pc.is_null(flat).to_numpy(zero_copy_only=False)
    numbers = pc.fill_null(flat, np.nan).to_numpy(zero_copy_only=False)
    held = np.maximum(size, 0)
    four = size == 4
    at = (np.cumsum(held) - held)[four, None] + np.arange(4)
    out = np.full((n, 4), np.nan)
    out[four] = numbers[at]
    problem = np.where(size < 0, _NULL_BBOX, np.where(four, 0, _BBOX_SIZE)).astype(np.int8)
    problem[np.flatnonzero(four)[null[at].any(axis=1)]] = _NULL_NUMBER
    out[problem != 0] = np.nan
    return out, problem, size


def _is_number_list(kind: pa.DataType) -> bool:
    is_list = pa.types.is_list(kind) or pa.types.is_large_list(kind)
    if not (is_list or pa.types.is_fixed_size_list(kind)):
        return False
    return pa.types.is_integer(kind.value_type) or pa.types.is_floating(kind.value_type)


def _taken(values: pa.Array, at: np.ndarray) -> pa.Array:
    """``values[at]`` per box, null where ``at`` is -1 (no such value)."""
    if not len(values):
        return pa.nulls(len(at), values.type)
    return values.take(pa.array(np.maximum(at, 0), mask=at < 0))


def _crowd(flags: pa.Array, at: np.ndarray) -> np.ndarray:
    """``iscrowd`` per box: true for 1 / True, false otherwise (absent or null included)."""
    if not len(flags):
        return np.zeros(len(at), dtype=bool)
    if pa.types.is_boolean(flags.type):
        truth = pc.fill_null(flags, False)
    else:
        try:
            truth = pc.fill_null(pc.equal(flags.cast(pa.float64()), 1.0), False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return np.zeros(len(at), dtype=bool)
    values = truth.to_numpy(zero_copy_only=False)
    return np.where(at >= 0, values[np.maximum(at, 0)], False)


def _local_files(source: Source, listed: pa.Array, paths: pa.Array) -> np.ndarray:
    """Per row, whether its image path names a file under the source root (listed as is:
    a path with ``..``, a leading ``/`` or a backslash never matches)."""
    joined = pc.binary_join_element_wise(source.root, paths, "/")
    return pc.fill_null(pc.is_in(joined, value_set=listed), False).to_numpy(zero_copy_only=False)


__all__ = [
    "HfParquetReader",
    "is_embedded_image_uri",
    "iter_embedded_images",
    "read_embedded_image",
]
