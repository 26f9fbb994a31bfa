"""Dagster definitions of the sources stage: ``catalog``, ``raw_instances``, ``parse_rejects``.

Wiring, config and metadata only; the work is in ``catalog.py`` and ``ingest.py``.
"""

import time
from collections import Counter

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from vprim.assets.contracts import layout
from vprim.assets.partitions import shard_partitions
from vprim.assets.reporting import accounting_metadata, counts_table, md_table, table_preview
from vprim.assets.settings import current
from vprim.assets.sources import catalog as cat
from vprim.assets.sources import ingest
from vprim.resources.storage import StorageResource

_profile = current()


class CatalogConfig(dg.Config):
    """Where the sources come from. Empty ``catalog_url`` means the synthetic corpus."""

    catalog_url: str = _profile.catalog
    scale: str = _profile.scale
    seed: int = _profile.seed
    workers: int = _profile.workers


class IngestConfig(dg.Config):
    """How a run ingests its shards."""

    workers: int = _profile.ingest_workers


@dg.asset(
    group_name="sources",
    kinds={"parquet"},
    description="One row per raw source (catalog contract), validated, fingerprinted, sharded.",
)
def catalog(config: CatalogConfig, storage: StorageResource) -> dg.MaterializeResult:
    store = storage.get()
    table, info = cat.build_catalog(
        config.catalog_url,
        len(shard_partitions.get_partition_keys()),
        storage_root=store.url(),
        scale=config.scale,
        seed=config.seed,
        workers=config.workers,
    )
    store.write_parquet(table, layout.CATALOG_PATH)
    store.write_json(info, layout.CATALOG_INFO_PATH)
    formats = Counter(table["format"].to_pylist())
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": table.num_rows,
            "path": dg.MetadataValue.path(store.url(layout.CATALOG_PATH)),
            "sources_by_format": dg.MetadataValue.md(counts_table(formats, "format", "sources")),
            "shards": len(set(table["shard"].to_pylist())),
            "preview": dg.MetadataValue.md(table_preview(table)),
            **{k: v for k, v in info.items()},
        }
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "raw_instances",
            deps=[catalog],
            group_name="sources",
            kinds={"parquet"},
            description="Every box as read, in one schema (raw_instances contract).",
        ),
        dg.AssetSpec(
            "parse_rejects",
            deps=[catalog],
            group_name="sources",
            kinds={"parquet"},
            description="The parse stage of the rejects ledger: unreadable files and boxes.",
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "every_box_accounted_for",
            asset="raw_instances",
            blocking=True,
            description="Per shard: boxes counted on read == raw_instances rows + parse rejects.",
        )
    ],
    partitions_def=shard_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=8),
)
def raw_instances(
    context: dg.AssetExecutionContext, config: IngestConfig, storage: StorageResource
):
    store = storage.get()
    keys = list(context.partition_keys)
    started = time.perf_counter()
    summaries = ingest.ingest_shards(store, layout.CATALOG_PATH, keys, workers=config.workers)
    seconds = time.perf_counter() - started
    boxes = sum(s["boxes"] for s in summaries)
    seen = sum(s["boxes_seen"] for s in summaries)
    rejects = sum((Counter(s["rejects_by_reason"]) for s in summaries), Counter())
    formats = sum((Counter(s["formats"]) for s in summaries), Counter())
    per_shard = [
        {k: s[k] for k in ("shard", "sources", "boxes", "boxes_seen", "seconds")} for s in summaries
    ]
    yield dg.MaterializeResult(
        asset_key="raw_instances",
        metadata={
            "dagster/row_count": boxes,
            "shards": dg.MetadataValue.json(keys),
            "sources": sum(s["sources"] for s in summaries),
            "boxes_seen": seen,
            "boxes_per_second": round(seen / seconds, 1) if seconds else 0.0,
            "sources_by_format": dg.MetadataValue.md(counts_table(formats, "format", "sources")),
            "per_shard": dg.MetadataValue.md(md_table(per_shard)),
            "preview": dg.MetadataValue.md(_raw_preview(store, keys[0])),
            **_parse_quality(store, keys),
        },
    )
    yield dg.MaterializeResult(
        asset_key="parse_rejects",
        metadata={
            "dagster/row_count": sum(rejects.values()),
            "rejects_by_reason": dg.MetadataValue.md(counts_table(rejects, "reason", "rows")),
        },
    )
    meta = accounting_metadata(ingest.accounting(store, keys))
    yield dg.AssetCheckResult(
        check_name="every_box_accounted_for",
        asset_key="raw_instances",
        passed=not meta["mismatched_shards"],
        metadata={**meta, "mismatched_shards": dg.MetadataValue.json(meta["mismatched_shards"])},
    )


def _parse_quality(store, keys: list[str]) -> dict:
    """Precision/recall of parse reasons against the synthetic corpus's ``planted`` table."""
    info = cat.catalog_info(store)
    if not info.get("planted_path"):
        return {}
    scores = ingest.parse_scores_for_shards(store, info["planted_path"], keys)
    return {"parse_quality_vs_planted": dg.MetadataValue.md(md_table(scores))}


def _raw_preview(store, shard_key: str) -> str:
    """The first rows of one shard, read as one small batch (not the whole file)."""
    with store.fs.open(store.path(layout.shard_file(layout.RAW_DIR, shard_key)), "rb") as f:
        batches = pq.ParquetFile(f).iter_batches(batch_size=10, columns=PREVIEW_COLUMNS)
        first = next(batches, None)
    return table_preview(pa.Table.from_batches([first])) if first is not None else "_(empty)_"


PREVIEW_COLUMNS = ["source_id", "image_id", "raw_label", "x0", "y0", "x1", "y1", "format"]


sources_assets = [catalog, raw_instances]
