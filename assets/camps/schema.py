"""The camp sample row: one Arrow schema for every camp, stored as Parquet (zstd).

Layout under the storage root: ``camps/<camp>/train/part-NNNNN.parquet`` (one file per seed
partition) and ``camps/eval/<eval_set>.parquet``. Columns: ``sample_id`` (stable), ``camp``
(counting | spatial | maze | path_tracing), ``split`` (train | eval), ``eval_set`` (null for
train), ``difficulty``, ``seed`` (the generator seed of the sample), ``image_png`` (null when
``image_uri`` is enough), ``image_uri`` (null for drawn camps), ``image_width``,
``image_height``, ``prompt``, ``target``, ``answer``, ``meta`` (JSON: the ground truth the
reward needs). The schema itself lives in :mod:`assets.camps.cs_contract` (the counting and
spatial camps were written against it first) and is re-exported here.
"""

from __future__ import annotations

import pyarrow as pa

from assets.camps.cs_contract import CAMP_SCHEMA
from assets.storage import Storage

CAMPS = ("counting", "spatial", "maze", "path_tracing")


def train_rel(camp: str, part: int) -> str:
    """The relative path of one training partition of ``camp``."""
    return f"camps/{camp}/train/part-{part:05d}.parquet"


def eval_rel(eval_set: str) -> str:
    """The relative path of an eval set."""
    return f"camps/eval/{eval_set}.parquet"


def rows_to_table(rows: list[dict]) -> pa.Table:
    """Row dicts as a table of :data:`CAMP_SCHEMA` (missing keys are null)."""
    return pa.Table.from_pylist(
        [{k: r.get(k) for k in CAMP_SCHEMA.names} for r in rows], CAMP_SCHEMA
    )


def write_rows(store: Storage, rel: str, rows: list[dict] | pa.Table) -> str:
    """Rows (dicts or a table) as one Parquet file at ``rel``, written atomically."""
    table = rows if isinstance(rows, pa.Table) else rows_to_table(rows)
    return store.write_parquet(table.cast(CAMP_SCHEMA), rel)


__all__ = ["CAMPS", "CAMP_SCHEMA", "eval_rel", "rows_to_table", "train_rel", "write_rows"]
