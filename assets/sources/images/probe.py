"""Probe every real image once: status, stored size, EXIF orientation, format, pHash.

The header is read with Pillow's lazy ``Image.open`` (no pixel decoded): whether the file is
there, whether it is an image, its stored size, format and EXIF orientation. With
``with_hash`` the same open then decodes a reduced image for the perceptual hash
(:mod:`.phash`), so each file is read once for both.

Statuses (docs/FORMATS.md, "images"):

- ``ok``: the header parses, and with ``with_hash`` the pixels decode too.
- ``missing``: the file is not there (``FileNotFoundError``, or an opener that returns None).
- ``undecodable``: the bytes are not an image Pillow can read (the ``detail`` says why:
  ``header: ...``), or, with ``with_hash``, the header parses but the pixels do not
  (``pixels: ...``: a truncated JPEG, a broken stream); width, height and orientation are then
  still given. A header-only probe calls a truncated file whose header parses ``ok``.
  Pillow's decompression-bomb guard applies (over 2 x ``Image.MAX_IMAGE_PIXELS`` pixels).

Results are cached by (uri, file size, mtime_ns): :func:`to_probe` says which files of a
listing changed since the previous table, :func:`merge_probes` merges; :class:`ProbeCache`
does both around :func:`probe_files`. ``synthetic://`` images are never probed (their size is
in the URI) and never in the table.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import partial
from typing import IO, Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image

from vprim.assets.sources.images import phash as H
from vprim.assets.sources.images.orientation import (
    ORIENTATION_TAG,
    boxes_to_displayed,
    displayed_size,
    polygons_to_displayed,
    resolve_sizes,
    valid_orientation,
)

OK, MISSING, UNDECODABLE = "ok", "missing", "undecodable"
SYNTHETIC_PREFIX = "synthetic://"
#: threads per probe call: the work is file reads (I/O) and Pillow's decoders, which release
#: the GIL; header parsing itself is Python and runs one thread at a time
DEFAULT_THREADS = 8
_CHUNK = 4096  # files handed to the pool at once (bounds the futures held)
_DETAIL_CHARS = 200
_FILE_OBJECT = re.compile(r"<_io\.[^<>]*>|<[^<>]* at 0x[0-9a-fA-F]+>")
_TIFF_WIDTH, _TIFF_LENGTH = 256, 257  # the TIFF tags ImageWidth and ImageLength

IMAGE_PROBE_SCHEMA = pa.schema(
    [
        pa.field("uri", pa.string(), nullable=False),
        pa.field("size", pa.int64()),  # bytes, as listed; null when the file was not found
        pa.field("mtime_ns", pa.int64()),  # as listed; 0 when the filesystem gives none
        pa.field("status", pa.string(), nullable=False),  # ok | missing | undecodable
        pa.field("width", pa.int32()),  # stored pixels; null without a header
        pa.field("height", pa.int32()),
        pa.field("orientation", pa.int8(), nullable=False),  # EXIF 1-8; 1 when absent/invalid
        pa.field("displayed_width", pa.int32()),  # swapped for orientations 5-8
        pa.field("displayed_height", pa.int32()),
        pa.field("format", pa.string()),  # Pillow's name: JPEG, PNG, WEBP, ...
        pa.field("phash", pa.uint64()),  # null when the pixels were not (or could not be) read
        pa.field("detail", pa.string(), nullable=False),  # why, for missing and undecodable
    ]
)
_KEYS = ["uri", "size", "mtime_ns"]

#: what an opener gives for a URI: bytes, a binary file, or something ``with`` opens into one
#: (``fsspec.open``); None or FileNotFoundError mean the file is missing
Opened = bytes | bytearray | memoryview | IO[bytes] | AbstractContextManager | None
Opener = Callable[[str], Opened]


@dataclass(frozen=True, slots=True)
class Probe:
    """What one image file says about itself."""

    status: str
    width: int | None = None  # stored
    height: int | None = None
    orientation: int = 1
    format: str | None = None
    phash: int | None = None
    detail: str = ""

    @property
    def displayed_size(self) -> tuple[int, int] | None:
        """(width, height) as shown: swapped for orientations 5-8."""
        if self.width is None or self.height is None:
            return None
        if self.orientation >= 5:
            return self.height, self.width
        return self.width, self.height


def _detail(stage: str, error: BaseException) -> str:
    """One line, the same on every run: Pillow names the file object it was given, with its
    memory address (``cannot identify image file <_io.BytesIO object at 0x7f..>``)."""
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return f"{stage}: {_FILE_OBJECT.sub('<file>', text)}"[:_DETAIL_CHARS]


def read_orientation(img: Image.Image) -> int:
    """The EXIF orientation (1-8) from what ``Image.open`` read of the header; 1 when absent
    or invalid.

    Calls the base ``Image.getexif``: PNG's override decodes the whole image to look for an
    ``eXIf`` chunk after the pixels, which a header probe must not do (PNG writers put it
    before them; one after is not seen).
    """
    try:
        return valid_orientation(Image.Image.getexif(img).get(ORIENTATION_TAG))
    except Exception:  # a corrupt EXIF block is not a corrupt image: no orientation
        return 1


def stored_size(img: Image.Image) -> tuple[int, int]:
    """(width, height) of the pixels as stored. Pillow 12+ reports a TIFF with orientation 5-8
    at its displayed size; the TIFF tags still say the stored one."""
    tags = getattr(img, "tag_v2", None)
    if tags is not None and _TIFF_WIDTH in tags and _TIFF_LENGTH in tags:
        return int(tags[_TIFF_WIDTH]), int(tags[_TIFF_LENGTH])
    return img.size


def probe_image(data: bytes | bytearray | memoryview | IO[bytes], with_hash: bool = False) -> Probe:
    """Probe one image given as bytes or a binary file object (left open).

    Args:
        data: the file's bytes (an image embedded in a Parquet row, say) or a file object.
        with_hash: also decode a reduced image and compute its pHash.
    """
    fp = io.BytesIO(data) if isinstance(data, bytes | bytearray | memoryview) else data
    try:
        img = Image.open(fp)
    except Exception as error:  # hostile files reach every Pillow plugin: none may stop a run
        return Probe(UNDECODABLE, detail=_detail("header", error))
    with img:
        width, height = stored_size(img)
        if width <= 0 or height <= 0:
            return Probe(UNDECODABLE, detail=f"header: size {width}x{height}")
        probe = Probe(OK, width, height, read_orientation(img), img.format)
        if not with_hash:
            return probe
        try:
            value = H.image_hash(img, probe.orientation)
        except Exception as error:
            return Probe(UNDECODABLE, width, height, probe.orientation, probe.format,
                         detail=_detail("pixels", error))  # fmt: skip
    return Probe(OK, width, height, probe.orientation, probe.format, value)


def _local_path(uri: str) -> str | None:
    if uri.startswith("file://"):
        return uri[len("file://") :]
    return None if "://" in uri else uri


def open_uri(uri: str) -> Opened:
    """The default opener: a local path or ``file://`` URL as a buffered file (Pillow reads
    the header from it); any other fsspec URL (``zip://a.jpg::file:///x.zip``, ``s3://``,
    ``memory://``) read whole, so that transport errors are raised here, never taken for a
    broken image."""
    path = _local_path(uri)
    if path is not None:
        return open(path, "rb")  # probe_uri closes it
    with fsspec.open(uri, "rb") as f:
        return f.read()


def probe_uri(uri: str, open_file: Opener = open_uri, with_hash: bool = False) -> Probe:
    """Probe the image at ``uri``, reached through ``open_file`` (see :data:`Opener`).

    ``FileNotFoundError`` from the opener is ``missing``; its other errors (permissions, the
    network) propagate: they say nothing about the image, and a cached ``undecodable`` would
    outlive them.
    """
    try:
        opened = open_file(uri)
    except FileNotFoundError as error:
        return Probe(MISSING, detail=_detail("open", error))
    if opened is None:
        return Probe(MISSING, detail="open: no such image")
    if isinstance(opened, bytes | bytearray | memoryview):
        return probe_image(opened, with_hash)
    try:
        with opened as f:  # a file object, or fsspec's OpenFile that opens only here
            return probe_image(f, with_hash)
    except FileNotFoundError as error:
        return Probe(MISSING, detail=_detail("open", error))


def stat_uri(uri: str) -> tuple[int, int]:
    """(size in bytes, mtime in ns) of a local path or fsspec URL; mtime 0 when the
    filesystem gives none. Raises FileNotFoundError."""
    path = _local_path(uri)
    if path is not None:
        st = os.stat(path)
        return st.st_size, st.st_mtime_ns
    fs, fs_path = fsspec.core.url_to_fs(uri)
    info = fs.info(fs_path)
    return int(info["size"]), mtime_ns(info)


def mtime_ns(info: dict[str, Any]) -> int:
    """The modification time in an fsspec ``info`` dict (each filesystem names it its own way:
    ``created`` is ``memory://``'s), in ns; 0 when it gives none."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "date_time", "created"):
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, tuple):  # a zip member's (year, month, day, hour, min, sec)
            value = dt.datetime(*value, tzinfo=dt.UTC)
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if isinstance(value, dt.datetime):
            return int(value.timestamp() * 1e9)
        return int(float(value) * 1e9)
    return 0


def _keys_of(files: Sequence[tuple[str, int | None, int | None]]) -> tuple[list, list, list]:
    return [f[0] for f in files], [f[1] for f in files], [f[2] for f in files]


def probes_table(
    files: Sequence[tuple[str, int | None, int | None]], probes: Sequence[Probe]
) -> pa.Table:
    """The ``IMAGE_PROBE_SCHEMA`` table of ``probes``, one per ``(uri, size, mtime_ns)``."""
    uris, sizes, mtimes = _keys_of(files)
    width = np.array([p.width or 0 for p in probes], np.int64)
    height = np.array([p.height or 0 for p in probes], np.int64)
    orientation = np.array([p.orientation for p in probes], np.int8)
    no_header = np.array([p.width is None for p in probes], bool)
    shown_w, shown_h = displayed_size(width, height, orientation)

    def pixels(values: np.ndarray) -> pa.Array:
        return pa.array(values, pa.int32(), mask=no_header)

    columns = [
        pa.array(uris, pa.string()),
        pa.array(sizes, pa.int64()),
        pa.array(mtimes, pa.int64()),
        pa.array([p.status for p in probes], pa.string()),
        pixels(width),
        pixels(height),
        pa.array(orientation, pa.int8()),
        pixels(shown_w),
        pixels(shown_h),
        pa.array([p.format for p in probes], pa.string()),
        pa.array([p.phash for p in probes], pa.uint64()),
        pa.array([p.detail for p in probes], pa.string()),
    ]
    return pa.Table.from_arrays(columns, schema=IMAGE_PROBE_SCHEMA)


def _chunks(items: Sequence, size: int) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def probe_files(
    files: Sequence[tuple[str, int | None, int | None]],
    open_file: Opener = open_uri,
    with_hash: bool = True,
    threads: int = DEFAULT_THREADS,
) -> pa.Table:
    """Probe each ``(uri, size, mtime_ns)`` with a thread pool; an ``IMAGE_PROBE_SCHEMA``
    table in the order of ``files`` (``synthetic://`` ones left out)."""
    files = [f for f in files if not f[0].startswith(SYNTHETIC_PREFIX)]

    def one(uri: str) -> Probe:
        return probe_uri(uri, open_file, with_hash)

    probes: list[Probe] = []
    if threads <= 1 or len(files) < 2:
        probes = [one(f[0]) for f in files]
    else:
        with ThreadPoolExecutor(threads) as pool:
            for chunk in _chunks(files, _CHUNK):
                probes.extend(pool.map(one, [f[0] for f in chunk]))
    return probes_table(files, probes)


def _listing(files: Sequence[tuple[str, int | None, int | None]]) -> pa.Table:
    uris, sizes, mtimes = _keys_of(files)
    table = pa.table(
        {
            "uri": pa.array(uris, pa.string()),
            "size": pa.array(sizes, pa.int64()),
            "mtime_ns": pa.array(mtimes, pa.int64()),
            "_order": pa.array(np.arange(len(files), dtype=np.int64)),
        }
    )
    return table.filter(pc.invert(pc.starts_with(table["uri"], SYNTHETIC_PREFIX)))


def _reusable(previous: pa.Table | None) -> pa.Table:
    """The previous rows a new run may keep: all but ``missing`` (a file may have appeared)."""
    if previous is None:
        return IMAGE_PROBE_SCHEMA.empty_table()
    previous = previous.select(IMAGE_PROBE_SCHEMA.names).cast(IMAGE_PROBE_SCHEMA)
    return previous.filter(pc.not_equal(previous["status"], MISSING))


def to_probe(
    previous: pa.Table | None, files: Sequence[tuple[str, int | None, int | None]]
) -> list[tuple[str, int | None, int | None]]:
    """The ``(uri, size, mtime_ns)`` of ``files`` that need probing, in their order: those
    with no row of the same key in ``previous`` (new or changed files), previously ``missing``
    ones, and those with a null size or mtime (never cached). ``synthetic://`` URIs never."""
    listing = _listing(files)
    fresh = listing.join(_reusable(previous).select(_KEYS), keys=_KEYS, join_type="left anti")
    order = np.sort(fresh["_order"].to_numpy())
    return [files[i] for i in order]


def merge_probes(
    previous: pa.Table | None,
    fresh: pa.Table,
    files: Sequence[tuple[str, int | None, int | None]],
) -> pa.Table:
    """The probe table of the listing ``files``: one row per listed URI that has a result, in
    the order of ``files``; a ``fresh`` row wins over a ``previous`` one, which is kept only
    while its (uri, size, mtime_ns) is still the listed one. Rows of URIs no longer listed are
    dropped. ``previous`` may carry extra columns (they are left out)."""
    listing = _listing(files)
    firsts = listing.group_by("uri", use_threads=False).aggregate([("_order", "min")])
    listing = listing.filter(pc.is_in(listing["_order"], value_set=firsts["_order_min"]))
    kept = _reusable(previous).join(listing.select(_KEYS), keys=_KEYS, join_type="left semi")
    fresh = fresh.select(IMAGE_PROBE_SCHEMA.names).cast(IMAGE_PROBE_SCHEMA)
    kept = kept.filter(pc.invert(pc.is_in(kept["uri"], value_set=fresh["uri"])))
    both = pa.concat_tables([kept.cast(IMAGE_PROBE_SCHEMA), fresh])  # joins drop "not null"
    ordered = both.join(listing.select(["uri", "_order"]), keys="uri", join_type="inner")
    ordered = ordered.sort_by("_order").drop_columns("_order")
    return ordered.select(IMAGE_PROBE_SCHEMA.names).cast(IMAGE_PROBE_SCHEMA)


def empty_probes(source_id: str | None = None) -> pa.Table:
    """An empty probe table; with ``source_id``, with a ``source_id`` column appended."""
    table = IMAGE_PROBE_SCHEMA.empty_table()
    if source_id is None:
        return table
    return table.append_column("source_id", pa.array([], pa.string()))


def _stat_or_missing(
    stat: Callable[[str], tuple[int, int]], uri: str
) -> tuple[str, int | None, int | None]:
    """``(uri, size, mtime_ns)``; ``(uri, None, None)`` for a file that is gone."""
    try:
        size, mtime_ns = stat(uri)
    except FileNotFoundError:
        return uri, None, None
    return uri, size, mtime_ns


class ProbeCache:
    """The previous probe table, and probing of whatever changed since.

    Args:
        previous: the last run's ``IMAGE_PROBE_SCHEMA`` rows (extra columns are ignored).
        with_hash: compute the pHash of every image probed.
        threads: size of the thread pool (stats and probes).
        stat: ``uri -> (size, mtime_ns)``, raising FileNotFoundError (default :func:`stat_uri`).
    """

    def __init__(
        self,
        previous: pa.Table | None = None,
        *,
        with_hash: bool = True,
        threads: int = DEFAULT_THREADS,
        stat: Callable[[str], tuple[int, int]] = stat_uri,
    ):
        self.previous = previous
        self.with_hash = with_hash
        self.threads = threads
        self.stat = stat

    def probe(
        self,
        opener: Opener | Any,
        uris: Sequence[str],
        stat: Callable[[str], tuple[int, int]] | None = None,
    ) -> tuple[pa.Table, int, int]:
        """Probe the ``uris`` that changed since the previous table.

        Args:
            opener: an :data:`Opener`, or an object with ``open_url`` (a reader ``Source``,
                whose archive stays open across its images).
            uris: the images to probe (``synthetic://`` ones are skipped).
            stat: this call's ``uri -> (size, mtime_ns)`` (a reader ``Source``'s
                ``stat_url``, which reads an archive's directory once), else the cache's.

        Returns:
            (the probe table of ``uris``, how many were probed now, how many came from the cache)
        """
        open_file = getattr(opener, "open_url", opener)
        uris = [u for u in uris if not u.startswith(SYNTHETIC_PREFIX)]
        stat_one = partial(_stat_or_missing, stat or self.stat)
        with ThreadPoolExecutor(max(1, self.threads)) as pool:
            files = list(pool.map(stat_one, uris))
        todo = to_probe(self.previous, files)
        fresh = probe_files(todo, open_file, self.with_hash, self.threads)
        table = merge_probes(self.previous, fresh, files)
        return table, len(todo), table.num_rows - fresh.num_rows


@dataclass
class Judgement:
    """What :func:`judge` made of a table of boxes (``READER_SCHEMA``) and their probes."""

    boxes: pa.Table  # boxes kept, moved to the displayed orientation where the rule says
    rejects: list[tuple[str, int, str, str]]  # (image_id, box_index, reason, detail)
    rotated: int  # boxes moved from stored to displayed pixels


def _probe_columns(boxes: pa.Table, probes: pa.Table) -> dict[str, np.ndarray]:
    """Each box's probe fields, shape ``(n,)``; boxes with no probe row look ``ok``, 1x1
    stored, orientation 1, and carry ``probed = False``."""
    at = pc.index_in(boxes["image_uri"], value_set=probes["uri"])
    probed = pc.is_valid(at).to_numpy(zero_copy_only=False)
    at = at.fill_null(0).to_numpy()
    fills = {"status": OK, "orientation": 1, "width": 0, "height": 0, "detail": ""}
    out = {"probed": probed}
    for name, fill in fills.items():
        values = probes[name].fill_null(fill).to_numpy(zero_copy_only=False)
        out[name] = (
            np.where(probed, values[at], fill) if probes.num_rows else np.full(boxes.num_rows, fill)
        )
    return out


def judge(boxes: pa.Table, probes: pa.Table, header_sized: np.ndarray | None = None) -> Judgement:
    """Judge each box by its image's probe (docs/FORMATS.md, "images").

    Boxes whose ``image_uri`` has no probe row pass unchanged. ``missing`` ->
    ``image_missing``; ``undecodable`` -> ``image_undecodable``; ``ok`` -> the EXIF size rule
    (:func:`~.orientation.resolve_sizes`): ``image_size_mismatch``, or kept with the displayed
    size, its box and polygon moved to displayed pixels when they were in stored ones.

    Args:
        boxes: ``READER_SCHEMA`` rows (``image_width``/``image_height`` are the annotation's).
        probes: ``IMAGE_PROBE_SCHEMA`` rows of (at least) the boxes' images.
        header_sized: bool, shape ``(n,)``: rows whose size the reader took from the image
            header, not the annotation (YOLO): they get the displayed size, never a mismatch.
    """
    from vprim.assets.contracts.reasons import Reason

    p = _probe_columns(boxes, probes)
    stated_w = boxes["image_width"].to_numpy().astype(np.float64)
    stated_h = boxes["image_height"].to_numpy().astype(np.float64)
    if header_sized is not None:
        stated_w = np.where(header_sized, np.nan, stated_w)
        stated_h = np.where(header_sized, np.nan, stated_h)
    sizes = resolve_sizes(stated_w, stated_h, p["width"], p["height"], p["orientation"])
    usable = p["probed"] & (p["status"] == OK)
    reason = np.select(
        [p["status"] == MISSING, p["status"] == UNDECODABLE, usable & sizes.mismatch],
        [Reason.IMAGE_MISSING.value, Reason.IMAGE_UNDECODABLE.value,
         Reason.IMAGE_SIZE_MISMATCH.value],
        "",
    )  # fmt: skip
    rejected = np.flatnonzero(reason != "")
    image_ids = boxes["image_id"].to_numpy(zero_copy_only=False)
    box_index = boxes["box_index"].to_numpy()
    rejects = []
    for i in rejected:  # rejects are few; each detail names what was wrong
        detail = p["detail"][i]
        if reason[i] == Reason.IMAGE_SIZE_MISMATCH:
            detail = (
                f"annotation {stated_w[i]:.0f}x{stated_h[i]:.0f}, image {p['width'][i]}x"
                f"{p['height'][i]} stored, {sizes.width[i]}x{sizes.height[i]} displayed"
                f" (orientation {p['orientation'][i]})"
            )
        rejects.append((image_ids[i], int(box_index[i]), str(reason[i]), str(detail)))
    rotate = usable & sizes.to_displayed
    out = _moved(boxes, rotate, p["width"], p["height"], p["orientation"])
    resized = usable & ~sizes.mismatch
    for name, values in (("image_width", sizes.width), ("image_height", sizes.height)):
        column = np.where(resized, values, boxes[name].to_numpy())
        out = out.set_column(out.schema.get_field_index(name), name, pa.array(column, pa.int32()))
    kept = reason == ""
    return Judgement(out.filter(pa.array(kept)), rejects, int(np.count_nonzero(rotate)))


def _moved(
    boxes: pa.Table,
    rotate: np.ndarray,
    width: np.ndarray,
    height: np.ndarray,
    orientation: np.ndarray,
) -> pa.Table:
    """``boxes`` with the rows of ``rotate`` moved from stored to displayed pixels."""
    if not rotate.any():
        return boxes
    o = np.where(rotate, orientation, 1)  # orientation 1 leaves a row as it is
    names = ("x0", "y0", "x1", "y1")
    corners = [boxes[c].to_numpy(zero_copy_only=False).astype(np.float64) for c in names]
    for name, values in zip(names, boxes_to_displayed(*corners, width, height, o)):
        nulls = boxes[name].is_null().to_numpy(zero_copy_only=False)
        column = pa.array(values, pa.float64(), mask=nulls)
        boxes = boxes.set_column(boxes.schema.get_field_index(name), name, column)
    polygon = polygons_to_displayed(boxes["polygon"], width, height, o)
    return boxes.set_column(boxes.schema.get_field_index("polygon"), "polygon", polygon)
