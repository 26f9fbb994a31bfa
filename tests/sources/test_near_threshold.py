"""Cases planted next to every threshold (``synthetic/near.py``), read back from the written
files, and what the quality stage makes of them on the tiny corpus.

Every expected interval below is written by hand from docs/REASONS.md's rules; the values are
read with the small independent readers of ``mini_readers`` (so after each format's own
rounding), never taken from the generator.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.sources.mini_readers import MINI_READERS, box_id, iou, self_intersects, vocab_keys
from tests.sources.mini_readers import vocab_row as _vocab_row
from vprim.assets.contracts import reasons as R
from vprim.assets.quality import curate, scoring
from vprim.assets.quality import geometry as G
from vprim.assets.quality.labels import LabelConfig
from vprim.assets.sources.synthetic.near import THRESHOLDS

BOX_THRESHOLDS = {
    "oob_tolerance_px": "out_of_bounds",
    "oob_tolerance_frac": "out_of_bounds",
    "truncation_margin_px": "truncated_box",
    "truncation_margin_frac": "truncated_box",
    "tiny_min_side_px": "tiny_box",
    "tiny_min_area_frac": "tiny_box",
    "max_aspect": "extreme_aspect",
    "oversized_area_frac": "oversized_box",
    "duplicate_iou": "duplicate_box",
    "polygon_bbox_min_iou": "invalid_polygon",
}
SOURCE_THRESHOLDS = {
    "missing_annotation_rate": "source_missing_annotations",
    "min_clean_boxes": "source_too_few_boxes",
    "source_bad_label_fraction": "source_label_quality",
}
#: formats whose pixels are written exactly (VOC as integers): there a negative sits *at* the
#: threshold where the arithmetic is exact
EXACT = ("coco", "voc", "odvg", "labelme")


@pytest.fixture(scope="module")
def tiny(tiny_corpus):
    return tiny_corpus


@pytest.fixture(scope="module")
def catalog(tiny) -> list[dict]:
    return pq.read_table(tiny.catalog_path).to_pylist()


@pytest.fixture(scope="module")
def planted(tiny) -> list[dict]:
    return pq.read_table(tiny.planted_path).to_pylist()


@pytest.fixture(scope="module")
def boxes(catalog) -> dict[tuple[str, int], dict]:
    """Every box of the tiny corpus as the small readers see it, by (source, instance id),
    with its format and the boxes of its image."""
    out = {}
    for row in catalog:
        reader = MINI_READERS.get(row["format"])
        if reader is None:
            continue
        r = reader(row["uri"])
        per_image = defaultdict(list)
        for box in r.boxes:
            per_image[box["image_id"]].append(box)
        for box in r.boxes:
            box.update(fmt=row["format"], image=per_image[box["image_id"]], read=r)
            out[(row["source_id"], box_id(row["source_id"], box))] = box
    return out


def vocab_row(label: str):
    return _vocab_row(label, vocab_keys())


# --- the thresholds are the documented ones -------------------------------------------------
def test_cases_sit_next_to_the_quality_stages_defaults():
    g, labels = G.GeometryConfig(), LabelConfig()
    assert set(THRESHOLDS) == set(BOX_THRESHOLDS) | set(SOURCE_THRESHOLDS) | {"tiny_min_side_px"}
    for name, value in THRESHOLDS.items():
        config = labels if name == "source_bad_label_fraction" else g
        assert getattr(config, name) == value, name
    # the documented figures (docs/REASONS.md), written out
    assert (g.oob_tolerance_px, g.oob_tolerance_frac) == (2.0, 0.02)
    assert (g.truncation_margin_px, g.truncation_margin_frac) == (1.0, 0.005)
    assert (g.tiny_min_side_px, g.tiny_min_area_frac, g.max_aspect) == (4.0, 1e-4, 15.0)
    assert (g.oversized_area_frac, g.duplicate_iou, g.polygon_bbox_min_iou) == (0.9, 0.9, 0.5)
    assert (g.missing_annotation_rate, g.min_clean_boxes) == (0.5, 3)
    assert labels.source_bad_label_fraction == 0.5


# --- coverage --------------------------------------------------------------------------------
ALL_BOX_CASES = {(t, side) for t in BOX_THRESHOLDS for side in ("pos", "neg")}
#: the box cases of the six sources that plant everything (sources 0-5, docs: plan.FORCED),
#: by hand: truncation margins need a box without a truncated attribute (not VOC, not Open
#: Images with attributes); an out-of-bounds negative needs truncated = 0 (not YOLO, ODVG);
#: only COCO writes a polygon apart from its box
_TRUNCATION = {(t, s) for t in ("truncation_margin_px", "truncation_margin_frac")
               for s in ("pos", "neg")}  # fmt: skip
_OOB_NEGATIVES = {("oob_tolerance_px", "neg"), ("oob_tolerance_frac", "neg")}
_POLYGON = {("polygon_bbox_min_iou", "pos"), ("polygon_bbox_min_iou", "neg")}
FORCED_CASES = {
    "coco": ALL_BOX_CASES,
    "voc": ALL_BOX_CASES - _TRUNCATION - _POLYGON,
    "yolo": ALL_BOX_CASES - _OOB_NEGATIVES - _POLYGON,
    "openimages": ALL_BOX_CASES - _TRUNCATION - _POLYGON,
    "odvg": ALL_BOX_CASES - _OOB_NEGATIVES - _POLYGON,
    "labelme": ALL_BOX_CASES - _POLYGON,
}


def _side(row: dict) -> str:
    return "neg" if row["defect"].startswith("near:") else "pos"


def test_every_threshold_is_planted_on_both_sides(catalog, planted):
    fmt = {r["source_id"]: r["format"] for r in catalog}
    near = [r for r in planted if r["near"] is not None]
    seen = {(r["near"], _side(r)) for r in near}
    assert seen == {(t, s) for t in THRESHOLDS for s in ("pos", "neg")}
    for r in near:  # a positive carries its code, a negative near:<code>
        code = {**BOX_THRESHOLDS, **SOURCE_THRESHOLDS}[r["near"]]
        assert r["defect"] == (code if _side(r) == "pos" else "near:" + code)
        assert (r["instance_id"] is None) == (r["near"] in SOURCE_THRESHOLDS)
    by_source = defaultdict(Counter)
    for r in near:
        by_source[r["source_id"]][(r["near"], _side(r))] += 1
    for k, f in enumerate(("coco", "voc", "yolo", "openimages", "odvg", "labelme")):
        sid = f"syn-{k:06d}"
        assert fmt[sid] == f
        assert by_source[sid] == Counter(FORCED_CASES[f]), f  # each case once
    # each source rule: one source just outside it, one just inside
    src = Counter((r["near"], _side(r)) for r in near if r["near"] in SOURCE_THRESHOLDS)
    assert src == Counter({(t, s): 1 for t in SOURCE_THRESHOLDS for s in ("pos", "neg")})


# --- box cases: the values as written --------------------------------------------------------
def _overhangs(box) -> list[tuple[float, int]]:
    """How far each side lies past its border (negative: inside), with the image side."""
    x0, y0, x1, y1 = box["xyxy"]
    W, H = box["size"]
    return [(-x0, W), (x1 - W, W), (-y0, H), (y1 - H, H)]


def _check_box_case(row: dict, box: dict) -> None:
    t, pos = row["near"], _side(row) == "pos"
    fmt = box["fmt"]
    W, H = box["size"]
    x0, y0, x1, y1 = box["xyxy"]
    w, h = x1 - x0, y1 - y0
    short, long, frac = min(w, h), max(w, h), w * h / (W * H)
    over = sorted(_overhangs(box), reverse=True)
    if t in ("oob_tolerance_px", "oob_tolerance_frac"):
        (beyond, side), rest = over[0], over[1:]
        if t == "oob_tolerance_px":
            assert max(W, H) < 100  # 2% is under 2 px here: the px floor decides
            tol = 2.0
        else:
            assert side >= 320
            tol = 0.02 * side
        if pos:
            assert tol < beyond <= 1.5 * tol
        else:
            assert 0.5 * tol <= beyond <= tol
            assert box["truncated"] == "0"  # clipped onto the border, but whole
            if t == "oob_tolerance_px" and fmt in EXACT:
                assert beyond == 2.0  # exactly at the tolerance
        assert all(v <= -0.04 * s for v, s in rest)
    elif t in ("truncation_margin_px", "truncation_margin_frac"):
        (neg_dist, side), rest = over[0], over[1:]
        dist = -neg_dist
        if t == "truncation_margin_px":
            assert max(W, H) < 200  # 0.5% is under 1 px here
            margin = 1.0
        else:
            assert side >= 320
            margin = 0.005 * side
        if pos:
            assert 0.5 * margin <= dist <= margin
            if t == "truncation_margin_px" and fmt in EXACT:
                assert dist == 1.0  # exactly at the margin: truncated
        else:
            assert margin < dist <= 1.5 * margin
        assert box["truncated"] is None  # the margin rule applies
        assert all(v <= -0.04 * s for v, s in rest)
    elif t == "tiny_min_side_px":
        if pos:
            assert 3.0 <= short < 4.0
        else:
            assert 4.0 <= short <= 5.0 and frac > 1e-4 and long <= 15 * short
            if fmt in EXACT:
                assert short == 4.0
    elif t == "tiny_min_area_frac":
        assert short >= 5 and long <= 15 * short  # the area alone decides
        if pos:
            assert 0.75e-4 <= frac < 1e-4
        else:
            assert 1e-4 < frac <= 1.25e-4
    elif t == "max_aspect":
        assert short >= 5 and frac > 1e-4
        if pos:
            assert 15.0 < long / short <= 16.0
        else:
            assert 14.0 <= long / short <= 15.0
            if fmt in EXACT:
                assert long / short == 15.0
    elif t == "oversized_area_frac":
        assert all(v <= -0.01 * s for v, s in over)  # clear of the truncation margin
        if pos:
            assert 0.9 < frac <= 0.95
        else:
            assert 0.85 <= frac <= 0.9
    elif t == "duplicate_iou":
        (earlier,) = [o for o in box["image"] if o["box_index"] == box["box_index"] - 1]
        assert earlier["label"] == box["label"] and len(box["image"]) == 2
        overlap = iou(earlier["xyxy"], box["xyxy"])
        if pos:
            assert 0.9 < overlap <= 0.95
        else:
            assert 0.85 <= overlap <= 0.9
            if fmt in EXACT:
                assert overlap == 0.9
    elif t == "polygon_bbox_min_iou":
        ring = box["polygon"]
        assert ring and len(ring) == 8 and not self_intersects(ring)
        xs, ys = ring[0::2], ring[1::2]
        overlap = iou((min(xs), min(ys), max(xs), max(ys)), box["xyxy"])
        if pos:
            assert 0.45 <= overlap < 0.5
        else:
            assert overlap == 0.5  # COCO writes it exactly
    else:  # pragma: no cover
        raise AssertionError(t)
    if not pos:  # a negative is clean in every other respect
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
        cw, ch = cx1 - cx0, cy1 - cy0
        assert min(cw, ch) >= 4 and cw * ch >= 1e-4 * W * H and max(cw, ch) <= 15 * min(cw, ch)
        assert cw * ch <= 0.9 * W * H and not box["crowd"]
        assert vocab_row(box["label"]) is not None
        if t == "oob_tolerance_px" or t == "oob_tolerance_frac":
            return
        margins = (max(1.0, 0.005 * W), max(1.0, 0.005 * H))
        assert min(cx0, W - cx1) > margins[0] and min(cy0, H - cy1) > margins[1]


def test_box_cases_hold_after_each_formats_rounding(planted, boxes):
    checked = Counter()
    for row in planted:
        if row["near"] is None or row["instance_id"] is None:
            continue
        box = boxes[(row["source_id"], row["instance_id"])]
        assert (box["image_id"], box["box_index"]) == (row["image_id"], row["box_index"])
        try:
            _check_box_case(row, box)
        except AssertionError as exc:
            raise AssertionError(f"{row} read as {box['xyxy']} in {box['size']}") from exc
        checked[(row["near"], _side(row), box["fmt"] in EXACT)] += 1
    # both kinds of format (exact pixels, 6-decimal fractions) carry every box threshold
    assert {(t, s) for t, s, _ in checked} == ALL_BOX_CASES
    assert {(t, s) for t, s, exact in checked if not exact} == ALL_BOX_CASES - _POLYGON


# --- source cases ----------------------------------------------------------------------------
def test_source_cases_hold_in_the_files(catalog, planted):
    uri = {r["source_id"]: r["uri"] for r in catalog}
    reader = {r["source_id"]: MINI_READERS.get(r["format"]) for r in catalog}
    box_rows = defaultdict(Counter)
    for row in planted:
        if row["instance_id"] is not None:
            box_rows[row["source_id"]][row["defect"]] += 1
    for row in planted:
        if row["near"] not in SOURCE_THRESHOLDS:
            continue
        sid, pos = row["source_id"], _side(row) == "pos"
        r = reader[sid](uri[sid])
        good = [b for b in r.boxes if vocab_row(b["label"]) is not None]
        with_boxes = {b["image_id"] for b in r.boxes}
        if row["near"] == "missing_annotation_rate":
            assert len(r.images) == 20 and len(good) == len(r.boxes) and not box_rows[sid]
            empty = 1 - len(with_boxes) / len(r.images)
            assert (0.5 < empty <= 0.6) if pos else empty == 0.5
        elif row["near"] == "min_clean_boxes":
            assert len(good) == len(r.boxes) and not box_rows[sid]
            assert len(r.boxes) == (2 if pos else 3)
        else:  # source_bad_label_fraction
            bad = box_rows[sid]["label_gibberish"]
            assert set(box_rows[sid]) == {"label_gibberish"}
            assert bad == len(r.boxes) - len(good)
            fraction = bad / len(r.boxes)
            assert (0.5 < fraction <= 0.55) if pos else fraction == 0.5
            # every image keeps a good box, so step II never sees an image emptied by step I
            assert {b["image_id"] for b in good} == set(r.images)


# --- what the quality stage makes of them ----------------------------------------------------
@pytest.fixture(scope="module")
def measured(tiny, catalog, tmp_path_factory) -> list[dict]:
    """``scoring.quality_vs_planted`` over the tiny corpus: the real readers, step I's source
    rule on the planted label truth (the label map itself is measured in
    tests/quality/test_labels.py), step II's box checks and source decisions as
    ``curate.curate_shard`` runs them."""
    from vprim.assets.contracts.schemas import SOURCE_STATS_SCHEMA
    from vprim.assets.sources.ingest import read_source

    tables, stats = [], []
    for row in catalog:
        out = read_source(row["source_id"], row["uri"], row["format"])
        tables.extend(out.boxes)
        stats.append(out.stats)
    raw = pa.concat_tables(tables)
    planted = pq.read_table(tiny.planted_path).to_pylist()
    label_of = {r["instance_id"]: r["defect"] for r in planted if r["defect"] in R.LABEL_REASONS}
    iids = raw["instance_id"].to_pylist()
    label_bad = np.array([i in label_of for i in iids])
    sources = raw["source_id"].to_numpy(zero_copy_only=False)
    _, dropped = curate.source_label_quality(sources, label_bad, LabelConfig())
    survivors = ~label_bad & ~np.isin(sources, dropped)
    kept = raw.filter(pa.array(survivors))
    geo = G.check_boxes(kept)
    stats_t = pa.Table.from_pylist(stats, schema=SOURCE_STATS_SCHEMA)
    stats_t = stats_t.filter(pa.array([s not in dropped for s in stats_t["source_id"].to_pylist()]))
    boxes = pa.table(
        {"source_id": kept["source_id"], "image_id": kept["image_id"], "flags": geo["flags"],
         "reason": geo["reason"]}
    )  # fmt: skip
    decisions = G.source_decisions(boxes, stats_t).to_pylist()
    label_rows = [("label", i, s, label_of[i]) for i, s in zip(iids, sources) if i in label_of]
    geo_rows = [
        ("geometry", i, s, reason)
        for i, s, reason in zip(
            kept["instance_id"].to_pylist(), kept["source_id"].to_pylist(),
            geo["reason"].to_pylist(),
        )
        if reason is not None
    ]  # fmt: skip
    names = ("stage", "instance_id", "source_id", "reason")
    rejects = pa.Table.from_pylist(
        [dict(zip(names, r)) for r in label_rows + geo_rows],
        schema=pa.schema([("stage", pa.string()), ("instance_id", pa.uint64()),
                          ("source_id", pa.string()), ("reason", pa.string())]),
    )  # fmt: skip
    selection = [
        {"source_id": s, "decision": "drop", "reason": "source_label_quality"} for s in dropped
    ] + [{k: d[k] for k in ("source_id", "decision", "reason")} for d in decisions]
    con = duckdb.connect()
    con.register("rejects", rejects)
    con.register("source_selection", pa.Table.from_pylist(selection))
    return scoring.quality_vs_planted(con, tiny.planted_path)


def test_measured_precision_and_recall_on_tiny(planted, measured):
    """Expected by hand: the quality stage follows docs/REASONS.md on every planted case, far
    or near, so each reason flags exactly its planted positives that reach its step, keeps
    every near negative, and scores precision = recall = 1. The counts are the planted
    table's, counted here in plain Python."""
    by = {(r["level"], r["reason"]): r for r in measured}
    label_dropped = {r["source_id"] for r in planted if r["defect"] == "source_label_quality"}
    expect = defaultdict(Counter)
    for r in planted:
        code = r["defect"].removeprefix("near:")
        if code in R.BOX_REASONS and r["source_id"] not in label_dropped:
            level = "box"
        elif code in G.SOURCE_PRECEDENCE or code == "source_label_quality":
            level = "source"
        else:
            continue
        kind = ("near_negatives" if r["defect"].startswith("near:")
                else "near_positives" if r["near"] else "far")  # fmt: skip
        expect[(level, code)][kind] += 1
    assert set(by) - {("label", c) for c in R.LABEL_REASONS} == set(expect)
    for key, n in expect.items():
        positives = n["far"] + n["near_positives"]
        got = by[key]
        want = {
            "planted": positives, "flagged": positives, "matched": positives,
            "found": positives, "precision": 1.0, "recall": 1.0,
            "near_positives": n["near_positives"], "near_found": n["near_positives"],
            "near_negatives": n["near_negatives"], "near_flagged": 0, "near_rejected": 0,
        }  # fmt: skip
        assert {k: got[k] for k in want} == want, key
    # by hand from plan.FORCED: the six plant-everything sources alone give at least these
    assert by[("box", "out_of_bounds")]["near_positives"] >= 12  # 2 thresholds x 6 formats
    assert by[("box", "out_of_bounds")]["near_negatives"] >= 8  # x voc, oi, coco, labelme
    assert by[("box", "truncated_box")]["near_negatives"] >= 8  # x coco, yolo, odvg, labelme
    assert by[("box", "tiny_box")]["near_negatives"] >= 12
    for code in ("extreme_aspect", "oversized_box", "duplicate_box"):
        assert by[("box", code)]["near_negatives"] >= 6
    assert by[("box", "invalid_polygon")]["near_negatives"] >= 1
    for code in ("source_missing_annotations", "source_too_few_boxes", "source_label_quality"):
        assert by[("source", code)]["near_positives"] == 1
        assert by[("source", code)]["near_negatives"] == 1


