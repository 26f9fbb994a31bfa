"""Images for the counting camp, read from the published lake with DuckDB.

Lake rows are one (image, label) each; an image is every row with the same normalised URI
(the lake's image identity, which also decides its train/holdout split). The attributes each
instance had in ``clean_instances`` are joined back by (source, image, label, box).
"""

from __future__ import annotations

import duckdb
import numpy as np

from vprim.assets.camps.counting import CountScene
from vprim.assets.contracts import layout
from vprim.assets.lake import publish as P
from vprim.assets.sql import register_macros
from vprim.assets.storage import Storage

_POOL_SQL = """
WITH lake AS (
    SELECT *, normalise_uri(image_uri) AS image_key
    FROM read_parquet({lake}, hive_partitioning = false)
    WHERE split = $split
),
keys AS (
    SELECT image_key, md5(CAST($seed AS VARCHAR) || image_key) AS h
    FROM lake GROUP BY image_key ORDER BY h LIMIT $limit OFFSET $offset
)
SELECT k.h, l.image_key, l.source_id, l.image_id, l.image_uri, l.image_width, l.image_height,
       l.label, l.boxes
FROM lake l JOIN keys k USING (image_key)
ORDER BY k.h, l.label, l.source_id
"""

_ATTR_SQL = """
SELECT source_id, image_id, canonical_label AS label, x0, y0, x1, y1, attributes
FROM read_parquet({clean}, hive_partitioning = false)
WHERE cardinality(attributes) > 0
  AND (source_id, image_id) IN (SELECT source_id, image_id FROM wanted)
"""


def lake_glob(store: Storage, version: str | None = None) -> tuple[str, str]:
    """(version, URL glob of its samples files); the published version by default."""
    version = version or P.current_version(store)
    if not version:
        raise P.LakeError("no published lake version (lake/CURRENT is missing): build the lake")
    return version, store.url(layout.lake_samples_glob(version))


def vocabulary(con: duckdb.DuckDBPyConnection, store: Storage, version: str | None = None):
    """Every label of the lake version, sorted (what a negative may ask about)."""
    _, glob = lake_glob(store, version)
    rows = con.execute(
        f"SELECT DISTINCT label FROM read_parquet('{glob}', hive_partitioning = false) ORDER BY 1"
    ).fetchall()
    return [r[0] for r in rows]


def pool_size(
    con: duckdb.DuckDBPyConnection, store: Storage, split: str, version: str | None = None
) -> int:
    """Distinct images (normalised URIs) of ``split`` in the lake version."""
    register_macros(con)
    _, glob = lake_glob(store, version)
    sql = (f"SELECT count(DISTINCT normalise_uri(image_uri)) FROM read_parquet('{glob}', "
           "hive_partitioning = false) WHERE split = $split")  # fmt: skip
    return int(con.execute(sql, {"split": split}).fetchone()[0])


def load_pool(
    con: duckdb.DuckDBPyConnection, store: Storage, split: str, limit: int, seed: int = 0,
    version: str | None = None, offset: int = 0,
) -> list[CountScene]:  # fmt: skip
    """Images ``offset .. offset + limit`` of ``split`` (train | holdout) in a seeded hash
    order, each with all its lake instances and their attributes."""
    register_macros(con)
    _, glob = lake_glob(store, version)
    params = {"split": split, "seed": seed, "limit": int(limit), "offset": int(offset)}
    rows = con.sql(_POOL_SQL.format(lake=f"'{glob}'"), params=params).to_arrow_table()
    if rows.num_rows == 0:
        return []
    attrs: dict[tuple, list] = {}
    clean_glob = layout.shard_file(layout.CLEAN_DIR, "*")
    clean = store.url(clean_glob)
    if store.glob(clean_glob):
        con.register("wanted", rows.select(["source_id", "image_id"]))
        for s, i, lab, x0, y0, x1, y1, a in con.execute(
            _ATTR_SQL.format(clean=f"'{clean}'")
        ).fetchall():
            attrs[(s, i, lab, x0, y0, x1, y1)] = a
        con.unregister("wanted")
    scenes: list[CountScene] = []
    cur: dict | None = None
    for r in rows.to_pylist():
        if cur is None or r["image_key"] != cur["key"]:
            if cur is not None:
                scenes.append(_scene(cur))
            cur = {"key": r["image_key"], "uri": r["image_uri"], "w": r["image_width"],
                   "h": r["image_height"], "labels": [], "boxes": [], "attrs": []}  # fmt: skip
        for b in r["boxes"]:
            cur["labels"].append(r["label"])
            cur["boxes"].append(b)
            key = (r["source_id"], r["image_id"], r["label"], *b)
            cur["attrs"].append(attrs.get(key) or {})
    scenes.append(_scene(cur))
    return scenes


def _scene(cur: dict) -> CountScene:
    boxes = np.asarray(cur["boxes"], dtype=np.float64).reshape(-1, 4)
    return CountScene.from_instances(
        cur["key"], cur["uri"], cur["w"], cur["h"], cur["labels"], boxes, cur["attrs"]
    )


__all__ = ["lake_glob", "load_pool", "pool_size", "vocabulary"]
