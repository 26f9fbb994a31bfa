"""Quality-stage benchmarks, each in its own process from ``vprim.assets.bench`` (its own peak RSS).

    python -m vprim.assets.quality.bench geometry ROOT --rows 10000000
    python -m vprim.assets.quality.bench labels ROOT

``ROOT`` is a storage root whose ``raw_instances`` were written by an ingest (the bench's own).
Each prints one JSON line of figures.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def _raw(root: str, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(Path(root) / "raw_instances", columns=columns)


def bench_geometry(root: str, rows: int) -> dict:
    """``check_boxes`` over a ``rows``-box table made by tiling the corpus's boxes.

    Each tile gets its own source ids, so duplicates are judged within images as in real data.
    """
    from vprim.assets.quality.geometry import check_boxes

    base = _raw(root)
    tiles = []
    for k in range(-(-rows // base.num_rows)):
        ids = pc.binary_join_element_wise(base["source_id"], pa.scalar(f"~{k}"), "")
        tiles.append(base.set_column(base.schema.get_field_index("source_id"), "source_id", ids))
    table = pa.concat_tables(tiles).slice(0, rows).combine_chunks()
    del tiles
    started = time.perf_counter()
    result = check_boxes(table)
    seconds = time.perf_counter() - started
    flagged = result.num_rows - result["reason"].null_count
    return {
        "boxes": table.num_rows,
        "seconds": round(seconds, 2),
        "boxes_per_second": round(table.num_rows / seconds),
        "flagged": flagged,
    }


def bench_labels(root: str) -> dict:
    """Embedding throughput on the corpus's distinct labels, then a re-run with nothing new."""
    from vprim.assets.quality.embedder import EmbeddingCache, LabelEmbedder, embed_cached
    from vprim.assets.quality.vocabulary import normalise

    labels = _raw(root, ["raw_label"])["raw_label"].unique().to_pylist()
    texts = sorted({normalise(x) for x in labels})
    model = LabelEmbedder()
    with tempfile.TemporaryDirectory() as tmp:
        cache = EmbeddingCache(Path(tmp) / "cache.parquet")
        started = time.perf_counter()
        _, first = embed_cached(model, texts, cache)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        _, second = embed_cached(model, texts, cache)
        warm = time.perf_counter() - started
    return {
        "distinct_labels": len(texts),
        "device": str(model.device),
        "first_run_embedded": first,
        "first_run_seconds": round(cold, 2),
        "labels_per_second": round(first / cold, 1) if cold else 0.0,
        "rerun_embedded": second,
        "rerun_seconds": round(warm, 3),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vprim.assets.quality.bench")
    parser.add_argument("what", choices=["geometry", "labels"])
    parser.add_argument("root")
    parser.add_argument("--rows", type=int, default=10_000_000)
    args = parser.parse_args(argv)
    if args.what == "geometry":
        figures = bench_geometry(args.root, args.rows)
    else:
        figures = bench_labels(args.root)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
