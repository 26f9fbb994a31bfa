"""Open Images reader: box CSVs with normalised coordinates (docs/FORMATS.md, section openimages).

Box CSVs can hold millions of rows, so a file is read columnar with ``pyarrow.csv`` (every
column as a string, converted with Arrow kernels) and the per-row work, the normalised ->
pixel conversion and the per-image ``box_index``, is done with NumPy. Python loops run once per
distinct image only where they must touch storage (an image header, an unusual image URL),
and once per rejected box.

The source shares class descriptions (``*class-descriptions*.csv``), image sizes
(``images.meta``), local image files under ``images/`` and image URLs (``*image_ids*.csv``,
loaded on first need); :meth:`OpenImagesReader.prepare` reads them once.
"""

from __future__ import annotations

import csv
import io
import posixpath
import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from vprim.assets.contracts.reasons import Reason
from vprim.assets.sources.readers.base import (
    IMAGE_EXTENSIONS,
    REMOTE_SCHEMES,
    BoxReject,
    FormatReader,
    ParseError,
    ReadResult,
    Source,
    decode_text,
    has_suffix,
    image_dimension,
)
from vprim.assets.sources.readers.columns import empty_reader_table, reader_table
from vprim.assets.sources.readers.images import (
    Candidates,
    candidates,
    index_of,
    missing,
    resolve,
)

REQUIRED = ("ImageID", "LabelName", "XMin", "XMax", "YMin", "YMax")
#: optional flag columns -> attribute names (values "0"/"1"; anything else is left out)
FLAGS = (
    ("IsOccluded", "occluded"),
    ("IsTruncated", "truncated"),
    ("IsDepiction", "depiction"),
    ("IsInside", "inside"),
)
GROUP_OF = "IsGroupOf"
#: how Arrow's string -> float64 cast spells a number (non-finite spellings included)
_NUMBER = r"(?i)^[+-]?((\d+\.?\d*|\.\d+)(e[+-]?\d+)?|nan|inf|infinity)$"
#: a machine id (/m/..., /g/...): without a description it is an unknown category
_MACHINE_ID = r"^/[a-z]/"
_REMOTE_URL = "(?i)^(" + "|".join(sorted(REMOTE_SCHEMES)) + "):"
#: an ImageID that is safe as a file name (anything else goes through Source.image_uri)
_PLAIN_ID = r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$"
_MAX_BAD_ROWS = 1000
_HEAD = 1 << 16

# reason codes of a row, in priority order (the first that applies is reported)
_OK, _MALFORMED, _UNKNOWN, _IMAGE = 0, 1, 2, 3


def _url_places(root: str) -> Candidates:
    """Where a local ``OriginalURL`` path is looked for: from the root, then ``images/``."""
    return candidates(("", "images"), root)


@dataclass
class OpenImagesContext:
    """What an Open Images source shares, as Arrow arrays (no per-image Python objects)."""

    name_ids: pa.Array
    names: pa.Array
    meta_ids: pa.Array
    meta_width: np.ndarray
    meta_height: np.ndarray
    image_stems: pa.Array
    image_urls: pa.Array
    box_files: list[str]
    image_id_files: list[str]
    _url_table: tuple[pa.Array, pa.Array] | None = field(default=None, repr=False)


def _csv_bytes(data: bytes, where: str) -> bytes:
    """Bytes pyarrow can read: empty -> ParseError; UTF-16/32 (with a BOM) -> UTF-8."""
    if not data or data.isspace():
        raise ParseError(Reason.PARSE_EMPTY_FILE, f"{where} is empty")
    if data.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")):
        return decode_text(data, where).encode("utf-8")
    return data


def _header(data: bytes) -> list[str]:
    """The column names of a CSV (first record), read leniently from its first bytes."""
    head = data[:_HEAD]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = head.decode("utf-16", errors="replace")
    else:
        text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    first = text.split("\n", 1)[0].rstrip("\r")
    try:
        return [c.strip() for c in next(csv.reader([first]), [])]
    except csv.Error:
        return []


def _peek(source: Source, path: str) -> bytes:
    try:
        with source.open(path) as f:  # decompressed, for a .csv.gz
            return f.read(_HEAD)
    except (OSError, ParseError):
        return b""


