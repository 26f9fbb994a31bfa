"""The lake's blocking checks, run on a built version before it may be published.

Each returns a :class:`CheckOutcome`: passed or not, and what a user needs to see to act
(counts and a few offending rows).

They verify the files, never the writer's bookkeeping, and read only the columns they need:
the boxes check reads the box columns once; the cap check groups ``(source_id, label)`` and also
counts the distinct sources and labels; the uniqueness check groups the md5 of the normalised
URI with a hash of the label (a hash collision can only raise a suspect, which is then checked
on the exact keys) and also counts the distinct images; the sample-id check groups ``sample_id``
alone. The manifest check compares every count of the manifest with these recounts and with the
files' own row counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import pyarrow.parquet as pq

from vprim.assets.contracts import layout
from vprim.assets.contracts.schemas import LAKE_SCHEMA
from vprim.assets.lake import publish as P
from vprim.assets.lake.build import lake_files_sql
from vprim.assets.sql import register_macros
from vprim.assets.storage import Storage

EXAMPLES = 5

#: name -> what it guarantees; the Dagster check specs are built from this.
CHECKS = {
    "lake_schema": "every samples file has exactly the lake contract's columns and types",
    "boxes_inside_images": "every box lies inside its image, boxes_999 in 0..999, "
    "n_boxes = len(boxes)",
    "no_rejected_label": "every label is a kept canonical label and none is a rejected raw label",
    "cap_respected": "at most `cap` images per (source, label)",
    "no_duplicate_image_label": "each (image by normalised URI, label) appears once",
    "unique_sample_id": "each sample_id (the md5-based key of source, image and label) "
    "appears once",
    "manifest_counts_match": "the manifest's counts (rows, instances, per split, sources, "
    "labels, images) equal the files'",
    "lake_not_empty": "the version holds at least one sample: a curation that kept nothing is "
    "reported, never published over the current lake",
}


@dataclass
class CheckOutcome:
    name: str
    passed: bool
    description: str
    metadata: dict = field(default_factory=dict)


def _violations(con, sql: str) -> tuple[int, list[dict]]:
    """The rows of ``sql`` (the violations, normally none): their count and a few of them.
    The query runs once; its (small) result is kept in a temporary table."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE _lake_violations AS {sql}")
    try:
        count = con.execute("SELECT count(*) FROM _lake_violations").fetchone()[0]
        cursor = con.execute(f"SELECT * FROM _lake_violations LIMIT {EXAMPLES}")
        cols = [d[0] for d in cursor.description]
        return int(count), [dict(zip(cols, map(_plain, r))) for r in cursor.fetchall()]
    finally:
        con.execute("DROP TABLE IF EXISTS _lake_violations")


def _plain(value: object) -> object:
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


def _outcome(name: str, con, sql: str) -> CheckOutcome:
    count, examples = _violations(con, sql)
    return CheckOutcome(name, count == 0, CHECKS[name], {"violations": count, "examples": examples})


def check_schema(store: Storage, manifest: dict) -> CheckOutcome:
    wrong = []
    for f in manifest["files"]:
        with store.fs.open(
            store.path(layout.lake_version_dir(manifest["version"]), f["path"]), "rb"
        ) as fh:
            schema = pq.read_schema(fh)
        if not schema.remove_metadata().equals(LAKE_SCHEMA.remove_metadata()):
            wrong.append(f["path"])
    return CheckOutcome(
        "lake_schema",
        not wrong,
        CHECKS["lake_schema"],
        {"files": len(manifest["files"]), "wrong_files": wrong[:EXAMPLES]},
    )


def check_boxes_inside(con, lake: str) -> CheckOutcome:
    bad = (
        "b[1] < 0 OR b[2] < 0 OR b[3] > image_width OR b[4] > image_height "
        "OR NOT (b[1] < b[3]) OR NOT (b[2] < b[4])"
    )
    bad999 = "list_min(b) < 0 OR list_max(b) > 999 OR b[1] > b[3] OR b[2] > b[4]"
    sql = (
        "SELECT sample_id, source_id, image_id, label, image_width, image_height, boxes "
        f"FROM {lake} WHERE list_bool_or(list_transform(boxes, lambda b: {bad})) "
        f"OR list_bool_or(list_transform(boxes_999, lambda b: {bad999})) "
        "OR len(boxes) <> n_boxes OR len(boxes_999) <> n_boxes OR n_boxes = 0"
    )
    return _outcome("boxes_inside_images", con, sql)


