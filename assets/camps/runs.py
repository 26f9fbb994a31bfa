"""The runs of every camp, end to end: which seeds, generation, the write, and the counts an
asset reports. One framework for the four camps; no Dagster here.

Seeds: a camp's training samples use seeds ``0 .. train_size - 1`` split into equal, static
ranges, one per partition (:func:`partition_seeds`); each eval set uses its own range far above
any training seed (``evalsets.EVAL_SETS``). Counting reads the lake's ``train`` images for
training and its ``holdout`` images for eval sets; the other camps draw their own images.

A run (:func:`run_seeds`) gives a :class:`RunResult`; :func:`write` stores its rows and returns
a small, picklable :class:`Summary`, which is what worker processes send back
(:func:`train_partition`) and what the assets' metadata is made of.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb

from vprim.assets.camps import counting_lake as L
from vprim.assets.camps.counting import FAMILIES, CountingConfig, generate_counting, image_index
from vprim.assets.camps.maze import MazeConfig, generate_maze
from vprim.assets.camps.path_tracing import PathConfig, generate_path
from vprim.assets.camps.preview_grid import pick_preview
from vprim.assets.camps.schema import CAMPS, write_rows
from vprim.assets.camps.spatial import KINDS, SpatialConfig, generate_spatial
from vprim.assets.contracts import layout
from vprim.assets.sql import connect
from vprim.assets.storage import Storage

#: camp -> its generator's settings dataclass (the default instance is used when none is given)
CONFIGS = {
    "counting": CountingConfig,
    "spatial": SpatialConfig,
    "maze": MazeConfig,
    "path_tracing": PathConfig,
}
#: the camps whose sample is a function of its seed alone (one drawn image per seed)
DRAWN = {"maze": generate_maze, "path_tracing": generate_path}


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
    families: Sequence[str] = FAMILIES, seed_base: int = 0, version: str | None = None,
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
    pool = L.load_pool(con, store, lake_split, limit, config.pool_seed, version, offset=offset)
    vocabulary = L.vocabulary(con, store, version)
    rows, rejects = generate_counting(
        seeds, pool, vocabulary, config, split=split, eval_set=eval_set, families=families,
        seed_base=seed_base, pool_size=size, pool_offset=offset,
    )  # fmt: skip
    return RunResult(rows, rejects, time.perf_counter() - t0, size, version)


def spatial_run(
    seeds: range, *, split: str, config: SpatialConfig | None = None,
    eval_set: str | None = None, kinds: Sequence[str] = KINDS,
) -> RunResult:  # fmt: skip
    """Spatial samples of the question ``kinds`` for ``seeds`` (synthetic: no input)."""
    t0 = time.perf_counter()
    rows, rejects = generate_spatial(
        seeds, config or SpatialConfig(), split=split, eval_set=eval_set, kinds=kinds
    )
    return RunResult(rows, rejects, time.perf_counter() - t0)


def drawn_run(
    camp: str, seeds: range, *, split: str, config: MazeConfig | PathConfig | None = None,
    eval_set: str | None = None,
) -> RunResult:  # fmt: skip
    """One row per seed of a drawn camp (``maze`` or ``path_tracing``): nothing is rejected."""
    generate, cfg = DRAWN[camp], config or CONFIGS[camp]()
    t0 = time.perf_counter()
    rows = []
    for seed in seeds:
        row = generate(int(seed), cfg)
        row["split"], row["eval_set"] = split, eval_set
        rows.append(row)
    return RunResult(rows, Counter(), time.perf_counter() - t0)


def run_seeds(
    store: Storage, camp: str, seeds: range, *, split: str, config=None,
    eval_set: str | None = None, seed_base: int = 0, con: duckdb.DuckDBPyConnection | None = None,
    duckdb_memory: str = "2GB", version: str | None = None,
    families: Sequence[str] | None = None, kinds: Sequence[str] | None = None,
) -> RunResult:  # fmt: skip
    """Samples of ``camp`` for ``seeds``, whatever the camp.

    Args:
        store: the storage root whose published lake counting reads.
        config: the camp's settings (``CONFIGS[camp]``; its defaults when None).
        seed_base: counting's first seed of the range (seed ``s`` asks about the image at
            ``s - seed_base`` of the pool).
        con: a DuckDB connection for counting; one of ``duckdb_memory``, one thread, is opened
            (and closed) when None.
        version: the lake version counting reads (the published one when None).
        families: counting's question families (all when None).
        kinds: spatial's question kinds (both when None).
    """
    if camp == "counting":
        own = con is None
        if own:
            con = connect(store, memory_limit=duckdb_memory, threads=1)
        try:
            return counting_run(store, con, seeds, split=split, config=config,
                                eval_set=eval_set, families=families or FAMILIES,
                                seed_base=seed_base, version=version)  # fmt: skip
        finally:
            if own:
                con.close()
    if camp == "spatial":
        return spatial_run(seeds, split=split, config=config, eval_set=eval_set,
                           kinds=kinds or KINDS)  # fmt: skip
    if camp in DRAWN:
        return drawn_run(camp, seeds, split=split, config=config, eval_set=eval_set)
    raise ValueError(f"unknown camp {camp!r}; expected one of {CAMPS}")


def counts_by(rows: list[dict], key: str) -> dict[str, int]:
    return dict(sorted(Counter(str(r[key]) for r in rows).items()))


def answer_types(rows: list[dict]) -> dict[str, int]:
    """Spatial rows by ``meta.answer_type`` (bool, number, word, refuse)."""
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
    """One training partition of any camp, generated and written (a module-level function, so
    a process pool can run several partitions at once).

    ``job``: ``camp``, ``root`` (storage URL), ``partition``, ``partitions``, ``train_size``;
    optional ``config`` (the camp's settings), ``duckdb_memory`` (counting) and ``out_root``:
    write there instead of ``root`` (the lake is still read from ``root``).
    """
    store = Storage(job["root"])
    seeds = partition_seeds(job["train_size"], job["partition"], job["partitions"])
    res = run_seeds(store, job["camp"], seeds, split="train", config=job.get("config"),
                    duckdb_memory=job.get("duckdb_memory", "2GB"))  # fmt: skip
    out = Storage(job["out_root"]) if job.get("out_root") else store
    return write(out, layout.camp_train_path(job["camp"], job["partition"]), res)


__all__ = [
    "CONFIGS",
    "DRAWN",
    "RunResult",
    "Summary",
    "answer_types",
    "counting_run",
    "counts_by",
    "drawn_run",
    "partition_seeds",
    "run_seeds",
    "spatial_run",
    "train_partition",
    "write",
]
