"""Curating a shard: every raw box ends in exactly one place, with the right stage and reason."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vprim.assets.contracts import hashing as H
from vprim.assets.contracts import layout
from vprim.assets.contracts import schemas as S
from vprim.assets.contracts.schemas import SOURCE_STATS_SCHEMA
from vprim.assets.quality import curate
from vprim.assets.quality.labels import LabelConfig
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


def _write(tmp_path, rows, images: dict[str, int], seen: dict[str, int] | None = None) -> Storage:
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
            "boxes_seen": (seen or {}).get(s, 0),
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


def test_a_source_whose_every_box_failed_on_read_is_dropped_by_ingest_not_geometry(tmp_path):
    """Issue 19: a source whose 6 boxes were all rejected at parse (4 images) was reported as
    dropped at stage geometry with "4 of 4 images without boxes"."""
    rows = _boxes("good", "Dog", 5)
    images = {"good": 5, "unread": 4, "hollow": 0}
    storage = _write(tmp_path, rows, images, seen={"good": 5, "unread": 6})
    curate.curate_shard(storage, "000", LABEL_MAP)
    selection = {
        r["source_id"]: r
        for r in pq.read_table(
            storage.path(layout.shard_file(layout.SELECTION_DIR, "000"))
        ).to_pylist()
    }
    unread, hollow = selection["unread"], selection["hollow"]
    assert (unread["decision"], unread["stage"]) == ("drop", "ingest")
    assert unread["reason"] == "source_too_few_boxes"
    assert unread["detail"] == (
        "no box reached curation: all 6 boxes read were rejected by ingest "
        "(see rejects, stages parse and image)"
    )
    assert (hollow["stage"], hollow["reason"]) == ("ingest", "source_too_few_boxes")
    assert hollow["detail"] == "no box reached curation: the source holds no box ingest could read"
    assert selection["good"]["decision"] == "keep"


# --- step I per box and per source -----------------------------------------------------------
def _per_box(counts: dict[tuple[str, str], int]) -> tuple[np.ndarray, pa.Array]:
    """(source_id, raw_label) -> boxes, as per-box columns."""
    sources = [s for (s, _), k in counts.items() for _ in range(k)]
    labels = [lab for (_, lab), k in counts.items() for _ in range(k)]
    return np.array(sources, dtype=object), pa.array(labels, pa.string())


def test_label_fates_follow_the_map_and_distrust_unknown_labels():
    canonical, reason, bad = curate.label_fates(
        pa.array(["Dog", "NG", "mystery", "cars", None]), LABEL_MAP
    )
    assert list(canonical[[0, 3]]) == ["dog", "car"]
    assert list(reason) == [None, "label_vague", "label_unmapped", None, "label_unmapped"]
    assert list(bad) == [False, True, True, False, True]


SOURCE_COUNTS = {
    ("a", "Dog"): 10, ("a", "NG"): 2,  # 2/12 = 0.167 bad
    ("b", "cars"): 5, ("b", "NG"): 5,  # exactly 0.5: not above the threshold
    ("c", "Dog"): 1, ("c", "NG"): 9,  # 0.9
    ("d", "never_seen"): 4,  # unmapped: 1.0
}  # fmt: skip


def test_source_label_quality_drops_sources_above_the_fraction():
    sources, labels = _per_box(SOURCE_COUNTS)
    _, _, bad = curate.label_fates(labels, LABEL_MAP)
    per_source, dropped = curate.source_label_quality(sources, bad, LabelConfig())
    assert dropped == ["c", "d"]
    fractions = dict(zip(per_source["source_id"], per_source["bad_label_fraction"]))
    assert fractions == {"a": 2 / 12, "b": 0.5, "c": 0.9, "d": 1.0}
    counts = {r["source_id"]: (r["raw_boxes"], r["label_rejected"]) for r in per_source.to_dicts()}
    assert counts == {"a": (12, 2), "b": (10, 5), "c": (10, 9), "d": (4, 4)}


@pytest.mark.parametrize(
    ("threshold", "dropped"),
    [
        (0.17, ["b", "c", "d"]),  # just above a's 0.1667: a stays
        (0.16, ["a", "b", "c", "d"]),  # just below it: a goes
        (0.49, ["b", "c", "d"]),  # just below b's 0.5: b goes
        (0.5, ["c", "d"]),  # b exactly at the threshold stays
        (0.9, ["d"]),  # so does c at its 0.9
    ],
)
def test_source_label_quality_threshold_is_strict(threshold, dropped):
    sources, labels = _per_box(SOURCE_COUNTS)
    _, _, bad = curate.label_fates(labels, LABEL_MAP)
    config = LabelConfig(source_bad_label_fraction=threshold)
    assert curate.source_label_quality(sources, bad, config)[1] == dropped
