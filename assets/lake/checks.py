"""The lake's blocking checks, run on a built version before it may be published.

Each returns a :class:`CheckOutcome`: passed or not, and what a user needs to see to act
(counts and a few offending rows).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import pyarrow.parquet as pq

from assets.lake import publish as P
from assets.lake.balance import LAKE_SCHEMA
from assets.lake.build import LABEL_MAP_PATH, lake_files_sql
from assets.sql import register_macros
from assets.storage import Storage

EXAMPLES = 5

#: name -> what it guarantees; the Dagster check specs are built from this.
CHECKS = {
    "lake_schema": "every samples file has exactly the lake contract's columns and types",
    "boxes_inside_images": "every box lies inside its image, boxes_999 in 0..999, "
    "n_boxes = len(boxes)",
    "no_rejected_label": "every label is a kept canonical label and none is a rejected raw label",
    "cap_respected": "at most `cap` images per (source, label)",
    "no_duplicate_image_label": "each (image by normalised URI, label) appears once",
    "manifest_counts_match": "the manifest's row and instance counts equal the files'",
}


@dataclass
class CheckOutcome:
    name: str
    passed: bool
    description: str
    metadata: dict = field(default_factory=dict)


def _violations(con, sql: str) -> tuple[int, list[dict]]:
    count = con.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]
    cursor = con.execute(f"SELECT * FROM ({sql}) LIMIT {EXAMPLES}")
    cols = [d[0] for d in cursor.description]
    return int(count), [dict(zip(cols, map(_plain, r))) for r in cursor.fetchall()]


def _plain(value: object) -> object:
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


def _outcome(name: str, con, sql: str) -> CheckOutcome:
    count, examples = _violations(con, sql)
    return CheckOutcome(name, count == 0, CHECKS[name], {"violations": count, "examples": examples})


def check_schema(store: Storage, manifest: dict) -> CheckOutcome:
    wrong = []
    for f in manifest["files"]:
        with store.fs.open(store.path(P.version_dir(manifest["version"]), f["path"]), "rb") as fh:
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
    if not store.exists(LABEL_MAP_PATH):
        return CheckOutcome(
            "no_rejected_label", False, CHECKS["no_rejected_label"], {"error": "no label_map"}
        )
    label_map = f"read_parquet('{store.url(LABEL_MAP_PATH)}')"
    sql = (
        f"SELECT DISTINCT label FROM {lake} AS l WHERE NOT EXISTS ("
        f"SELECT 1 FROM {label_map} AS m WHERE m.decision = 'keep' "
        "AND m.canonical_label = l.label) "
        f"OR label IN (SELECT raw_label FROM {label_map} "
        "WHERE decision = 'reject' AND raw_label IS NOT NULL)"
    )
    return _outcome("no_rejected_label", con, sql)


def check_cap(con, lake: str, cap: int) -> CheckOutcome:
    sql = (
        f"SELECT source_id, label, count(*) AS images FROM {lake} "
        f"GROUP BY source_id, label HAVING count(*) > {int(cap)}"
    )
    return _outcome("cap_respected", con, sql)


def check_unique(con, lake: str) -> CheckOutcome:
    sql = (
        f"SELECT normalise_uri(image_uri) AS image, label, count(*) AS samples FROM {lake} "
        "GROUP BY ALL HAVING count(*) > 1"
    )
    return _outcome("no_duplicate_image_label", con, sql)


def check_manifest(con, store: Storage, manifest: dict, lake: str) -> CheckOutcome:
    version = manifest["version"]
    footer_rows = sum(
        f["rows"] for f in P.file_facts(store, version, _rel(version, manifest["files"]))
    )
    sql = f"SELECT count(*), coalesce(sum(n_boxes), 0) FROM {lake}"
    rows, instances = con.execute(sql).fetchone()
    counts = manifest["counts"]
    found = {"rows": int(rows), "footer_rows": footer_rows, "instances": int(instances)}
    ok = counts["rows"] == rows == footer_rows and counts["instances"] == instances
    return CheckOutcome(
        "manifest_counts_match",
        ok,
        CHECKS["manifest_counts_match"],
        {"manifest": {"rows": counts["rows"], "instances": counts["instances"]}, "found": found},
    )


def _rel(version: str, files: list[dict]) -> list[str]:
    return [f"{P.version_dir(version)}/{f['path']}" for f in files]


def run_checks(store: Storage, con: duckdb.DuckDBPyConnection, version: str) -> list[CheckOutcome]:
    """Every blocking check on ``version`` (built, not necessarily published)."""
    register_macros(con)
    manifest = P.read_manifest(store, version)
    if not manifest["files"]:
        return [
            CheckOutcome(name, False, desc, {"error": "the version holds no samples files"})
            for name, desc in CHECKS.items()
        ]
    lake = lake_files_sql(store, version)
    return [
        check_schema(store, manifest),
        check_boxes_inside(con, lake),
        check_labels_kept(con, store, lake),
        check_cap(con, lake, manifest["config"]["cap"]),
        check_unique(con, lake),
        check_manifest(con, store, manifest, lake),
    ]
