"""Dagster definitions of the quality stage (step I labels, step II geometry, sources).

Wiring, config and metadata only; the work is in ``labels.py``, ``embedder.py``,
``geometry.py`` and ``curate.py``.
"""

import time
from collections import Counter

import dagster as dg
import pyarrow as pa

from vprim.assets.contracts import layout
from vprim.assets.contracts import reasons as R
from vprim.assets.partitions import shard_partitions
from vprim.assets.quality import curate
from vprim.assets.quality import geometry as G
from vprim.assets.quality.embedder import EmbeddingCache, embed_cached
from vprim.assets.quality.labels import LabelConfig, decide_labels, embedding_texts, normalise
from vprim.assets.reporting import accounting_metadata, counts_table, md_table, table_preview
from vprim.assets.settings import current
from vprim.assets.sources import catalog as cat
from vprim.assets.sql import load
from vprim.resources.duckdb import DUCKDB_HEAVY, DuckDBResource
from vprim.resources.embedder import LabelEmbedderResource
from vprim.resources.storage import StorageResource

_profile = current()


class QualityConfig(dg.Config):
    """Thresholds of the quality stage; defaults are the report's values where it gives them."""

    max_bad_label_fraction: float = 0.5
    oversized_area_frac: float = 0.90
    duplicate_iou: float = 0.9
    sample_images: int = 3
    missing_annotation_rate: float = 0.5
    min_clean_boxes: int = 3
    seed: int = 0
    workers: int = _profile.workers  # processes curating shards in parallel inside one run

    def geometry(self) -> G.GeometryConfig:
        return G.GeometryConfig(
            oversized_area_frac=self.oversized_area_frac,
            duplicate_iou=self.duplicate_iou,
            sample_images=self.sample_images,
            missing_annotation_rate=self.missing_annotation_rate,
            min_clean_boxes=self.min_clean_boxes,
        )


@dg.asset(
    group_name="quality",
    kinds={"duckdb", "parquet"},
    op_tags=DUCKDB_HEAVY,
    deps=["raw_instances"],
    description="Every distinct raw label with its counts (boxes, images, sources), via DuckDB.",
)
def label_vocabulary(storage: StorageResource, duckdb: DuckDBResource) -> dg.MaterializeResult:
    store = storage.get()
    con = duckdb.connect()
    table = con.execute(load("label_vocabulary")).to_arrow_table()
    normalised = [normalise(label) for label in table["raw_label"].to_pylist()]
    table = table.append_column("normalised", pa.array(normalised, pa.string()))
    store.write_parquet(table, layout.VOCABULARY_PATH)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": table.num_rows,
            "distinct_normalised": len(set(normalised)),
            "top_labels": dg.MetadataValue.md(table_preview(table, 20)),
        }
    )


@dg.asset(
    group_name="quality",
    kinds={"torch", "parquet"},
    deps=[label_vocabulary],
    description="Sentence embeddings of every text label_map reads (the reference terms and "
    "prototypes, and the labels the rules do not decide), cached by (model, text).",
    tags={"vprim/compute": "gpu-optional"},
)
def label_embeddings(storage: StorageResource, embedder: LabelEmbedderResource):
    store = storage.get()
    texts = embedding_texts(store.read_parquet(layout.VOCABULARY_PATH)["raw_label"].to_pylist())
    model = embedder.get()
    started = time.perf_counter()
    cache = EmbeddingCache(store.path(layout.EMBEDDING_CACHE_PATH))
    matrix, n_new = embed_cached(model, texts, cache)
    seconds = time.perf_counter() - started
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(texts),
            "embedded_now": n_new,
            "from_cache": len(texts) - n_new,
            "model": model.model_name,
            "device": str(model.device),
            "dimensions": int(matrix.shape[1]) if len(texts) else 0,
            "labels_per_second": round(n_new / seconds, 1) if n_new and seconds else 0.0,
        }
    )


