"""Ingest: read every source of a shard into ``raw_instances`` and the parse ledger.

One shard is a static slice of the catalog (``hashing.shard_of``). A shard is written as three
files, each atomically: ``raw_instances/shard=NNN.parquet``, ``rejects/stage=parse/shard=NNN
.parquet`` and ``source_stats/shard=NNN.parquet`` (per source: files, images, boxes seen/kept/
rejected). A broken file or source becomes ledger rows and the shard goes on; only a bug in
vprim itself (not bad input) can stop a shard.
"""

from __future__ import annotations

import time
import traceback
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vprim.assets.contracts import hashing as H
from vprim.assets.contracts import layout
from vprim.assets.contracts import reasons as R
from vprim.assets.contracts import schemas as S
from vprim.assets.contracts.reasons import Reason
from vprim.assets.incremental import code_version, run_once
from vprim.assets.parallel import map_shards
from vprim.assets.sources import catalog as cat
from vprim.assets.sources.image_step import check_images
from vprim.assets.sources.images.probe import ProbeCache, empty_probes
from vprim.assets.sources.readers import READERS, detect_format
from vprim.assets.sources.readers.base import (
    PREFETCH_WINDOW,
    BoxReject,
    FormatReader,
    ParseError,
    ReadResult,
    Source,
)
from vprim.assets.sources.readers.columns import Fragment
from vprim.assets.storage import PARQUET_OPTIONS, Storage, parquet_writer

#: the ledger stages ingest writes, one file per shard each
INGEST_STAGES = R.INGEST_STAGES


