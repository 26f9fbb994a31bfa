"""YOLO / darknet reader: one ``*.txt`` label file per image (docs/FORMATS.md, section yolo).

The source shares its class names (``obj.names``, ``classes.txt``, ``*.names`` or ``names`` of
``data.yaml``, read with ``yaml.safe_load``) and its image lists (``train.txt`` ...), read once
in :meth:`YoloReader.prepare`.
"""

from __future__ import annotations

import math
import posixpath
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import yaml

from vprim.assets.contracts.reasons import Reason
from vprim.assets.sources.readers.base import (
    IMAGE_EXTENSIONS,
    REMOTE_SCHEMES,
    BoxColumns,
    BoxReject,
    FormatReader,
    ParseError,
    PerImageBulk,
    ReadResult,
    Source,
    decode_text,
    one_ring_polygons,
    plain_utf8,
    reader_table,
    url_path,
    url_scheme,
)

IMAGE_LISTS = ("train.txt", "val.txt", "valid.txt", "test.txt")
_OBJ_DATA_KEYS = ("train", "valid", "val", "test", "names")
_YAML_NAMES = ("data.yaml", "dataset.yaml")


@dataclass
class YoloContext:
    """What a YOLO source shares: class names, image lists, local images, label files."""

    names: dict[int, str]
    names_file: str
    #: image-list entries by file stem, in list order (entries as written in the list)
    listed: dict[str, list[str]] = field(default_factory=dict)
    #: local image files by absolute path without extension
    images: dict[str, str] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)


def _depth(path: str) -> int:
    return path.count("/")


def _names_priority(path: str) -> int | None:
    base = posixpath.basename(path).lower()
    if base == "obj.names":
        return 0
    if base == "classes.txt":
        return 1
    if base.endswith(".names"):
        return 2
    if base in _YAML_NAMES:
        return 3
    return None


def _names_from_lines(text: str) -> dict[int, str]:
    lines = [line.strip() for line in text.splitlines()]
    return dict(enumerate(line for line in lines if line))


def _names_from_yaml(text: str, where: str) -> dict[int, str]:
    try:
        doc = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError, ValueError, TypeError, OverflowError) as exc:
        raise ParseError(
            Reason.PARSE_MISSING_FILE, f"{where} is not readable YAML: {exc}"
        ) from None
    names = doc.get("names") if isinstance(doc, dict) else None
    scalar = (str, int, float)
    if isinstance(names, list):
        return {
            i: str(n)
            for i, n in enumerate(names)
            if isinstance(n, scalar) and not isinstance(n, bool)
        }
    if isinstance(names, dict):
        out: dict[int, str] = {}
        for key, value in names.items():
            index = class_index(str(key)) if isinstance(key, (int, str)) else None
            if index is not None and isinstance(value, scalar) and not isinstance(value, bool):
                out[index] = str(value)
        return out
    raise ParseError(Reason.PARSE_MISSING_FILE, f"{where} has no 'names' list or mapping")


@dataclass(frozen=True)
class _Line:
    """One non-empty label line: its label and numbers, or why it is rejected."""

    label: str = ""
    values: tuple[float, ...] = ()
    reason: str | None = None
    detail: str = ""


def _parse_line(tokens: list[str], context: YoloContext) -> _Line:
    n = len(tokens)
    if n != 5 and (n < 7 or n % 2 == 0):
        return _Line(
            reason=Reason.PARSE_MALFORMED_BOX,
            detail=f"{n} values, expected 'cls cx cy w h' or 'cls x1 y1 x2 y2 x3 y3 ...'",
        )
    cls = class_index(tokens[0])
    if cls is None:
        return _Line(
            reason=Reason.PARSE_MALFORMED_BOX, detail=f"class {tokens[0][:40]!r} is not an index"
        )
    try:
        values = tuple(float(t) for t in tokens[1:])
    except ValueError:
        return _Line(reason=Reason.PARSE_MALFORMED_BOX, detail="a coordinate is not a number")
    label = context.names.get(cls)
    if label is None:
        return _Line(
            reason=Reason.PARSE_UNKNOWN_CATEGORY,
            detail=f"class {cls} is not among the {len(context.names)} names of "
            f"{posixpath.basename(context.names_file)}",
        )
    return _Line(label=label, values=values)


