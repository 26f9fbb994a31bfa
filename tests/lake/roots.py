"""Tiny hand-made storage roots for the lake's tests (and the camps' and model's): clean
boxes, source decisions and a label map written as the quality stage writes them, and builds
and reads of lake versions on them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vprim.assets.contracts import hashing as H
from vprim.assets.contracts import layout
from vprim.assets.contracts.schemas import CLEAN_SCHEMA, LABEL_MAP_SCHEMA, SELECTION_SCHEMA
from vprim.assets.lake import checks as C
from vprim.assets.lake.balance import BalanceConfig
from vprim.assets.lake.build import LakeBuild, build_version
from vprim.assets.storage import Storage

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z: builds get explicit, increasing times
REJECTED_RAW = "qwzx"  # a raw label the label map rejects


def box(
    source: str,
    image: str,
    label: str,
    xyxy: tuple[float, float, float, float] = (10.0, 10.0, 40.0, 40.0),
    *,
    w: int = 100,
    h: int = 100,
    uri: str | None = None,
) -> dict:
    """One clean box of ``label`` on ``image`` of ``source`` (URI derived unless given)."""
    x0, y0, x1, y1 = xyxy
    return {
        "source_id": source,
        "image_id": image,
        "image_uri": uri or f"synthetic://{source}/{image}?w={w}&h={h}",
        "w": w,
        "h": h,
        "label": label,
        "x0": float(x0),
        "y0": float(y0),
        "x1": float(x1),
        "y1": float(y1),
    }


def images(source: str, label: str, n: int, prefix: str = "img") -> list[dict]:
    """``n`` images of ``source`` with one ``label`` box each."""
    return [box(source, f"{prefix}{i:02d}", label) for i in range(n)]


def _clean_rows(boxes: list[dict]) -> list[dict]:
    """The boxes as CLEAN_SCHEMA rows, with stable instance ids."""
    per_image: Counter = Counter()
    rows = []
    for b in boxes:
        index = per_image[(b["source_id"], b["image_id"])]
        per_image[(b["source_id"], b["image_id"])] += 1
        instance_id = H.instance_ids(b["source_id"], [b["image_id"]], np.array([index]))[0]
        rows.append(
            {
                "instance_id": int(instance_id),
                "source_id": b["source_id"],
                "image_id": b["image_id"],
                "image_uri": b["image_uri"],
                "image_width": b["w"],
                "image_height": b["h"],
                "box_index": index,
                "raw_label": b["label"].upper(),
                "x0": b["x0"],
                "y0": b["y0"],
                "x1": b["x1"],
                "y1": b["y1"],
                "is_crowd": False,
                "attributes": [],
                "polygon": None,
                "format": "coco",
                "canonical_label": b["label"],
            }
        )
    return rows


def label_map_table(keep: list[str], reject: list[str] = (REJECTED_RAW,)) -> pa.Table:
    """A label map keeping each of ``keep`` as itself and rejecting ``reject``."""
    rows = [
        {
            "raw_label": label,
            "normalised": label,
            "canonical_label": label,
            "decision": "keep",
            "reason": "canonical_match",
            "score": 1.0,
            "embedding_model": "test",
            "evidence": "",
            "nearest_term": label,
        }
        for label in sorted(keep)
    ] + [
        {
            "raw_label": label,
            "normalised": label,
            "canonical_label": None,
            "decision": "reject",
            "reason": "label_gibberish",
            "score": 0.0,
            "embedding_model": "test",
            "evidence": "",
            "nearest_term": None,
        }
        for label in reject
    ]
    return pa.Table.from_pylist(rows, LABEL_MAP_SCHEMA)


def write_root(
    root: Path,
    boxes: list[dict],
    decisions: dict[str, str],
    drop_stage: dict[str, str] | None = None,
) -> Storage:
    """A storage root with clean_instances (sources spread over two shards), source_selection
    (one rejected raw box per source; a dropped source failed step II unless ``drop_stage``
    says otherwise) and a label map keeping every label of ``boxes``."""
    store = Storage(str(root))
    sources = sorted({b["source_id"] for b in boxes})
    for shard in (0, 1):
        mine = [b for b in boxes if sources.index(b["source_id"]) % 2 == shard]
        if mine:
            table = pa.Table.from_pylist(_clean_rows(mine), CLEAN_SCHEMA)
            store.write_parquet(table, layout.shard_file(layout.CLEAN_DIR, layout.shard_key(shard)))
    selection = []
    for source, decision in sorted(decisions.items()):
        mine = [b for b in boxes if b["source_id"] == source]
        stage = None if decision == "keep" else (drop_stage or {}).get(source, "geometry")
        selection.append(
            {
                "source_id": source,
                "decision": decision,
                "stage": stage,
                "reason": None if stage is None else f"source_{stage}_test",
                "detail": None,
                "raw_boxes": len(mine) + 1,
                "label_rejected": 1,
                "bad_label_fraction": 1 / (len(mine) + 1),
                "geometry_rejected": 0,
                "clean_boxes": len(mine) if decision == "keep" else 0,
                "images": len({b["image_id"] for b in mine}),
                "miss_rate_estimate": None,
            }
        )
    store.write_parquet(
        pa.Table.from_pylist(selection, SELECTION_SCHEMA),
        layout.shard_file(layout.SELECTION_DIR, layout.shard_key(0)),
    )
    store.write_parquet(label_map_table(sorted({b["label"] for b in boxes})), layout.LABEL_MAP_PATH)
    return store


def build(
    store: Storage, config: BalanceConfig | None = None, now: float = T0, **kwargs
) -> LakeBuild:
    """build_version on a fresh DuckDB connection."""
    con = duckdb.connect()
    try:
        return build_version(store, con, config or BalanceConfig(buckets=2), now=now, **kwargs)
    finally:
        con.close()


def read_lake(store: Storage, version: str) -> pa.Table:
    """Every row of a version's samples files, sorted by sample_id."""
    files = store.glob(f"{layout.lake_samples_dir(version)}/*/*.parquet")
    table = pa.concat_tables([pq.read_table(f) for f in files])
    return table.sort_by("sample_id")


