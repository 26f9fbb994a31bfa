"""Dagster definitions of the quality stage (step I labels, step II geometry, sources).

Wiring, config and metadata only; the work is in ``vocabulary.py``, ``labels.py``,
``embedder.py``, ``geometry.py``, ``curate.py`` and ``scoring.py``. Every threshold is defined
once, in its dataclass (``LabelConfig``, ``GeometryConfig``); the run config below is made
from them (``configs.dagster_config``).
"""

import dataclasses
import time
from collections import Counter

import dagster as dg
import pyarrow as pa

from vprim.assets import incremental
from vprim.assets.configs import dagster_config
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
from vprim.assets.quality import curate, scoring
from vprim.assets.quality import geometry as G
from vprim.assets.quality import labels as L
from vprim.assets.quality.embedder import EmbeddingCache, embed_cached
from vprim.assets.quality.vocabulary import normalise
from vprim.assets.reporting import accounting_metadata, counts_table, md_table, table_preview
from vprim.assets.settings import current
from vprim.assets.sources import catalog as cat
from vprim.assets.sources import image_groups
from vprim.assets.sql import load
from vprim.assets.steps import DUCKDB_STEP, SHARD_STEP
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
    op_tags={**DUCKDB_HEAVY, **DUCKDB_STEP},
    deps=["raw_instances"],
    code_version=curate.CODE_VERSION,
    description="Every distinct raw label with its counts (boxes, images, sources), via DuckDB. "
    "Rebuilt only when a raw shard changed.",
)
def label_vocabulary(storage: StorageResource, duckdb: DuckDBResource) -> dg.MaterializeResult:
    store = storage.get()

    def build() -> dict:
        table = duckdb.connect().sql(load("label_vocabulary")).to_arrow_table()
        normalised = [normalise(label) for label in table["raw_label"].to_pylist()]
        table = table.append_column("normalised", pa.array(normalised, pa.string()))
        store.write_parquet(table, layout.VOCABULARY_PATH)
        return {"rows": table.num_rows, "distinct_normalised": len(set(normalised))}

    inputs = {
        "raw": sharded_versions(store, layout.RAW_DIR, "raw_instances"),
        "code": curate.CODE_VERSION,
    }
    outcome = run_once(store, "label_vocabulary", inputs, [layout.VOCABULARY_PATH], build)
    table = store.read_parquet(layout.VOCABULARY_PATH) if outcome.rebuilt else None
    return dg.MaterializeResult(
        metadata={
            **outcome_metadata(outcome),
            "dagster/row_count": outcome.summary["rows"],
            "distinct_normalised": outcome.summary["distinct_normalised"],
            **({"top_labels": dg.MetadataValue.md(table_preview(table, 20))} if table else {}),
        },
        data_version=dg.DataVersion(outcome.data_version),
    )


@dg.asset(
    group_name="quality",
    kinds={"torch", "parquet"},
    deps=[label_vocabulary],
    code_version=curate.CODE_VERSION,
    description="Sentence embeddings of every text label_map reads (the reference terms and "
    "prototypes, and the labels the rules do not decide), cached by (model, text): a new "
    "label is embedded once, an unchanged one never again. Also the rules' triage of every "
    "label, written for label_map.",
    tags={"vprim/compute": "gpu-optional"},
)
def label_embeddings(storage: StorageResource, embedder: LabelEmbedderResource):
    store = storage.get()

    def build() -> dict:
        triage = L.triage(store.read_parquet(layout.VOCABULARY_PATH)["raw_label"].to_pylist())
        store.write_parquet(triage.to_table(), layout.LABEL_TRIAGE_PATH)
        texts = L.embedding_texts(triage)
        model = embedder.get()
        started = time.perf_counter()
        cache = EmbeddingCache(store.url(layout.EMBEDDING_CACHE_PATH))
        matrix, n_new = embed_cached(model, texts, cache)
        seconds = time.perf_counter() - started
        return {
            "texts": len(texts),
            "embedded_now": n_new,
            "device": str(model.device),
            "dimensions": int(matrix.shape[1]) if len(texts) else 0,
            "labels_per_second": round(n_new / seconds, 1) if n_new and seconds else 0.0,
        }

    inputs = {
        "vocabulary": incremental.data_version(store, "label_vocabulary"),
        "model": embedder.model_name(),
        "code": curate.CODE_VERSION,
    }
    outputs = [layout.LABEL_TRIAGE_PATH, layout.EMBEDDING_CACHE_PATH]
    outcome = run_once(store, "label_embeddings", inputs, outputs, build)
    summary = outcome.summary
    embedded_now = summary["embedded_now"] if outcome.rebuilt else 0
    return dg.MaterializeResult(
        metadata={
            **outcome_metadata(outcome),
            "dagster/row_count": summary["texts"],
            "embedded_now": embedded_now,
            "from_cache": summary["texts"] - embedded_now,
            "model": inputs["model"],
            "device": summary["device"],
            "dimensions": summary["dimensions"],
            "labels_per_second": summary["labels_per_second"] if outcome.rebuilt else 0.0,
        },
        data_version=dg.DataVersion(outcome.data_version),
    )


