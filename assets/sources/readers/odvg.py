"""ODVG reader: JSON Lines, one image per line (docs/FORMATS.md, section odvg).

A file is streamed line by line: a line that is not valid JSON (or not an ODVG record) is one
``record_errors`` entry with its line number and the rest of the file goes on. A file with no
readable record at all is rejected as a whole. ``label_map.json`` (``{"<int>": name}``) names
the integer ``label`` of detection instances that carry no ``category``.
"""

from __future__ import annotations

import json
import math
import posixpath
from collections.abc import Iterator
from typing import NamedTuple

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
    plain_name,
)
from vprim.assets.sources.readers.columns import BoxColumns
from vprim.assets.sources.readers.images import Candidates, candidates, folder_of, resolve

LABEL_MAP = "label_map.json"
_MAX_RECORD_ERRORS = 100  # detailed ledger rows per file; the rest are summarised in one
_DETECT_PEEK = 10
#: (record key, list key, name key) of the two variants, read in this order
_VARIANTS = (("detection", "instances", "category"), ("grounding", "regions", "phrase"))


def _label_key(value: object) -> str | None:
    """The label_map key of an integer label (``3``, ``3.0``, ``"3"``)."""
    number = json_number(value)
    if number is None or not math.isfinite(number) or number != int(number):
        return None
    return str(int(number))


def _bbox(value: object) -> tuple[float, float, float, float] | str:
    """``[x0, y0, x1, y1]`` as floats (numbers or numeric strings), or what is wrong with it."""
    if type(value) is list and len(value) == 4:  # the common case, without json_number calls
        x0, y0, x1, y1 = value
        if (
            type(x0) in PLAIN_NUMBER_TYPES
            and type(y0) in PLAIN_NUMBER_TYPES
            and type(x1) in PLAIN_NUMBER_TYPES
            and type(y1) in PLAIN_NUMBER_TYPES
        ):
            try:
                return float(x0), float(y0), float(x1), float(y1)
            except OverflowError:
                pass  # a huge integer: json_number makes it +-inf
    if not isinstance(value, list):
        return "no bbox list" if value is None else "bbox is not a list"
    if len(value) != 4:
        return f"bbox has {len(value)} values, expected 4"
    numbers = [json_number(v) for v in value]
    if any(v is None for v in numbers):
        return "bbox has a value that is not a number"
    x0, y0, x1, y1 = numbers
    return x0, y0, x1, y1  # type: ignore[return-value]


class _Rejected(NamedTuple):
    """Why an entry cannot become a row (a parse-stage box reject)."""

    reason: str
    detail: str


class _Record:
    """Per-file state: boxes, rejects, the next box_index of each image, and each image's
    URI (or why it has none) and size, found once per distinct image."""

    def __init__(self, places: Candidates) -> None:
        self.columns = BoxColumns()
        self.rejects: list[BoxReject] = []
        self.next_index: dict[str, int] = {}
        self.sizes: dict[str, tuple[int, int] | None] = {}
        self.places = places
        self.uris: dict[str, str | ParseError] = {}

    def image_uri(self, source: Source, filename: str, where: str) -> str:
        """The URI of image ``filename``, resolved once per file; ParseError if it has none."""
        uri = self.uris.get(filename)
        if uri is None:
            try:
                uri = resolve(source, filename, where, self.places)
            except ParseError as exc:
                uri = exc
            self.uris[filename] = uri
        if isinstance(uri, ParseError):
            raise uri
        return uri


