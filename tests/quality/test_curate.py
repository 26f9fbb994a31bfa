"""Curating a shard: every raw box ends in exactly one place, with the right stage and reason."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vprim.assets.contracts import hashing as H
from vprim.assets.contracts import layout
from vprim.assets.contracts import schemas as S
from vprim.assets.quality import curate
from vprim.assets.sources.ingest import SOURCE_STATS_SCHEMA
from vprim.assets.storage import Storage


def _boxes(source: str, label: str, n_images: int, box=(10.0, 10.0, 40.0, 40.0), per_image=1):
    rows = []
    for i in range(n_images):
        for j in range(per_image):
            x0, y0, x1, y1 = box
            rows.append(
                {
                    "source_id": source,
                    "image_id": f"{source}-{i}",
                    "image_uri": f"synthetic://{source}/{i}?w=100&h=100",
                    "image_width": 100,
                    "image_height": 100,
                    "box_index": j,
                    "raw_label": label,
                    "x0": x0 + 45 * j,
                    "y0": y0,
                    "x1": x1 + 45 * j,
                    "y1": y1,
                    "is_crowd": False,
                    "attributes": [],
                    "polygon": None,
                    "format": "coco",
                }
            )
    return rows


def _write(tmp_path, rows, images: dict[str, int]) -> Storage:
    storage = Storage(str(tmp_path))
    ids = H.instance_ids(
        "x", [f"{r['source_id']}/{r['image_id']}" for r in rows], [r["box_index"] for r in rows]
    )
    for r, i in zip(rows, ids.tolist()):
        r["instance_id"] = i
    storage.write_parquet(
        pa.Table.from_pylist(rows, S.RAW_INSTANCES_SCHEMA), layout.shard_file(layout.RAW_DIR, "000")
    )
    stats = [
        {
            "source_id": s,
            "format": "coco",
            "files": 1,
            "files_rejected": 0,
            "images": k,
            "boxes_seen": 0,
            "boxes_kept": 0,
            "boxes_rejected": 0,
            "seconds": 0.0,
        }
        for s, k in images.items()
    ]
    storage.write_parquet(
        pa.Table.from_pylist(stats, SOURCE_STATS_SCHEMA),
        layout.shard_file(layout.SOURCE_STATS_DIR, "000"),
    )
    return storage


LABEL_MAP = pa.table(
    {
        "raw_label": ["Dog", "cars", "NG"],
        "canonical_label": ["dog", "car", None],
        "decision": ["keep", "keep", "reject"],
        "reason": [None, None, "label_vague"],
    }
)


def test_every_box_has_one_fate(tmp_path):
    rows = (
        _boxes("good", "Dog", 5, per_image=2)  # clean
        + _boxes("mixed", "cars", 4)  # clean, plus one vague label below
        + _boxes("mixed", "NG", 1)  # label_vague, source still mostly good
        + _boxes("bad", "NG", 4)  # a source of bad labels: dropped at step I
        + _boxes("bad", "Dog", 1)  # its good box goes with it (source_label_quality)
        + _boxes("big", "Dog", 4, box=(0.0, 0.0, 100.0, 99.0))  # oversized everywhere
        + _boxes("empty", "cars", 3)  # 3 of 10 images annotated: missing annotations
        + _boxes("unknown", "mystery", 4)  # a label the map never saw
    )
    rows[0]["x1"] = float("nan")  # one non-finite box in a good source
    images = {"good": 5, "mixed": 5, "bad": 5, "big": 4, "empty": 10, "unknown": 4}
    storage = _write(tmp_path, rows, images)
    counts = curate.curate_shard(storage, "000", LABEL_MAP)
    (acct,) = curate.accounting(storage, ["000"])
    assert acct["ok"] and acct["raw"] == len(rows)
    clean = pq.read_table(storage.path(layout.shard_file(layout.CLEAN_DIR, "000")))
    assert set(clean["source_id"].to_pylist()) == {"good", "mixed"}
    assert set(clean["canonical_label"].to_pylist()) == {"dog", "car"}
    assert counts["clean"] == clean.num_rows == 9 + 4
    ledger = {
        stage: pq.read_table(
            storage.path(layout.shard_file(layout.rejects_dir(stage), "000"))
        ).to_pylist()
        for stage in ("label", "geometry", "source")
    }
    by = lambda stage: sorted((r["source_id"], r["reason"]) for r in ledger[stage])  # noqa: E731
    assert by("label") == sorted(
        [("mixed", "label_vague")]
        + [("bad", "label_vague")] * 4
        + [("unknown", "label_unmapped")] * 4
    )
    assert by("geometry") == sorted([("good", "non_finite_box")] + [("big", "oversized_box")] * 4)
    assert ("bad", "source_label_quality") in by("source")
    assert ("empty", "source_missing_annotations") in by("source")
    selection = {
        r["source_id"]: r
        for r in pq.read_table(
            storage.path(layout.shard_file(layout.SELECTION_DIR, "000"))
        ).to_pylist()
    }
    assert selection["good"]["decision"] == "keep" and selection["mixed"]["decision"] == "keep"
    assert selection["bad"]["reason"] == "source_label_quality"
    assert selection["bad"]["stage"] == "label"
    assert selection["big"]["reason"] == "source_oversized_everywhere"
    assert selection["empty"]["reason"] == "source_missing_annotations"
    assert selection["empty"]["miss_rate_estimate"] == np.float64(0.7)
    assert selection["unknown"]["reason"] == "source_label_quality"
