"""The small contract every format reader follows, and the helpers they share.

A reader turns one source (a folder or a file, reached through fsspec) into columns. It works
file by file: ``files()`` lists the annotation files of the source, ``read_file()`` parses one
of them into a :class:`ReadResult`. The ingest framework calls ``read_file`` inside a guard, so
a broken file becomes one ledger row (:class:`ParseError`) and the rest of the source goes on.

Readers never hold per-box Python objects for a whole file when the file can be large (COCO,
ODVG, Open Images): they parse into column builders (:class:`BoxColumns`) or Arrow directly.
"""

from __future__ import annotations

import io
import math
import os
import posixpath
import re
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vprim.assets.contracts import reasons as R
from vprim.assets.contracts import schemas as S
from vprim.assets.contracts.reasons import Reason

#: Image references with these URL schemes are taken as they are (they cannot escape the
#: source folder because they never name a local path). ``file://`` is not among them.
REMOTE_SCHEMES = frozenset({"http", "https", "s3", "gs", "gcs", "az", "abfs", "synthetic"})

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")


MAX_INT32 = 2**31 - 1
#: the types of JSON numbers as ``json.loads`` makes them (``bool`` is a type of its own, so
#: ``type(v) in PLAIN_NUMBER_TYPES`` never takes a boolean)
PLAIN_NUMBER_TYPES = frozenset({int, float})


def json_number(value: object) -> float | None:
    """A JSON number, or a numeric string such as ``"nan"`` or ``"12.5"``, as float; None if
    it is neither (booleans are not numbers). Huge integers become +-inf, never an error."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf  # copysign would convert it too
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def image_dimension(value: object) -> int | None:
    """A positive integral image width/height (number or text); None when absent or unusable."""
    number = json_number(value)
    if number is None or not math.isfinite(number) or number != int(number):
        return None
    return int(number) if 0 < number <= MAX_INT32 else None


class ParseError(Exception):
    """A file (or a whole source) that cannot be read; becomes one ``rejects`` row.

    Args:
        reason: one of ``reasons.PARSE_REASONS``.
        detail: one line that tells a user what is wrong and where.
    """

    def __init__(self, reason: str, detail: str):
        if reason not in R.PARSE_REASONS:
            raise ValueError(f"unknown parse reason {reason!r}; add it to reasons.PARSE_REASONS")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = " ".join(str(detail).split())[:500]


@dataclass(frozen=True)
class BoxReject:
    """A box that was counted on read but cannot become a raw_instances row."""

    image_id: str
    box_index: int
    reason: str
    detail: str

    @classmethod
    def of(cls, image_id: str, box_index: int, error: ParseError) -> BoxReject:
        """The box-level row of an error that concerns the box's whole image (its size, path)."""
        return cls(image_id, box_index, error.reason, error.detail)


class ReadResult:
    """What one annotation file yields.

    ``boxes`` follows ``schemas.READER_SCHEMA``. ``rejects`` are box-level parse rejects: they
    were counted on read (so ``boxes_seen == boxes.num_rows + len(rejects)``) and get an
    ``instance_id`` like any box. ``images`` counts the images the file described, with or
    without boxes: the quality stage estimates missing annotations from images without boxes.
    ``record_errors`` are records inside an otherwise readable file that could not be read (a
    bad JSONL line): each becomes a ledger row with a null instance_id, like a whole file.

    A reader may pass its :class:`BoxColumns` as ``boxes``: the table is then built only when
    asked for, and ingest merges the columns of all of a source's files into one table (one
    Arrow table per small file costs more than parsing it).
    """

    def __init__(
        self,
        boxes: pa.Table | BoxColumns,
        rejects: list[BoxReject] | None = None,
        images: int = 0,
        record_errors: list[ParseError] | None = None,
    ):
        self.columns: BoxColumns | None = boxes if isinstance(boxes, BoxColumns) else None
        self._table: pa.Table | None = None if self.columns is not None else boxes
        self.rejects: list[BoxReject] = rejects if rejects is not None else []
        self.images = images
        self.record_errors: list[ParseError] = record_errors if record_errors is not None else []

    @property
    def boxes(self) -> pa.Table:
        if self._table is None:
            self._table = self.columns.table()  # type: ignore[union-attr]
        return self._table

    @property
    def num_boxes(self) -> int:
        return len(self.columns) if self.columns is not None else self.boxes.num_rows

    @property
    def boxes_seen(self) -> int:
        return self.num_boxes + len(self.rejects)


