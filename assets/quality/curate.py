"""Curate one shard: step I (label meaning), then step II (geometry), then source decisions.

Every raw box ends in exactly one place: ``clean_instances`` (the raw row, clipped where the
geometry allowed, plus ``canonical_label``) or one ledger row with its stage and reason:

1. ``label``: its label was rejected by the label map (``label_*``);
2. ``source``: its source failed step I (``source_label_quality``: most of its boxes carry
   rejected labels) — every box of the source not already rejected by its label;
3. ``geometry``: its box failed a geometric check (``geometry.PRECEDENCE``);
4. ``source``: its source failed step II (``source_oversized_everywhere``,
   ``source_missing_annotations``, ``source_too_few_boxes``) — its remaining boxes.

Sources live wholly inside one shard, so every decision here is local to the shard.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vprim.assets.contracts import layout
from vprim.assets.contracts import reasons as R
from vprim.assets.contracts import schemas as S
from vprim.assets.contracts.reasons import Reason
from vprim.assets.incremental import code_version, data_version, digest, file_facts, run_once
from vprim.assets.parallel import map_shards
from vprim.assets.quality import geometry as G
from vprim.assets.quality.labels import LabelConfig
from vprim.assets.storage import Storage

#: ``source_selection.stage`` of a source none of whose boxes reached curation
INGEST_STAGE = "ingest"

#: the stages whose rejects this module writes: label, geometry, source
QUALITY_STAGES = tuple(stage for stage in R.STAGES if stage not in R.INGEST_STAGES)


#: per-box frames built from NumPy object arrays: an empty shard would otherwise infer
#: ``Object`` columns, which polars cannot join with the String ``source_id`` of the stats
_PER_BOX = {"source_id": pl.String, "bad": pl.Boolean, "clean": pl.Boolean}


def curate_shards(
    storage: Storage,
    shard_keys: list[str],
    label_map_path: str,
    geometry: G.GeometryConfig,
    labels: LabelConfig,
    seed: int = 0,
    workers: int | None = None,
) -> list[dict]:
    """:func:`curate_shard` for each shard, in parallel processes when ``workers`` > 1."""
    jobs = [(storage.root_url, k, label_map_path, geometry, labels, seed) for k in shard_keys]
    return map_shards(_curate_one, jobs, workers, shared=storage.shared_across_processes)


#: what decides a clean shard besides its inputs: the quality stage's code and data files
CODE_VERSION = code_version(
    "assets/quality/*.py", "assets/quality/data/*", "assets/contracts/*.py", "assets/boxes.py"
)
#: the marker stage name of curation (``_markers/clean_instances/shard=NNN.json``)
MARKER_STAGE = "clean_instances"
#: the label map's columns that decide a box's fate (scores and evidence do not)
LABEL_FATE_COLUMNS = ["raw_label", "canonical_label", "decision", "reason"]


def shard_inputs(
    storage: Storage,
    shard_key: str,
    label_map: pa.Table,
    geometry: G.GeometryConfig,
    labels: LabelConfig,
    seed: int,
) -> dict:
    """What a clean shard is built from: its raw shard's data version, the label map's rows
    for the labels in that shard (a new label elsewhere changes nothing here), the
    thresholds, the seed and the code version."""
    raw_rel = layout.shard_file(layout.RAW_DIR, shard_key)
    raw_version = data_version(storage, "raw_instances", shard_key) or file_facts(storage, raw_rel)
    present = pc.unique(storage.read_parquet(raw_rel, columns=["raw_label"])["raw_label"])
    rows = label_map.select(LABEL_FATE_COLUMNS).filter(pc.is_in(label_map["raw_label"], present))
    return {
        "raw": raw_version,
        "labels": digest(rows.sort_by("raw_label").to_pydict()),
        "geometry": dataclasses.asdict(geometry),
        "label_config": dataclasses.asdict(labels),
        "seed": seed,
        "code": CODE_VERSION,
    }


def shard_outputs(shard_key: str) -> list[str]:
    """The files one curated shard consists of."""
    dirs = [layout.CLEAN_DIR, layout.SELECTION_DIR, *map(layout.rejects_dir, QUALITY_STAGES)]
    return [layout.shard_file(d, shard_key) for d in dirs]


def _curate_one(args: tuple) -> dict:
    """One shard, unless its completion marker shows it was built from the same inputs."""
    root, key, label_map_path, geometry, labels, seed = args
    storage = Storage(root)
    label_map = storage.read_parquet(label_map_path)
    outcome = run_once(
        storage,
        MARKER_STAGE,
        shard_inputs(storage, key, label_map, geometry, labels, seed),
        shard_outputs(key),
        lambda: curate_shard(storage, key, label_map, geometry, labels, seed),
        key=key,
    )
    return outcome.as_shard(key)


def curate_shard(
    storage: Storage,
    shard_key: str,
    label_map: pa.Table,
    geometry: G.GeometryConfig | None = None,
    labels: LabelConfig | None = None,
    seed: int = 0,
) -> dict:
    """Curate one shard and write its files atomically; returns counts for metadata.

    Args:
        label_map: ``raw_label``, ``canonical_label``, ``decision`` (keep | reject), ``reason``.
    """
    geometry = geometry or G.GeometryConfig()
    labels = labels or LabelConfig()
    raw = storage.read_parquet(layout.shard_file(layout.RAW_DIR, shard_key))
    stats = storage.read_parquet(layout.shard_file(layout.SOURCE_STATS_DIR, shard_key))
    n = raw.num_rows

    # --- step I: labels ------------------------------------------------------------------
    canonical, label_reason, label_bad = label_fates(raw["raw_label"], label_map)
    sources = raw["source_id"].to_numpy(zero_copy_only=False)
    per_source, dropped = source_label_quality(sources, label_bad, labels)
    # a hash lookup: np.isin on object arrays compares every row with every dropped source
    in_label_dropped = _member(raw["source_id"], dropped)

    # --- step II: geometry on the boxes that survived step I -------------------------------
    survivors = ~label_bad & ~in_label_dropped
    checked_table = raw.append_column("canonical_label", pa.array(canonical, pa.string()))
    geo = G.check_boxes(checked_table.filter(pa.array(survivors)), geometry, "canonical_label")
    geo_reason = np.full(n, None, dtype=object)
    geo_reason[survivors] = geo["reason"].to_numpy(zero_copy_only=False)
    flags = np.zeros(n, dtype=np.uint16)
    flags[survivors] = geo["flags"].to_numpy()
    boxes_for_sources = pa.table(
        {
            "source_id": pa.array(sources[survivors], pa.string()),
            "image_id": raw["image_id"].filter(pa.array(survivors)),
            "flags": pa.array(flags[survivors]),
            "reason": pa.array(geo_reason[survivors], pa.string()),
        }
    )
    kept_stats = stats.filter(
        pc.invert(pc.is_in(stats["source_id"], pa.array(dropped, pa.string())))
    )
    decisions = G.source_decisions(boxes_for_sources, kept_stats, geometry, seed=seed)
    geo_dropped = {
        r["source_id"]: r["reason"] for r in decisions.to_pylist() if r["decision"] == "drop"
    }

    # --- one fate per box ------------------------------------------------------------------
    stage = np.full(n, None, dtype=object)
    reason = np.full(n, None, dtype=object)
    stage[label_bad], reason[label_bad] = "label", label_reason[label_bad]
    m = in_label_dropped & ~label_bad
    stage[m], reason[m] = "source", Reason.SOURCE_LABEL_QUALITY
    m = survivors & (geo_reason != None)  # noqa: E711 (object array)
    stage[m], reason[m] = "geometry", geo_reason[m]
    if geo_dropped:
        dropped_ids = pa.array(list(geo_dropped), pa.string())
        at = pc.fill_null(pc.index_in(raw["source_id"], value_set=dropped_ids), -1).to_numpy()
        src_reason = np.array([*geo_dropped.values(), None], dtype=object)[at]
        m = survivors & (geo_reason == None) & (src_reason != None)  # noqa: E711
        stage[m], reason[m] = "source", src_reason[m]
    clean = stage == None  # noqa: E711

    counts = _write_shard(storage, shard_key, raw, canonical, geo, survivors, clean, stage, reason)
    selection = _selection(per_source, dropped, decisions, stats, clean, sources)
    storage.write_parquet(selection, layout.shard_file(layout.SELECTION_DIR, shard_key))
    counts["sources"] = selection.num_rows
    counts["sources_kept"] = int(pc.sum(pc.equal(selection["decision"], "keep")).as_py() or 0)
    counts["sources_after_labels"] = selection.num_rows - len(dropped)
    return counts


def label_fates(
    raw_labels: pa.ChunkedArray | pa.Array, label_map: pa.Table
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step I per box: what the label map says of each box's raw label.

    Args:
        raw_labels: ``(n,)`` raw labels of the boxes.
        label_map: ``raw_label``, ``canonical_label``, ``decision`` (keep | reject), ``reason``.

    Returns:
        ``(canonical, reason, bad)``, each ``(n,)``: the canonical label, the reject reason
        (None when the label is kept) and whether the label is rejected. A label the map has
        never seen cannot be trusted: ``label_unmapped``.
    """
    lm = label_map.select(["raw_label", "canonical_label", "decision", "reason"])
    idx = pc.fill_null(pc.index_in(raw_labels, value_set=lm["raw_label"]), -1).to_numpy()
    known = idx >= 0
    pos = np.where(known, idx, 0)
    canonical = lm["canonical_label"].to_numpy(zero_copy_only=False)[pos]
    reason = lm["reason"].to_numpy(zero_copy_only=False)[pos].astype(object)
    bad = (lm["decision"].to_numpy(zero_copy_only=False)[pos] == "reject") | ~known
    reason[~known] = Reason.LABEL_UNMAPPED
    reason[~bad] = None
    return canonical, reason, bad


