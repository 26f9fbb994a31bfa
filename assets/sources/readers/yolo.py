"""YOLO / darknet reader: one ``*.txt`` label file per image (docs/FORMATS.md, section yolo).

The source shares its class names (``obj.names``, ``classes.txt``, ``*.names`` or ``names`` of
``data.yaml``, read with ``yaml.safe_load``), its image lists (``train.txt`` ..., and those
``data.yaml`` names) and the image folders ``data.yaml``'s ``train``/``val``/``test`` name
(Ultralytics), read once in :meth:`YoloReader.prepare`. A label file's image is found among
the source's files (``readers/images.py``), never guessed.
"""

from __future__ import annotations

import math
import posixpath
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import yaml

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
    kept_indexes,
    plain_name,
    reject_image,
    url_path,
    url_scheme,
)
from vprim.assets.sources.readers.columns import ImageBoxes, flat, one_ring_polygons, packed
from vprim.assets.sources.readers.images import (
    annotation_only,
    candidates,
    folder_of,
    index_of,
    missing,
    relative,
)

IMAGE_LISTS = ("train.txt", "val.txt", "valid.txt", "test.txt")
_OBJ_DATA_KEYS = ("train", "valid", "val", "test", "names")
_YAML_NAMES = ("data.yaml", "dataset.yaml")
_SPLIT_KEYS = ("train", "val", "test")


@dataclass
class YoloContext:
    """What a YOLO source shares: class names, image lists, image folders, label files."""

    names: dict[int, str]
    names_file: str
    #: image-list entries by file stem, in list order (entries as written in the list)
    listed: dict[str, list[str]] = field(default_factory=dict)
    #: root-relative image folders named by data.yaml's splits, in its order
    split_folders: tuple[str, ...] = ()
    labels: list[str] = field(default_factory=list)
    #: where the image of a label file in each folder is looked for (see ``_image_folders``)
    places: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass
class _Splits:
    """What data.yaml's ``train``/``val``/``test`` name: image-list files (absolute paths),
    image files (root-relative) and image folders (root-relative)."""

    lists: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)


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


def _yaml_doc(text: str, where: str) -> object:
    try:
        return yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError, ValueError, TypeError, OverflowError) as exc:
        raise ParseError(
            Reason.PARSE_MISSING_FILE, f"{where} is not readable YAML: {exc}"
        ) from None


def _names_from_yaml(text: str, where: str) -> dict[int, str]:
    doc = _yaml_doc(text, where)
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


def _split_values(doc: object) -> list[str]:
    """The paths data.yaml's ``train``, ``val`` and ``test`` name (each a path or a list)."""
    if not isinstance(doc, dict):
        return []
    values: list[str] = []
    for key in _SPLIT_KEYS:
        value = doc.get(key)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and item.strip():
                values.append(item.strip())
    return values


def _split_bases(doc: object, yaml_folder: str) -> list[str]:
    """The folders data.yaml's split paths are relative to: its ``path`` (the dataset root,
    when relative and inside the source), then the yaml's own folder."""
    root = doc.get("path") if isinstance(doc, dict) else None
    bases = []
    if isinstance(root, str) and root.strip() and not root.startswith(("/", "~")):
        bases.append(relative(yaml_folder, root.strip()))
    bases.append(yaml_folder)
    return [base for base in dict.fromkeys(bases) if base is not None]


def _parse_line(tokens: list[str], context: YoloContext) -> tuple[str, list[float]] | _Rejected:
    """The label and numbers of one non-empty label line, or why it is rejected."""
    n = len(tokens)
    if n != 5 and (n < 7 or n % 2 == 0):
        return _Rejected(
            Reason.PARSE_MALFORMED_BOX,
            f"{n} values, expected 'cls cx cy w h' or 'cls x1 y1 x2 y2 x3 y3 ...'",
        )
    cls = class_index(tokens[0])
    if cls is None:
        return _Rejected(Reason.PARSE_MALFORMED_BOX, f"class {tokens[0][:40]!r} is not an index")
    try:
        values = list(map(float, tokens[1:]))
    except ValueError:
        return _Rejected(Reason.PARSE_MALFORMED_BOX, "a coordinate is not a number")
    label = context.names.get(cls)
    if label is None:
        return _Rejected(
            Reason.PARSE_UNKNOWN_CATEGORY,
            f"class {cls} is not among the {len(context.names)} names of "
            f"{posixpath.basename(context.names_file)}",
        )
    return label, values


