"""The catalog: one row per raw source. Loading, validation, fingerprints and shards.

A user's catalog is CSV, JSON Lines or Parquet, anywhere fsspec reaches. Problems with the
catalog itself (it is the run's configuration) fail fast with an error that names the rows;
problems with a source's files are the ingest stage's business and go to the ledger.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from concurrent.futures import ThreadPoolExecutor

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from vprim.assets.contracts import hashing as H
from vprim.assets.contracts import schemas as S
from vprim.assets.contracts.layout import (
    CATALOG_INFO_PATH,
    CATALOG_PATH,
    shard_key,
    synthetic_dir,
)
from vprim.assets.incremental import StepOutcome, code_version, digest, run_once
from vprim.assets.sources.images.probe import mtime_ns

REQUIRED_COLUMNS = ("source_id", "uri", "format")


class CatalogError(ValueError):
    """The catalog cannot be used as it is; the message says which rows and why."""


def read_catalog_file(url: str) -> pa.Table:
    """Read a catalog (CSV, JSON Lines or Parquet, chosen by extension) through fsspec."""
    suffix = posixpath.splitext(url.split("?", 1)[0])[1].lower()
    if suffix not in (".parquet", ".pq", ".jsonl", ".ndjson", ".json", ".csv", ".tsv"):
        raise CatalogError(
            f"catalog {url}: unknown extension {suffix!r}; use .csv, .jsonl or .parquet"
        )
    try:
        with fsspec.open(url, "rb") as f:
            if suffix in (".parquet", ".pq"):
                table = pq.read_table(f)
            elif suffix in (".jsonl", ".ndjson", ".json"):
                table = pajson.read_json(f)
            else:
                delimiter = "\t" if suffix == ".tsv" else ","
                table = pacsv.read_csv(
                    f,
                    parse_options=pacsv.ParseOptions(delimiter=delimiter),
                    convert_options=pacsv.ConvertOptions(
                        column_types={c: pa.string() for c in CATALOG_STRING_COLUMNS}
                    ),
                )
    except FileNotFoundError:
        raise CatalogError(f"catalog {url} does not exist (VPRIM_CATALOG)") from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise CatalogError(f"catalog {url} cannot be parsed: {exc}") from None
    return table


CATALOG_STRING_COLUMNS = ("source_id", "uri", "format", "license", "content_hash")


def validate_catalog(table: pa.Table, where: str = "catalog") -> pa.Table:
    """Check the catalog and return it in ``schemas.CATALOG_SCHEMA`` column order.

    Raises:
        CatalogError: missing columns, empty or duplicate ``source_id``, empty ``uri``, or a
            ``format`` outside ``schemas.CATALOG_FORMATS``; the message lists offending rows.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        raise CatalogError(
            f"{where} lacks column(s) {missing}; it has {table.column_names}. "
            f"Required: {list(REQUIRED_COLUMNS)}, optional: license, content_hash"
        )
    columns = {}
    for f in S.CATALOG_SCHEMA:
        if f.name in table.column_names:
            columns[f.name] = pc.cast(table[f.name], pa.string())
        else:
            columns[f.name] = pa.nulls(table.num_rows, pa.string())
    columns["format"] = pc.utf8_lower(pc.utf8_trim_whitespace(columns["format"]))
    out = pa.table(columns, schema=S.CATALOG_SCHEMA.remove_metadata())

    ids = out["source_id"].to_numpy(zero_copy_only=False)
    empty = [i for i, v in enumerate(ids) if v is None or not str(v).strip()]
    if empty:
        raise CatalogError(f"{where}: empty source_id in row(s) {_rows(empty)}")
    uniq, counts = np.unique(ids.astype(str), return_counts=True)
    dupes = uniq[counts > 1]
    if len(dupes):
        examples = [str(d) for d in dupes[:5]]
        raise CatalogError(
            f"{where}: source_id must be unique; {len(dupes)} repeated, e.g. {examples}"
        )
    uris = out["uri"].to_pylist()
    bad_uri = [i for i, u in enumerate(uris) if not u or not u.strip()]
    if bad_uri:
        raise CatalogError(f"{where}: empty uri in row(s) {_rows(bad_uri)}")
    formats = out["format"].to_pylist()
    unknown = [i for i, f in enumerate(formats) if f not in S.CATALOG_FORMATS]
    if unknown:
        seen = sorted({str(formats[i]) for i in unknown})
        raise CatalogError(
            f"{where}: unknown format {seen} in row(s) {_rows(unknown)}; "
            f"known formats: {', '.join(S.CATALOG_FORMATS)}"
        )
    return out.replace_schema_metadata(S.CATALOG_SCHEMA.metadata)


def _rows(indices: list[int]) -> str:
    shown = ", ".join(str(i + 1) for i in indices[:10])
    return shown + (f" and {len(indices) - 10} more" if len(indices) > 10 else "")


def listing_fingerprint(uri: str) -> str:
    """What is really there: names, sizes and mtimes (ns; an object store's ETag) of every
    file of a source.

    An edited file changes its mtime (and mostly its size), an added or removed file the
    listing. A local folder is walked with ``os.scandir``; any other URL through fsspec.
    """
    h = hashlib.sha256()
    try:
        for name, size, mtime in _listing(uri):
            h.update(f"{name}\0{size}\0{mtime}\n".encode())
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return "missing"
    except OSError as exc:  # an unreadable source is ingest's business (a ledger row)
        return f"unreadable:{type(exc).__name__}"
    return "listing:" + h.hexdigest()[:32]