def source_label_quality(
    sources: np.ndarray, label_bad: np.ndarray, config: LabelConfig
) -> tuple[pl.DataFrame, list[str]]:
    """Step I per source: drop a source when too many of its boxes carry rejected labels.

    Args:
        sources: ``(n,)`` ``source_id`` of each raw box.
        label_bad: ``(n,)`` whether the box's label is rejected (:func:`label_fates`).
        config: ``source_bad_label_fraction``: a source is dropped
            (``source_label_quality``) when ``label_rejected / raw_boxes`` is *above* it.

    Returns:
        ``(per_source, dropped)``: one row per source with a box, ``source_id``,
        ``raw_boxes``, ``label_rejected`` and ``bad_label_fraction``; the dropped sources,
        sorted.
    """
    frame = pl.DataFrame({"source_id": sources, "bad": label_bad}, schema_overrides=_PER_BOX)
    per_source = frame.group_by("source_id").agg(
        pl.len().alias("raw_boxes"), pl.col("bad").sum().alias("label_rejected")
    )
    per_source = per_source.with_columns(
        (pl.col("label_rejected") / pl.col("raw_boxes")).alias("bad_label_fraction")
    )
    above = pl.col("bad_label_fraction") > config.source_bad_label_fraction
    return per_source, sorted(per_source.filter(above)["source_id"].to_list())