class OdvgReader(FormatReader):
    name = "odvg"

    def detect(self, source: Source) -> bool:
        for path in source.walk((".jsonl",))[:_DETECT_PEEK]:
            text = source.head_text(path) or ""
            if '"filename"' in text and ('"detection"' in text or '"grounding"' in text):
                return True
        return False

    def prepare(self, source: Source) -> dict[str, str]:
        """The label map of the source (empty without ``label_map.json``)."""
        candidates = [p for p in source.find() if posixpath.basename(plain_name(p)) == LABEL_MAP]
        if not candidates:
            return {}
        path = min(candidates, key=lambda p: (p.count("/"), p))
        where = source.relpath(path)
        try:
            doc = json.loads(source.read_text(path))
        except (ValueError, RecursionError) as exc:
            raise ParseError(Reason.PARSE_INVALID_JSON, f"{where}: {exc}") from None
        if not isinstance(doc, dict):
            raise ParseError(Reason.PARSE_INVALID_JSON, f"{where} is not a JSON object")
        return {
            str(key): str(name)
            for key, name in doc.items()
            if isinstance(name, (str, int)) and not isinstance(name, bool)
        }

    def files(self, source: Source, context: object) -> list[str]:
        return source.walk((".jsonl",))

    # -- one file ---------------------------------------------------------------------------
    @staticmethod
    def _lines(source: Source, path: str, where: str) -> Iterator[tuple[int, bytes | str]]:
        """(line number, raw line) streamed from the file; UTF-16/32 files are decoded whole."""
        try:
            f = source.open(path)  # decompressed while streamed, for a .jsonl.gz
        except FileNotFoundError:
            raise ParseError(Reason.PARSE_MISSING_FILE, f"{where} does not exist") from None
        with f:
            first = f.readline()
            if first.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")):
                text = decode_text(first + f.read(), where)
                yield from enumerate(text.split("\n"), 1)
                return
            if first.startswith(b"\xef\xbb\xbf"):
                first = first[3:]
            yield 1, first
            yield from enumerate(f, 2)

    def read_file(self, source: Source, context: object, path: str) -> ReadResult:
        label_map: dict[str, str] = context if isinstance(context, dict) else {}
        where = source.relpath(path)
        # filename from the root (docs/FORMATS.md "odvg"), the file's folder, images/
        state = _Record(candidates(("", folder_of(source, path), "images"), source.root))
        errors: list[ParseError] = []
        n_errors = records = 0
        for lineno, raw in self._lines(source, path, where):
            if isinstance(raw, bytes):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    error = ParseError(
                        Reason.PARSE_BAD_ENCODING,
                        f"{where} line {lineno} is not UTF-8 (byte {exc.start}: {exc.reason})",
                    )
                    n_errors += 1
                    if len(errors) < _MAX_RECORD_ERRORS:
                        errors.append(error)
                    continue
            else:
                line = raw
            if not line.strip():
                continue
            try:
                self._record(source, label_map, state, json.loads(line), where, lineno)
            except (ParseError, ValueError, RecursionError) as exc:
                reason = exc.reason if isinstance(exc, ParseError) else Reason.PARSE_INVALID_JSON
                detail = exc.detail if isinstance(exc, ParseError) else f"{exc}"
                n_errors += 1
                if len(errors) < _MAX_RECORD_ERRORS:
                    errors.append(ParseError(reason, f"{where} line {lineno}: {detail}"))
                continue
            records += 1
        if records == 0:
            if not errors:
                raise ParseError(Reason.PARSE_EMPTY_FILE, f"{where} has no JSON line")
            more = f" ({n_errors} unreadable lines, no readable record)" if n_errors > 1 else ""
            raise ParseError(errors[0].reason, errors[0].detail + more)
        if n_errors > len(errors):
            errors.append(
                ParseError(
                    errors[0].reason,
                    f"{where}: {n_errors - len(errors)} more unreadable lines not listed",
                )
            )
        return ReadResult(
            boxes=state.columns,
            rejects=state.rejects,
            images=len(state.next_index),
            record_errors=errors,
        )

    def _record(
        self,
        source: Source,
        label_map: dict[str, str],
        state: _Record,
        record: object,
        where: str,
        lineno: int,
    ) -> None:
        """Add one line's boxes; ParseError (a record error) when the line is no ODVG record."""
        if not isinstance(record, dict):
            raise ParseError(Reason.PARSE_INVALID_JSON, "not a JSON object")
        filename = record.get("filename")
        if not isinstance(filename, str) or not filename:
            raise ParseError(Reason.PARSE_INVALID_JSON, "no 'filename' string")
        items: list[tuple[object, str]] = []
        for key, list_key, name_key in _VARIANTS:
            part = record.get(key)
            if part is None:
                continue
            entries = part.get(list_key) if isinstance(part, dict) else None
            if not isinstance(entries, list):
                raise ParseError(Reason.PARSE_INVALID_JSON, f"'{key}.{list_key}' is not a list")
            items.extend((entry, name_key) for entry in entries)

        image_error: ParseError | None = None
        image_uri = ""
        width = height = 0
        try:
            image_uri = state.image_uri(source, filename, where)
        except ParseError as exc:
            image_error = exc
        if image_error is not None and not items:
            raise image_error  # an image without boxes whose path is refused: one ledger row
        if image_error is None and items:
            w, h = image_dimension(record.get("width")), image_dimension(record.get("height"))
            if w is None or h is None:
                if image_uri not in state.sizes:
                    state.sizes[image_uri] = source.image_size(image_uri)
                header = state.sizes[image_uri]
                if header is None:
                    image_error = ParseError(
                        Reason.PARSE_MISSING_IMAGE_SIZE,
                        f"{where} line {lineno}: no width/height and image {filename!r} "
                        "is not readable",
                    )
                else:
                    w, h = header
            width, height = w or 0, h or 0

        start = state.next_index.get(filename, 0)
        state.next_index[filename] = start + len(items)
        indexes: list[int] = []
        labels: list[str] = []
        boxes: list[tuple[float, float, float, float]] = []
        for offset, (item, name_key) in enumerate(items):
            box_index = start + offset
            read = self._read_box(item, name_key, label_map)
            if isinstance(read, _Rejected):
                detail = f"{where} line {lineno}: {read.detail}"
                state.rejects.append(BoxReject(filename, box_index, read.reason, detail))
            elif image_error is not None:
                state.rejects.append(BoxReject.of(filename, box_index, image_error))
            else:
                indexes.append(box_index)
                labels.append(read[0])
                boxes.append(read[1])
        state.columns.add_image(filename, image_uri, width, height, indexes, labels, boxes)

    @staticmethod
    def _read_box(
        item: object, name_key: str, label_map: dict[str, str]
    ) -> tuple[str, tuple[float, float, float, float]] | _Rejected:
        """The label and box of an entry, or why it cannot become a row."""
        if not isinstance(item, dict):
            return _Rejected(Reason.PARSE_MALFORMED_BOX, "box entry is not a JSON object")
        box = _bbox(item.get("bbox"))
        if isinstance(box, str):
            return _Rejected(Reason.PARSE_MALFORMED_BOX, box)
        name = item.get(name_key)
        if isinstance(name, str) and name:
            return name, box
        label = item.get("label")
        if label is not None:
            key = _label_key(label)
            if key is not None and key in label_map:
                return label_map[key], box
            return _Rejected(
                Reason.PARSE_UNKNOWN_CATEGORY,
                f"label {str(label)[:40]!r} has no {name_key} and is not in {LABEL_MAP}",
            )
        if isinstance(name, str):
            return name, box  # an empty name: the label stage judges it
        return _Rejected(Reason.PARSE_MALFORMED_BOX, f"box has neither '{name_key}' nor 'label'")