def _read_strings(
    data: bytes,
    where: str,
    columns: list[str],
    *,
    autogenerate: bool = False,
    on_bad_row=None,
) -> pa.Table:
    """Read a CSV with ``columns`` as non-null strings (only those, unless ``autogenerate``:
    then columns are named f0, f1, ... and all are kept); errors -> ParseError."""
    convert = pacsv.ConvertOptions(
        column_types=dict.fromkeys(columns, pa.string()),
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
        **({} if autogenerate else {"include_columns": columns}),
    )
    read = pacsv.ReadOptions(use_threads=False, autogenerate_column_names=autogenerate)
    try:
        return pacsv.read_csv(
            io.BytesIO(data),
            read_options=read,
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_bad_row),
            convert_options=convert,
        )
    except pa.ArrowException as exc:
        message = str(exc)
        reason = Reason.PARSE_BAD_ENCODING if "UTF8" in message else Reason.PARSE_INVALID_CSV
        raise ParseError(reason, f"{where}: {message}") from None


def _to_float(column: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Strings -> (float64 values, valid mask); what is not a number is invalid (value NaN)."""
    trimmed = pc.utf8_trim_whitespace(column)
    try:  # the common case: every value is a number
        values = pc.cast(trimmed, pa.float64()).to_numpy(zero_copy_only=False)
        return values.astype(np.float64), np.ones(len(column), dtype=bool)
    except pa.ArrowInvalid:
        pass
    valid = pc.match_substring_regex(trimmed, _NUMBER).to_numpy(zero_copy_only=False)
    try:
        values = pc.cast(pc.if_else(valid, trimmed, "nan"), pa.float64())
        return values.to_numpy(zero_copy_only=False).astype(np.float64), valid
    except pa.ArrowInvalid:  # a spelling the regex allows but Arrow refuses: go slowly
        out = np.full(len(column), np.nan)
        for i, text in enumerate(trimmed.to_pylist()):
            try:
                out[i] = float(text)
            except ValueError:
                valid[i] = False
        return out, valid


def _box_index(codes: np.ndarray) -> np.ndarray:
    """Ordinal of each row among the rows with the same code, in row order."""
    n = len(codes)
    order = np.argsort(codes, kind="stable")
    ordered = codes[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    counts = np.diff(np.r_[starts, n])
    rank = np.arange(n) - np.repeat(starts, counts)
    out = np.empty(n, dtype=np.int32)
    out[order] = rank
    return out


def _lookup(keys: pa.Array, key_set: pa.Array) -> np.ndarray:
    """Index of each key in ``key_set`` (first occurrence), -1 where absent."""
    if len(key_set) == 0:
        return np.full(len(keys), -1, dtype=np.int64)
    found = pc.index_in(keys, value_set=key_set)
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _flag_codes(table: pa.Table, column: str) -> np.ndarray:
    """Per row: 1 for "1", 0 for "0", -1 for anything else (-1, empty, junk)."""
    text = pc.utf8_trim_whitespace(table[column].combine_chunks())
    one = pc.equal(text, "1").to_numpy(zero_copy_only=False)
    zero = pc.equal(text, "0").to_numpy(zero_copy_only=False)
    return np.where(one, 1, np.where(zero, 0, -1)).astype(np.int8)


def _attributes(table: pa.Table, keep: np.ndarray) -> pa.Array:
    """The attributes map of the kept rows from the flag columns (``"0"``/``"1"`` only)."""
    n = int(keep.sum())
    present = [(col, key) for col, key in FLAGS if col in table.column_names]
    codes = np.full((n, len(present)), -1, dtype=np.int8)
    for j, (col, _) in enumerate(present):
        codes[:, j] = _flag_codes(table, col)[keep]
    mask = codes >= 0
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(mask.sum(axis=1), out=offsets[1:])
    key_codes = np.broadcast_to(np.arange(len(present)), codes.shape)[mask]
    keys = pa.array([key for _, key in present], pa.string()).take(pa.array(key_codes))
    items = pa.array(["0", "1"], pa.string()).take(pa.array(codes[mask].astype(np.int64)))
    return pa.MapArray.from_arrays(pa.array(offsets, pa.int32()), keys, items)


class OpenImagesReader(FormatReader):
    name = "openimages"

    # -- source level -----------------------------------------------------------------------
    def _is_box_file(self, source: Source, path: str) -> bool:
        base = posixpath.basename(path).lower()
        if "class-descriptions" in base or "image_ids" in base:
            return False
        if "bbox" in base:
            return True  # named as a box file: read it, and reject it if its columns are wrong
        return set(REQUIRED) <= set(_header(_peek(source, path)))

    def detect(self, source: Source) -> bool:
        for path in source.walk((".csv",)):
            base = posixpath.basename(path).lower()
            if "class-descriptions" in base or "image_ids" in base:
                continue
            if set(REQUIRED) <= set(_header(_peek(source, path))):
                return True
        return False

    def _descriptions(self, source: Source, paths: list[str]) -> tuple[pa.Array, pa.Array]:
        ids: list[pa.Array] = []
        names: list[pa.Array] = []
        for path in paths:
            where = source.relpath(path)
            data = _csv_bytes(source.read_bytes(path), where)
            # rows with a stray field count are skipped: their boxes then name an unknown class
            table = _read_strings(
                data, where, ["f0", "f1"], autogenerate=True, on_bad_row=lambda row: "skip"
            )
            if table.num_columns < 2:
                raise ParseError(
                    Reason.PARSE_INVALID_CSV, f"{where}: expected LabelName,DisplayName"
                )
            label, name = table["f0"], table["f1"]
            if len(label) and label[0].as_py().strip() == "LabelName":  # optional header
                label, name = label[1:], name[1:]
            ids.append(pc.utf8_trim_whitespace(label).combine_chunks())
            names.append(name.combine_chunks())
        if not ids:
            return pa.array([], pa.string()), pa.array([], pa.string())
        return pa.concat_arrays(ids), pa.concat_arrays(names)

    def _meta(self, source: Source, paths: list[str]) -> tuple[pa.Array, np.ndarray, np.ndarray]:
        sizes: dict[str, tuple[int, int]] = {}
        for path in paths:
            for line in source.read_text(path).splitlines():
                parts = line.split()
                if len(parts) != 3 or parts[0].startswith("#"):
                    continue
                height, width = image_dimension(parts[1]), image_dimension(parts[2])
                if height is not None and width is not None:
                    sizes.setdefault(parts[0], (width, height))
        wh = np.array(list(sizes.values()), dtype=np.int64).reshape(-1, 2)
        return pa.array(list(sizes), pa.string()), wh[:, 0], wh[:, 1]

    def prepare(self, source: Source) -> OpenImagesContext:
        files = source.find()
        csvs = [p for p in files if has_suffix(p, (".csv",))]  # .csv.gz and .csv.zst too
        name_ids, names = self._descriptions(
            source, [p for p in csvs if "class-descriptions" in posixpath.basename(p).lower()]
        )
        meta_ids, meta_w, meta_h = self._meta(
            source, [p for p in files if posixpath.basename(p) == "images.meta"]
        )
        stems: dict[str, str] = {}
        for path in files:
            rel = source.relpath(path)
            if rel.startswith("images/") and rel.lower().endswith(IMAGE_EXTENSIONS):
                stems.setdefault(posixpath.splitext(posixpath.basename(path))[0], path)
        if source.single_file:
            box_files = source.walk((".csv",))
        else:
            box_files = [p for p in csvs if self._is_box_file(source, p)]
        return OpenImagesContext(
            name_ids=name_ids,
            names=names,
            meta_ids=meta_ids,
            meta_width=meta_w,
            meta_height=meta_h,
            image_stems=pa.array(list(stems), pa.string()),
            image_urls=pa.array([source.url(p) for p in stems.values()], pa.string()),
            box_files=box_files,
            image_id_files=[p for p in csvs if "image_ids" in posixpath.basename(p).lower()],
        )

    def files(self, source: Source, context: object) -> list[str]:
        assert isinstance(context, OpenImagesContext)
        return list(context.box_files)

    def _urls(self, source: Source, context: OpenImagesContext) -> tuple[pa.Array, pa.Array]:
        """(ImageID, OriginalURL) of every ``*image_ids*.csv``, read on first need."""
        if context._url_table is None:
            ids: list[pa.Array] = []
            urls: list[pa.Array] = []
            for path in context.image_id_files:
                where = source.relpath(path)
                data = _csv_bytes(source.read_bytes(path), where)
                if not {"ImageID", "OriginalURL"} <= set(_header(data)):
                    continue
                # rows with a stray field count are skipped: their images just have no URL
                table = _read_strings(
                    data, where, ["ImageID", "OriginalURL"], on_bad_row=lambda row: "skip"
                )
                ids.append(table["ImageID"].combine_chunks())
                urls.append(table["OriginalURL"].combine_chunks())
            empty = pa.array([], pa.string())
            context._url_table = (
                pa.concat_arrays(ids) if ids else empty,
                pa.concat_arrays(urls) if urls else empty,
            )
        return context._url_table

    # -- one box file -----------------------------------------------------------------------
    def _images(
        self, source: Source, context: OpenImagesContext, ids: pa.Array, where: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[ParseError | None]]:
        """Per distinct ImageID: uri (object array), width, height (0 = unknown) and error."""
        k = len(ids)
        uris = np.full(k, None, dtype=object)
        errors: list[ParseError | None] = [None] * k

        local = _lookup(ids, context.image_stems)
        has_local = local >= 0
        if has_local.any():
            taken = context.image_urls.take(pa.array(local[has_local]))
            uris[has_local] = taken.to_numpy(zero_copy_only=False)
        todo = ~has_local
        if todo.any() and context.image_id_files:
            url_ids, url_values = self._urls(source, context)
            at = np.where(todo, _lookup(ids, url_ids), -1)
            listed = at >= 0
            if listed.any():
                values = url_values.take(pa.array(at[listed])).to_numpy(zero_copy_only=False)
                for i, url in zip(np.flatnonzero(listed), values):
                    url = url.strip()
                    if not url:
                        continue
                    if re.match(_REMOTE_URL, url):
                        uris[i] = url
                        continue
                    try:
                        uris[i] = resolve(source, url, where, _url_places(source.root))
                    except ParseError as exc:
                        errors[i] = exc
        default = [i for i in range(k) if uris[i] is None and errors[i] is None]
        if default and index_of(source).present:  # no local file and no URL: missing
            names = pc.take(ids, pa.array(default)).to_pylist()
            for i, image_id in zip(default, names):
                errors[i] = missing(f"{image_id}.<image extension>", ("images",), where)
        elif default:
            # The conventional place: images/<ImageID>.jpg (whether or not it exists).
            names = pc.take(ids, pa.array(default)).to_pylist()
            images_dir = posixpath.join(source.root, "images")
            for i, image_id in zip(default, names):
                if re.match(_PLAIN_ID, image_id) and image_id not in (".", ".."):
                    # source.url, not a prefix: an archive's URLs end with the archive's own
                    uris[i] = source.url(f"{images_dir}/{image_id}.jpg")
                    continue
                try:
                    uris[i] = source.image_uri(f"images/{image_id}.jpg")
                except ParseError as exc:
                    errors[i] = exc

        meta = _lookup(ids, context.meta_ids)
        widths = np.zeros(k, dtype=np.int64)
        heights = np.zeros(k, dtype=np.int64)
        if len(context.meta_ids):
            safe = np.maximum(meta, 0)
            widths = np.where(meta >= 0, context.meta_width[safe], 0)
            heights = np.where(meta >= 0, context.meta_height[safe], 0)
        for i in np.flatnonzero(meta < 0):
            if errors[i] is not None:
                continue
            size = source.image_size(uris[i])
            if size is None:
                errors[i] = ParseError(
                    Reason.PARSE_MISSING_IMAGE_SIZE,
                    f"{where}: {ids[int(i)].as_py()!r} is not in images.meta and its image "
                    f"{uris[i]} is not readable",
                )
            else:
                widths[i], heights[i] = size
        return uris, widths.astype(np.int64), heights.astype(np.int64), errors

    def read_file(self, source: Source, context: object, path: str) -> ReadResult:
        assert isinstance(context, OpenImagesContext)
        where = source.relpath(path)
        data = _csv_bytes(source.read_bytes(path), where)
        header = _header(data)
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise ParseError(
                Reason.PARSE_INVALID_CSV, f"{where}: no column {', '.join(missing)} in the header"
            )
        bad_rows: list[ParseError] = []

        def on_bad_row(row: pacsv.InvalidRow) -> str:
            bad_rows.append(
                ParseError(
                    Reason.PARSE_INVALID_CSV,
                    f"{where} line {row.number}: {row.actual_columns} fields, "
                    f"expected {row.expected_columns}",
                )
            )
            return "error" if len(bad_rows) > _MAX_BAD_ROWS else "skip"

        wanted = [*REQUIRED, *(c for c in (GROUP_OF, *(f for f, _ in FLAGS)) if c in header)]
        table = _read_strings(data, where, wanted, on_bad_row=on_bad_row)
        del data
        n = table.num_rows
        if n == 0:
            return ReadResult(boxes=empty_reader_table(), record_errors=bad_rows)

        encoded = pc.dictionary_encode(table["ImageID"].combine_chunks())
        codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        distinct = encoded.dictionary
        box_index = _box_index(codes)

        # reason of each row, most specific first: malformed box, unknown category, image
        reason = np.zeros(n, dtype=np.int8)
        no_id = pc.equal(pc.utf8_length(distinct), 0).to_numpy(zero_copy_only=False)
        reason[no_id[codes]] = _MALFORMED
        coords = {}
        for col in ("XMin", "XMax", "YMin", "YMax"):
            coords[col], valid = _to_float(table[col].combine_chunks())
            reason[(reason == _OK) & ~valid] = _MALFORMED

        label_names = pc.utf8_trim_whitespace(table["LabelName"].combine_chunks())
        at = _lookup(label_names, context.name_ids)
        described = at >= 0
        labels = (
            pc.if_else(
                pa.array(described),
                context.names.take(pa.array(np.where(described, at, 0))),
                label_names,
            )
            if len(context.names)
            else label_names
        )
        machine = pc.match_substring_regex(label_names, _MACHINE_ID).to_numpy(zero_copy_only=False)
        empty = pc.equal(pc.utf8_length(label_names), 0).to_numpy(zero_copy_only=False)
        reason[(reason == _OK) & ~described & (machine | empty)] = _UNKNOWN

        needs_image = np.zeros(len(distinct), dtype=bool)
        needs_image[codes[reason == _OK]] = True
        uris = np.full(len(distinct), "", dtype=object)
        widths = np.zeros(len(distinct), dtype=np.int64)
        heights = np.zeros(len(distinct), dtype=np.int64)
        image_errors: list[ParseError | None] = [None] * len(distinct)
        if needs_image.any():
            wanted_ids = np.flatnonzero(needs_image)
            u, w, h, errs = self._images(
                source, context, distinct.take(pa.array(wanted_ids)), where
            )
            uris[wanted_ids], widths[wanted_ids], heights[wanted_ids] = u, w, h
            for i, err in zip(wanted_ids, errs):
                image_errors[i] = err
        bad_image = np.array([e is not None for e in image_errors], dtype=bool)
        reason[(reason == _OK) & bad_image[codes]] = _IMAGE

        keep = reason == _OK
        rejects = self._rejects(where, table, distinct, codes, box_index, reason, image_errors)
        width, height = widths[codes][keep], heights[codes][keep]
        kept_codes = codes[keep]
        has_group = GROUP_OF in table.column_names
        group = _flag_codes(table, GROUP_OF)[keep] == 1 if has_group else None
        boxes = reader_table(
            {
                "image_id": distinct.take(pa.array(kept_codes)),
                "image_uri": pa.array(uris, pa.string()).take(pa.array(kept_codes)),
                "image_width": width.astype(np.int32),
                "image_height": height.astype(np.int32),
                "box_index": box_index[keep],
                "raw_label": pc.filter(labels, pa.array(keep)),
                "x0": coords["XMin"][keep] * width,
                "y0": coords["YMin"][keep] * height,
                "x1": coords["XMax"][keep] * width,
                "y1": coords["YMax"][keep] * height,
                "is_crowd": group,
                "attributes": _attributes(table, keep),
            }
        )
        return ReadResult(
            boxes=boxes, rejects=rejects, images=len(distinct), record_errors=bad_rows
        )

    @staticmethod
    def _rejects(
        where: str,
        table: pa.Table,
        distinct: pa.Array,
        codes: np.ndarray,
        box_index: np.ndarray,
        reason: np.ndarray,
        image_errors: list[ParseError | None],
    ) -> list[BoxReject]:
        rows = np.flatnonzero(reason != _OK)
        if not len(rows):
            return []
        ids = distinct.take(pa.array(codes[rows])).to_pylist()
        labels = table["LabelName"].take(pa.array(rows)).to_pylist()
        out = []
        for row, image_id, label in zip(rows.tolist(), ids, labels):
            code = reason[row]
            if code == _MALFORMED:
                what = "no ImageID" if not image_id else "a coordinate is not a number"
                rejected = (Reason.PARSE_MALFORMED_BOX, f"{where} data row {row + 1}: {what}")
            elif code == _UNKNOWN:
                rejected = (
                    Reason.PARSE_UNKNOWN_CATEGORY,
                    f"{where} data row {row + 1}: {label[:80]!r} has no class description",
                )
            else:
                error = image_errors[codes[row]]
                assert error is not None
                rejected = (error.reason, error.detail)
            out.append(BoxReject(image_id, int(box_index[row]), *rejected))
        return out
