"""What ``curation_funnel`` reports: the funnel, and each quality reason scored against ``planted``.

Plain Python over a DuckDB connection that has the project's views (``rejects``,
``source_selection``, ``curation_funnel``, ``rejects_by_reason``: ``sql/views``). The joins run
in DuckDB, under its memory limit: at full scale ``planted`` and the ledger each hold about 11M
scored rows, which Polars joined at a multi-GB peak.
"""

from __future__ import annotations

import duckdb

from vprim.assets.contracts import reasons as R
from vprim.assets.contracts import schemas as S
from vprim.assets.contracts.reasons import Reason
from vprim.assets.quality.geometry import SOURCE_PRECEDENCE

#: what :func:`score_in_duckdb` scores by default: (level, codes, key that matches a flag to a
#: defect)
SCORED_LEVELS = (("box", R.BOX_REASONS, "instance_id"), ("source", SOURCE_PRECEDENCE, "source_id"))

#: the step I codes :func:`quality_vs_planted` scores besides :data:`SCORED_LEVELS`
LABEL_LEVELS = (
    ("label", R.LABEL_REASONS, "instance_id"),
    ("source", (Reason.SOURCE_LABEL_QUALITY,), "source_id"),
)


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict]:
    """The result of a query as one dict per row."""
    cursor = con.execute(sql)
    cols = [d[0] for d in cursor.description]
    return [dict(zip(cols, r)) for r in cursor.fetchall()]


def funnel(con: duckdb.DuckDBPyConnection) -> dict[str, list[dict]]:
    """``funnel`` (sources and boxes at raw, after step I, after step II) and
    ``rejects_by_reason``, from the views of the same names."""
    return {
        "funnel": rows(con, "SELECT * FROM curation_funnel"),
        "rejects_by_reason": rows(con, "SELECT * FROM rejects_by_reason"),
    }


def quality_vs_planted(con: duckdb.DuckDBPyConnection, planted_path: str) -> list[dict]:
    """Precision/recall of each label, box and source reason against the ``planted`` table.

    A box reason is scored only on the planted defects that step II could see: not behind a
    rejected label or a source that step I dropped (a geometric defect there is never judged,
    by design). Box rows of dropped sources are not scored: sources are, from
    ``source_selection``.

    Near-threshold cases (``planted.near`` set) count like the others: a positive (its code,
    just outside the threshold) that is kept lowers the code's recall, and a negative
    (``near:<code>``, just inside) that is flagged with a code is a flag that matches nothing,
    which lowers that code's precision. Each row also counts them apart
    (:func:`near_in_duckdb`).

    Args:
        con: a connection with the ``rejects`` and ``source_selection`` views.
        planted_path: the synthetic corpus's ``planted`` Parquet file.

    Returns:
        :func:`score_in_duckdb`'s rows of every level, sorted by (level, reason), each with
        :func:`near_in_duckdb`'s counts of its code (0 where none was planted).
    """
    codes = {c for _, level_codes, _ in (*SCORED_LEVELS, *LABEL_LEVELS) for c in level_codes}
    codes |= {S.PLANTED_NEAR_PREFIX + c for c in codes}
    con.execute(
        "CREATE OR REPLACE TEMP TABLE scored_planted AS "
        "SELECT instance_id::UBIGINT AS instance_id, source_id, defect, near "
        "FROM read_parquet($path) WHERE list_contains($codes, defect)",
        {"path": planted_path, "codes": sorted(codes)},
    )
    # what this stage flagged: box rows of the label and geometry stages by instance_id, and
    # the dropped sources by source_id
    con.execute(
        "CREATE OR REPLACE TEMP TABLE flagged AS "
        "SELECT instance_id, NULL::VARCHAR AS source_id, reason FROM rejects "
        "WHERE stage IN ('label', 'geometry') AND instance_id IS NOT NULL "
        "UNION ALL SELECT NULL::UBIGINT, source_id, reason FROM source_selection "
        "WHERE decision = 'drop'"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE reached_step_two AS SELECT * FROM scored_planted p "
        "WHERE p.source_id NOT IN (SELECT source_id FROM flagged "
        "    WHERE reason = $source_label AND instance_id IS NULL AND source_id IS NOT NULL) "
        "AND (p.instance_id IS NULL OR p.instance_id NOT IN (SELECT instance_id FROM flagged "
        "    WHERE list_contains($label_codes, reason) AND instance_id IS NOT NULL))",
        {"source_label": Reason.SOURCE_LABEL_QUALITY, "label_codes": list(R.LABEL_REASONS)},
    )
    scores = score_in_duckdb(con, "flagged", "reached_step_two")
    scores += score_in_duckdb(con, "flagged", "scored_planted", LABEL_LEVELS)
    near = near_in_duckdb(con, "flagged", "reached_step_two")
    near.update(near_in_duckdb(con, "flagged", "scored_planted", LABEL_LEVELS))
    for row in scores:
        row.update(near.get((row["level"], row["reason"]), dict.fromkeys(NEAR_COUNTS, 0)))
    return sorted(scores, key=lambda r: (r["level"], r["reason"]))


#: what :func:`near_in_duckdb` counts per code
NEAR_COUNTS = ("near_positives", "near_found", "near_negatives", "near_flagged", "near_rejected")


