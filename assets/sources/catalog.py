"""The catalog: one row per raw source. Loading, validation, fingerprints and shards.

A user's catalog is CSV, JSON Lines or Parquet, anywhere fsspec reaches. Problems with the
catalog itself (it is the run's configuration) fail fast with an error that names the rows;
problems with a source's files are the ingest stage's business and go to the ledger.
"""

from __future__ import annotations

import hashlib
import posixpath

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from vprim.assets.contracts import hashing as H
from vprim.assets.contracts import schemas as S
from vprim.assets.contracts.layout import CATALOG_INFO_PATH, shard_key, synthetic_dir

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
    """A cheap content fingerprint of a source: names, sizes and mtimes of its files.

    Used when the catalog gives no ``content_hash``; a changed file changes its size or mtime.
    """
    fs, path = fsspec.core.url_to_fs(uri)
    h = hashlib.sha256()
    try:
        entries = fs.find(path, detail=True) if fs.isdir(path) else {path: fs.info(path)}
    except (FileNotFoundError, OSError):
        return "missing"
    for name in sorted(entries):
        info = entries[name]
        h.update(f"{posixpath.relpath(name, path)}\0{info.get('size')}\0".encode())
        h.update(str(info.get("mtime") or info.get("LastModified") or "").encode())
    return "listing:" + h.hexdigest()[:32]


def with_fingerprints(catalog: pa.Table) -> pa.Table:
    """Fill missing ``content_hash`` values with :func:`listing_fingerprint`."""
    hashes = catalog["content_hash"].to_pylist()
    if all(hashes):
        return catalog
    uris = catalog["uri"].to_pylist()
    filled = [h or listing_fingerprint(u) for h, u in zip(hashes, uris)]
    idx = catalog.schema.get_field_index("content_hash")
    return catalog.set_column(idx, "content_hash", pa.array(filled, pa.string()))


def with_shards(catalog: pa.Table, n_shards: int) -> pa.Table:
    """Add the ``shard`` column (int32) that assigns each source to a static partition."""
    shards = [H.shard_of(s, n_shards) for s in catalog["source_id"].to_pylist()]
    return catalog.append_column("shard", pa.array(shards, pa.int32()))


def shard_digests(catalog: pa.Table) -> dict[str, str]:
    """Per-shard digest of (source_id, uri, format, content_hash): what the sensor compares."""
    by_shard: dict[str, hashlib._Hash] = {}
    rows = zip(
        catalog["shard"].to_pylist(),
        catalog["source_id"].to_pylist(),
        catalog["uri"].to_pylist(),
        catalog["format"].to_pylist(),
        catalog["content_hash"].to_pylist(),
    )
    for shard, *fields in sorted(rows, key=lambda r: (r[0], r[1])):
        h = by_shard.setdefault(shard_key(shard), hashlib.sha256())
        h.update("\x1f".join(str(v) for v in fields).encode() + b"\n")
    return {k: v.hexdigest()[:16] for k, v in by_shard.items()}


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
