"""The camp sample row: one Arrow schema for every camp, stored as Parquet (zstd).

Layout under the storage root: ``camps/<camp>/train/part-NNNNN.parquet`` (one file per seed
partition) and ``camps/eval/<eval_set>.parquet``. Columns: ``sample_id`` (stable), ``camp``
(counting | spatial | maze | path_tracing), ``split`` (train | eval), ``eval_set`` (null for
train), ``difficulty``, ``seed`` (the generator seed of the sample), ``image_png`` (null when
``image_uri`` is enough), ``image_uri`` (null for drawn camps), ``image_width``,
``image_height``, ``prompt``, ``target``, ``answer``, ``meta`` (JSON: the ground truth the
reward needs). Every camp builds its rows with :func:`camp_row` and writes them with
:func:`write_rows`.
"""

from __future__ import annotations

import json

import pyarrow as pa

from vprim.assets.contracts.schemas import CAMP_SCHEMA
from vprim.assets.storage import Storage

CAMPS = ("counting", "spatial", "maze", "path_tracing")


def camp_row(
    camp: str, sample_id: str, seed: int, *, difficulty: str, prompt: str, target: str,
    answer: object, meta: dict, image_width: int, image_height: int,
    image_png: bytes | None = None, image_uri: str | None = None, split: str | None = None,
    eval_set: str | None = None,
) -> dict:  # fmt: skip
    """One sample as a row of :data:`CAMP_SCHEMA`; ``meta`` is stored as compact JSON with
    sorted keys (the same dict always gives the same text)."""
    return {
        "sample_id": sample_id,
        "camp": camp,
        "split": split,
        "eval_set": eval_set,
        "difficulty": difficulty,
        "seed": int(seed),
        "image_png": image_png,
        "image_uri": image_uri,
        "image_width": int(image_width),
        "image_height": int(image_height),
        "prompt": prompt,
        "target": target,
        "answer": str(answer),
        "meta": json.dumps(meta, sort_keys=True, separators=(",", ":")),
    }


def rows_to_table(rows: list[dict]) -> pa.Table:
    """Row dicts as a table of :data:`CAMP_SCHEMA` (missing keys are null)."""
    return pa.Table.from_pylist(
        [{k: r.get(k) for k in CAMP_SCHEMA.names} for r in rows], CAMP_SCHEMA
    )


def write_rows(store: Storage, rel: str, rows: list[dict] | pa.Table) -> str:
    """Rows (dicts or a table) as one Parquet file at ``rel``, written atomically."""
    table = rows if isinstance(rows, pa.Table) else rows_to_table(rows)
    return store.write_parquet(table.cast(CAMP_SCHEMA), rel)


__all__ = [
    "CAMPS",
    "camp_row",
    "rows_to_table",
    "write_rows",
]