def class_index(token: str) -> int | None:
    """A class index token (``3``, also ``3.0`` as some exporters write); None if not one."""
    try:
        return int(token)
    except ValueError:
        pass
    try:
        value = float(token)
    except ValueError:
        return None
    if math.isfinite(value) and value == int(value):
        return int(value)
    return None


def _is_remote(ref: str) -> bool:
    return url_scheme(ref) in REMOTE_SCHEMES


def _entry_stem(entry: str) -> str:
    path = url_path(entry) if _is_remote(entry) else entry.replace("\\", "/")
    return posixpath.splitext(posixpath.basename(path))[0]


def _entry_key(entry: str) -> str:
    """An image-list entry as a root-relative path without extension (``./``, ``data/`` off)."""
    ref = posixpath.normpath(entry.replace("\\", "/"))
    if ref.startswith("data/"):
        ref = ref[5:]
    return posixpath.splitext(ref)[0]


def _mirror(rel: str) -> str | None:
    """``.../labels/x`` -> ``.../images/x`` (the last ``labels`` folder); None without one."""
    parts = rel.split("/")
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "labels":
            return "/".join([*parts[:i], "images", *parts[i + 1 :]])
    return None


class YoloReader(FormatReader):
    name = "yolo"

    # -- source level -----------------------------------------------------------------------
    def _all_files(self, source: Source) -> list[str]:
        return source.find()

    def _find_names(self, source: Source, files: list[str]) -> tuple[dict[int, str], str]:
        candidates = sorted(
            (p for p in files if _names_priority(p) is not None),
            key=lambda p: (_names_priority(p), _depth(p), p),
        )
        errors: list[ParseError] = []
        for path in candidates:
            where = source.relpath(path)
            try:
                text = source.read_text(path)
                if path.lower().endswith((".yaml", ".yml")):
                    names = _names_from_yaml(text, where)
                else:
                    names = _names_from_lines(text)
            except ParseError as exc:
                errors.append(exc)
                continue
            if names:
                return names, path
            errors.append(ParseError(Reason.PARSE_MISSING_FILE, f"{where} names no class"))
        if errors:
            first = errors[0]
            raise ParseError(first.reason, f"no usable YOLO class names: {first.detail}")
        raise ParseError(
            Reason.PARSE_MISSING_FILE,
            f"source {source.source_id}: no obj.names, classes.txt, *.names or data.yaml",
        )

    def _resolve_listed(self, source: Source, ref: str) -> str:
        """A local path named in obj.data or an image list: as written, else without ``data/``."""
        path = source.inside(ref)
        if not source.fs.exists(path):
            stripped = posixpath.normpath(ref.replace("\\", "/"))
            if stripped.startswith("data/"):
                return source.inside(stripped[5:])
        return path

    def _list_files(self, source: Source, files: list[str]) -> tuple[list[str], set[str]]:
        """Image-list files, and every path that is not a label file (lists, obj.data refs)."""
        present = set(files)
        lists = [p for p in files if posixpath.dirname(p) == source.root]
        lists = [p for p in lists if posixpath.basename(p) in IMAGE_LISTS]
        not_labels = set(lists)
        obj_data = sorted(
            (p for p in files if posixpath.basename(p) == "obj.data"), key=lambda p: (_depth(p), p)
        )
        data = source.read_bytes(obj_data[0]) if obj_data else b""
        if data.strip():
            for line in decode_text(data, source.relpath(obj_data[0])).splitlines():
                key, sep, value = line.partition("=")
                key, value = key.strip().lower(), value.strip()
                if not sep or key not in _OBJ_DATA_KEYS or not value:
                    continue
                path = self._resolve_listed(source, value)
                not_labels.add(path)
                if key != "names" and path in present and path not in lists:
                    lists.append(path)
        return lists, not_labels

    def prepare(self, source: Source) -> YoloContext:
        files = self._all_files(source)
        names, names_file = self._find_names(source, files)
        lists, not_labels = self._list_files(source, files)
        context = YoloContext(names=names, names_file=names_file)
        for list_path in lists:
            data = source.read_bytes(list_path)
            if not data.strip():
                continue  # an empty split list names no image
            for line in decode_text(data, source.relpath(list_path)).splitlines():
                entry = line.strip()
                if entry:
                    context.listed.setdefault(_entry_stem(entry), []).append(entry)
        for path in files:
            if path.lower().endswith(IMAGE_EXTENSIONS):
                context.images.setdefault(posixpath.splitext(path)[0], path)
        not_labels.add(names_file)
        labels = source.walk((".txt",))
        context.labels = [
            p
            for p in labels
            if p not in not_labels and posixpath.basename(p).lower() != "classes.txt"
        ]
        return context

    def detect(self, source: Source) -> bool:
        files = self._all_files(source)
        if not any(_names_priority(p) is not None for p in files):
            return False
        try:
            context = self.prepare(source)
        except ParseError:
            return False
        return bool(context.labels)

    def files(self, source: Source, context: object) -> list[str]:
        assert isinstance(context, YoloContext)
        return list(context.labels)

    # -- one label file ---------------------------------------------------------------------
    def _image_uri(self, source: Source, context: YoloContext, image_id: str) -> str | None:
        """The image of a label file (see docs/FORMATS.md); None when there is none."""
        mirrored = _mirror(image_id)
        entries = context.listed.get(posixpath.basename(image_id))
        if entries:
            entry = entries[0]
            if len(entries) > 1:  # one of the same name: the one at the label's path, if any
                wanted = {image_id, mirrored}
                entry = next((e for e in entries if _entry_key(e) in wanted), entry)
            if _is_remote(entry):
                return entry
            return source.url(self._resolve_listed(source, entry))
        for rel in (image_id, mirrored):
            if rel is not None:
                found = context.images.get(posixpath.join(source.root, rel))
                if found is not None:
                    return source.url(found)
        return None

    def read_file(self, source: Source, context: object, path: str) -> ReadResult:
        assert isinstance(context, YoloContext)
        where = source.relpath(path)
        image_id = posixpath.splitext(where)[0]
        data = source.read_bytes(path)
        if not data.strip():
            # An empty label file is an image without objects (YOLO's own convention).
            return ReadResult(boxes=BoxColumns().table(), images=1)
        text = decode_text(data, where)

        parsed: list[tuple[int, int, _Line]] = []
        index = 0
        for lineno, line in enumerate(text.splitlines(), 1):
            tokens = line.split()
            if not tokens:
                continue
            parsed.append((index, lineno, _parse_line(tokens, context)))
            index += 1

        image_error: ParseError | None = None
        image_uri = ""
        width = height = 0
        if any(line.reason is None for _, _, line in parsed):
            try:
                uri = self._image_uri(source, context, image_id)
            except ParseError as exc:
                image_error = exc
            else:
                size = source.image_size(uri) if uri is not None else None
                if uri is None or size is None:
                    what = "no image found" if uri is None else f"image {uri} is not readable"
                    image_error = ParseError(
                        Reason.PARSE_MISSING_IMAGE_SIZE, f"{where}: {what}, so no image size"
                    )
                else:
                    image_uri, (width, height) = uri, size

        columns = BoxColumns()
        rejects: list[BoxReject] = []
        for box_index, lineno, line in parsed:
            if line.reason is not None:
                detail = f"{where} line {lineno}: {line.detail}"
                rejects.append(BoxReject(image_id, box_index, line.reason, detail))
                continue
            if image_error is not None:
                rejects.append(BoxReject.of(image_id, box_index, image_error))
                continue
            label, values = line.label, line.values
            polygon = None
            if len(values) == 4:
                cx, cy, w, h = values
                xyxy = (
                    (cx - w / 2) * width,
                    (cy - h / 2) * height,
                    (cx + w / 2) * width,
                    (cy + h / 2) * height,
                )
            else:
                points = np.asarray(values, dtype=np.float64).reshape(-1, 2)
                points = points * np.array([width, height], dtype=np.float64)
                xs, ys = points[:, 0], points[:, 1]
                xyxy = (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))
                polygon = [points.ravel().tolist()]
            columns.add(
                image_id=image_id,
                image_uri=image_uri,
                width=width,
                height=height,
                box_index=box_index,
                label=label,
                xyxy=xyxy,
                polygon=polygon,
            )
        return ReadResult(boxes=columns, rejects=rejects, images=1)

    # -- label files in bulk ----------------------------------------------------------------
    def bulk(self, source: Source, context: object) -> _YoloBulk:
        assert isinstance(context, YoloContext)
        return _YoloBulk(self, source, context)