class _Rejected(NamedTuple):
    """Why a label line cannot become a row (a parse-stage box reject)."""

    reason: str
    detail: str


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
    read_ahead = True

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
        if index_of(source).exact(source.relpath(path)) is None:
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

    def _splits(self, source: Source, files: list[str]) -> _Splits:
        """What the shallowest data.yaml (or dataset.yaml) names as its splits (Ultralytics:
        ``path``, ``train``, ``val``, ``test``); nothing when there is none or it is not
        readable YAML (its ``names`` report that, when they are what the source uses)."""
        found = sorted(
            (p for p in files if posixpath.basename(p).lower() in _YAML_NAMES),
            key=lambda p: (_depth(p), p),
        )
        splits = _Splits()
        if not found:
            return splits
        try:
            doc = _yaml_doc(source.read_text(found[0]), source.relpath(found[0]))
        except ParseError:
            return splits
        index = index_of(source)
        bases = _split_bases(doc, folder_of(source, found[0]))
        for value in _split_values(doc):
            for base in bases:
                rel = relative(base, value.replace("\\", "/"))
                if rel is None:
                    continue
                path = index.exact(rel)
                if path is None:
                    splits.folders.append(rel)  # a folder, or nothing: a candidate that misses
                    continue
                if rel.lower().endswith(".txt"):
                    splits.lists.append(path)
                elif rel.lower().endswith(IMAGE_EXTENSIONS):
                    splits.images.append(rel)
                break  # a file: the first base that has it
        return splits

    def prepare(self, source: Source) -> YoloContext:
        files = self._all_files(source)
        names, names_file = self._find_names(source, files)
        lists, not_labels = self._list_files(source, files)
        splits = self._splits(source, files)
        lists += [p for p in splits.lists if p not in lists]
        not_labels.update(splits.lists)
        context = YoloContext(
            names=names, names_file=names_file, split_folders=tuple(splits.folders)
        )
        for entry in splits.images:
            context.listed.setdefault(_entry_stem(entry), []).append(entry)
        for list_path in lists:
            data = source.read_bytes(list_path)
            if not data.strip():
                continue  # an empty split list names no image
            for line in decode_text(data, source.relpath(list_path)).splitlines():
                entry = line.strip()
                if entry:
                    context.listed.setdefault(_entry_stem(entry), []).append(entry)
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
    @staticmethod
    def _image_folders(context: YoloContext, image_id: str) -> tuple[str, ...]:
        """Where the image of label file ``image_id`` is looked for: the label's folder, the
        mirrored ``images/`` folder of a ``labels/`` folder, data.yaml's split folders."""
        folder = posixpath.dirname(image_id)
        places = context.places.get(folder)
        if places is None:
            mirrored = _mirror(image_id)
            mirrored_folder = posixpath.dirname(mirrored) if mirrored is not None else None
            folders = (folder, mirrored_folder, *context.split_folders)
            places = context.places[folder] = candidates(folders, "").folders
        return places

    def _image_uri(
        self, source: Source, context: YoloContext, image_id: str, where: str
    ) -> str | None:
        """The image of a label file (docs/FORMATS.md "yolo"); None when there is none in an
        annotation-only source. Raises ParseError (``image_missing``, ``parse_path_escape``)."""
        folders = self._image_folders(context, image_id)
        entries = context.listed.get(posixpath.basename(image_id))
        if entries:
            entry = entries[0]
            if len(entries) > 1:  # one of the same name: the one at the label's path, if any
                wanted = {image_id, _mirror(image_id)}
                entry = next((e for e in entries if _entry_key(e) in wanted), entry)
            if _is_remote(entry):
                return entry
            return self._listed_uri(source, entry, folders, where)
        index = index_of(source)
        for folder in folders:
            found = index.with_stem(posixpath.join(folder, posixpath.basename(image_id)))
            if found is not None:
                return source.url(found)
        if index.present:
            ref = f"{posixpath.basename(image_id)}.<image extension>"
            raise missing(ref, folders, where)
        return None

    def _listed_uri(self, source: Source, entry: str, folders: tuple[str, ...], where: str) -> str:
        """The image an image-list entry names: the file at its path from the root (without a
        leading ``data/`` when there is none at that path), else the one file of its name in
        the root or the label's image folders."""
        path = self._resolve_listed(source, entry)
        index = index_of(source)
        if not index.present:
            annotation_only(source, index)
            return source.url(path)
        if index.exact(source.relpath(path)) is not None:
            return source.url(path)
        folders = ("", *(folder for folder in folders if folder))
        named = index.named(posixpath.basename(path), folders)
        if len(named) == 1:
            return source.url(index.files[named[0]])
        raise missing(entry, folders, where, len(named))

    def read_file(self, source: Source, context: object, path: str) -> ReadResult:
        assert isinstance(context, YoloContext)
        where = source.relpath(path)
        image_id = posixpath.splitext(plain_name(where))[0]
        data = source.read_bytes(path)
        if not data.strip():
            # An empty label file is an image without objects (YOLO's own convention).
            return ReadResult(images=1)
        text = decode_text(data, where)

        # kept lines: label, count of numbers, numbers; rejected ones in `bad`
        labels: list[str] = []
        counts: list[int] = []
        coords: list[float] = []
        bad: list[BoxReject] = []
        index = 0
        for lineno, line in enumerate(text.splitlines(), 1):
            tokens = line.split()
            if not tokens:
                continue
            parsed = _parse_line(tokens, context)
            if isinstance(parsed, _Rejected):
                detail = f"{where} line {lineno}: {parsed.detail}"
                bad.append(BoxReject(image_id, index, parsed.reason, detail))
            else:
                labels.append(parsed[0])
                counts.append(len(parsed[1]))
                coords += parsed[1]
            index += 1
        if not labels:
            return ReadResult(rejects=bad, images=1)

        try:
            uri = self._image_uri(source, context, image_id, where)
        except ParseError as exc:
            image_error = exc
        else:
            size = source.image_size(uri) if uri is not None else None
            if uri is not None and size is not None:
                image = (image_id, uri, *size)
                kept = kept_indexes(bad, index) if bad else None  # None: 0, 1, ... all kept
                geometry = (counts, packed("d", coords))
                boxes = _YoloBoxes(image, kept, labels, None, geometry)
                return ReadResult(boxes, rejects=bad, images=1)
            what = "no image found" if uri is None else f"image {uri} is not readable"
            image_error = ParseError(
                Reason.PARSE_MISSING_IMAGE_SIZE, f"{where}: {what}, so no image size"
            )
        return ReadResult(rejects=reject_image(image_id, bad, index, image_error), images=1)