@dataclass
class SourceOutcome:
    """The rows one source contributes to its shard."""

    boxes: list[pa.Table] = field(default_factory=list)
    rejects: list[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    probes: pa.Table | None = None  # the image step's probes of the source's own images
    image_counts: Counter = field(default_factory=Counter)  # images probed/cached, boxes rotated


class _RejectRows:
    """Collects ledger rows of one source (few per source: files, not boxes, mostly)."""

    def __init__(self, source_id: str):
        self.source_id = source_id
        self.rows: list[dict] = []

    def file(self, uri: str, error: ParseError) -> None:
        self.rows.append(self._row(None, uri, error.reason, error.detail))

    def boxes(self, uri: str, result: ReadResult) -> None:
        self.box_rows(result.rejects, lambda _: uri)

    def box_rows(self, rejects: Sequence[BoxReject], uri_of: Callable | Mapping) -> None:
        """Box-level rows; ``uri_of`` gives each one's ``uri`` from its image id."""
        if not rejects:
            return
        ids = H.instance_ids(
            self.source_id,
            [r.image_id for r in rejects],
            np.array([r.box_index for r in rejects]),
        )
        where = uri_of.__getitem__ if isinstance(uri_of, Mapping) else uri_of
        for iid, r in zip(ids.tolist(), rejects):
            self.rows.append(self._row(iid, where(r.image_id), r.reason, r.detail))

    def _row(self, iid: int | None, uri: str, reason: str, detail: str) -> dict:
        return {
            "instance_id": iid,
            "source_id": self.source_id,
            "uri": uri,
            "stage": Reason(reason).stage,  # parse, or image (image_missing and the probe)
            "reason": reason,
            "detail": detail,
        }


def _with_ids(source_id: str, fmt: str, boxes: pa.Table) -> pa.Table:
    """Reader columns -> raw_instances columns (adds instance_id, source_id, format)."""
    n = boxes.num_rows
    ids = H.instance_ids(
        source_id, boxes["image_id"], boxes["box_index"].to_numpy(zero_copy_only=False)
    )
    columns = {
        "instance_id": pa.array(ids, pa.uint64()),
        "source_id": pa.array(np.full(n, source_id, dtype=object), pa.string()),
        **{name: boxes[name] for name in S.READER_SCHEMA.names},
        "format": pa.array(np.full(n, fmt, dtype=object), pa.string()),
    }
    return pa.table(columns, schema=S.RAW_INSTANCES_SCHEMA)


def read_source(
    source_id: str, uri: str, fmt: str, probes: ProbeCache | None = None
) -> SourceOutcome:
    """Read one catalog source, then probe the images its boxes name (``image_step``; with
    ``probes``, the shard's cache of earlier probes). Never raises for bad input: problems
    become ledger rows."""
    started = time.perf_counter()
    out = SourceOutcome()
    ledger = _RejectRows(source_id)
    stats = Counter(files=0, files_rejected=0, images=0, boxes_seen=0, boxes_kept=0)
    resolved_fmt = fmt
    source: Source | None = None
    try:
        source = Source(source_id, uri)
        if fmt == "auto":
            detected = detect_format(source)
            if detected is None:
                raise ParseError(
                    Reason.PARSE_UNKNOWN_FORMAT,
                    f"format=auto and no file under {uri} looks like any of {S.FORMATS}",
                )
            resolved_fmt = detected
        reader = READERS[resolved_fmt]
        context = reader.prepare(source)
        files = reader.files(source, context)
        if not files:
            raise ParseError(
                Reason.PARSE_MISSING_FILE, f"no {resolved_fmt} annotation files in {uri}"
            )
    except ParseError as exc:
        ledger.file(uri, exc)
        files, stats["files_rejected"] = [], 1
    table = _read_files(reader, source, context, files, ledger, stats) if files else None
    if source is not None:
        _escape_rows(source, ledger, stats)
    if table is not None and table.num_rows:
        table = _image_step(source, table, probes or ProbeCache(), ledger, stats, out)
    if table is not None:  # ids and constant columns once per source, not once per file
        out.boxes.append(_with_ids(source_id, resolved_fmt, table))
    out.rejects = ledger.rows
    out.stats = {
        "source_id": source_id,
        "format": resolved_fmt,
        **stats,
        "boxes_rejected": stats["boxes_seen"] - stats["boxes_kept"],
        "seconds": time.perf_counter() - started,
    }
    return out


def _image_step(
    source: Source,
    table: pa.Table,
    probes: ProbeCache,
    ledger: _RejectRows,
    stats: Counter,
    out: SourceOutcome,
) -> pa.Table:
    """The source's boxes after the image step: rejects in the ledger (stage ``image``, the
    image's URI in ``uri``), probes kept for the shard's probe table."""
    checked = check_images(source, table, probes)
    if checked.rejects:  # the image URI of each rejected image, not of every box
        rejected = pa.array({r.image_id for r in checked.rejects}, pa.string())
        named = table.filter(pc.is_in(table["image_id"], value_set=rejected))
        uri_of = dict(zip(named["image_id"].to_pylist(), named["image_uri"].to_pylist()))
        ledger.box_rows(checked.rejects, uri_of)
        stats["boxes_kept"] -= len(checked.rejects)
    out.image_counts = Counter(
        images_probed=checked.probed, images_cached=checked.cached, boxes_rotated=checked.rotated
    )
    out.probes = checked.probes
    return checked.boxes


def _escape_rows(source: Source, ledger: _RejectRows, stats: Counter) -> None:
    """One ``parse_path_escape`` row per entry that leaves the source (a symlink pointing out
    of its folder, an archive member ``../x``): the listing left it out, so nothing read it."""
    for url, error in source.escapes():
        ledger.file(url, error)
        stats["files"] += 1
        stats["files_rejected"] += 1


def _read_files(
    reader: FormatReader,
    source: Source,
    context: object,
    files: list[str],
    ledger: _RejectRows,
    stats: Counter,
) -> pa.Table | None:
    """Every file of a source through its reader, once each and in file order; the boxes
    of all of them as one table (None when there are none)."""
    read: list[tuple[str, ReadResult]] = []  # the files that kept boxes, with what they gave
    windows = [files[i : i + PREFETCH_WINDOW] for i in range(0, len(files), PREFETCH_WINDOW)]
    for k, window in enumerate(windows):
        if reader.read_ahead:  # the next window is read while this one is parsed
            for ahead in windows[k : k + 2]:
                source.prefetch(ahead)
        for path in window:
            result = _read_file(reader, source, context, path, ledger, stats)
            if result is not None and result.num_boxes:
                read.append((path, result))
        if reader.read_ahead:
            source.discard(window)  # what the reader did not take is not held any longer
    return _boxes_table(source, read, ledger, stats)


def _boxes_table(
    source: Source, read: list[tuple[str, ReadResult]], ledger: _RejectRows, stats: Counter
) -> pa.Table | None:
    """The column fragments of a source's files as one table, converted once per source.

    A fragment that cannot be converted (a reader bug) makes its file a ``parse_reader_error``
    row: the file's counts and ledger rows are withdrawn and the other files are kept. No
    file is read again.
    """
    if not read:
        return None
    try:
        return _join([result.fragment for _, result in read])
    except Exception:
        pass
    tables = []
    for path, result in read:
        try:
            tables.append(type(result.fragment).table_of([result.fragment]))
        except Exception as exc:
            url = source.url(path)
            ledger.rows = [row for row in ledger.rows if row["uri"] != url]
            ledger.file(url, _reader_error(exc))
            stats["files_rejected"] += 1
            stats["images"] -= result.images
            stats["boxes_seen"] -= result.boxes_seen
            stats["boxes_kept"] -= result.num_boxes
    return pa.concat_tables(tables) if tables else None


def _join(fragments: list[Fragment]) -> pa.Table:
    """Fragments as one table, in order: each run of one fragment class converted at once.
    Its columns keep their chunks (combining them would copy a large file's columns)."""
    tables: list[pa.Table] = []
    start = 0
    for i in range(1, len(fragments) + 1):
        if i == len(fragments) or type(fragments[i]) is not type(fragments[start]):
            tables.append(type(fragments[start]).table_of(fragments[start:i]))
            start = i
    return pa.concat_tables(tables)


def _reader_error(exc: Exception) -> ParseError:
    """A reader bug as a ledger row: the exception and where it was raised."""
    where = traceback.extract_tb(exc.__traceback__)[-1]
    detail = f"{type(exc).__name__}: {exc} at {where.filename}:{where.lineno}"
    return ParseError(Reason.PARSE_READER_ERROR, detail)


def _read_file(
    reader: FormatReader,
    source: Source,
    context: object,
    path: str,
    ledger: _RejectRows,
    stats: Counter,
) -> ReadResult | None:
    """One annotation file through its reader, counted; a failure is a ledger row (None)."""
    stats["files"] += 1
    try:
        result = reader.read_file(source, context, path)
    except ParseError as exc:
        ledger.file(source.url(path), exc)
        stats["files_rejected"] += 1
        return None
    except Exception as exc:  # a reader bug must not stop 98k sources; keep the evidence
        ledger.file(source.url(path), _reader_error(exc))
        stats["files_rejected"] += 1
        return None
    kept, rejected = result.num_boxes, len(result.rejects)
    if rejected or result.record_errors:
        file_url = source.url(path)
        for err in result.record_errors:
            ledger.file(file_url, err)
        ledger.boxes(file_url, result)
    stats["images"] += result.images
    stats["boxes_seen"] += kept + rejected
    stats["boxes_kept"] += kept
    return result


@dataclass
class ShardSummary:
    shard: str
    sources: int
    boxes: int
    boxes_seen: int
    rejects_by_reason: dict[str, int]
    formats: dict[str, int]
    seconds: float
    images_probed: int = 0  # real images probed now (not synthetic://, not remote)
    images_cached: int = 0  # real images whose earlier probe still held (same size, mtime)
    boxes_rotated: int = 0  # boxes moved from stored to displayed (EXIF) orientation

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def ingest_shard(storage: Storage, catalog: pa.Table, shard_key: str) -> ShardSummary:
    """Read every source of ``catalog`` (already filtered to one shard) and write the shard.

    Boxes stream to Parquet source by source, so memory holds one source at a time.
    """
    started = time.perf_counter()
    stats_rows: list[dict] = []
    reject_rows: list[dict] = []
    probe_tables: list[pa.Table] = [empty_probes("")]
    probes = ProbeCache(_previous_probes(storage, shard_key))
    n_boxes = 0
    with (
        storage.atomic_path(layout.shard_file(layout.RAW_DIR, shard_key)) as tmp,
        storage.fs.open(tmp, "wb") as f,
    ):
        writer = parquet_writer(f, S.RAW_INSTANCES_SCHEMA)
        pending: list[pa.Table] = []
        pending_rows = 0
        rows = zip(
            catalog["source_id"].to_pylist(),
            catalog["uri"].to_pylist(),
            catalog["format"].to_pylist(),
        )
        image_counts: Counter = Counter()
        for outcome in _read_sources(rows, probes):
            stats_rows.append(outcome.stats)
            image_counts.update(outcome.image_counts)
            reject_rows.extend(outcome.rejects)
            if outcome.probes is not None and outcome.probes.num_rows:
                probe_tables.append(outcome.probes)
            pending.extend(outcome.boxes)
            pending_rows += sum(t.num_rows for t in outcome.boxes)
            if pending_rows >= PARQUET_OPTIONS["row_group_size"]:
                n_boxes += _flush(writer, pending)
                pending, pending_rows = [], 0
        n_boxes += _flush(writer, pending)
        writer.close()
    for stage in INGEST_STAGES:
        rows = [row for row in reject_rows if row["stage"] == stage]
        rejects = pa.Table.from_pylist(rows, schema=S.REJECTS_SCHEMA)
        storage.write_parquet(rejects, layout.shard_file(layout.rejects_dir(stage), shard_key))
    stats = pa.Table.from_pylist(stats_rows, schema=S.SOURCE_STATS_SCHEMA)
    storage.write_parquet(stats, layout.shard_file(layout.SOURCE_STATS_DIR, shard_key))
    probed = pa.concat_tables(probe_tables)
    storage.write_parquet(probed, layout.shard_file(layout.IMAGE_PROBES_DIR, shard_key))
    return ShardSummary(
        shard=shard_key,
        sources=len(stats_rows),
        boxes=n_boxes,
        boxes_seen=int(sum(r["boxes_seen"] for r in stats_rows)),
        rejects_by_reason=dict(Counter(r["reason"] for r in reject_rows)),
        formats=dict(Counter(r["format"] for r in stats_rows)),
        seconds=time.perf_counter() - started,
        **image_counts,
    )


def _previous_probes(storage: Storage, shard_key: str) -> pa.Table | None:
    """The shard's probe table from its last ingest (the cache), None on the first."""
    path = layout.shard_file(layout.IMAGE_PROBES_DIR, shard_key)
    return storage.read_parquet(path) if storage.exists(path) else None


#: sources read at once by one process. Parsing holds the GIL, so this buys no CPU: it lets
#: the next source list its folder and read its first files while this one is parsed.
SOURCE_LOOKAHEAD = 2


def _read_sources(
    rows: Iterable[tuple[str, str, str]], probes: ProbeCache
) -> Iterator[SourceOutcome]:
    """:func:`read_source` over ``(source_id, uri, format)`` rows, outcomes in row order."""
    with ThreadPoolExecutor(SOURCE_LOOKAHEAD, "vprim-source") as pool:
        in_flight: deque[Future] = deque()
        for row in rows:
            in_flight.append(pool.submit(read_source, *row, probes))
            if len(in_flight) >= SOURCE_LOOKAHEAD:
                yield in_flight.popleft().result()
        while in_flight:
            yield in_flight.popleft().result()


def _flush(writer: pq.ParquetWriter, tables: list[pa.Table]) -> int:
    if not tables:
        return 0
    table = pa.concat_tables(tables)
    writer.write_table(table, row_group_size=PARQUET_OPTIONS["row_group_size"])
    return table.num_rows


#: what decides a raw shard besides its sources: ingest, the readers, the image step and the
#: contracts
CODE_VERSION = code_version(
    "assets/sources/ingest.py",
    "assets/sources/image_step.py",
    "assets/sources/readers/*.py",
    "assets/sources/images/*.py",
    "assets/contracts/*.py",
)


def shard_inputs(shard_catalog: pa.Table, shard_key: str) -> dict:
    """What a raw shard is built from: its sources' fingerprints and the code version."""
    digests = cat.shard_digests(shard_catalog) if shard_catalog.num_rows else {}
    return {"sources": digests.get(shard_key, "no sources"), "code": CODE_VERSION}


def shard_outputs(shard_key: str) -> list[str]:
    """The files one ingested shard consists of."""
    return [
        layout.shard_file(layout.RAW_DIR, shard_key),
        *(layout.shard_file(layout.rejects_dir(stage), shard_key) for stage in INGEST_STAGES),
        layout.shard_file(layout.SOURCE_STATS_DIR, shard_key),
        layout.shard_file(layout.IMAGE_PROBES_DIR, shard_key),
    ]


def _ingest_one(args: tuple[str, str, str]) -> dict:
    """One shard, unless its completion marker shows it was built from the same inputs."""
    root, catalog_path, shard_key = args
    storage = Storage(root)
    catalog = load_shard_catalog(storage, catalog_path, shard_key)
    outcome = run_once(
        storage,
        MARKER_STAGE,
        shard_inputs(catalog, shard_key),
        shard_outputs(shard_key),
        lambda: ingest_shard(storage, catalog, shard_key).as_dict(),
        key=shard_key,
    )
    summary = outcome.as_shard(shard_key)
    return summary if outcome.rebuilt else {**summary, "seconds": 0.0}


#: the marker stage name of ingest (``_markers/raw_instances/shard=NNN.json``)
MARKER_STAGE = "raw_instances"


def load_shard_catalog(storage: Storage, catalog_path: str, shard_key: str) -> pa.Table:
    """The catalog rows of one shard, read with a Parquet filter (row groups skipped)."""
    return storage.read_parquet(catalog_path, filters=[("shard", "=", int(shard_key))])


def ingest_shards(
    storage: Storage, catalog_path: str, shard_keys: list[str], workers: int | None = None
) -> list[dict]:
    """Ingest several shards, in parallel processes when ``workers`` > 1 (default: all cores).

    Returns one summary dict per shard, in ``shard_keys`` order.
    """
    jobs = [(storage.root_url, catalog_path, key) for key in shard_keys]
    return map_shards(_ingest_one, jobs, workers, shared=storage.shared_across_processes)


def accounting(storage: Storage, shard_keys: list[str]) -> list[dict]:
    """Per shard: boxes counted on read vs raw rows + box-level parse rejects, from the files.

    Returns one dict per shard with ``seen``, ``raw``, ``rejected`` and ``ok``.
    """
    results = []
    for key in shard_keys:
        seen = storage.read_parquet(
            layout.shard_file(layout.SOURCE_STATS_DIR, key), columns=["boxes_seen"]
        )
        raw = pq.ParquetFile(
            storage.fs.open(storage.path(layout.shard_file(layout.RAW_DIR, key)), "rb")
        )
        n_rej = 0
        for stage in INGEST_STAGES:
            rej = storage.read_parquet(
                layout.shard_file(layout.rejects_dir(stage), key), columns=["instance_id"]
            )
            n_rej += rej.num_rows - rej["instance_id"].null_count
        n_seen = int(pc.sum(seen["boxes_seen"]).as_py() or 0)
        n_raw = raw.metadata.num_rows
        results.append(
            {
                "shard": key,
                "seen": n_seen,
                "raw": n_raw,
                "rejected": n_rej,
                "ok": n_seen == n_raw + n_rej,
            }
        )
    return results


def parse_scores_for_shards(storage: Storage, planted_path: str, shard_keys: list[str]) -> list:
    """Ingest (parse and image) precision/recall against ``planted``, over ``shard_keys``."""
    import polars as pl

    from vprim.assets.sources.evaluate import parse_scores

    rejects = pl.concat(
        [
            pl.from_arrow(storage.read_parquet(layout.shard_file(layout.rejects_dir(stage), k)))
            for k in shard_keys
            for stage in INGEST_STAGES
        ]
    )
    sources = pl.concat(
        [
            pl.from_arrow(
                storage.read_parquet(
                    layout.shard_file(layout.SOURCE_STATS_DIR, k), columns=["source_id"]
                )
            )
            for k in shard_keys
        ]
    )
    with fsspec.open(planted_path, "rb") as f:  # a path or URL: fsspec, not Polars' own client
        planted = pl.read_parquet(f).join(sources, on="source_id", how="semi")
    return parse_scores(planted, rejects)