@dg.asset(
    group_name="quality",
    kinds={"parquet"},
    deps=[label_embeddings],
    description="Keep (with a canonical label) or reject (with a reason) every raw label.",
)
def label_map(storage: StorageResource, embedder: LabelEmbedderResource) -> dg.MaterializeResult:
    store = storage.get()
    labels = store.read_parquet(layout.VOCABULARY_PATH)["raw_label"].to_pylist()
    model = embedder.get()
    cache = EmbeddingCache(store.path(layout.EMBEDDING_CACHE_PATH))
    table = decide_labels(
        labels,
        lambda texts: embed_cached(model, texts, cache)[0],
        LabelConfig(),
        embedding_model=model.model_name,
    )
    store.write_parquet(table, layout.LABEL_MAP_PATH)
    decisions = Counter(
        f"{d}: {r}" for d, r in zip(table["decision"].to_pylist(), table["reason"].to_pylist())
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": table.num_rows,
            "decisions": dg.MetadataValue.md(counts_table(decisions, "reason", "labels")),
            "rejected_examples": dg.MetadataValue.md(
                table_preview(table.filter(pa.compute.equal(table["decision"], "reject")), 20)
            ),
            "kept_examples": dg.MetadataValue.md(
                table_preview(table.filter(pa.compute.equal(table["decision"], "keep")), 20)
            ),
        }
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "clean_instances",
            deps=["raw_instances", label_map],
            group_name="quality",
            kinds={"parquet"},
            description="Boxes that passed steps I and II: the raw row plus canonical_label.",
        ),
        dg.AssetSpec(
            "quality_rejects",
            deps=["raw_instances", label_map],
            group_name="quality",
            kinds={"parquet"},
            description="The label, geometry and source stages of the rejects ledger.",
        ),
        dg.AssetSpec(
            "source_selection",
            deps=["raw_instances", label_map],
            group_name="quality",
            kinds={"parquet"},
            description="One row per source: keep or drop, at which step, why, with counts.",
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "raw_equals_clean_plus_rejected",
            asset="clean_instances",
            blocking=True,
            description="Per shard: raw_instances rows == clean rows + box rows of the ledger.",
        )
    ],
    partitions_def=shard_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=8),
)
def clean_instances(
    context: dg.AssetExecutionContext, config: QualityConfig, storage: StorageResource
):
    store = storage.get()
    keys = list(context.partition_keys)
    labels = LabelConfig(source_bad_label_fraction=config.max_bad_label_fraction)
    summaries = curate.curate_shards(
        store, keys, layout.LABEL_MAP_PATH, config.geometry(), labels, config.seed, config.workers
    )
    total = Counter()
    reasons: Counter = Counter()
    for s in summaries:
        total.update({k: v for k, v in s.items() if isinstance(v, int)})
        reasons.update(s["rejects_by_reason"])
    yield dg.MaterializeResult(
        asset_key="clean_instances",
        metadata={
            "dagster/row_count": total["clean"],
            "raw_boxes": total["raw"],
            "boxes_after_labels": total["after_labels"],
        },
    )
    yield dg.MaterializeResult(
        asset_key="quality_rejects",
        metadata={
            "dagster/row_count": sum(reasons.values()),
            "rejects_by_reason": dg.MetadataValue.md(counts_table(reasons, "reason", "boxes")),
        },
    )
    yield dg.MaterializeResult(
        asset_key="source_selection",
        metadata={
            "dagster/row_count": total["sources"],
            "sources_after_labels": total["sources_after_labels"],
            "sources_kept": total["sources_kept"],
        },
    )
    meta = accounting_metadata(curate.accounting(store, keys))
    yield dg.AssetCheckResult(
        check_name="raw_equals_clean_plus_rejected",
        asset_key="clean_instances",
        passed=not meta["mismatched_shards"],
        metadata={**meta, "mismatched_shards": dg.MetadataValue.json(meta["mismatched_shards"])},
    )