class _YoloBoxes(ImageBoxes):
    """The kept lines of one label file; geometry: ``(counts, coords)``, per line its count
    of numbers (4 for ``cx cy w h``, 2k for a k-point polygon), and the normalised numbers,
    lines end to end."""

    __slots__ = ()

    @classmethod
    def convert(cls, geometry: list[tuple], columns: dict) -> dict[str, object]:
        """Pixel corners (and polygon rings) of every line, one array op per step: ``cx cy w
        h`` -> ``((cx - w/2) * W, (cy - h/2) * H, (cx + w/2) * W, (cy + h/2) * H)``; a polygon's
        points times (W, H), and its bounding box. inf/NaN numbers stay as they are."""
        counts, coords = geometry or ((), ())
        width = columns["image_width"].astype(np.float64)
        height = columns["image_height"].astype(np.float64)
        count = flat(counts, np.int64)
        start = np.cumsum(count) - count
        values = flat(coords)
        # normalised -> pixels: x (even positions) by the width, y by the height
        scale = np.empty_like(values)
        scale[0::2] = np.repeat(width, count // 2)
        scale[1::2] = np.repeat(height, count // 2)
        pixels = values * scale
        is_polygon = count != 4
        with np.errstate(all="ignore"):
            idx = np.minimum(start, max(len(values) - 4, 0))
            cx, cy, w, h = values[idx], values[idx + 1], values[idx + 2], values[idx + 3]
            x0, y0 = (cx - w / 2) * width, (cy - h / 2) * height
            x1, y1 = (cx + w / 2) * width, (cy + h / 2) * height
        if is_polygon.any():
            xs, ys = pixels[0::2], pixels[1::2]
            points = start // 2
            x0[is_polygon] = np.minimum.reduceat(xs, points)[is_polygon]
            y0[is_polygon] = np.minimum.reduceat(ys, points)[is_polygon]
            x1[is_polygon] = np.maximum.reduceat(xs, points)[is_polygon]
            y1[is_polygon] = np.maximum.reduceat(ys, points)[is_polygon]
        polygon = one_ring_polygons(pixels, count, is_polygon)
        return {"x0": x0, "y0": y0, "x1": x1, "y1": y1, "polygon": polygon}
