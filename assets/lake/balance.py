"""Balance the clean boxes into lake samples, one label bucket at a time, in DuckDB.

The report's rule: for each (kept source, canonical label) take at most ``cap`` images in a
seeded hash order (an image brings all of its clean boxes of that label), then keep each
(image, label) once across sources. Images are the same when their normalised URIs are
(``sql/macros/normalise_uri.sql``). Every key that decides a row or names it (the label bucket,
the cap order, the choice among duplicates, ``sample_id``) is the md5-based ``stable_hash64``
(``sql/macros/stable_hash64.sql``, = ``contracts.hashing.md5_64``), never DuckDB's ``hash()``.

Streaming and bounded: one DuckDB scan of ``clean_instances`` writes the boxes partitioned by a
stable hash of the label (``sql/lake_stage.sql``); each bucket is then grouped, ranked and
de-duplicated on its own (``sql/lake_bucket_samples.sql``) and streamed to Parquet in record
batches (``sql/lake_bucket_rows.sql``). A bucket never meets another bucket's rows, so memory
is bounded by the largest bucket and buckets could run on different workers.

The manifest's facts (sources, labels, images, rows and instances per split) are gathered while
the rows are written, so the lake is not read back for them; the blocking checks recompute
each of them from the files (``checks.py``).
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from vprim.assets.contracts import layout
from vprim.assets.contracts import schemas as S
from vprim.assets.parallel import pid_alive
from vprim.assets.sql import load, register_macros
from vprim.assets.storage import Storage, parquet_writer

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
    # what was written, per split: {"train": (rows, instances), "holdout": (rows, instances)}
    splits: dict[str, tuple[int, int]] = field(default_factory=dict)
    sources: frozenset[str] = frozenset()  # the source_ids written
    label_names: frozenset[str] = frozenset()  # the labels written


@dataclass
class Balanced:
    buckets: list[BucketResult]
    images: int  # distinct images (by normalised URI) over every bucket's written rows


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
    images_path: str | None = None,
    image_groups: str | None = None,
) -> BucketResult:
    """Balance one bucket and write its lake rows to ``out_path`` (under the storage root).

    ``images_path``: a local Parquet file that receives the distinct image keys (the md5 of
    the normalised URI, in two 64-bit halves) of the rows written, for the manifest's image
    count.
    ``image_groups``: the near-duplicate content groups (``layout.IMAGE_GROUPS_PATH``, a path or
    URL DuckDB reads), or None to compare images by normalised URI alone.
    Returns the bucket's facts (``bucket`` is left at -1 for the caller to set).
    """
    con.execute(
        load(
            "lake_bucket_samples",
            bucket_files=_sql_list(files),
            seed=str(int(config.seed)),
            cap=str(int(config.cap)),
            image_groups=_groups_sql(image_groups),
        )
    )
    labels = con.sql(load("lake_bucket_labels")).to_arrow_table()
    if images_path is not None:
        con.execute(load("lake_bucket_images", out_path=images_path.replace("'", "''")))
    reader = con.sql(
        load("lake_bucket_rows", holdout_permille=str(int(config.holdout_permille)))
    ).to_arrow_reader(BATCH_ROWS)
    rows = instances = 0
    splits = {"train": [0, 0], "holdout": [0, 0]}
    sources: set[str] = set()
    label_names: set[str] = set()
    with (
        store.atomic_path(out_path) as tmp,
        store.fs.open(tmp, "wb") as f,
        parquet_writer(f, S.LAKE_SCHEMA) as writer,
    ):
        for batch in reader:
            table = pa.Table.from_batches([batch]).cast(S.LAKE_SCHEMA)
            writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
            rows += table.num_rows
            instances += int(pc.sum(table["n_boxes"]).as_py() or 0)
            for split, tally in splits.items():
                mask = pc.equal(table["split"], split)
                tally[0] += int(pc.sum(mask.cast(pa.int64())).as_py() or 0)
                tally[1] += int(pc.sum(pc.filter(table["n_boxes"], mask)).as_py() or 0)
            sources.update(pc.unique(table["source_id"]).to_pylist())
            label_names.update(pc.unique(table["label"]).to_pylist())
    con.execute("DROP TABLE bucket_samples; DROP TABLE bucket_groups")
    return BucketResult(
        -1,
        out_path,
        rows,
        instances,
        labels,
        {k: (v[0], v[1]) for k, v in splits.items()},
        frozenset(sources),
        frozenset(label_names),
    )


def _groups_sql(image_groups: str | None) -> str:
    """The ``image_uri -> group_key`` relation the samples query joins (empty without groups)."""
    if image_groups is None:
        return "(SELECT NULL::VARCHAR AS image_uri, NULL::VARCHAR AS group_key WHERE false)"
    path = image_groups.replace("'", "''")
    return f"(SELECT image_uri, group_key FROM read_parquet('{path}'))"


def _remove_orphaned_staging(scratch: str | None) -> None:
    """Remove staging folders of builds whose process is gone (killed: no ``finally`` ran)."""
    for folder in glob.glob(os.path.join(scratch or tempfile.gettempdir(), STAGING_PREFIX + "*")):
        pid = os.path.basename(folder)[len(STAGING_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def balance(
    con: duckdb.DuckDBPyConnection,
    store: Storage,
    clean_files: list[str],
    selection_files: list[str],
    version: str,
    config: BalanceConfig,
    scratch: str | None = None,
    on_bucket: Callable[[BucketResult], None] | None = None,
    image_groups: str | None = None,
) -> Balanced:
    """Balance every bucket into the version's ``samples/label_bucket=NNN/part-0.parquet``.

    Args:
        con: a DuckDB connection (its memory limit and threads bound the work).
        store: where the lake is written.
        clean_files, selection_files: local paths or URLs DuckDB reads.
        version: the lake version written (``layout.lake_bucket_file``).
        config: the balancing rule.
        scratch: a local folder for the by-bucket staging (a temporary folder by default).
        on_bucket: called after each bucket is written (progress reporting).
        image_groups: near-duplicate content groups (see :func:`balance_bucket`).
    """
    register_macros(con)
    _remove_orphaned_staging(scratch)
    staging = tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=scratch)
    try:
        by_bucket = stage_by_bucket(
            con, clean_files, selection_files, os.path.join(staging, "by_bucket"), config.buckets
        )
        images_dir = os.path.join(staging, "images")
        os.makedirs(images_dir)
        results = []
        for bucket, files in sorted(by_bucket.items()):
            rel = layout.lake_bucket_file(version, bucket)
            images_path = os.path.join(images_dir, f"bucket-{bucket:03d}.parquet")
            result = balance_bucket(con, files, config, store, rel, images_path, image_groups)
            result.bucket = bucket
            results.append(result)
            if on_bucket:
                on_bucket(result)
        return Balanced(results, _count_images(con, images_dir) if results else 0)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _count_images(con: duckdb.DuckDBPyConnection, images_dir: str) -> int:
    """Distinct images over the buckets' image keys (an image has a row in every bucket that
    holds one of its labels)."""
    glob_sql = os.path.join(images_dir, "*.parquet").replace("'", "''")
    keys = f"SELECT DISTINCT image_hi, image_lo FROM read_parquet('{glob_sql}')"
    sql = f"SELECT count(*) FROM ({keys})"
    return int(con.execute(sql).fetchone()[0])