class _YoloBulk(PerImageBulk):
    """Label files in bulk: lines are checked in Python, coordinates are converted with NumPy
    for the whole source. A file with anything :meth:`YoloReader.read_file` would reject (or
    that it reads another way: empty, a BOM, a class index like ``3.0``) is declined."""

    def __init__(self, reader: YoloReader, source: Source, context: YoloContext) -> None:
        super().__init__(source)
        self.reader, self.context = reader, context
        self.coords_per_line: list[int] = []
        self.coords: list[float] = []  # normalised, lines end to end

    def add(self, path: str) -> int:
        source, context = self.source, self.context
        lines = self._lines(source, path)
        if lines is None:
            return -1
        labels, counts, values = [], [], []
        for line in lines:
            tokens = line.split()
            if not tokens:
                continue
            n = len(tokens)
            if (n != 5 and (n < 7 or n % 2 == 0)) or not tokens[0].isdecimal():
                return -1
            label = context.names.get(int(tokens[0]))
            if label is None:
                return -1
            try:
                values.extend(map(float, tokens[1:]))
            except ValueError:
                return -1
            labels.append(label)
            counts.append(n - 1)
        if not labels:
            return -1  # only blank lines: read_file decides
        image_id = posixpath.splitext(source.relpath(path))[0]
        try:
            uri = self.reader._image_uri(source, context, image_id)
        except ParseError:
            return -1
        size = source.image_size(uri) if uri is not None else None
        if size is None:
            return -1
        self.coords_per_line.extend(counts)
        self.coords.extend(values)
        return self.take_image((image_id, uri, *size), labels)

    @staticmethod
    def _lines(source: Source, path: str) -> list[str] | None:
        try:
            text = plain_utf8(source.read_bytes(path))
        except ParseError:
            return None
        return text.splitlines() if text is not None else None

    def table(self) -> pa.Table:
        """The boxes, computed as :meth:`YoloReader.read_file` does, one array op per step."""
        columns = self.image_columns()
        width = columns["image_width"].astype(np.float64)  # type: ignore[union-attr]
        height = columns["image_height"].astype(np.float64)  # type: ignore[union-attr]
        count = np.asarray(self.coords_per_line, dtype=np.int64)
        start = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)
        values = np.asarray(self.coords, dtype=np.float64)
        # normalised -> pixels: x (even positions) by the width, y by the height
        scale = np.empty_like(values)
        scale[0::2] = np.repeat(width, count // 2)
        scale[1::2] = np.repeat(height, count // 2)
        pixels = values * scale
        is_polygon = count != 4
        with np.errstate(all="ignore"):  # inf/NaN coordinates stay as read_file leaves them
            x0, y0, x1, y1 = self._boxes(values, start, width, height)
        if is_polygon.any():
            xs, ys = pixels[0::2], pixels[1::2]
            points = start // 2
            poly = is_polygon
            x0[poly] = np.minimum.reduceat(xs, points)[poly]
            y0[poly] = np.minimum.reduceat(ys, points)[poly]
            x1[poly] = np.maximum.reduceat(xs, points)[poly]
            y1[poly] = np.maximum.reduceat(ys, points)[poly]
        return reader_table(
            {
                **columns,
                "x0": x0,
                "y0": y0,
                "x1": x1,
                "y1": y1,
                "polygon": one_ring_polygons(pixels, count, is_polygon),
            }
        )

    @staticmethod
    def _boxes(values, start, width, height):
        """``cx cy w h`` lines -> pixel corners, in read_file's order of operations."""
        idx = np.minimum(start, max(len(values) - 4, 0))
        cx, cy = values[idx], values[idx + 1]
        w, h = values[idx + 2], values[idx + 3]
        return (
            (cx - w / 2) * width,
            (cy - h / 2) * height,
            (cx + w / 2) * width,
            (cy + h / 2) * height,
        )