class BoxColumns:
    """Append-only column builder for reader output (no per-box objects kept).

    Readers that parse record by record (VOC, LabelMe) append here; readers that decode
    columns in bulk build Arrow arrays themselves and call :func:`reader_table`.
    """

    def __init__(self) -> None:
        self.cols: dict[str, list] = {name: [] for name in S.READER_SCHEMA.names}

    def __len__(self) -> int:
        return len(self.cols["image_id"])

    def extend(self, other: BoxColumns) -> None:
        for name, values in other.cols.items():
            self.cols[name].extend(values)

    def add(
        self,
        *,
        image_id: str,
        image_uri: str,
        width: int,
        height: int,
        box_index: int,
        label: str,
        xyxy: tuple[float, float, float, float],
        is_crowd: bool = False,
        attributes: dict[str, str] | None = None,
        polygon: list[list[float]] | None = None,
    ) -> None:
        c = self.cols
        c["image_id"].append(image_id)
        c["image_uri"].append(image_uri)
        c["image_width"].append(width)
        c["image_height"].append(height)
        c["box_index"].append(box_index)
        c["raw_label"].append(label)
        c["x0"].append(xyxy[0])
        c["y0"].append(xyxy[1])
        c["x1"].append(xyxy[2])
        c["y1"].append(xyxy[3])
        c["is_crowd"].append(bool(is_crowd))
        c["attributes"].append(list((attributes or {}).items()))
        c["polygon"].append(polygon)

    def add_image(
        self,
        image_id: str,
        image_uri: str,
        width: int,
        height: int,
        box_indexes: list[int],
        labels: list[str],
        boxes: list[tuple[float, float, float, float]],
    ) -> None:
        """Boxes of one image with no crowd flag, attributes or polygon: what :meth:`add`
        makes of them one by one, in one extend per column."""
        k = len(labels)
        if not k:
            return
        c = self.cols
        c["image_id"].extend([image_id] * k)
        c["image_uri"].extend([image_uri] * k)
        c["image_width"].extend([width] * k)
        c["image_height"].extend([height] * k)
        c["box_index"].extend(box_indexes)
        c["raw_label"].extend(labels)
        x0, y0, x1, y1 = zip(*boxes)
        c["x0"].extend(x0)
        c["y0"].extend(y0)
        c["x1"].extend(x1)
        c["y1"].extend(y1)
        c["is_crowd"].extend([False] * k)
        c["attributes"].extend([[]] * k)  # read, never changed: one empty list serves all
        c["polygon"].extend([None] * k)

    def table(self) -> pa.Table:
        return pa.Table.from_pydict(self.cols, schema=S.READER_SCHEMA)


def reader_table(columns: dict[str, object]) -> pa.Table:
    """Build a READER_SCHEMA table from column arrays, filling optional columns with nulls."""
    n = len(columns["image_id"])  # type: ignore[arg-type]
    arrays = []
    for f in S.READER_SCHEMA:
        value = columns.get(f.name)
        if value is None:
            if f.name == "is_crowd":
                value = np.zeros(n, dtype=bool)
            elif f.name == "attributes":
                value = pa.nulls(n, S.ATTRIBUTES_TYPE)
            else:
                value = pa.nulls(n, f.type)
        arrays.append(pa.array(value, type=f.type) if not isinstance(value, pa.Array) else value)
    return pa.Table.from_arrays(arrays, schema=S.READER_SCHEMA)


def attribute_maps(pairs_per_box: list[int], keys: list[str], values: list[str]) -> pa.MapArray:
    """One attribute map per box from flat ``keys``/``values`` (``pairs_per_box`` each)."""
    offsets = np.concatenate([[0], np.cumsum(pairs_per_box, dtype=np.int64)]).astype(np.int32)
    return pa.MapArray.from_arrays(
        pa.array(offsets),
        pa.array(keys, pa.string()),
        pa.array(values, pa.string()),
        type=S.ATTRIBUTES_TYPE,
    )