@dg.asset(
    group_name="quality",
    kinds={"duckdb"},
    op_tags=DUCKDB_HEAVY,
    deps=["clean_instances", "quality_rejects", "source_selection"],
    description="The funnel (sources and boxes at raw, after step I, after step II), rejects "
    "by reason, and precision/recall of every reason against the planted ground truth.",
)
def curation_funnel(storage: StorageResource, duckdb: DuckDBResource) -> dg.MaterializeResult:
    store = storage.get()
    con = duckdb.connect()
    funnel = _rows(con, "SELECT * FROM curation_funnel")
    by_reason = _rows(con, "SELECT * FROM rejects_by_reason")
    metadata = {
        "dagster/row_count": len(funnel),
        "funnel": dg.MetadataValue.md(md_table(funnel)),
        "rejects_by_reason": dg.MetadataValue.md(md_table(by_reason)),
        "sources_raw": int(funnel[0]["sources"] or 0),
        "sources_after_labels": int(funnel[1]["sources"] or 0),
        "sources_after_geometry": int(funnel[2]["sources"] or 0),
    }
    scores = _quality_vs_planted(store, con)
    if scores:
        metadata["quality_vs_planted"] = dg.MetadataValue.md(md_table(scores))
        store.write_json(scores, "quality/quality_vs_planted.json")
    store.write_json({"funnel": funnel, "rejects_by_reason": by_reason}, "quality/funnel.json")
    return dg.MaterializeResult(metadata=metadata)


def _rows(con, sql: str) -> list[dict]:
    cursor = con.execute(sql)
    cols = [d[0] for d in cursor.description]
    return [dict(zip(cols, r)) for r in cursor.fetchall()]


def _quality_vs_planted(store, con) -> list[dict]:
    """Precision/recall of each label, box and source reason against ``planted``.

    All in DuckDB, under its memory limit: at full scale ``planted`` and the ledger each
    hold about 11M scored rows, which Polars joined at a multi-GB peak.
    """
    info = cat.catalog_info(store)
    if not info.get("planted_path"):
        return []
    codes = {c for _, level_codes, _ in G.SCORED_LEVELS for c in level_codes}
    codes |= {*R.LABEL_REASONS, "source_label_quality"}
    con.execute(
        "CREATE OR REPLACE TEMP TABLE scored_planted AS "
        "SELECT instance_id::UBIGINT AS instance_id, source_id, defect FROM read_parquet($path) "
        "WHERE list_contains($codes, defect)",
        {"path": info["planted_path"], "codes": sorted(codes)},
    )
    for sql in _PLANTED_SQL:
        con.execute(sql)
    label_levels = (
        ("label", R.LABEL_REASONS, "instance_id"),
        ("source", ("source_label_quality",), "source_id"),
    )
    rows = G.score_in_duckdb(con, "flagged", "reached_step_two")
    rows += G.score_in_duckdb(con, "flagged", "scored_planted", label_levels)
    return sorted(rows, key=lambda r: (r["level"], r["reason"]))


_PLANTED_SQL = (
    # What this stage flagged: box rows of the label and geometry stages by instance_id (the
    # box rows of dropped sources are not scored: sources are, from source_selection).
    "CREATE OR REPLACE TEMP TABLE flagged AS "
    "SELECT instance_id, NULL::VARCHAR AS source_id, reason FROM rejects "
    "WHERE stage IN ('label', 'geometry') AND instance_id IS NOT NULL "
    "UNION ALL SELECT NULL::UBIGINT, source_id, reason FROM source_selection "
    "WHERE decision = 'drop'",
    # Planted defects that step II could see: not behind a rejected label or a source that
    # step I dropped (a geometric defect there is never judged, by design).
    "CREATE OR REPLACE TEMP TABLE reached_step_two AS SELECT * FROM scored_planted p "
    "WHERE p.source_id NOT IN (SELECT source_id FROM flagged "
    "    WHERE reason = 'source_label_quality' AND instance_id IS NULL AND source_id IS NOT NULL) "
    "AND (p.instance_id IS NULL OR p.instance_id NOT IN (SELECT instance_id FROM flagged "
    "    WHERE starts_with(reason, 'label_') AND instance_id IS NOT NULL))",
)


quality_assets = [label_vocabulary, label_embeddings, label_map, clean_instances, curation_funnel]
