"""Dagster definitions of the quality stage (step I labels, step II geometry, sources).

Wiring, config and metadata only; the work is in ``vocabulary.py``, ``labels.py``,
``embedder.py``, ``geometry.py``, ``curate.py`` and ``scoring.py``. Every threshold is defined
once, in its dataclass (``LabelConfig``, ``GeometryConfig``); the run config below is made
from them (``configs.dagster_config``).
"""

import time
from collections import Counter

import dagster as dg
import pyarrow as pa

from vprim.assets.configs import dagster_config
from vprim.assets.contracts import layout
from vprim.assets.partitions import shard_partitions
from vprim.assets.quality import curate, scoring
from vprim.assets.quality import geometry as G
from vprim.assets.quality import labels as L
from vprim.assets.quality.embedder import EmbeddingCache, embed_cached
from vprim.assets.quality.vocabulary import normalise
from vprim.assets.reporting import accounting_metadata, counts_table, md_table, table_preview
from vprim.assets.settings import current
from vprim.assets.sources import catalog as cat
from vprim.assets.sql import load
from vprim.resources.duckdb import DUCKDB_HEAVY, DuckDBResource
from vprim.resources.embedder import LabelEmbedderResource
from vprim.resources.storage import StorageResource

_profile = current()

#: the label thresholds (``LabelConfig``): ``label_map`` reads the meaning thresholds,
#: ``clean_instances`` (as ``QualityConfig.labels``) the source one
LabelSettings = dagster_config(L.LabelConfig, name="LabelSettings")
#: the geometric thresholds (``GeometryConfig``)
GeometrySettings = dagster_config(G.GeometryConfig, name="GeometrySettings")


class QualityConfig(dg.Config):
    """Settings of ``clean_instances``: the geometry and label thresholds, the seed of the
    source decisions' image sample, and the processes that curate shards in parallel."""

    geometry: GeometrySettings = GeometrySettings()
    labels: LabelSettings = LabelSettings()
    seed: int = _profile.seed
    workers: int = _profile.workers


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
    table = con.sql(load("label_vocabulary")).to_arrow_table()
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
    "prototypes, and the labels the rules do not decide), cached by (model, text); the rules' "
    "triage of every label, written for label_map.",
    tags={"vprim/compute": "gpu-optional"},
)
def label_embeddings(storage: StorageResource, embedder: LabelEmbedderResource):
    store = storage.get()
    triage = L.triage(store.read_parquet(layout.VOCABULARY_PATH)["raw_label"].to_pylist())
    store.write_parquet(triage.to_table(), layout.LABEL_TRIAGE_PATH)
    texts = L.embedding_texts(triage)
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
def label_map(
    config: LabelSettings, storage: StorageResource, embedder: LabelEmbedderResource
) -> dg.MaterializeResult:
    store = storage.get()
    triage = L.Triage.from_table(store.read_parquet(layout.LABEL_TRIAGE_PATH))
    model = embedder.get()
    cache = EmbeddingCache(store.path(layout.EMBEDDING_CACHE_PATH))
    table = L.decide_labels(
        triage,
        lambda texts: embed_cached(model, texts, cache)[0],
        config.settings(),
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
    geometry, labels = config.geometry.settings(), config.labels.settings()
    summaries = curate.curate_shards(
        store, keys, layout.LABEL_MAP_PATH, geometry, labels, config.seed, config.workers
    )
    total, reasons = curate.totals(summaries)
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
    report = scoring.funnel(con)
    funnel, by_reason = report["funnel"], report["rejects_by_reason"]
    metadata = {
        "dagster/row_count": len(funnel),
        "funnel": dg.MetadataValue.md(md_table(funnel)),
        "rejects_by_reason": dg.MetadataValue.md(md_table(by_reason)),
        "sources_raw": int(funnel[0]["sources"] or 0),
        "sources_after_labels": int(funnel[1]["sources"] or 0),
        "sources_after_geometry": int(funnel[2]["sources"] or 0),
    }
    planted = cat.catalog_info(store).get("planted_path")
    scores = scoring.quality_vs_planted(con, planted) if planted else []
    if scores:
        metadata["quality_vs_planted"] = dg.MetadataValue.md(md_table(scores))
        store.write_json(scores, layout.QUALITY_VS_PLANTED_PATH)
    store.write_json(report, layout.FUNNEL_PATH)
    return dg.MaterializeResult(metadata=metadata)


quality_assets = [label_vocabulary, label_embeddings, label_map, clean_instances, curation_funnel]
