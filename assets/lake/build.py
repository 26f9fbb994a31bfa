"""Build one complete lake version from the quality stage's outputs (nothing is published)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from vprim.assets.contracts import layout
from vprim.assets.contracts.schemas import LAKE_SCHEMA
from vprim.assets.incremental import code_version
from vprim.assets.lake import publish as P
from vprim.assets.lake.balance import BalanceConfig, Balanced, BucketResult, balance
from vprim.assets.storage import Storage

#: what decides a lake version besides its inputs and config: the lake's code and SQL
CODE_VERSION = code_version("assets/lake/*.py", "sql/**/*.sql", "assets/contracts/*.py")

CLEAN_GLOB = layout.shard_file(layout.CLEAN_DIR, "*")
SELECTION_GLOB = layout.shard_file(layout.SELECTION_DIR, "*")


@dataclass
class LakeBuild:
    version: str
    manifest: dict
    labels: pa.Table | None  # per-label counts before and after balancing (None: unchanged)
    seconds: dict[str, float]
    unchanged: bool = False  # the published version was built from these inputs and config


def input_files(store: Storage) -> dict[str, list[str]]:
    """The quality outputs the lake reads, as absolute paths in the storage filesystem."""
    found = {
        "clean_instances": store.glob(CLEAN_GLOB),
        "source_selection": store.glob(SELECTION_GLOB),
    }
    if not found["clean_instances"]:
        raise P.LakeError(
            f"no clean_instances under {store.url(layout.CLEAN_DIR)}: "
            "materialise the quality stage (make rebuild-dataset) before the lake"
        )
    if store.exists(layout.LABEL_MAP_PATH):
        found["label_map"] = [store.path(layout.LABEL_MAP_PATH)]
    if store.exists(layout.IMAGE_GROUPS_PATH):
        found["image_groups"] = [store.path(layout.IMAGE_GROUPS_PATH)]
    return found


def build_version(
    store: Storage,
    con: duckdb.DuckDBPyConnection,
    config: BalanceConfig,
    *,
    scratch: str | None = None,
    on_bucket: Callable[[BucketResult], None] | None = None,
    now: float | None = None,
) -> LakeBuild:
    """Balance the clean boxes into a new version folder, write its manifest last, and name it
    in ``lake/STAGED``. CURRENT is not touched (see :func:`publish.publish`)."""
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    files = input_files(store)
    digests = {
        store_rel(store, p): P.file_digest(store, p) for paths in files.values() for p in paths
    }
    digest = P.inputs_digest(digests, {**config.as_dict(), "code": CODE_VERSION})
    seconds["hash_inputs"] = time.perf_counter() - t0
    published = P.published_with(store, digest)
    if published is not None:  # the same inputs, config and code: nothing to build
        if store.read_text(layout.LAKE_STAGED) != published:
            store.write_text(published, layout.LAKE_STAGED)
        return LakeBuild(published, P.read_manifest(store, published), None, seconds, True)
    now = time.time() if now is None else now
    version = P.new_version(digest, now)
    while store.exists(layout.lake_version_dir(version)):
        # the same inputs and config built within the same second: never write into that
        # version (it may be the published one); this build is named a second later
        now += 1
        version = P.new_version(digest, now)
    P.apply_retention(store, keep=None, building=version)  # clears killed builds' leftovers
    t1 = time.perf_counter()
    balanced = balance(
        con,
        store,
        [_duck(store, p) for p in files["clean_instances"]],
        [_duck(store, p) for p in files["source_selection"]],
        version,
        config,
        scratch=scratch,
        on_bucket=on_bucket,
        image_groups=_duck(store, files["image_groups"][0]) if "image_groups" in files else None,
    )
    results = balanced.buckets
    seconds["balance_and_write"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    labels = _label_counts(results)
    manifest = {
        "version": version,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "schema_version": LAKE_SCHEMA.metadata[b"vprim.schema_version"].decode(),
        "schema": {f.name: str(f.type) for f in LAKE_SCHEMA},
        "config": config.as_dict(),
        # for the record: the keys (sample ids, the cap order, buckets) are md5-based
        # (stable_hash64) and do not depend on it
        "duckdb_version": duckdb.__version__,
        "inputs": digests,
        "inputs_digest": digest,
        "counts": _counts(balanced, labels),
        "files": P.file_facts(store, version, [r.path for r in results]),
    }
    store.write_json(manifest, layout.lake_version_dir(version), layout.LAKE_MANIFEST)
    store.write_text(version, layout.LAKE_STAGED)
    seconds["manifest"] = time.perf_counter() - t2
    return LakeBuild(version, manifest, labels, seconds)


def store_rel(store: Storage, path: str) -> str:
    return store.relative(path)


def _duck(store: Storage, path: str) -> str:
    """A path DuckDB can read (a URL for remote storage)."""
    return store.url(store_rel(store, path))


#: the columns of ``sql/lake_bucket_labels.sql``: an empty build reports them too, with no rows
LABEL_COUNT_SCHEMA = pa.schema(
    [("label", pa.string())]
    + [
        (f"{what}_{step}", pa.int64())
        for step in ("before", "capped", "duplicate", "kept")
        for what in ("samples", "instances")
    ]
)


def _label_counts(results: list[BucketResult]) -> pa.Table:
    tables = [r.labels for r in results if r.labels.num_rows]
    if not tables:  # nothing survived curation: an empty result, with its columns
        return LABEL_COUNT_SCHEMA.empty_table()
    return pa.concat_tables(tables, promote_options="permissive").sort_by("label")


def lake_files_sql(store: Storage, version: str) -> str:
    """A DuckDB ``read_parquet`` over one version's samples."""
    glob = store.url(layout.lake_samples_glob(version)).replace("'", "''")
    return f"read_parquet('{glob}', hive_partitioning = false)"


def _counts(balanced: Balanced, labels: pa.Table) -> dict:
    """The manifest's counts, from what the buckets wrote (the checks recount them from the
    files: ``checks.check_manifest``)."""
    results = balanced.buckets
    before = labels.to_pydict() if labels.num_rows else {}

    def total(name: str) -> int:
        return int(sum(v or 0 for v in before.get(name, [])))

    def split(name: str, i: int) -> int:
        return sum(r.splits.get(name, (0, 0))[i] for r in results)

    return {
        "rows": sum(r.rows for r in results),
        "instances": sum(r.instances for r in results),
        "sources": len(frozenset().union(*(r.sources for r in results))),
        "labels": len(frozenset().union(*(r.label_names for r in results))),
        "images": balanced.images,
        "train_rows": split("train", 0),
        "holdout_rows": split("holdout", 0),
        "train_instances": split("train", 1),
        "holdout_instances": split("holdout", 1),
        "buckets": {f"{r.bucket:03d}": {"rows": r.rows, "instances": r.instances} for r in results},
        "balance": {
            "samples_before": total("samples_before"),
            "instances_before": total("instances_before"),
            "samples_capped": total("samples_capped"),
            "instances_capped": total("instances_capped"),
            "samples_duplicate": total("samples_duplicate"),
            "instances_duplicate": total("instances_duplicate"),
        },
    }