def check_labels_kept(con, store: Storage, lake: str) -> CheckOutcome:
    if not store.exists(layout.LABEL_MAP_PATH):
        return CheckOutcome(
            "no_rejected_label", False, CHECKS["no_rejected_label"], {"error": "no label_map"}
        )
    label_map = f"read_parquet('{store.url(layout.LABEL_MAP_PATH)}')"
    sql = (
        f"SELECT DISTINCT label FROM {lake} AS l WHERE NOT EXISTS ("
        f"SELECT 1 FROM {label_map} AS m WHERE m.decision = 'keep' "
        "AND m.canonical_label = l.label) "
        f"OR label IN (SELECT raw_label FROM {label_map} "
        "WHERE decision = 'reject' AND raw_label IS NOT NULL)"
    )
    return _outcome("no_rejected_label", con, sql)


def check_cap(con, lake: str, cap: int) -> CheckOutcome:
    """Also counts the distinct sources and labels of the files (metadata ``sources``,
    ``labels``) for :func:`check_manifest`: the same grouping holds them."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _lake_source_labels AS "
        f"SELECT source_id, label, count(*) AS images FROM {lake} GROUP BY source_id, label"
    )
    try:
        sources, labels = con.execute(
            "SELECT count(DISTINCT source_id), count(DISTINCT label) FROM _lake_source_labels"
        ).fetchone()
        outcome = _outcome(
            "cap_respected", con, f"SELECT * FROM _lake_source_labels WHERE images > {int(cap)}"
        )
    finally:
        con.execute("DROP TABLE IF EXISTS _lake_source_labels")
    outcome.metadata.update(sources=int(sources), labels=int(labels))
    return outcome


def check_unique(con, lake: str) -> CheckOutcome:
    """One pass groups the md5 of the normalised URI with ``hash(label)``, and the md5 alone
    (the distinct images, metadata ``images``, counted as the manifest counts them). A group of
    more than one row is a suspect; only then are the suspects grouped again on the exact
    normalised URI and label (a label-hash collision is not a duplicate). DuckDB's ``hash()``
    is fine here: it is internal to the check (a grouping key that never leaves this query,
    with every suspect re-checked on the exact values), not a contract key.

    Integers, not strings, are grouped: a string label key doubled the check's time on the full
    lake. The URI key is 128-bit: DuckDB's 64-bit ``hash`` collides at this scale (101
    collisions among the full lake's 13.5M image URIs), and any collision cost two more passes."""
    grouped = (
        "SELECT image, label, grouping(label) AS per_image, count(*) AS samples FROM ("
        f"SELECT md5_number(normalise_uri(image_uri)) AS image, hash(label) AS label FROM {lake}"
        ") GROUP BY GROUPING SETS ((image, label), (image))"
    )
    images, suspects = con.execute(
        "SELECT count(*) FILTER (WHERE per_image = 1), "
        f"count(*) FILTER (WHERE per_image = 0 AND samples > 1) FROM ({grouped})"
    ).fetchone()
    if not suspects:
        outcome = CheckOutcome(
            "no_duplicate_image_label",
            True,
            CHECKS["no_duplicate_image_label"],
            {"violations": 0, "examples": []},
        )
    else:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _lake_suspects AS SELECT image, label "
            f"FROM ({grouped}) WHERE per_image = 0 AND samples > 1"
        )
        try:
            sql = (
                "SELECT normalise_uri(l.image_uri) AS image, l.label, count(*) AS samples "
                f"FROM {lake} AS l SEMI JOIN _lake_suspects AS s "
                "ON md5_number(normalise_uri(l.image_uri)) = s.image AND hash(l.label) = s.label "
                "GROUP BY ALL HAVING count(*) > 1"
            )
            outcome = _outcome("no_duplicate_image_label", con, sql)
        finally:
            con.execute("DROP TABLE IF EXISTS _lake_suspects")
    outcome.metadata["images"] = int(images)
    outcome.metadata["suspects"] = int(suspects)
    return outcome