def _member(values: pa.ChunkedArray, value_set: list[str]) -> np.ndarray:
    """Boolean mask: which of ``values`` are in ``value_set``."""
    found = pc.is_in(values, value_set=pa.array(value_set, pa.string()))
    return pc.fill_null(found, False).to_numpy(zero_copy_only=False)


def _write_shard(storage, shard_key, raw, canonical, geo, survivors, clean, stage, reason) -> dict:
    """Write clean_instances and the label/geometry/source ledger rows of the shard."""
    n = raw.num_rows
    # clipped coordinates come from the geometry step (rows that reached it)
    coords = {
        c: raw[c].to_numpy(zero_copy_only=False).astype(np.float64)
        for c in ("x0", "y0", "x1", "y1")
    }
    for c in coords:
        coords[c][survivors] = geo[c].to_numpy(zero_copy_only=False)
    clean_mask = pa.array(clean)
    table = raw
    for c, values in coords.items():
        table = table.set_column(table.schema.get_field_index(c), c, pa.array(values))
    table = table.append_column("canonical_label", pa.array(canonical, pa.string()))
    clean_table = table.filter(clean_mask).cast(S.CLEAN_SCHEMA)
    storage.write_parquet(clean_table, layout.shard_file(layout.CLEAN_DIR, shard_key))
    detail = np.full(n, "", dtype=object)
    geo_detail = geo["detail"].to_numpy(zero_copy_only=False)
    detail[survivors] = np.where(geo_detail == None, "", geo_detail)  # noqa: E711
    by_reason: dict[str, int] = {}
    for st in QUALITY_STAGES:
        directory = layout.rejects_dir(st)
        m = stage == st
        rows = pa.table(
            {
                "instance_id": raw["instance_id"].filter(pa.array(m)),
                "source_id": raw["source_id"].filter(pa.array(m)),
                "uri": raw["image_uri"].filter(pa.array(m)),
                "stage": pa.array(np.full(int(m.sum()), st, dtype=object), pa.string()),
                "reason": pa.array(reason[m], pa.string()),
                "detail": pa.array(_details(st, reason[m], detail[m]), pa.string()),
            },
            schema=S.REJECTS_SCHEMA,
        )
        storage.write_parquet(rows, layout.shard_file(directory, shard_key))
        for r, k in zip(*np.unique(reason[m].astype(str), return_counts=True)):
            by_reason[str(r)] = int(k)
    return {
        "raw": n,
        "clean": clean_table.num_rows,
        "after_labels": int(np.sum(survivors)),
        "rejects_by_reason": by_reason,
    }