def one_ring_polygons(values: np.ndarray, counts: np.ndarray, has_ring: np.ndarray) -> pa.Array:
    """A polygon column from rows laid end to end in ``values`` (``counts`` values each): a
    row with ``has_ring`` is one ring of its values, any other row is null."""
    counts = np.asarray(counts, dtype=np.int64)
    ring_values = values[np.repeat(has_ring, counts)]
    ring_offsets = np.concatenate([[0], np.cumsum(counts[has_ring])]).astype(np.int32)
    rings = pa.ListArray.from_arrays(pa.array(ring_offsets), pa.array(ring_values, pa.float64()))
    row_offsets = np.concatenate([[0], np.cumsum(has_ring)]).astype(np.int32)
    return pa.ListArray.from_arrays(
        pa.array(row_offsets), rings, type=S.POLYGON_TYPE, mask=pa.array(~has_ring)
    )


def empty_reader_table() -> pa.Table:
    return S.READER_SCHEMA.empty_table()


def decode_text(data: bytes, where: str) -> str:
    """Decode annotation bytes: UTF-8 (BOM allowed) or UTF-16/32 with a BOM; else reject."""
    if not data.strip():
        raise ParseError(Reason.PARSE_EMPTY_FILE, f"{where} is empty")
    for bom, codec in (
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe\x00\x00", "utf-32"),
        (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError as exc:
                raise ParseError(Reason.PARSE_BAD_ENCODING, f"{where}: {exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(
            Reason.PARSE_BAD_ENCODING, f"{where} is not UTF-8 (byte {exc.start}: {exc.reason})"
        ) from None


#: threads that read a source's small files concurrently (see :meth:`Source.prefetch`)
PREFETCH_THREADS = 16
#: files read ahead at a time (bounds the bytes held: per-image annotation files are small)
PREFETCH_WINDOW = 64
_READ_CHUNK = 1 << 20


#: what ``urlsplit`` takes for a scheme when the ref starts with it (up to the first ``:``)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
#: characters ``urlsplit`` deletes anywhere in a URL before it looks for the scheme
_URL_DELETED = frozenset("\t\r\n")
#: a ``synthetic://`` image reference in the one shape the generator writes (printable ASCII,
#: no brackets: ``urlsplit`` rejects some netlocs, and those must still go the general way)
_SYNTHETIC_SIZE = re.compile(r"synthetic://(?:(?![?#\[\]])[!-~])*\?w=([0-9]{1,9})&h=([0-9]{1,9})")


def url_scheme(ref: str) -> str:
    """``urlsplit(ref).scheme`` (lower case), without ``urlsplit``'s cost for plain refs."""
    if ":" not in ref:
        return ""
    match = _SCHEME.match(ref)
    if match is not None and _URL_DELETED.isdisjoint(ref):
        return match.group()[:-1].lower()
    return urlsplit(ref).scheme.lower()  # leading blanks, tabs or newlines: the general rule


#: the path of a plain ``scheme://netloc/path?query#fragment`` (no brackets in the netloc:
#: ``urlsplit`` checks those, and such refs take the general way)
_URL_PATH = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^/?#\[\]]*(?![\[\]])([^?#]*)")


def url_path(ref: str) -> str:
    """``urlsplit(ref).path``, without ``urlsplit``'s cost for plain URLs."""
    match = _URL_PATH.match(ref)
    if match is not None and _URL_DELETED.isdisjoint(ref):
        return match.group(1)
    return urlsplit(ref).path


#: a reference that :func:`url_scheme` certainly calls remote: a remote scheme at the very
#: start and none of the characters ``urlsplit`` deletes (with those it takes the general way)
_REMOTE_REF = "(?i)^(?:" + "|".join(sorted(REMOTE_SCHEMES)) + "):[^\t\r\n]*$"


def remote_refs(refs: pa.Array) -> np.ndarray:
    """Per reference, True where ``url_scheme(ref) in REMOTE_SCHEMES`` for certain (one regex
    over the whole column instead of a Python call per image). False means "look closer": a
    ref with leading blanks or a deleted character may still be remote; nulls are False."""
    found = pc.fill_null(pc.match_substring_regex(refs, _REMOTE_REF), False)
    return found.to_numpy(zero_copy_only=False)


def _is_normal(relative: str) -> bool:
    """Whether a relative posix path is already what ``normpath`` would make of it."""
    if not relative or relative.endswith("/") or "//" in relative:
        return False
    wrapped = f"/{relative}/"
    return "/./" not in wrapped and "/../" not in wrapped


def _scan_local(root: str) -> list[str]:
    """Files under a local folder (symlinks to files included, symlinked folders not walked)."""
    found: list[str] = []
    stack = [root]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    else:
                        found.append(entry.path)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
    return found


_POOL: tuple[int, ThreadPoolExecutor] | None = None


def _read_pool() -> ThreadPoolExecutor:
    """The process's file-reading threads (made again in a forked child: threads don't fork)."""
    global _POOL
    if _POOL is None or _POOL[0] != os.getpid():
        _POOL = (os.getpid(), ThreadPoolExecutor(PREFETCH_THREADS, "vprim-read"))
    return _POOL[1]


def _read_local(path: str) -> bytes:
    """A local file's bytes in as few system calls as the kernel allows: the builtin ``open``
    adds a buffer, an ``isatty`` ioctl and ``fstat`` calls, ~20 us a small file."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        chunks = []
        while chunk := os.read(fd, _READ_CHUNK):
            chunks.append(chunk)
        return b"".join(chunks) if len(chunks) != 1 else chunks[0]
    finally:
        os.close(fd)


class Source:
    """One catalog source, reached through fsspec, with path-safety and image helpers.

    Args:
        source_id: the catalog id.
        uri: fsspec URL of the source folder, or of a single annotation file (then the folder
            that holds it is the source root).
    """

    def __init__(self, source_id: str, uri: str, fs: fsspec.AbstractFileSystem | None = None):
        self.source_id = source_id
        self.uri = uri
        if fs is None:
            fs, path = fsspec.core.url_to_fs(uri)
        else:
            path = fs._strip_protocol(uri)
        self.fs: fsspec.AbstractFileSystem = fs
        if not fs.exists(path):
            raise ParseError(Reason.PARSE_MISSING_FILE, f"source {source_id}: {uri} does not exist")
        self.single_file: str | None = None if fs.isdir(path) else path
        self.root: str = posixpath.dirname(path) if self.single_file else path.rstrip("/")
        protocol = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        self._local = "file" in protocol
        self._prefetched: dict[str, Future] = {}
        self._found: list[str] | None = None

    # -- reading ----------------------------------------------------------------------------
    def prefetch(self, paths: list[str]) -> None:
        """Start reading ``paths`` in the background; :meth:`read_bytes` waits for each.

        Sources of one small file per image are bound by the latency of each read (a cold
        disk or an object store), not by parsing: the reads of the next window run while the
        current one is parsed. The caller bounds memory by prefetching a window of files at a
        time; each entry is used once.
        """
        todo = [path for path in paths if path not in self._prefetched]
        if not todo:
            return
        # one task reads the whole window: a task per file costs a hand-off of the GIL per
        # file, more than the read itself once the page cache or the disk answers quickly
        batch = _read_pool().submit(lambda: {path: self._read_or_error(path) for path in todo})
        for path in todo:
            self._prefetched[path] = batch

    def _read_or_error(self, path: str) -> bytes | ParseError:
        try:
            return self._read(path)
        except ParseError as exc:
            return exc

    # -- paths ------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        """The fsspec URL of an absolute path inside this source's filesystem."""
        if self._local and path.startswith("/") and os.sep == "/":
            return "file://" + (path.rstrip("/") or "/")  # what fsspec gives, ~10x cheaper
        return self.fs.unstrip_protocol(path)

    def relpath(self, path: str) -> str:
        """``path`` relative to the root (a listed path is cut, not re-normalised)."""
        suffix = path[len(self.root) + 1 :]
        if path.startswith(self.root + "/") and _is_normal(suffix):
            return suffix
        return posixpath.relpath(path, self.root)

    def inside(self, ref: str, base: str | None = None) -> str:
        """Resolve a relative reference against ``base`` (default: the source root).

        Raises ParseError(parse_path_escape) for absolute paths and ``..`` that leave the root.
        """
        ref = ref.replace("\\", "/")
        if ref.startswith("/") or ref.startswith("file:") or (len(ref) > 1 and ref[1] == ":"):
            raise ParseError(Reason.PARSE_PATH_ESCAPE, f"absolute path {ref!r} in {self.source_id}")
        joined = posixpath.normpath(posixpath.join(base or self.root, ref))
        if joined != self.root and not joined.startswith(self.root + "/"):
            raise ParseError(
                Reason.PARSE_PATH_ESCAPE, f"{ref!r} leaves the folder of source {self.source_id}"
            )
        return joined

    def image_uri(self, ref: str, base: str | None = None) -> str:
        """The URI of an image named in an annotation: remote URLs as they are, local refs
        resolved (safely) inside the source."""
        scheme = url_scheme(ref)
        if scheme in REMOTE_SCHEMES:
            return ref
        if scheme and len(scheme) > 1:
            raise ParseError(
                Reason.PARSE_PATH_ESCAPE, f"image URL scheme {scheme!r} is not allowed"
            )
        return self.url(self.inside(ref, base))

    def find(self) -> list[str]:
        """Every file under the root, sorted; listed once per source.

        A local root is scanned with ``os.scandir``: fsspec's ``find`` stats every entry,
        one more disk read per file on a cold cache. Both leave symlinked folders alone.
        """
        if self._found is None:
            found = _scan_local(self.root) if self._local else self.fs.find(self.root)
            self._found = sorted(found)
        return self._found

    def walk(self, suffixes: tuple[str, ...]) -> list[str]:
        """All files under the root whose names end with one of ``suffixes``, sorted."""
        if self.single_file:
            return [self.single_file] if self.single_file.lower().endswith(suffixes) else []
        return [p for p in self.find() if p.lower().endswith(suffixes)]

    def read_bytes(self, path: str) -> bytes:
        pending = self._prefetched.pop(path, None)
        data = self._read_or_error(path) if pending is None else pending.result()[path]
        if isinstance(data, ParseError):
            raise data
        return data

    def _read(self, path: str) -> bytes:
        try:
            if self._local:  # fsspec's per-call overhead is ~0.1 ms a file
                return _read_local(path)
            with self.fs.open(path, "rb") as f:
                return f.read()
        except (FileNotFoundError, IsADirectoryError):
            raise ParseError(
                Reason.PARSE_MISSING_FILE, f"{self.relpath(path)} does not exist"
            ) from None

    def read_text(self, path: str) -> str:
        return decode_text(self.read_bytes(path), self.relpath(path))

    def head_text(self, path: str, size: int = 1 << 16) -> str | None:
        """The first ``size`` bytes of a file as text (for ``detect``), None if unreadable."""
        try:
            with self.fs.open(path, "rb") as f:
                head = f.read(size)
        except OSError:
            return None
        codec = "utf-16" if head.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8"
        return head.decode(codec, errors="replace")

    # -- images -----------------------------------------------------------------------------
    def size_or_error(
        self, width: int | None, height: int | None, image_uri: str, where: str
    ) -> tuple[int, int, ParseError | None]:
        """The image size the annotation gave, else its header's, else a ParseError
        (``parse_missing_image_size``) for the caller to put on each of the image's boxes."""
        if width is not None and height is not None:
            return width, height, None
        header = self.image_size(image_uri)
        if header is None:
            detail = f"{where}: no usable size and image {image_uri} is not readable"
            return 0, 0, ParseError(Reason.PARSE_MISSING_IMAGE_SIZE, detail)
        return header[0], header[1], None

    def image_size(self, image_uri: str) -> tuple[int, int] | None:
        """(width, height) from the image header without decoding pixels; None if unreadable.

        ``synthetic://`` images carry their size in the URI (``?w=..&h=..``): that is their
        header, since they are rendered on demand.
        """
        plain = _SYNTHETIC_SIZE.fullmatch(image_uri)
        if plain is not None:  # what the general rule below gives, at a tenth of the cost
            return int(plain.group(1)), int(plain.group(2))
        parts = urlsplit(image_uri)
        if parts.scheme == "synthetic":
            q = parse_qs(parts.query)
            try:
                return int(q["w"][0]), int(q["h"][0])
            except (KeyError, ValueError, IndexError):
                return None
        from PIL import Image, UnidentifiedImageError

        try:
            with fsspec.open(image_uri, "rb") as f:
                head = f.read(1 << 16)
            with Image.open(io.BytesIO(head)) as img:
                return img.size
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
            return None
        except Exception:  # hostile URIs reach third-party drivers (a missing fsspec driver
            return None  # raises ImportError); none of them may stop the file


class FormatReader:
    """Base class of the format readers. Subclasses set ``name`` and implement the hooks."""

    name: ClassVar[str]

    def detect(self, source: Source) -> bool:
        """Whether ``source`` looks like this format (used for catalog format ``auto``)."""
        raise NotImplementedError

    def prepare(self, source: Source) -> object:
        """Read what the whole source shares (class names, label maps). May raise ParseError."""
        return None

    def files(self, source: Source, context: object) -> list[str]:
        """The annotation files of the source, as absolute paths in ``source.fs``, sorted."""
        raise NotImplementedError

    def read_file(self, source: Source, context: object, path: str) -> ReadResult:
        """Parse one annotation file. Raise ParseError for a file that cannot be read."""
        raise NotImplementedError

    def bulk(self, source: Source, context: object) -> BulkReader | None:
        """A bulk path over this source's files, or None when the format has none."""
        return None


class BulkReader:
    """A format's fast path over the files of one source.

    :meth:`add` takes a file only when it reads it exactly as the reader's ``read_file``
    would, with every box good, and returns its number of boxes; it returns -1 for any other
    file, which ingest then reads with ``read_file`` (that names what is wrong). A file taken
    is one image whose boxes were all kept. :meth:`table` converts every file taken at once
    (Arrow's fixed cost per array is paid once per source, not once per file), in the order
    they were taken. ``add`` changes no state until it has decided to take the file.
    """

    def add(self, path: str) -> int:
        raise NotImplementedError

    def table(self) -> pa.Table:
        raise NotImplementedError


def plain_utf8(data: bytes) -> str | None:
    """The text of a file a bulk path may read itself: UTF-8 without a byte-order mark; None
    otherwise (``read_file`` then decodes or rejects it)."""
    if data[:1] in (b"\xef", b"\xff", b"\xfe", b"\x00"):
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


class PerImageBulk(BulkReader):
    """What the one-file-per-image bulk paths share: each file taken is one image, with its
    boxes' labels and attributes; :meth:`image_columns` gives their reader columns at once."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.images: list[tuple[str, str, int, int]] = []  # image_id, uri, width, height
        self.boxes_per_image: list[int] = []
        self.labels: list[str] = []
        self.pairs: list[int] = []  # attribute pairs per box
        self.keys: list[str] = []
        self.values: list[str] = []

    def take_image(
        self,
        image: tuple[str, str, int, int],
        labels: list[str],
        attributes: list[dict[str, str]] | None = None,
    ) -> int:
        """Record one image and its boxes (no attributes: empty maps); its number of boxes."""
        n = len(labels)
        self.images.append(image)
        self.boxes_per_image.append(n)
        self.labels.extend(labels)
        if attributes is None or not any(attributes):  # the common case: one extend, no loop
            self.pairs.extend([0] * n)
            return n
        for pairs in attributes:
            self.pairs.append(len(pairs))
            self.keys.extend(pairs.keys())
            self.values.extend(pairs.values())
        return n

    def image_columns(self) -> dict[str, object]:
        """image_id, image_uri, size, box_index, raw_label and attributes of every box."""
        per_image = np.array(self.boxes_per_image, dtype=np.int64)
        image_of_box = np.repeat(np.arange(len(per_image)), per_image)
        first_box = np.repeat(np.cumsum(per_image) - per_image, per_image)
        ids, uris, widths, heights = (
            (list(c) for c in zip(*self.images)) if self.images else [[]] * 4
        )
        take = pa.array(image_of_box, pa.int64())
        return {
            "image_id": pa.array(list(ids), pa.string()).take(take),
            "image_uri": pa.array(list(uris), pa.string()).take(take),
            "image_width": np.array(widths, dtype=np.int64)[image_of_box],
            "image_height": np.array(heights, dtype=np.int64)[image_of_box],
            "box_index": np.arange(len(image_of_box)) - first_box,
            "raw_label": pa.array(self.labels, pa.string()),
            "attributes": attribute_maps(self.pairs, self.keys, self.values),
        }