@dg.asset(
    group_name="quality",
    kinds={"parquet"},
    deps=[label_embeddings],
    code_version=curate.CODE_VERSION,
    description="Keep (with a canonical label) or reject (with a reason) every raw label. "
    "Rebuilt when the labels, the thresholds or the model changed; a shard's curation reads "
    "only its own labels' rows, so a new label elsewhere leaves the shard alone.",
)
def label_map(
    config: LabelSettings, storage: StorageResource, embedder: LabelEmbedderResource
) -> dg.MaterializeResult:
    store = storage.get()

    def build() -> dict:
        triage = L.Triage.from_table(store.read_parquet(layout.LABEL_TRIAGE_PATH))
        model = embedder.get()
        cache = EmbeddingCache(store.url(layout.EMBEDDING_CACHE_PATH))
        previous = _known_labels(store)
        table = L.decide_labels(
            triage,
            lambda texts: embed_cached(model, texts, cache)[0],
            config.settings(),
            embedding_model=model.model_name,
        )
        store.write_parquet(table, layout.LABEL_MAP_PATH)
        labels = table["raw_label"].to_pylist()
        return {"rows": table.num_rows, "new_labels": sum(1 for x in labels if x not in previous)}

    inputs = {
        "triage": incremental.data_version(store, "label_embeddings"),
        "config": dataclasses.asdict(config.settings()),
        "model": embedder.model_name(),
        "code": curate.CODE_VERSION,
    }
    outcome = run_once(store, "label_map", inputs, [layout.LABEL_MAP_PATH], build)
    metadata = {
        **outcome_metadata(outcome),
        "dagster/row_count": outcome.summary["rows"],
        "new_labels": outcome.summary["new_labels"] if outcome.rebuilt else 0,
    }
    if outcome.rebuilt:
        metadata.update(_label_map_tables(store.read_parquet(layout.LABEL_MAP_PATH)))
    return dg.MaterializeResult(
        metadata=metadata, data_version=dg.DataVersion(outcome.data_version)
    )


def _known_labels(store) -> set[str]:
    """The raw labels the last label map decided (empty before the first)."""
    if not store.exists(layout.LABEL_MAP_PATH):
        return set()
    return set(store.read_parquet(layout.LABEL_MAP_PATH, columns=["raw_label"])[0].to_pylist())