def _details(stage: str, reasons: np.ndarray, geo_detail: np.ndarray) -> list[str]:
    if stage == "geometry":
        return [f"flags: {d}" for d in geo_detail]
    if stage == "label":
        return ["label rejected by label_map"] * len(reasons)
    return ["source dropped; see source_selection"] * len(reasons)


def _selection(per_source, dropped_by_labels, decisions, stats, clean, sources) -> pa.Table:
    clean_counts = (
        pl.DataFrame({"source_id": sources, "clean": clean}, schema_overrides=_PER_BOX)
        .group_by("source_id")
        .agg(pl.col("clean").sum().alias("clean_boxes"))
    )
    d = pl.from_arrow(decisions).select(
        "source_id",
        pl.col("reason").alias("geo_reason"),
        pl.col("detail").alias("geo_detail"),
        "miss_rate_estimate",
        pl.col("boxes").alias("geo_boxes"),
        pl.col("clean_boxes").alias("geo_clean"),
    )
    s = pl.from_arrow(stats.select(["source_id", "images", "boxes_seen"]))
    out = (
        s.join(per_source, on="source_id", how="full", coalesce=True)
        .join(d, on="source_id", how="left")
        .join(clean_counts, on="source_id", how="left")
        .with_columns(
            pl.col("raw_boxes", "label_rejected", "clean_boxes", "images").fill_null(0),
            pl.col("source_id").is_in(dropped_by_labels).alias("label_drop"),
        )
        .with_columns(
            (pl.col("geo_boxes").fill_null(0) - pl.col("geo_clean").fill_null(0)).alias(
                "geometry_rejected"
            )
        )
    )
    # a source none of whose boxes reached curation was decided by ingest, not by geometry
    # (its images are all "without boxes" only because every box was rejected on read)
    nothing_read = pl.col("raw_boxes") == 0
    out = out.with_columns(
        pl.when(nothing_read)
        .then(pl.lit(Reason.SOURCE_TOO_FEW_BOXES))
        .when(pl.col("label_drop"))
        .then(pl.lit(Reason.SOURCE_LABEL_QUALITY))
        .otherwise(pl.col("geo_reason"))
        .alias("reason"),
        pl.when(nothing_read)
        .then(pl.lit(INGEST_STAGE))
        .when(pl.col("label_drop"))
        .then(pl.lit("label"))
        .when(pl.col("geo_reason").is_not_null())
        .then(pl.lit("geometry"))
        .otherwise(None)
        .alias("stage"),
        pl.when(nothing_read & (pl.col("boxes_seen").fill_null(0) == 0))
        .then(pl.lit("no box reached curation: the source holds no box ingest could read"))
        .when(nothing_read)
        .then(
            pl.format(
                "no box reached curation: all {} boxes read were rejected by ingest "
                "(see rejects, stages parse and image)",
                pl.col("boxes_seen"),
            )
        )
        .when(pl.col("label_drop"))
        .then(
            pl.format(
                "{} of {} boxes carry rejected labels",
                pl.col("label_rejected"),
                pl.col("raw_boxes"),
            )
        )
        .otherwise(pl.col("geo_detail"))
        .alias("detail"),
    ).with_columns(
        pl.when(pl.col("reason").is_null())
        .then(pl.lit("keep"))
        .otherwise(pl.lit("drop"))
        .alias("decision")
    )
    out = out.sort("source_id").select([f.name for f in S.SELECTION_SCHEMA])
    return out.to_arrow().cast(S.SELECTION_SCHEMA)


def accounting(storage: Storage, shard_keys: list[str]) -> list[dict]:
    """Per shard: raw rows == clean rows + box rows of the label/geometry/source ledger."""

    def rows(directory: str, key: str) -> int:
        with storage.fs.open(storage.path(layout.shard_file(directory, key)), "rb") as f:
            return pq.ParquetFile(f).metadata.num_rows

    out = []
    for key in shard_keys:
        raw, clean = rows(layout.RAW_DIR, key), rows(layout.CLEAN_DIR, key)
        rejected = sum(rows(layout.rejects_dir(st), key) for st in QUALITY_STAGES)
        out.append(
            {
                "shard": key,
                "raw": raw,
                "clean": clean,
                "rejected": rejected,
                "ok": raw == clean + rejected,
            }
        )
    return out


def totals(summaries: list[dict]) -> tuple[Counter, Counter]:
    """The counts of :func:`curate_shard` summed over shards, and rejects by reason."""
    total: Counter = Counter()
    by_reason: Counter = Counter()
    for s in summaries:
        total.update({k: v for k, v in s.items() if isinstance(v, int)})
        by_reason.update(s["rejects_by_reason"])
    return total, by_reason