def _listing(uri: str) -> list[tuple[str, int, object]]:
    """``(relative name, size, mtime or ETag)`` of every file under ``uri``, sorted by name."""
    local = uri.removeprefix("file://")
    if "://" not in local:
        if os.path.isfile(local):
            st = os.stat(local)
            return [(os.path.basename(local), st.st_size, st.st_mtime_ns)]
        if not os.path.isdir(local):
            raise FileNotFoundError(local)
        return sorted(_scan(local, ""))
    fs, path = fsspec.core.url_to_fs(uri)
    entries = fs.find(path, detail=True) if fs.isdir(path) else {path: fs.info(path)}
    return sorted(
        (posixpath.relpath(name, path), info.get("size"), _version_of(info))
        for name, info in entries.items()
    )


def _version_of(info: dict) -> object:
    """What changes when a file is rewritten: an object store's ETag (a digest of the
    content), else the modification time in ns (``memory://`` gives its creation time)."""
    return info.get("ETag") or mtime_ns(info)


def _scan(folder: str, prefix: str):
    with os.scandir(folder) as it:
        for entry in it:
            name = prefix + entry.name
            if entry.is_dir(follow_symlinks=False):
                yield from _scan(entry.path, name + "/")
            elif entry.is_file():
                st = entry.stat()
                yield name, st.st_size, st.st_mtime_ns


#: threads that list sources at once: listing waits on the file system, not the CPU
LISTING_THREADS = 8


def with_fingerprints(catalog: pa.Table) -> pa.Table:
    """Add ``fingerprint``: the listing fingerprint of every source, joined with the catalog's
    ``content_hash`` where one is given.

    A catalog-supplied ``content_hash`` is a hint, never a reason not to look: a file edited
    behind the catalog's back still changes the fingerprint, and so does a new hint.
    """
    uris = catalog["uri"].to_pylist()
    with ThreadPoolExecutor(LISTING_THREADS, "vprim-listing") as pool:
        listings = list(pool.map(listing_fingerprint, uris))
    hints = catalog["content_hash"].to_pylist()
    fingerprints = [
        listing
        if not hint
        else "fp:" + hashlib.sha256(f"{hint}\0{listing}".encode()).hexdigest()[:32]
        for hint, listing in zip(hints, listings)
    ]
    if "fingerprint" in catalog.column_names:
        catalog = catalog.drop_columns(["fingerprint"])
    return catalog.append_column("fingerprint", pa.array(fingerprints, pa.string()))


def with_shards(catalog: pa.Table, n_shards: int) -> pa.Table:
    """Add the ``shard`` column (int32) that assigns each source to a static partition."""
    shards = [H.shard_of(s, n_shards) for s in catalog["source_id"].to_pylist()]
    return catalog.append_column("shard", pa.array(shards, pa.int32()))


def shard_digests(catalog: pa.Table) -> dict[str, str]:
    """Per-shard digest of (source_id, uri, format, fingerprint): what the ingest of a shard
    is built from, and so what the sensor and the nightly schedule compare."""
    by_shard: dict[str, hashlib._Hash] = {}
    rows = zip(
        catalog["shard"].to_pylist(),
        catalog["source_id"].to_pylist(),
        catalog["uri"].to_pylist(),
        catalog["format"].to_pylist(),
        catalog["fingerprint"].to_pylist(),
    )
    for shard, *fields in sorted(rows, key=lambda r: (r[0], r[1])):
        h = by_shard.setdefault(shard_key(shard), hashlib.sha256())
        h.update("\x1f".join(str(v) for v in fields).encode() + b"\n")
    return {k: v.hexdigest()[:16] for k, v in by_shard.items()}


#: what decides the stored catalog besides the catalog file and the sources on disk
CODE_VERSION = code_version("assets/sources/catalog.py", "assets/contracts/*.py")


def store_catalog(store, table: pa.Table, info: dict) -> StepOutcome:
    """Write the catalog and its info, unless the same table (fingerprints included) and info
    were already written: a quiet night rewrites nothing."""

    def write() -> dict:
        store.write_parquet(table, CATALOG_PATH)
        store.write_json(info, CATALOG_INFO_PATH)
        return {"sources": table.num_rows}

    inputs = {"table": digest(table.to_pydict()), "info": info, "code": CODE_VERSION}
    return run_once(store, "catalog", inputs, [CATALOG_PATH, CATALOG_INFO_PATH], write)


def catalog_info(store) -> dict:
    """What ``build_catalog`` recorded about where the stored catalog came from ({} if none)."""
    return store.read_json(CATALOG_INFO_PATH) if store.exists(CATALOG_INFO_PATH) else {}


def build_catalog(
    catalog_url: str, n_shards: int, *, storage_root: str, scale: str, seed: int, workers: int = 1
) -> tuple[pa.Table, dict]:
    """The validated catalog with fingerprints and shards, and facts about where it came from.

    With ``catalog_url`` empty, the synthetic corpus of ``scale``/``seed`` is generated (or
    reused when already complete) under ``storage_root/raw`` and its catalog is used.
    """
    info: dict = {}
    if not catalog_url:
        from vprim.assets.sources.synthetic.corpus import generate_corpus

        corpus = generate_corpus(
            synthetic_dir(storage_root, scale, seed), scale=scale, seed=seed, workers=workers
        )
        catalog_url = str(corpus.catalog_path)
        info.update(
            synthetic_scale=scale,
            synthetic_seed=seed,
            planted_path=str(corpus.planted_path),
            synthetic_boxes=int(corpus.n_boxes),
        )
    info["catalog_url"] = catalog_url
    table = validate_catalog(read_catalog_file(catalog_url), where=catalog_url)
    table = with_shards(with_fingerprints(table), n_shards)
    order = pc.sort_indices(table, [("shard", "ascending"), ("source_id", "ascending")])
    return table.take(order), info
