"""How right the parse stage is, measured against what the synthetic corpus planted.

Box-level defects match a ledger row by ``instance_id`` and reason; file- and source-level
defects (no instance id) match by ``source_id`` and reason. Precision counts ledger rows of a
reason that match a planted defect of that reason.
"""

from __future__ import annotations

import polars as pl

from vprim.assets.contracts import reasons as R


def parse_scores(planted: pl.DataFrame, rejects: pl.DataFrame) -> list[dict]:
    """Per ingest reason (parse and image): planted, flagged, matched, precision and recall.

    Args:
        planted: rows of the ``planted`` table (any defects; only ingest codes are scored).
        rejects: rows of the parse and image ledgers (``rejects`` contract).
    """
    planted = planted.filter(pl.col("defect").is_in(R.INGEST_REASONS))
    rejects = rejects.filter(pl.col("stage").is_in(R.INGEST_STAGES))
    rows = []
    for reason in R.INGEST_REASONS:
        p = planted.filter(pl.col("defect") == reason)
        r = rejects.filter(pl.col("reason") == reason)
        if p.is_empty() and r.is_empty():
            continue
        p_box, r_box = (
            p.filter(pl.col("instance_id").is_not_null()),
            r.filter(pl.col("instance_id").is_not_null()),
        )
        p_file, r_file = (
            p.filter(pl.col("instance_id").is_null()),
            r.filter(pl.col("instance_id").is_null()),
        )
        box_hits = r_box.join(p_box.select("instance_id").unique(), on="instance_id", how="semi")
        planted_box_found = p_box.join(r_box.select("instance_id"), on="instance_id", how="semi")
        file_hits = r_file.join(p_file.select("source_id").unique(), on="source_id", how="semi")
        planted_file_found = p_file.join(r_file.select("source_id"), on="source_id", how="semi")
        matched_rows = box_hits.height + file_hits.height
        found = planted_box_found.height + planted_file_found.height
        rows.append(
            {
                "reason": reason,
                "planted": p.height,
                "flagged": r.height,
                "precision": round(matched_rows / r.height, 4) if r.height else None,
                "recall": round(found / p.height, 4) if p.height else None,
            }
        )
    return rows
