"""Dagster definitions of the sources stage: ``catalog``, ``raw_instances``, ``parse_rejects``,
``image_duplicates``.

Wiring, config and metadata only; the work is in ``catalog.py``, ``ingest.py`` and
``image_groups.py``.
"""

import time
from collections import Counter

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from vprim.assets.contracts import layout
from vprim.assets.defs_common import (
    add_partition_metadata,
    outcome_metadata,
    rejects_metadata,
    shard_metadata,
    shards_table,
    status_counts,
    step_data_version,
)
from vprim.assets.incremental import run_once, sharded_versions
from vprim.assets.partitions import shard_backfill_policy, shard_partitions
from vprim.assets.reporting import accounting_metadata, counts_table, md_table, table_preview
from vprim.assets.settings import current
from vprim.assets.sources import catalog as cat
from vprim.assets.sources import image_groups, ingest
from vprim.assets.steps import SHARD_STEP
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
    code_version=cat.CODE_VERSION,
    description="One row per raw source (catalog contract), validated, fingerprinted (what is "
    "really on disk: names, sizes, mtimes, plus the catalog's content_hash hint), sharded. "
    "Rewritten only when a source or the catalog changed.",
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
    outcome = cat.store_catalog(store, table, info)
    formats = Counter(table["format"].to_pylist())
    return dg.MaterializeResult(
        metadata={
            **outcome_metadata(outcome),
            "dagster/row_count": table.num_rows,
            "path": dg.MetadataValue.path(store.url(layout.CATALOG_PATH)),
            "sources_by_format": dg.MetadataValue.md(counts_table(formats, "format", "sources")),
            "shards": len(set(table["shard"].to_pylist())),
            "preview": dg.MetadataValue.md(table_preview(table)),
            **{k: v for k, v in info.items()},
        },
        data_version=dg.DataVersion(outcome.data_version),
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "raw_instances",
            deps=[catalog],
            code_version=ingest.CODE_VERSION,
            group_name="sources",
            kinds={"parquet"},
            description="Every box as read, in one schema (raw_instances contract), after the "
            "image step: each real image probed once (header, EXIF, perceptual hash; cached "
            "by uri, size and mtime), boxes moved to the displayed orientation where needed.",
        ),
        dg.AssetSpec(
            "parse_rejects",
            deps=[catalog],
            code_version=ingest.CODE_VERSION,
            group_name="sources",
            kinds={"parquet"},
            description="The parse and image stages of the rejects ledger: unreadable files "
            "and boxes, and boxes whose image is missing, undecodable or of another size.",
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
    backfill_policy=shard_backfill_policy,
    op_tags=SHARD_STEP,
)
def raw_instances(
    context: dg.AssetExecutionContext, config: IngestConfig, storage: StorageResource
):
    store = storage.get()
    keys = list(context.partition_keys)
    started = time.perf_counter()
    summaries = ingest.ingest_shards(store, layout.CATALOG_PATH, keys, workers=config.workers)
    seconds = time.perf_counter() - started
    seen = sum(s["boxes_seen"] for s in summaries if s["status"] == "rebuilt")
    add_partition_metadata(context, "raw_instances", {s["shard"]: _raw_meta(s) for s in summaries})
    add_partition_metadata(
        context, "parse_rejects", {s["shard"]: rejects_metadata(s, "rows") for s in summaries}
    )
    version = step_data_version(summaries)
    yield dg.MaterializeResult(
        asset_key="raw_instances",
        metadata={
            **status_counts(summaries),
            "run_shards": shards_table(summaries, RUN_COLUMNS),
            "boxes_per_second": round(seen / seconds, 1) if seconds else 0.0,
            "preview": dg.MetadataValue.md(_raw_preview(store, keys[0])),
            **_parse_quality(store, keys),
        },
        data_version=version,
    )
    yield dg.MaterializeResult(asset_key="parse_rejects", data_version=version)
    meta = accounting_metadata(ingest.accounting(store, keys))
    yield dg.AssetCheckResult(
        check_name="every_box_accounted_for",
        asset_key="raw_instances",
        passed=not meta["mismatched_shards"],
        metadata={**meta, "mismatched_shards": dg.MetadataValue.json(meta["mismatched_shards"])},
    )


#: the per-shard columns of a run's table on the asset page
RUN_COLUMNS = ["sources", "boxes", "boxes_seen", "images_probed", "seconds", "data_version"]


def _raw_meta(summary: dict) -> dict:
    """One raw shard's own figures, for its partition's materialisation."""
    formats = counts_table(summary["formats"], "format", "sources")
    return shard_metadata(
        summary,
        summary["boxes"],
        sources=summary["sources"],
        boxes_seen=summary["boxes_seen"],
        images_probed=summary.get("images_probed", 0),
        images_cached=summary.get("images_cached", 0),
        boxes_rotated=summary.get("boxes_rotated", 0),
        sources_by_format=dg.MetadataValue.md(formats),
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


class ImageDuplicatesConfig(dg.Config):
    """How near two pictures' perceptual hashes must be to count as one image."""

    radius: int = image_groups.DEFAULT_RADIUS


@dg.asset(
    group_name="sources",
    kinds={"parquet"},
    deps=["raw_instances"],
    code_version=image_groups.CODE_VERSION,
    description="Near-duplicate content groups: every probed image's 64-bit perceptual hash "
    "grouped within a Hamming radius by multi-index search (never all pairs). The lake keeps "
    "one (image, label) sample per group, so re-uploads, re-encodes and resizes published by "
    "several sources count once. Rebuilt only when a raw shard changed.",
)
def image_duplicates(
    config: ImageDuplicatesConfig, storage: StorageResource
) -> dg.MaterializeResult:
    store = storage.get()
    inputs = {
        "raw": sharded_versions(store, layout.RAW_DIR, ingest.MARKER_STAGE),
        "radius": config.radius,
        "code": image_groups.CODE_VERSION,
    }
    outcome = run_once(
        store,
        "image_duplicates",
        inputs,
        [layout.IMAGE_GROUPS_PATH],
        lambda: image_groups.write_groups(store, config.radius),
    )
    return dg.MaterializeResult(
        metadata={
            **outcome_metadata(outcome),
            "dagster/row_count": outcome.summary["grouped_images"],
            **{k: v for k, v in outcome.summary.items() if k != "grouped_images"},
            "path": dg.MetadataValue.path(store.url(layout.IMAGE_GROUPS_PATH)),
        },
        data_version=dg.DataVersion(outcome.data_version),
    )


sources_assets = [catalog, raw_instances, image_duplicates]
