"""The one contract every format reader follows, and the helpers its readers share.

A reader turns one source (a folder or a file, reached through fsspec) into columns and
ledger rows, with exactly one implementation of its format's semantics:

- :meth:`FormatReader.prepare` reads once what the source's files share (class names, a label
  map); a ParseError there is the whole source's ledger row.
- :meth:`FormatReader.files` lists the annotation files.
- :meth:`FormatReader.read_file` reads one file into a :class:`ReadResult`: its kept boxes as a
  column fragment (:class:`~vprim.assets.sources.readers.columns.Fragment`), its box-level
  rejects, the records it could not read and the images it describes. A file that cannot be
  read at all raises ParseError.
- The fragment's class turns the fragments of all of a source's files into one
  ``READER_SCHEMA`` table at once (``Fragment.table_of``): Arrow's and NumPy's fixed costs are
  paid once per source, not once per small file.

Ingest calls ``read_file`` inside a guard: a ParseError becomes that file's ledger row, and so
does any other exception (``parse_reader_error``, a bug), while the rest of the source goes on.
Nothing is read twice. :attr:`FormatReader.read_ahead` says whether ingest may read a
window of the next files whole in the background (small files, one per image); streamed
formats are never read ahead.

Readers never hold per-box Python objects for a whole file when the file can be large (COCO,
ODVG, Open Images): they parse into column builders or Arrow directly.
"""

from __future__ import annotations

import io
import math
import os
import posixpath
import re
import zipfile
import zlib
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import IO, ClassVar
from urllib.parse import parse_qs, urlsplit

import fsspec
import fsspec.compression
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from fsspec.implementations.zip import ZipFileSystem

from vprim.assets.contracts.reasons import Reason
from vprim.assets.sources.readers.columns import Fragment, TableFragment, empty_reader_table
from vprim.assets.sources.readers.errors import BoxReject, ParseError
from vprim.assets.sources.readers.errors import kept_indexes as kept_indexes  # readers use them
from vprim.assets.sources.readers.errors import reject_image as reject_image  # from base
from vprim.assets.sources.readers.listing import (
    Decompressing,
    Listing,
    compression_of,
    has_suffix,
    is_archive,
    scan_local,
    within,
    zip_listing,
)
from vprim.assets.sources.readers.listing import plain_name as plain_name  # readers use it

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
    if value.__class__ is int or (value.__class__ is str and value.isascii() and value.isdigit()):
        number = int(value)  # type: ignore[call-overload]  # the common cases, exactly as below
        return number if 0 < number <= MAX_INT32 else None
    number = json_number(value)
    if number is None or not math.isfinite(number) or number != int(number):
        return None
    return int(number) if 0 < number <= MAX_INT32 else None


class ReadResult:
    """What one annotation file yields.

    ``boxes`` are the kept boxes: a :class:`Fragment` (kept as ``fragment``, turned into Arrow
    with the fragments of the source's other files), a ``READER_SCHEMA`` table (taken as one
    fragment) or None (no box). ``rejects`` are
    box-level parse rejects: they were counted on read (so ``boxes_seen == num_boxes +
    len(rejects)``) and get an ``instance_id`` like any box. ``images`` counts the images the
    file described, with or without boxes: the quality stage estimates missing annotations
    from images without boxes. ``record_errors`` are records inside an otherwise readable
    file that could not be read (a bad JSONL line): each becomes a ledger row with a null
    instance_id, like a whole file.
    """

    __slots__ = ("_table", "fragment", "images", "num_boxes", "record_errors", "rejects")

    def __init__(
        self,
        boxes: Fragment | pa.Table | None = None,
        rejects: Sequence[BoxReject] = (),
        images: int = 0,
        record_errors: Sequence[ParseError] = (),
    ):
        if boxes is None:
            boxes = _NO_BOXES
        elif isinstance(boxes, pa.Table):
            boxes = TableFragment(boxes)
        self.fragment: Fragment = boxes
        self.num_boxes = len(boxes)
        self.rejects = rejects
        self.images = images
        self.record_errors = record_errors
        self._table: pa.Table | None = None

    @property
    def boxes(self) -> pa.Table:
        """The kept boxes of this file alone, as a ``READER_SCHEMA`` table."""
        if self._table is None:
            self._table = type(self.fragment).table_of([self.fragment])
        return self._table

    @property
    def boxes_seen(self) -> int:
        return self.num_boxes + len(self.rejects)