def test_near_counts_by_hand():
    """``scoring.near_in_duckdb`` and ``score_in_duckdb`` on a hand-made ledger: a flagged
    near negative is a false positive of the code it got, a kept near positive a miss."""
    planted = pa.table(
        {
            "instance_id": pa.array([1, 2, 3, 4, 5, 6, None], pa.uint64()),
            "source_id": ["s1"] * 6 + ["s2"],
            "defect": ["tiny_box", "tiny_box", "near:tiny_box", "near:tiny_box", "near:tiny_box",
                       "tiny_box", "near:source_missing_annotations"],
            "near": ["tiny_min_side_px", "tiny_min_area_frac", "tiny_min_side_px",
                     "tiny_min_side_px", "tiny_min_area_frac", None, "missing_annotation_rate"],
        }
    )  # fmt: skip
    flagged = pa.table(
        {
            "instance_id": pa.array([1, 3, 4, 6, None], pa.uint64()),
            "source_id": [None, None, None, None, "s2"],
            "reason": ["tiny_box", "tiny_box", "truncated_box", "tiny_box",
                       "source_missing_annotations"],
        }
    )  # fmt: skip
    con = duckdb.connect()
    con.register("planted_t", planted)
    con.register("flagged_t", flagged)
    near = scoring.near_in_duckdb(con, "flagged_t", "planted_t")
    # 1 found, 2 kept; 3 flagged tiny (its own code), 4 flagged truncated, 5 kept
    assert near[("box", "tiny_box")] == {"near_positives": 2, "near_found": 1,
        "near_negatives": 3, "near_flagged": 1, "near_rejected": 2}  # fmt: skip
    assert near[("source", "source_missing_annotations")] == {"near_positives": 0,
        "near_found": 0, "near_negatives": 1, "near_flagged": 1, "near_rejected": 1}  # fmt: skip
    assert ("box", "truncated_box") not in near  # no near case of it planted
    rows = {r["reason"]: r for r in scoring.score_in_duckdb(con, "flagged_t", "planted_t")}
    # tiny_box flagged on 1, 3, 6 and planted on 1, 2, 6: the negative 3 costs precision
    tiny = rows["tiny_box"]
    assert (tiny["planted"], tiny["flagged"], tiny["matched"], tiny["found"]) == (3, 3, 2, 2)
    assert rows["truncated_box"]["precision"] == 0.0  # 4 was planted as a negative only
    assert rows["source_missing_annotations"]["precision"] == 0.0
