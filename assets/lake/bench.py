"""Benchmarks of the lake stage, each run in its own process by ``python -m vprim.assets.bench``.

    python -m vprim.assets.lake.bench synth ROOT --instances N   # clean_instances of N boxes
    python -m vprim.assets.lake.bench build ROOT                 # balance + checks + publish
    python -m vprim.assets.lake.bench peer ROOT                  # the same balance, eager Polars
    python -m vprim.assets.lake.bench queries ROOT               # the views over the current lake

``synth`` writes the quality stage's outputs with the shapes of the full corpus: about 1,300
clean boxes per kept source, Zipf-like labels, 1-3 boxes of a label per image, a few sources
over the per-(source, label) cap, and 1% of images re-published by the next source under the
same URI with the query keys swapped (cross-source duplicates).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

import duckdb

SHARDS = 64
BOXES_PER_SOURCE = 1_300
IMAGES_PER_SOURCE = 520

SYNTH_SQL = """
COPY (
    WITH boxes AS (
        SELECT i, source,
               -- one source in 50 has a single label on 1,300 images: over the cap
               CASE WHEN hash(source, 9) % 50 = 0 THEN i % {per_source}
                    ELSE (i % {per_source}) // 5 * 2 + (hash(i, 7) % 2) END AS local_image
        FROM (SELECT i, i // {per_source} AS source FROM range({start}, {stop}) AS t(i))
    ), placed AS (
        SELECT *,
               -- 1% of a source's images are its predecessor's (same URI, keys swapped)
               source > 0 AND hash(source, local_image) % 100 = 0 AS mirrored,
               CASE WHEN source > 0 AND hash(source, local_image) % 100 = 0
                    THEN source - 1 ELSE source END AS owner
        FROM boxes
    )
    SELECT hash(i, 1)::UBIGINT AS instance_id,
           printf('src-%06d', source) AS source_id,
           printf('img_%06d', local_image) AS image_id,
           CASE WHEN mirrored
                THEN printf('synthetic://src-%06d/img_%06d?h=480&w=640', owner, local_image)
                ELSE printf('synthetic://src-%06d/img_%06d?w=640&h=480', owner, local_image)
           END AS image_uri,
           640::INTEGER AS image_width, 480::INTEGER AS image_height,
           (i % 5)::INTEGER AS box_index,
           -- labels by (owner, image): a mirrored image carries its origin's labels
           CASE WHEN hash(owner, 9) % 50 = 0 THEN 'label 0'
                ELSE 'label '
                     || floor(2000 * pow(hash(owner, local_image, 3) % 1000000 / 1e6, 3))::INTEGER
           END AS canonical_label,
           (hash(i, 4) % 480)::DOUBLE AS x0,
           (hash(i, 5) % 330)::DOUBLE AS y0,
           (hash(i, 4) % 480 + 20 + hash(i, 6) % 140)::DOUBLE AS x1,
           (hash(i, 5) % 330 + 20 + hash(i, 8) % 130)::DOUBLE AS y1
    FROM placed
) TO '{path}' (FORMAT parquet, COMPRESSION zstd)
"""


SELECTION_SQL = """
COPY (
    SELECT printf('src-%06d', s) AS source_id, 'keep' AS decision, NULL::VARCHAR AS stage,
           NULL::VARCHAR AS reason, NULL::VARCHAR AS detail, {boxes}::BIGINT AS raw_boxes,
           0::BIGINT AS label_rejected, 0.0 AS bad_label_fraction,
           0::BIGINT AS geometry_rejected, {boxes}::BIGINT AS clean_boxes,
           0::BIGINT AS images, NULL::DOUBLE AS miss_rate_estimate
    FROM range({first}, {last}) AS t(s)
) TO '{path}' (FORMAT parquet)
"""


def synth(root: str, instances: int) -> dict:
    """Write clean_instances, source_selection and label_map of ``instances`` boxes."""
    con = duckdb.connect()
    for sub in ("clean_instances", "source_selection", "quality"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    n_sources = max(1, instances // BOXES_PER_SOURCE)
    per = -(-n_sources // SHARDS)
    written = 0
    for shard in range(SHARDS):
        first, last = shard * per, min(n_sources, (shard + 1) * per)
        if first >= last:
            break
        start, stop = first * BOXES_PER_SOURCE, min(instances, last * BOXES_PER_SOURCE)
        path = os.path.join(root, "clean_instances", f"shard={shard:03d}.parquet")
        con.execute(
            SYNTH_SQL.format(per_source=BOXES_PER_SOURCE, start=start, stop=stop, path=path)
        )
        con.execute(
            SELECTION_SQL.format(
                boxes=BOXES_PER_SOURCE,
                first=first,
                last=last,
                path=os.path.join(root, "source_selection", f"shard={shard:03d}.parquet"),
            )
        )
        written += stop - start
    con.execute(
        "COPY (SELECT 'label ' || i AS raw_label, 'label ' || i AS canonical_label, "
        "'keep' AS decision, 'kept' AS reason, 1.0 AS score, 'bench' AS embedding_model "
        f"FROM range(2000) t(i)) TO '{root}/quality/label_map.parquet' (FORMAT parquet)"
    )
    return {"instances": written, "sources": n_sources}


def build(root: str, buckets: int) -> dict:
    """Balance, check and publish one version; the figures of each part."""
    from vprim.assets.lake import checks, publish
    from vprim.assets.lake.balance import BalanceConfig
    from vprim.assets.lake.build import build_version
    from vprim.assets.storage import Storage
    from vprim.resources.duckdb import DuckDBResource

    store = Storage(root)
    con = DuckDBResource(root=root, memory_limit=os.environ.get("VPRIM_DUCKDB_MEMORY", "4GB"))
    con = con.connect()
    c0, t0 = _cpu(), time.perf_counter()
    lake = build_version(store, con, BalanceConfig(buckets=buckets))
    c1, t1 = _cpu(), time.perf_counter()
    outcomes = checks.run_checks(store, con, lake.version)
    c2, t2 = _cpu(), time.perf_counter()
    publish.publish(store, lake.version)
    publish.apply_retention(store, keep=1)
    t3 = time.perf_counter()
    counts = lake.manifest["counts"]
    size = sum(f["bytes"] for f in lake.manifest["files"])
    return {
        "instances_in": counts["balance"]["instances_before"],
        "lake_rows": counts["rows"],
        "lake_instances": counts["instances"],
        "duplicates_removed": counts["balance"]["samples_duplicate"],
        "build_seconds": round(t1 - t0, 2),
        "checks_seconds": round(t2 - t1, 2),
        # CPU seconds of the process, all threads: the work done, whatever the machine's load
        "build_cpu_seconds": round(c1 - c0, 2),
        "checks_cpu_seconds": round(c2 - c1, 2),
        "publish_seconds": round(t3 - t2, 2),
        "checks_passed": all(o.passed for o in outcomes),
        "lake_mb": round(size / 2**20),
        **{f"part_{k}": round(v, 2) for k, v in lake.seconds.items()},
    }


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peer(root: str) -> dict:
    """The same rule as one eager Polars program (what one would write without the lake
    stage): read everything, group, rank, de-duplicate in memory."""
    import polars as pl

    t0 = time.perf_counter()
    boxes = pl.read_parquet(
        os.path.join(root, "clean_instances", "*.parquet"),
        columns=["source_id", "image_id", "image_uri", "canonical_label", "x0", "y0", "x1", "y1"],
    )
    samples = (
        boxes.sort("x0")
        .group_by("source_id", "image_id", "canonical_label")
        .agg(
            pl.col("image_uri").first(),
            pl.concat_list("x0", "y0", "x1", "y1").alias("boxes"),
            pl.len().alias("n_boxes"),
        )
        .with_columns(
            pl.col("image_uri").str.replace(r"\?.*$", "").alias("key"),
            pl.concat_str("source_id", "image_id").hash(0).alias("draw"),
        )
        .sort("draw")
        .with_columns(pl.int_range(pl.len()).over("source_id", "canonical_label").alias("rank"))
        .filter(pl.col("rank") < 1000)
        .unique(["key", "canonical_label"], keep="first", maintain_order=True)
    )
    samples.write_parquet(os.path.join(root, "peer_lake.parquet"), compression="zstd")
    return {
        "lake_rows": samples.height,
        "lake_instances": int(samples["n_boxes"].sum()),
        "seconds": round(time.perf_counter() - t0, 2),
    }


QUERIES = {
    "label_histogram": "SELECT * FROM lake_label_histogram",
    "source_contribution": "SELECT * FROM lake_source_contribution",
    "funnel_raw_to_lake": "SELECT * FROM lake_funnel",
    "count_one_label": "SELECT count(*), sum(n_boxes) FROM lake WHERE label = 'label 7'",
    "holdout_sample": "SELECT * FROM lake WHERE split = 'holdout' LIMIT 1000",
}


def queries(root: str, repeat: int = 3) -> dict:
    """Best-of-``repeat`` seconds of each view query over the published lake."""
    from vprim.resources.duckdb import DuckDBResource

    con = DuckDBResource(root=root).connect()
    out = {}
    for name, sql in QUERIES.items():
        try:
            con.execute(f"SELECT count(*) FROM ({sql})").fetchone()
        except duckdb.Error as exc:  # a view over a stage the bench did not write
            out[name] = f"n/a ({type(exc).__name__})"
            continue
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            con.execute(sql).fetchall()
            best = min(best, time.perf_counter() - t)
        out[name] = round(best, 3)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vprim.assets.lake.bench")
    parser.add_argument("what", choices=("synth", "build", "peer", "queries"))
    parser.add_argument("root")
    parser.add_argument("--instances", type=int, default=10_000_000)
    parser.add_argument("--buckets", type=int, default=16)
    args = parser.parse_args(argv)
    if args.what == "synth":
        result = synth(args.root, args.instances)
    elif args.what == "build":
        result = build(args.root, args.buckets)
    elif args.what == "peer":
        result = peer(args.root)
    else:
        result = queries(args.root)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