def check_sample_ids(con, lake: str) -> CheckOutcome:
    """No two rows share a ``sample_id``. Distinct (source, image, label) keys share one only
    through a 64-bit collision of ``stable_hash64`` (n^2 / 2^65: about 1 in 20,000 builds at the
    full lake's 43M rows); a writer that emits a sample twice fails here too. Examples: the id,
    its rows and up to three of their (source, image, label) keys."""
    key = "concat_ws(' | ', source_id, image_id, label)"
    sql = (
        f"SELECT sample_id, count(*) AS samples, list({key} ORDER BY {key})[:3] AS keys "
        f"FROM {lake} GROUP BY sample_id HAVING count(*) > 1"
    )
    return _outcome("unique_sample_id", con, sql)


def check_manifest(
    con, store: Storage, manifest: dict, lake: str, recount: dict | None = None
) -> CheckOutcome:
    """Rows and instances (in total and per split) from the files; ``recount``: sources,
    labels and images counted by the other checks (each is compared when given)."""
    version = manifest["version"]
    footer_rows = sum(
        f["rows"] for f in P.file_facts(store, version, _rel(version, manifest["files"]))
    )
    sql = (
        "SELECT count(*), coalesce(sum(n_boxes), 0), "
        "count(*) FILTER (WHERE split = 'train'), count(*) FILTER (WHERE split = 'holdout'), "
        "coalesce(sum(n_boxes) FILTER (WHERE split = 'train'), 0), "
        "coalesce(sum(n_boxes) FILTER (WHERE split = 'holdout'), 0) "
        f"FROM {lake}"
    )
    rows, instances, *per_split = (int(v) for v in con.execute(sql).fetchone())
    split_names = ("train_rows", "holdout_rows", "train_instances", "holdout_instances")
    found = {"rows": rows, "instances": instances, **dict(zip(split_names, per_split))}
    found.update(recount or {})
    counts = manifest["counts"]
    claimed = {k: counts.get(k) for k in found}
    ok = claimed == found and footer_rows == rows
    return CheckOutcome(
        "manifest_counts_match",
        ok,
        CHECKS["manifest_counts_match"],
        {"manifest": claimed, "found": {**found, "footer_rows": footer_rows}},
    )


def _rel(version: str, files: list[dict]) -> list[str]:
    return [f"{layout.lake_version_dir(version)}/{f['path']}" for f in files]


def run_checks(store: Storage, con: duckdb.DuckDBPyConnection, version: str) -> list[CheckOutcome]:
    """Every blocking check on ``version`` (built, not necessarily published)."""
    register_macros(con)
    manifest = P.read_manifest(store, version)
    if not manifest["files"]:
        return _empty_version(con, store)
    lake = lake_files_sql(store, version)
    cap = check_cap(con, lake, manifest["config"]["cap"])
    unique = check_unique(con, lake)
    recount = {k: cap.metadata[k] for k in ("sources", "labels")}
    recount["images"] = unique.metadata["images"]
    return [
        check_schema(store, manifest),
        check_boxes_inside(con, lake),
        check_labels_kept(con, store, lake),
        cap,
        unique,
        check_sample_ids(con, lake),
        check_manifest(con, store, manifest, lake, recount),
        CheckOutcome("lake_not_empty", True, CHECKS["lake_not_empty"], {"rows": recount}),
    ]


def _empty_version(con, store: Storage) -> list[CheckOutcome]:
    """A version with no samples: every row check holds (there is no row), and
    ``lake_not_empty`` fails with why nothing is left, from ``source_selection``."""
    why = selection_summary(con, store)
    empty = {"violations": 0, "note": "the version holds no samples"}
    error = {"error": f"no sample to publish: {why}; the current lake is left as it was"}
    return [
        CheckOutcome(n, n != "lake_not_empty", d, error if n == "lake_not_empty" else dict(empty))
        for n, d in CHECKS.items()
    ]


def selection_summary(con, store: Storage) -> str:
    """One line: how many sources curation kept and why the others were dropped."""
    glob = store.url(f"{layout.SELECTION_DIR}/shard=*.parquet").replace("'", "''")
    try:
        rows = con.execute(
            f"SELECT decision, coalesce(reason, ''), count(*) FROM read_parquet('{glob}') "
            "GROUP BY ALL ORDER BY 3 DESC, 2"
        ).fetchall()
    except duckdb.IOException:
        return "no source_selection files (curation has not run)"
    kept = sum(n for decision, _, n in rows if decision == "keep")
    total = sum(n for *_, n in rows)
    dropped = ", ".join(f"{reason} {n}" for decision, reason, n in rows if decision != "keep")
    return f"{kept} of {total} sources kept by curation" + (
        f" (dropped: {dropped})" if dropped else ""
    )
