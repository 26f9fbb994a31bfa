"""Balance the clean boxes into lake samples, one label bucket at a time, in DuckDB.

The report's rule: for each (kept source, canonical label) take at most ``cap`` images in a
seeded hash order (an image brings all of its clean boxes of that label), then keep each
(image, label) once across sources. Images are the same when their normalised URIs are
(``sql/macros/normalise_uri.sql``).

Streaming and bounded: one DuckDB scan of ``clean_instances`` writes the boxes partitioned by a
stable hash of the label (``sql/lake_stage.sql``); each bucket is then grouped, ranked and
de-duplicated on its own (``sql/lake_bucket_samples.sql``) and streamed to Parquet in record
batches (``sql/lake_bucket_rows.sql``). A bucket never meets another bucket's rows, so memory
is bounded by the largest bucket and buckets could run on different workers.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from assets.sql import load, register_macros
from assets.storage import Storage

SCHEMA_VERSION = "1.0"

#: The public lake row (DESIGN.md section 3).
LAKE_SCHEMA = pa.schema(
    [
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("source_id", pa.string(), nullable=False),
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("image_uri", pa.string(), nullable=False),
        pa.field("image_width", pa.int32(), nullable=False),
        pa.field("image_height", pa.int32(), nullable=False),
        pa.field("label", pa.string(), nullable=False),
        pa.field("boxes", pa.list_(pa.list_(pa.float64())), nullable=False),
        pa.field("boxes_999", pa.list_(pa.list_(pa.int32())), nullable=False),
        pa.field("n_boxes", pa.int32(), nullable=False),
        pa.field("target", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
    ],
    metadata={"vprim.schema": "lake", "vprim.schema_version": SCHEMA_VERSION},
)

STAGING_PREFIX = "vprim-lake-stage-"
ROW_GROUP_ROWS = 128_000
BATCH_ROWS = 64_000


@dataclass(frozen=True)
class BalanceConfig:
    """How the lake is balanced.

    Attributes:
        cap: at most this many images per (source, canonical label); the report's N.
        seed: seeds the per-(source, label) image order and the choice among duplicates.
        buckets: label buckets the work is split into (memory is bounded by the largest).
        holdout_permille: images (by normalised-URI hash, not seeded) held out, per thousand.
    """

    cap: int = 1000
    seed: int = 0
    buckets: int = 16
    holdout_permille: int = 20

    def __post_init__(self) -> None:
        if self.cap < 1:
            raise ValueError(f"cap={self.cap}: the per-(source, label) image cap must be >= 1")
        if not 1 <= self.buckets <= 1024:
            raise ValueError(f"buckets={self.buckets}: expected 1..1024")
        if not 0 <= self.holdout_permille <= 1000:
            raise ValueError(f"holdout_permille={self.holdout_permille}: expected 0..1000")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class BucketResult:
    bucket: int
    path: str  # relative to the version folder
    rows: int
    instances: int
    labels: pa.Table  # per-label counts (sql/lake_bucket_labels.sql)


def _sql_list(paths: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def stage_by_bucket(
    con: duckdb.DuckDBPyConnection,
    clean_files: list[str],
    selection_files: list[str],
    out_dir: str,
    buckets: int,
) -> dict[int, list[str]]:
    """Write the clean boxes of kept sources under ``out_dir`` partitioned by label bucket.

    Returns {bucket: [parquet files]} for the buckets that hold rows.
    """
    if not clean_files or not selection_files:
        return {}
    con.execute(
        load(
            "lake_stage",
            clean_files=_sql_list(clean_files),
            selection_files=_sql_list(selection_files),
            out_dir=out_dir.replace("'", "''"),
            buckets=str(buckets),
        )
    )
    found: dict[int, list[str]] = {}
    for folder in sorted(glob.glob(os.path.join(out_dir, "label_bucket=*"))):
        bucket = int(folder.rsplit("=", 1)[1])
        found[bucket] = sorted(glob.glob(os.path.join(folder, "*.parquet")))
    return found


def balance_bucket(
    con: duckdb.DuckDBPyConnection,
    files: list[str],
    config: BalanceConfig,
    store: Storage,
    out_path: str,
) -> tuple[int, int, pa.Table]:
    """Balance one bucket and write its lake rows to ``out_path`` (under the storage root).

    Returns (rows, instances, per-label counts).
    """
    con.execute(
        load(
            "lake_bucket_samples",
            bucket_files=_sql_list(files),
            seed=str(int(config.seed)),
            cap=str(int(config.cap)),
        )
    )
    labels = con.sql(load("lake_bucket_labels")).to_arrow_table()
    reader = con.sql(
        load("lake_bucket_rows", holdout_permille=str(int(config.holdout_permille)))
    ).to_arrow_reader(BATCH_ROWS)
    rows = instances = 0
    with (
        store.atomic_path(out_path) as tmp,
        store.fs.open(tmp, "wb") as f,
        pq.ParquetWriter(f, LAKE_SCHEMA, compression="zstd", compression_level=3) as writer,
    ):
        for batch in reader:
            table = pa.Table.from_batches([batch]).cast(LAKE_SCHEMA)
            writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
            rows += table.num_rows
            instances += int(pa.compute.sum(table["n_boxes"]).as_py() or 0)
    con.execute("DROP TABLE bucket_samples")
    return rows, instances, labels


def _remove_orphaned_staging(scratch: str | None) -> None:
    """Remove staging folders of builds whose process is gone (killed: no ``finally`` ran)."""
    for folder in glob.glob(os.path.join(scratch or tempfile.gettempdir(), STAGING_PREFIX + "*")):
        pid = os.path.basename(folder)[len(STAGING_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def balance(
    con: duckdb.DuckDBPyConnection,
    store: Storage,
    clean_files: list[str],
    selection_files: list[str],
    samples_dir: str,
    config: BalanceConfig,
    scratch: str | None = None,
    on_bucket: Callable[[BucketResult], None] | None = None,
) -> list[BucketResult]:
    """Balance every bucket into ``samples_dir/label_bucket=NN/part-0.parquet``.

    Args:
        con: a DuckDB connection (its memory limit and threads bound the work).
        store: where the lake is written.
        clean_files, selection_files: local paths or URLs DuckDB reads.
        samples_dir: folder under the storage root.
        config: the balancing rule.
        scratch: a local folder for the by-bucket staging (a temporary folder by default).
        on_bucket: called after each bucket is written (progress reporting).
    """
    register_macros(con)
    _remove_orphaned_staging(scratch)
    staging = tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=scratch)
    try:
        by_bucket = stage_by_bucket(
            con, clean_files, selection_files, os.path.join(staging, "by_bucket"), config.buckets
        )
        results = []
        for bucket, files in sorted(by_bucket.items()):
            rel = f"{samples_dir}/label_bucket={bucket:03d}/part-0.parquet"
            rows, instances, labels = balance_bucket(con, files, config, store, rel)
            result = BucketResult(bucket, rel, rows, instances, labels)
            results.append(result)
            if on_bucket:
                on_bucket(result)
        return results
    finally:
        shutil.rmtree(staging, ignore_errors=True)