def rows_of(store: Storage, version: str) -> list[dict]:
    """The lake rows as dicts."""
    return read_lake(store, version).to_pylist()


def normalise(con: duckdb.DuckDBPyConnection, uri: str) -> str:
    """The normalise_uri macro applied to one URI."""
    return con.execute("SELECT normalise_uri(?)", [uri]).fetchone()[0]


def mixed_root(root: Path) -> Storage:
    """A root where balancing does everything (cap=5): src_a's 7 cat images are capped to 5;
    its 5 dog images include one that src_b also publishes (de-duplicated); src_c (dropped at
    step II) and src_d (dropped at step I) bring nothing. Lake: dog 5 samples / 5 boxes, cat
    6 / 6, bird 3 / 4: 14 rows, 15 instances, 2 sources."""
    shared = "synthetic://a/img1?w=100&h=80"
    mirror = "synthetic://a//img1?h=80&w=100"
    boxes = [
        *images("src_a", "dog", 4),
        box("src_a", "shared", "dog", (5, 5, 50, 50), h=80, uri=shared),
        *images("src_a", "cat", 7),
        box("src_b", "b-77", "dog", (5, 5, 50, 50), h=80, uri=mirror),
        box("src_b", "b-77", "cat", (60, 5, 90, 50), h=80, uri=mirror),
        *images("src_b", "bird", 3),
        box("src_b", "img00", "bird", (50, 50, 90, 90)),  # a second bird box
        *images("src_c", "dog", 4),
        *images("src_d", "car", 2),
    ]
    decisions = {"src_a": "keep", "src_b": "keep", "src_c": "drop", "src_d": "drop"}
    return write_root(root, boxes, decisions, drop_stage={"src_d": "label"})


def check_outcomes(store: Storage, version: str) -> dict[str, C.CheckOutcome]:
    """run_checks on a fresh connection, by check name."""
    con = duckdb.connect()
    try:
        return {o.name: o for o in C.run_checks(store, con, version)}
    finally:
        con.close()
