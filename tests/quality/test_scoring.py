"""Scoring the quality reasons against planted defects: hand-counted cases, in DuckDB."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from vprim.assets.contracts import layout
from vprim.assets.contracts import schemas as S
from vprim.assets.quality import scoring
from vprim.assets.sql import register_views
from vprim.assets.storage import Storage


def test_score_counts_matches_by_instance_and_source():
    con = duckdb.connect()
    planted = pa.table(
        {
            "instance_id": pa.array([1, 2, 3, None], pa.uint64()),
            "source_id": ["s", "s", "s", "t"],
            "defect": ["tiny_box", "tiny_box", "label_vague", "source_missing_annotations"],
        }
    )
    flagged = pa.table(
        {
            "instance_id": pa.array([1, 3, 4, None, None], pa.uint64()),
            "source_id": ["s", "s", "s", "t", "u"],
            "reason": ["tiny_box", "tiny_box", None, "source_missing_annotations",
                       "source_missing_annotations"],
        }
    )  # fmt: skip
    con.register("planted_t", planted)
    con.register("flagged_t", flagged)
    rows = {r["reason"]: r for r in scoring.score_in_duckdb(con, "flagged_t", "planted_t")}
    # tiny_box: flagged 1 (planted) and 3 (planted as label_vague); planted 1 and 2
    assert rows["tiny_box"] == {
        "reason": "tiny_box", "level": "box", "planted": 2, "flagged": 2, "matched": 1,
        "found": 1, "precision": 0.5, "recall": 0.5,
    }  # fmt: skip
    src = rows["source_missing_annotations"]
    assert (src["precision"], src["recall"], src["level"]) == (0.5, 1.0, "source")
    assert "label_vague" not in rows  # not a code of the default levels


def _ledger_root(tmp_path) -> str:
    """A storage root with a hand-made ledger, source selection and planted table."""
    store = Storage(str(tmp_path))

    def rejects(stage, rows):
        table = pa.table(
            {
                "instance_id": pa.array([r[0] for r in rows], pa.uint64()),
                "source_id": [r[1] for r in rows],
                "uri": ["u"] * len(rows),
                "stage": [stage] * len(rows),
                "reason": [r[2] for r in rows],
                "detail": [""] * len(rows),
            },
            schema=S.REJECTS_SCHEMA,
        )
        store.write_parquet(table, layout.shard_file(layout.rejects_dir(stage), "000"))

    rejects("label", [(3, "s1", "label_vague"), (4, "s1", "label_vague")])
    rejects("geometry", [(1, "s1", "tiny_box"), (6, "s1", "tiny_box")])
    rejects("source", [(5, "s2", "source_label_quality")])  # a box of a dropped source
    selection = pa.table(
        {
            "source_id": ["s1", "s2", "s3"],
            "decision": ["keep", "drop", "keep"],
            "reason": [None, "source_label_quality", None],
        }
    )
    store.write_parquet(selection, layout.shard_file(layout.SELECTION_DIR, "000"))
    planted = pa.table(
        {
            "source_id": ["s1", "s1", "s1", "s1", "s2", "s2", "s3", "s1"],
            "image_id": [None] * 8,
            "box_index": pa.array([None] * 8, pa.int32()),
            "instance_id": pa.array([1, 2, 3, 4, 5, None, None, 7], pa.uint64()),
            "defect": ["tiny_box", "tiny_box", "label_vague", "tiny_box", "tiny_box",
                       "source_label_quality", "source_missing_annotations", "balance_cap"],
            "near": [None] * 8,
        },
        schema=S.PLANTED_SCHEMA,
    )  # fmt: skip
    pq.write_table(planted, tmp_path / "planted.parquet")
    return str(tmp_path)


def test_quality_vs_planted_scores_what_each_step_could_see(tmp_path):
    root = _ledger_root(tmp_path)
    con = duckdb.connect()
    register_views(con, root)
    rows = scoring.quality_vs_planted(con, str(tmp_path / "planted.parquet"))
    assert [(r["level"], r["reason"]) for r in rows] == [
        ("box", "tiny_box"),
        ("label", "label_vague"),
        ("source", "source_label_quality"),
        ("source", "source_missing_annotations"),
    ]
    by = {r["reason"]: r for r in rows}
    # tiny_box planted on 1, 2, 4, 5: 4's label was rejected and 5's source dropped at step I,
    # so step II could see 1 and 2 only; flagged 1 and 6
    assert (by["tiny_box"]["planted"], by["tiny_box"]["flagged"]) == (2, 2)
    assert (by["tiny_box"]["precision"], by["tiny_box"]["recall"]) == (0.5, 0.5)
    # labels are scored on every planted label defect: 3 found; 4 was a geometric defect
    assert (by["label_vague"]["matched"], by["label_vague"]["flagged"]) == (1, 2)
    assert (by["label_vague"]["precision"], by["label_vague"]["recall"]) == (0.5, 1.0)
    # sources from source_selection only (the ledger's box row of s2 is not a source flag)
    assert by["source_label_quality"]["flagged"] == 1
    assert (by["source_label_quality"]["precision"], by["source_label_quality"]["recall"]) == (
        1.0,
        1.0,
    )
    missing = by["source_missing_annotations"]
    assert (missing["planted"], missing["flagged"], missing["precision"], missing["recall"]) == (
        1,
        0,
        None,
        0.0,
    )