def near_in_duckdb(
    con: duckdb.DuckDBPyConnection, reasons: str, planted: str, levels=SCORED_LEVELS
) -> dict[tuple[str, str], dict[str, int]]:
    """The near-threshold cases of each code, in DuckDB.

    Args:
        con, reasons, levels: as for :func:`score_in_duckdb`.
        planted: a relation with ``instance_id``, ``source_id``, ``defect`` and ``near``.

    Returns:
        ``{(level, code): counts}`` for each code with a near case planted: ``near_positives``
        (planted as the code, ``near`` set), ``near_found`` (of those, flagged with the code),
        ``near_negatives`` (planted ``near:<code>``), ``near_flagged`` (of those, flagged with
        the code: false positives) and ``near_rejected`` (of those, flagged with any code of
        the level; each is a false positive of the code it got).
    """
    prefix = S.PLANTED_NEAR_PREFIX
    out = {}
    for level, codes, key in levels:
        codes_sql, flags = _flags(level, codes, key, reasons)
        counts = con.sql(
            f"""
            WITH {flags},
                 p AS (SELECT {key} AS k, starts_with(defect, '{prefix}') AS negative,
                              replace(defect, '{prefix}', '') AS code FROM {planted}
                       WHERE near IS NOT NULL AND {key} IS NOT NULL),
                 q AS (SELECT *, (k, code) IN (SELECT (k, code) FROM r) AS hit,
                              k IN (SELECT k FROM r) AS any_hit
                       FROM p WHERE code IN ({codes_sql}))
            SELECT code, count(*) FILTER (WHERE NOT negative),
                   count(*) FILTER (WHERE NOT negative AND hit),
                   count(*) FILTER (WHERE negative), count(*) FILTER (WHERE negative AND hit),
                   count(*) FILTER (WHERE negative AND any_hit)
            FROM q GROUP BY code
            """
        ).fetchall()
        for code, *values in counts:
            out[(level, code)] = dict(zip(NEAR_COUNTS, (int(v) for v in values)))
    return out


def _flags(level: str, codes, key: str, reasons: str) -> tuple[str, str]:
    """The codes of a level as an SQL list, and the CTE ``r (k, code)`` of what ``reasons``
    flagged with them (at the source level, source-level flags only)."""
    codes_sql = ", ".join(f"'{c}'" for c in codes)
    only_sources = "AND instance_id IS NULL" if level == "source" else ""
    cte = (
        f"r AS (SELECT {key} AS k, reason AS code FROM {reasons} "
        f"WHERE reason IN ({codes_sql}) AND {key} IS NOT NULL {only_sources})"
    )
    return codes_sql, cte


def score_in_duckdb(
    con: duckdb.DuckDBPyConnection, reasons: str, planted: str, levels=SCORED_LEVELS
) -> list[dict]:
    """Precision and recall of reason codes against planted defects, in DuckDB.

    Args:
        con: the connection that holds both relations.
        reasons: a relation (table, view or parenthesised query) with ``instance_id``,
            ``source_id`` and ``reason``: what was flagged. A source-level flag has a null
            ``instance_id``; rows with a null reason count for nothing.
        planted: a relation with ``instance_id``, ``source_id`` and ``defect``.
        levels: ``(level, codes, key)`` triples to score; ``key`` matches a flag to a defect.

    Returns:
        one dict per code of ``levels`` that was planted or flagged: ``reason``, ``level``,
        ``planted``, ``flagged``, ``matched`` (flags that match a planted defect of the same
        code by ``key``), ``found`` (planted defects that were flagged with their code),
        ``precision`` = matched / flagged and ``recall`` = found / planted (None when the
        denominator is 0).
    """
    out = []
    for level, codes, key in levels:
        codes_sql, flags = _flags(level, codes, key, reasons)
        counts = con.sql(
            f"""
            WITH {flags},
                 p AS (SELECT {key} AS k, defect AS code FROM {planted}
                       WHERE defect IN ({codes_sql}) AND {key} IS NOT NULL),
                 flag AS (SELECT code, count(*) AS flagged,
                                 count(*) FILTER (WHERE (k, code) IN (SELECT (k, code) FROM p))
                                     AS matched
                          FROM r GROUP BY code),
                 plant AS (SELECT code, count(*) AS planted,
                                  count(*) FILTER (WHERE (k, code) IN (SELECT (k, code) FROM r))
                                      AS found
                           FROM p GROUP BY code)
            SELECT coalesce(flag.code, plant.code), coalesce(planted, 0), coalesce(flagged, 0),
                   coalesce(matched, 0), coalesce(found, 0)
            FROM flag FULL JOIN plant ON flag.code = plant.code
            """
        ).fetchall()
        by_code = {row[0]: row[1:] for row in counts}
        for code in codes:
            if code not in by_code:
                continue
            n_planted, n_flagged, matched, found = (int(v) for v in by_code[code])
            out.append(
                {
                    "reason": str(code),
                    "level": level,
                    "planted": n_planted,
                    "flagged": n_flagged,
                    "matched": matched,
                    "found": found,
                    "precision": round(matched / n_flagged, 4) if n_flagged else None,
                    "recall": round(found / n_planted, 4) if n_planted else None,
                }
            )
    return out
