"""One partition (or one eval set) of the counting and spatial camps, end to end: which seeds,
which images, generation, and the counts an asset reports. No Dagster here.

Seeds: a camp's training samples use seeds ``0 .. train_size - 1`` split into equal, static
ranges, one per partition; each eval set uses its own range far above any training seed
(:data:`EVAL_SEED_BASE`), so no seed is shared. Counting eval sets also draw only from the
lake's ``holdout`` images and training only from ``train`` images, so no image is shared.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import duckdb

from vprim.assets.camps import counting_lake as L
from vprim.assets.camps.counting import CountingConfig, generate_counting, image_index
from vprim.assets.camps.schema import write_rows
from vprim.assets.camps.spatial import SpatialConfig, generate_spatial
from vprim.assets.storage import Storage

#: First seed of each eval set's range (training seeds stay below 2**40).
EVAL_SEED_BASE = {
    "counting_fine": 1 << 40,
    "spatial_tf": 2 << 40,
    "spatial_open": 3 << 40,
}
#: Families of the fine-grained counting eval set (constraints, not plain counts).
FINE_FAMILIES = ("attribute", "relation", "negative")


def partition_seeds(size: int, partition: int, partitions: int, base: int = 0) -> range:
    """The static seed range of one partition: ``size`` seeds split as evenly as possible."""
    if not 0 <= partition < partitions:
        raise ValueError(f"partition {partition}: expected 0..{partitions - 1}")
    lo, hi = size * partition // partitions, size * (partition + 1) // partitions
    return range(base + lo, base + hi)


@dataclass
class RunResult:
    """What one run produced: rows (camp row dicts), rejects by reason, timing."""

    rows: list[dict]
    rejects: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    pool_images: int = 0
    lake_version: str | None = None

    @property
    def samples_per_second(self) -> float:
        return len(self.rows) / self.seconds if self.seconds > 0 else 0.0


def counting_run(
    store: Storage, con: duckdb.DuckDBPyConnection, seeds: range, *, split: str,
    config: CountingConfig | None = None, eval_set: str | None = None,
    families: tuple[str, ...] | None = None, pool_seed: int = 0, seed_base: int = 0,
    version: str | None = None,
) -> RunResult:  # fmt: skip
    """Counting samples for ``seeds`` over the lake's ``train`` (training) or ``holdout``
    (eval) images: only the images those seeds visit are read from the lake."""
    t0 = time.perf_counter()
    version, _ = L.lake_glob(store, version)
    lake_split = "train" if split == "train" else "holdout"
    size = L.pool_size(con, store, lake_split, version)
    if size == 0 or len(seeds) == 0:
        return RunResult([], Counter({"no_images": len(seeds)} if size == 0 else {}),
                         time.perf_counter() - t0, 0, version)  # fmt: skip
    config = config or CountingConfig()
    first = image_index(seeds.start - seed_base, size, config)
    last = image_index(seeds.stop - 1 - seed_base, size, config)
    images = -(-len(seeds) // config.questions_per_image) + 1
    if images >= size or last < first:
        offset, limit = 0, size  # the range wraps around the pool: read it all
    else:
        offset, limit = first, last - first + 1
    pool = L.load_pool(con, store, lake_split, limit, pool_seed, version, offset=offset)
    vocabulary = L.vocabulary(con, store, version)
    rows, rejects = generate_counting(
        seeds, pool, vocabulary, config, split=split, eval_set=eval_set,
        families=families or ("coarse", "attribute", "relation", "negative"),
        seed_base=seed_base, pool_size=size, pool_offset=offset,
    )  # fmt: skip
    return RunResult(rows, rejects, time.perf_counter() - t0, size, version)


def spatial_run(
    seeds: range, *, split: str, config: SpatialConfig | None = None,
    eval_set: str | None = None,
) -> RunResult:  # fmt: skip
    """Spatial samples for ``seeds`` (synthetic: no input)."""
    t0 = time.perf_counter()
    rows, rejects = generate_spatial(
        seeds, config or SpatialConfig(), split=split, eval_set=eval_set
    )
    return RunResult(rows, rejects, time.perf_counter() - t0)


def counts_by(rows: list[dict], key: str) -> dict[str, int]:
    return dict(sorted(Counter(str(r[key]) for r in rows).items()))


def answer_types(rows: list[dict]) -> dict[str, int]:
    """Spatial rows by ``meta.answer_type`` (bool, number, word, refuse)."""
    import json

    return dict(sorted(Counter(json.loads(r["meta"])["answer_type"] for r in rows).items()))


@dataclass
class Summary:
    """What an asset reports about one written file (picklable, small)."""

    path: str
    rows: int
    by_difficulty: dict[str, int]
    by_answer_type: dict[str, int]
    rejects: dict[str, int]
    seconds: float
    preview: list[dict]
    pool_images: int = 0
    lake_version: str | None = None


def write(store: Storage, rel: str, res: RunResult, preview: int = 8) -> Summary:
    """Write ``res.rows`` atomically at ``rel`` (the camp row schema) and summarise them."""
    from vprim.assets.camps.preview_grid import pick_preview

    write_rows(store, rel, res.rows)
    camp = res.rows[0]["camp"] if res.rows else ""
    return Summary(
        path=store.url(rel),
        rows=len(res.rows),
        by_difficulty=counts_by(res.rows, "difficulty"),
        by_answer_type=answer_types(res.rows) if camp == "spatial" else {},
        rejects=dict(sorted(res.rejects.items())),
        seconds=res.seconds,
        preview=pick_preview(res.rows, preview),
        pool_images=res.pool_images,
        lake_version=res.lake_version,
    )


def train_partition(job: dict) -> Summary:
    """One training partition, generated and written (a module-level function, so a process
    pool can run several partitions at once).

    ``job``: ``camp`` (counting | spatial), ``root`` (storage URL), ``partition``,
    ``partitions``, ``train_size``, ``config`` (CountingConfig | SpatialConfig), and for
    counting ``pool_seed`` and ``duckdb_memory``; optional ``out_root``: write there instead
    of ``root`` (the lake is still read from ``root``).
    """
    store = Storage(job["root"])
    seeds = partition_seeds(job["train_size"], job["partition"], job["partitions"])
    rel = f"camps/{job['camp']}/train/part-{job['partition']:05d}.parquet"
    if job["camp"] == "counting":
        con = duckdb.connect(config={"memory_limit": job.get("duckdb_memory", "2GB"),
                                     "threads": 1})  # fmt: skip
        try:
            res = counting_run(store, con, seeds, split="train", config=job["config"],
                               pool_seed=job.get("pool_seed", 0))  # fmt: skip
        finally:
            con.close()
    else:
        res = spatial_run(seeds, split="train", config=job["config"])
    return write(Storage(job["out_root"]) if job.get("out_root") else store, rel, res)


__all__ = [
    "EVAL_SEED_BASE",
    "FINE_FAMILIES",
    "RunResult",
    "Summary",
    "answer_types",
    "counting_run",
    "counts_by",
    "partition_seeds",
    "spatial_run",
    "train_partition",
    "write",
]