_NO_BOXES = TableFragment(empty_reader_table())


#: byte-order marks, longest first where one is the start of another, and their codecs
_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
_BOM_STARTS = frozenset(bom[:1] for bom, _ in _BOMS)


def decode_text(data: bytes, where: str) -> str:
    """Decode annotation bytes: UTF-8 (BOM allowed) or UTF-16/32 with a BOM; else reject."""
    if not data or data.isspace():  # what ``not data.strip()`` says, without a copy
        raise ParseError(Reason.PARSE_EMPTY_FILE, f"{where} is empty")
    if data[:1] in _BOM_STARTS:
        for bom, codec in _BOMS:
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
        uri: fsspec URL of the source folder, of a single annotation file (then the folder
            that holds it is the source root), or of a ``.zip`` archive (read in place; its
            root is its one top-level folder, else the archive root).
    """

    def __init__(self, source_id: str, uri: str, fs: fsspec.AbstractFileSystem | None = None):
        self.source_id = source_id
        self.uri = uri
        if fs is None:
            fs, path = fsspec.core.url_to_fs(uri)
        else:
            path = fs._strip_protocol(uri)
        #: what follows a path in its URL: the archive of a path inside one (``::file:///x.zip``)
        chained = isinstance(fs, ZipFileSystem) and "::" in uri
        self.url_tail = uri[uri.index("::") :] if chained else ""
        if not fs.exists(path):
            raise ParseError(Reason.PARSE_MISSING_FILE, f"source {source_id}: {uri} does not exist")
        if is_archive(fs, path):
            self.url_tail = "::" + fs.unstrip_protocol(path)
            fs, path = self._open_archive(fs, path), ""
        self.fs: fsspec.AbstractFileSystem = fs
        self.single_file: str | None = None if fs.isdir(path) else path
        self.root: str = posixpath.dirname(path) if self.single_file else path.rstrip("/")
        self._listing: Listing | None = None
        if isinstance(fs, ZipFileSystem):  # its directory is already read: list it now
            self.root, self._listing = zip_listing(fs, self.root)
            self._listing.files.sort()
        protocol = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        self._local = "file" in protocol
        self._prefetched: dict[str, Future] = {}

    def _open_archive(self, fs: fsspec.AbstractFileSystem, path: str) -> ZipFileSystem:
        """The zip filesystem of an archive, read in place over its own filesystem."""
        f = fs.open(path, "rb")
        try:
            return ZipFileSystem(fo=f)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
            f.close()
            raise ParseError(
                Reason.PARSE_UNKNOWN_FORMAT,
                f"source {self.source_id}: {self.uri} is not a readable zip archive ({exc})",
            ) from None

    # -- reading ----------------------------------------------------------------------------
    def prefetch(self, paths: list[str]) -> None:
        """Start reading ``paths`` in the background; :meth:`read_bytes` waits for each.

        Sources of one small file per image are bound by the latency of each read (a cold
        disk or an object store), not by parsing: the reads of the next window run while the
        current one is parsed. The caller bounds memory by prefetching a window of files at a
        time (and only files it reads whole: :attr:`FormatReader.read_ahead`); each file's
        bytes are held until :meth:`read_bytes` takes them or :meth:`discard` drops them.
        """
        todo = [path for path in paths if path not in self._prefetched]
        if not todo:
            return
        # one task reads the whole window: a task per file costs a hand-off of the GIL per
        # file, more than the read itself once the page cache or the disk answers quickly
        batch = _read_pool().submit(lambda: {path: self._read_or_error(path) for path in todo})
        for path in todo:
            self._prefetched[path] = batch

    def discard(self, paths: list[str]) -> None:
        """Drop what was read ahead for ``paths`` and not taken (a file its reader skipped)."""
        for path in paths:
            pending = self._prefetched.pop(path, None)
            if pending is not None:
                pending.result().pop(path, None)

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
        # inside an archive: zip://train/a.jpg::file:///data/x.zip, which fsspec.open opens
        return self.fs.unstrip_protocol(path) + self.url_tail

    def relpath(self, path: str) -> str:
        """``path`` relative to the root (a listed path is cut, not re-normalised)."""
        prefix = self.root + "/" if self.root else ""  # an archive's root may be ""
        suffix = path[len(prefix) :]
        if path.startswith(prefix) and _is_normal(suffix):
            return suffix
        return posixpath.relpath(path, self.root or ".")

    def _in_root(self, path: str) -> bool:
        """Whether a normalised path is the root or under it."""
        if self.root:
            return path == self.root or path.startswith(self.root + "/")
        return path != ".." and not path.startswith(("../", "/"))

    def inside(self, ref: str, base: str | None = None) -> str:
        """Resolve a relative reference against ``base`` (default: the source root).

        Raises ParseError(parse_path_escape) for absolute paths, ``..`` that leave the root,
        and (local sources) paths that lead through a symlink out of the root.
        """
        ref = ref.replace("\\", "/")
        if ref.startswith("/") or ref.startswith("file:") or (len(ref) > 1 and ref[1] == ":"):
            raise ParseError(Reason.PARSE_PATH_ESCAPE, f"absolute path {ref!r} in {self.source_id}")
        joined = posixpath.normpath(posixpath.join(base or self.root, ref))
        if not self._in_root(joined):
            raise ParseError(
                Reason.PARSE_PATH_ESCAPE, f"{ref!r} leaves the folder of source {self.source_id}"
            )
        if self._local:
            error = self.link_escape(joined)
            if error is not None:
                raise error
        return joined

    @property
    def has_links(self) -> bool:
        """Whether the (local) root holds a symlink; without one no path leaves by a link."""
        return self._local and bool(self._listed().links)

    def link_escape(self, path: str) -> ParseError | None:
        """``parse_path_escape`` when a normalised local path under the root leads through a
        symlink out of it, else None. Only paths through a listed link cost a ``realpath``."""
        listing = self._listed()
        if not listing.links:
            return None
        link = path
        while link not in listing.links:
            if len(link) <= len(self.root):
                return None
            link = posixpath.dirname(link)
        real = os.path.realpath(path)
        if within(real, listing.real_root):
            return None
        detail = f"{self.relpath(path)} leads through the link {self.relpath(link)} to {real}"
        return ParseError(Reason.PARSE_PATH_ESCAPE, f"{detail}, outside source {self.source_id}")

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
        """Every file under the root, as absolute paths in ``fs``, sorted; listed once per
        source. Entries that leave the root (:meth:`escapes`) are not among them.

        A local root is scanned with ``os.scandir``: fsspec's ``find`` stats every entry,
        one more disk read per file on a cold cache. Both leave symlinked folders alone.
        """
        return self._listed().files

    def _listed(self) -> Listing:
        if self._listing is None:
            if self._local:
                listing = scan_local(self.root)
            else:
                listing = Listing(self.fs.find(self.root))
            listing.files.sort()
            self._listing = listing
        return self._listing

    def escapes(self) -> list[tuple[str, ParseError]]:
        """(URL, ``parse_path_escape``) of every entry the listing found leaving the root (a
        symlink pointing out, an archive member ``../x``): never read, each a file-level ledger
        row. Empty when the source was never listed (a single file read on its own)."""
        if self._listing is None:
            return []
        return [
            (self.url(path), ParseError(Reason.PARSE_PATH_ESCAPE, detail))
            for path, detail in self._listing.escapes
        ]

    def walk(self, suffixes: tuple[str, ...]) -> list[str]:
        """All files under the root whose names end with one of ``suffixes`` once a
        compression suffix is stripped (``a.json.gz`` is a ``.json`` file), sorted."""
        if self.single_file:
            return [self.single_file] if has_suffix(self.single_file, suffixes) else []
        return [p for p in self.find() if has_suffix(p, suffixes)]

    def read_bytes(self, path: str) -> bytes:
        """The whole file; what was read ahead is handed over once and no longer held here."""
        pending = self._prefetched.pop(path, None)
        data = self._read_or_error(path) if pending is None else pending.result().pop(path)
        if isinstance(data, ParseError):
            raise data
        return data

    def _read(self, path: str) -> bytes:
        try:
            if self._local and not compression_of(path):
                return _read_local(path)  # fsspec's per-call overhead is ~0.1 ms a file
            with self.open(path) as f:
                return f.read()
        except (FileNotFoundError, IsADirectoryError):
            raise ParseError(
                Reason.PARSE_MISSING_FILE, f"{self.relpath(path)} does not exist"
            ) from None

    def open(self, path: str) -> IO[bytes]:
        """A file of the source opened for binary reading, decompressed while it is read
        when its name ends with a :data:`COMPRESSIONS` suffix (then it cannot seek back, and
        a corrupt stream raises ParseError ``parse_bad_encoding`` as it is read)."""
        codec = compression_of(path)
        raw = self.fs.open(path, "rb")
        if codec is None:
            return raw
        where = self.relpath(path)
        try:
            stream = fsspec.compression.compr[codec](raw, mode="rb")
        except (OSError, EOFError, zlib.error) as exc:
            raw.close()
            raise ParseError(
                Reason.PARSE_BAD_ENCODING, f"{where} is not valid {codec} data ({exc})"
            ) from None
        return io.BufferedReader(Decompressing(raw, stream, codec, where), 1 << 16)

    def read_text(self, path: str) -> str:
        return decode_text(self.read_bytes(path), self.relpath(path))

    def head_text(self, path: str, size: int = 1 << 16) -> str | None:
        """The first ``size`` bytes of a file as text (for ``detect``), None if unreadable."""
        try:
            with self.open(path) as f:
                head = f.read(size)
        except (OSError, ParseError):
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

    def open_url(self, url: str) -> AbstractContextManager[IO[bytes]]:
        """A URL opened for binary reading (``with source.open_url(url) as f``); one inside
        this source's archive through the archive already open (``fsspec.open`` would read
        the archive's directory again, for every image)."""
        head = self.fs.unstrip_protocol("")
        tail = self.url_tail
        if tail and url.startswith(head) and url.endswith(tail):
            return self.fs.open(url[len(head) : -len(tail)], "rb")
        return fsspec.open(url, "rb")

    def owns(self, url: str) -> bool:
        """Whether ``url`` names a file of this source's own filesystem (a local file, a member
        of its archive): the images ingest's image step probes. Remote URLs, ``synthetic://``
        images and rows embedded in a Parquet file (``?row=``) are not."""
        if "?" in url or "#" in url:
            return False
        head = self.url(self.root) if self.root else self.fs.unstrip_protocol("")
        if self.url_tail:
            return url.endswith(self.url_tail) and url.startswith(head.removesuffix(self.url_tail))
        return url.startswith(head.rstrip("/") + "/")

    def stat_url(self, url: str) -> tuple[int, int]:
        """``(size, mtime_ns)`` of a file this source :meth:`owns`; FileNotFoundError if gone.
        What the image probes are cached by: a changed file is probed again."""
        head = self.fs.unstrip_protocol("")
        path = url[len(head) : len(url) - len(self.url_tail)] if self.url_tail else url
        if self._local:
            st = os.stat(path.removeprefix("file://"))
            return st.st_size, st.st_mtime_ns
        from vprim.assets.sources.images.probe import mtime_ns

        info = self.fs.info(path)
        return int(info.get("size") or 0), mtime_ns(info)

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

        from vprim.assets.sources.images.probe import read_orientation

        try:
            with self.open_url(image_uri) as f:
                head = f.read(1 << 16)
            with Image.open(io.BytesIO(head)) as img:
                # the displayed size (EXIF orientations 5-8 swap the axes): sizes read from
                # the header are what annotation tools and Ultralytics' exif_size show
                return displayed(img.size, read_orientation(img))
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
            return None
        except Exception:  # hostile URIs reach third-party drivers (a missing fsspec driver
            return None  # raises ImportError); none of them may stop the file


def displayed(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """An image's (width, height) as displayed under its EXIF orientation."""
    return (size[1], size[0]) if orientation in (5, 6, 7, 8) else size


class FormatReader:
    """Base class of the format readers. Subclasses set ``name`` and implement the hooks."""

    name: ClassVar[str]
    #: whether ingest reads a window of the next files whole in the background while it
    #: parses these: for formats of one small file per image, whose reads are bound by latency.
    #: Streamed formats (a large file read in blocks or lines) are never read ahead.
    read_ahead: ClassVar[bool] = False

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
        """Read one annotation file. Raise ParseError for a file that cannot be read."""
        raise NotImplementedError
