"""Eval-set registry and the runs of the drawn camps (maze, path tracing).

Every eval set has its own seed range starting at ``seed_base`` (training seeds stay below
``2**40``), so eval and training samples never share a generator seed; the drawn camps'
images are a function of the seed, so they never share an image either (the generated eval
set is also checked for repeated PNGs). The counting and spatial eval sets are built by their
own assets (``counting_eval``, ``spatial_eval``) and registered here for the scorer.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from vprim.assets.camps.counting_spatial_runs import EVAL_SEED_BASE, partition_seeds
from vprim.assets.camps.maze import MazeConfig, generate_maze
from vprim.assets.camps.path_tracing import PathConfig, generate_path
from vprim.assets.camps.schema import write_rows
from vprim.assets.contracts import layout
from vprim.assets.storage import Storage


@dataclass(frozen=True)
class EvalSet:
    """One held-out eval set: its camp, default size and first seed."""

    name: str
    camp: str
    size: int
    seed_base: int
    generate: Callable[[int], dict] | None = None  # seed -> row; None: built by its own asset
    asset: str = ""


EVAL_SETS: dict[str, EvalSet] = {
    "counting_fine": EvalSet(
        "counting_fine", "counting", 600, EVAL_SEED_BASE["counting_fine"], asset="counting_eval"
    ),
    "spatial_tf": EvalSet(
        "spatial_tf", "spatial", 1000, EVAL_SEED_BASE["spatial_tf"], asset="spatial_eval"
    ),
    "spatial_open": EvalSet(
        "spatial_open", "spatial", 1000, EVAL_SEED_BASE["spatial_open"], asset="spatial_eval"
    ),
    "maze": EvalSet("maze", "maze", 2000, 4 << 40, generate_maze, "maze_eval"),
    "path_tracing": EvalSet(
        "path_tracing", "path_tracing", 2000, 5 << 40, generate_path, "path_tracing_eval"
    ),
    "counting_coarse": EvalSet(
        "counting_coarse", "counting", 600, 6 << 40, asset="counting_coarse_eval"
    ),
}
"""Eval-set name -> :class:`EvalSet` (sizes are the report's benchmark sizes)."""

GENERATORS = {"maze": (generate_maze, MazeConfig), "path_tracing": (generate_path, PathConfig)}


@dataclass
class Run:
    """Rows of one run with its timing and counts."""

    rows: list[dict]
    seconds: float
    by_difficulty: Counter = field(default_factory=Counter)
    path: str = ""
    count: int = 0  # rows generated (``rows`` may hold only a preview)

    @property
    def samples_per_second(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


def run_camp(camp: str, seeds: Iterable[int], split: str, eval_set: str | None = None,
             config: object | None = None) -> Run:  # fmt: skip
    """Generate one row per seed of a drawn camp (``maze`` or ``path_tracing``)."""
    gen, cfg_cls = GENERATORS[camp]
    cfg = config or cfg_cls()
    t0 = time.perf_counter()
    rows = []
    for s in seeds:
        r = gen(int(s), cfg)
        r["split"], r["eval_set"] = split, eval_set
        rows.append(r)
    return Run(rows, time.perf_counter() - t0, Counter(r["difficulty"] for r in rows),
               count=len(rows))  # fmt: skip


def build_eval(store: Storage, name: str, size: int | None = None) -> Run:
    """Generate and write the eval set ``name`` (a drawn camp) at ``camps/eval/<name>.parquet``."""
    es = EVAL_SETS[name]
    if es.generate is None:
        raise ValueError(f"eval set {name!r} is built by the asset {es.asset!r}")
    n = es.size if size is None else size
    run = run_camp(es.camp, range(es.seed_base, es.seed_base + n), "eval", name)
    dup = len(run.rows) - len({hashlib.md5(r["image_png"]).digest() for r in run.rows})
    if dup:
        raise ValueError(f"eval set {name}: {dup} repeated images")
    run.path = write_rows(store, layout.eval_set_path(name), run.rows)
    return run


def train_partition(job: dict) -> Run:
    """One training partition (module level, so worker processes can run it)."""
    store = Storage(job["root"])
    seeds = partition_seeds(job["train_size"], job["partition"], job["partitions"])
    run = run_camp(job["camp"], seeds, "train")
    run.path = write_rows(store, layout.camp_train_path(job["camp"], job["partition"]), run.rows)
    run.rows = run.rows[:16]  # a preview travels back, not the whole partition
    return run


def build_counting_coarse(store: Storage, con, size: int | None = None,
                          version: str | None = None, config=None):  # fmt: skip
    """Write ``camps/eval/counting_coarse.parquet``: plain "How many cars are there?"
    questions (the counting camp's ``coarse`` level, its simplest) on the lake's ``holdout``
    images only, seeds from ``6 << 40`` on: it shares no image and no seed with the counting
    camp's training rows (``train`` images, seeds below ``2**40``). ``counting_fine`` holds
    the other families; this set is what a first training run on ``coarse`` is scored on.

    Args:
        con: a DuckDB connection (reads the published lake, or ``version``).
        config: a :class:`~vprim.assets.camps.counting.CountingConfig` (the default one if None).

    Returns:
        the written set's :class:`~vprim.assets.camps.counting_spatial_runs.Summary`, like every
        other counting and spatial eval set.
    """
    from vprim.assets.camps.counting_spatial_runs import counting_run, write

    es = EVAL_SETS["counting_coarse"]
    n = es.size if size is None else size
    seeds = range(es.seed_base, es.seed_base + n)
    res = counting_run(store, con, seeds, split="eval", eval_set=es.name, families=("coarse",),
                       seed_base=es.seed_base, version=version, config=config)  # fmt: skip
    return write(store, layout.eval_set_path(es.name), res)


__all__ = [
    "EVAL_SETS", "EvalSet", "Run", "build_counting_coarse", "build_eval", "run_camp",
    "train_partition",
]  # fmt: skip