def _label_map_tables(table: pa.Table) -> dict:
    decisions = Counter(
        f"{d}: {r}" for d, r in zip(table["decision"].to_pylist(), table["reason"].to_pylist())
    )
    return {
        "decisions": dg.MetadataValue.md(counts_table(decisions, "reason", "labels")),
        "rejected_examples": dg.MetadataValue.md(
            table_preview(table.filter(pa.compute.equal(table["decision"], "reject")), 20)
        ),
        "kept_examples": dg.MetadataValue.md(
            table_preview(table.filter(pa.compute.equal(table["decision"], "keep")), 20)
        ),
    }


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "clean_instances",
            deps=["raw_instances", label_map],
            code_version=curate.CODE_VERSION,
            group_name="quality",
            kinds={"parquet"},
            description="Boxes that passed steps I and II: the raw row plus canonical_label.",
        ),
        dg.AssetSpec(
            "quality_rejects",
            deps=["raw_instances", label_map],
            code_version=curate.CODE_VERSION,
            group_name="quality",
            kinds={"parquet"},
            description="The label, geometry and source stages of the rejects ledger.",
        ),
        dg.AssetSpec(
            "source_selection",
            deps=["raw_instances", label_map],
            code_version=curate.CODE_VERSION,
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
    backfill_policy=shard_backfill_policy,
    op_tags=SHARD_STEP,
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
    add_partition_metadata(
        context, "clean_instances", {s["shard"]: _clean_meta(s) for s in summaries}
    )
    add_partition_metadata(
        context, "quality_rejects", {s["shard"]: rejects_metadata(s, "boxes") for s in summaries}
    )
    add_partition_metadata(
        context, "source_selection", {s["shard"]: _selection_meta(s) for s in summaries}
    )
    version = step_data_version(summaries)
    yield dg.MaterializeResult(
        asset_key="clean_instances",
        metadata={
            **status_counts(summaries),
            "run_shards": shards_table(summaries, CLEAN_RUN_COLUMNS),
        },
        data_version=version,
    )
    yield dg.MaterializeResult(asset_key="quality_rejects", data_version=version)
    yield dg.MaterializeResult(asset_key="source_selection", data_version=version)
    meta = accounting_metadata(curate.accounting(store, keys))
    yield dg.AssetCheckResult(
        check_name="raw_equals_clean_plus_rejected",
        asset_key="clean_instances",
        passed=not meta["mismatched_shards"],
        metadata={**meta, "mismatched_shards": dg.MetadataValue.json(meta["mismatched_shards"])},
    )


#: the per-shard columns of a curation run's table on the asset page
CLEAN_RUN_COLUMNS = ["raw", "after_labels", "clean", "sources", "sources_kept", "data_version"]


def _clean_meta(summary: dict) -> dict:
    """One clean shard's own figures, for its partition's materialisation."""
    return shard_metadata(
        summary,
        summary["clean"],
        raw_boxes=summary["raw"],
        boxes_after_labels=summary["after_labels"],
    )


def _selection_meta(summary: dict) -> dict:
    return shard_metadata(
        summary,
        summary["sources"],
        sources_after_labels=summary["sources_after_labels"],
        sources_kept=summary["sources_kept"],
    )


@dg.asset(
    group_name="quality",
    kinds={"duckdb"},
    op_tags={**DUCKDB_HEAVY, **DUCKDB_STEP},
    deps=["clean_instances", "quality_rejects", "source_selection", "image_duplicates"],
    code_version=curate.CODE_VERSION,
    description="The funnel (sources and boxes at raw, after step I, after step II), rejects "
    "by reason, and precision/recall of every reason against the planted ground truth.",
)
def curation_funnel(storage: StorageResource, duckdb: DuckDBResource) -> dg.MaterializeResult:
    store = storage.get()
    planted = cat.catalog_info(store).get("planted_path")

    def build() -> dict:
        con = duckdb.connect()
        report = scoring.funnel(con)
        scores = scoring.quality_vs_planted(con, planted) if planted else []
        images = image_groups.scores_vs_planted(con, store, planted) if planted else []
        if scores:
            store.write_json(scores + images, layout.QUALITY_VS_PLANTED_PATH)
        store.write_json(report, layout.FUNNEL_PATH)
        return {"report": report, "scores": scores, "images": images}

    inputs = {
        "clean": incremental.sharded_versions(store, layout.CLEAN_DIR, "clean_instances"),
        "image_groups": (incremental.read_marker(store, "image_duplicates") or {}).get(
            "data_version"
        ),
        "planted": planted,
        "code": curate.CODE_VERSION,
    }
    outputs = [layout.FUNNEL_PATH] + ([layout.QUALITY_VS_PLANTED_PATH] if planted else [])
    outcome = run_once(store, "curation_funnel", inputs, outputs, build)
    report, scores = outcome.summary["report"], outcome.summary["scores"]
    funnel, by_reason = report["funnel"], report["rejects_by_reason"]
    metadata = {
        **outcome_metadata(outcome),
        "dagster/row_count": len(funnel),
        "funnel": dg.MetadataValue.md(md_table(funnel)),
        "rejects_by_reason": dg.MetadataValue.md(md_table(by_reason)),
        "sources_raw": int(funnel[0]["sources"] or 0),
        "sources_after_labels": int(funnel[1]["sources"] or 0),
        "sources_after_geometry": int(funnel[2]["sources"] or 0),
    }
    if scores:
        metadata["quality_vs_planted"] = dg.MetadataValue.md(md_table(scores))
    if outcome.summary.get("images"):
        metadata["images_vs_planted"] = dg.MetadataValue.md(md_table(outcome.summary["images"]))
    return dg.MaterializeResult(
        metadata=metadata, data_version=dg.DataVersion(outcome.data_version)
    )


quality_assets = [label_vocabulary, label_embeddings, label_map, clean_instances, curation_funnel]
