"""Dagster definitions of the camps, every one the same way:

- ``<camp>_camp`` (``counting``, ``spatial``, ``maze``, ``path_tracing``): training samples,
  one static partition per seed range (``camps/<camp>/train/part-NNNNN.parquet``); the
  partitions of a run go to parallel processes.
- the held-out eval sets (``camps/eval/<eval_set>.parquet``): ``counting_eval``
  (``counting_fine``), ``counting_coarse_eval``, ``spatial_eval`` (``spatial_tf``,
  ``spatial_open``), ``maze_eval``, ``path_tracing_eval``.

Each camp's run config is its generator's settings dataclass (made Dagster config by
``configs.dagster_config``, so every setting is defined once) plus its sizes. Wiring, config
and metadata only: the work is in ``runs.py`` and ``evalsets.py``. No
``from __future__ import annotations`` here: Dagster reads the config annotations as classes.
"""

from collections import Counter

import dagster as dg

from vprim.assets.camps import evalsets as E
from vprim.assets.camps import runs as R
from vprim.assets.camps.counting import CountingConfig
from vprim.assets.camps.maze import MazeConfig
from vprim.assets.camps.path_tracing import PathConfig
from vprim.assets.camps.preview_grid import grid_png, pick_preview
from vprim.assets.camps.spatial import SpatialConfig
from vprim.assets.configs import dagster_config
from vprim.assets.contracts import layout
from vprim.assets.parallel import map_shards
from vprim.assets.reporting import counts_table, markdown_image, md_table
from vprim.assets.settings import current
from vprim.resources.duckdb import DuckDBResource
from vprim.resources.storage import StorageResource

_profile = current()

SEED_PARTITIONS = 4
seed_partitions = dg.StaticPartitionsDefinition([f"seeds-{i:02d}" for i in range(SEED_PARTITIONS)])


class CountingCampConfig(dagster_config(CountingConfig, name="CountingCampConfig")):
    """Counting camp size (full scale: ``train_size`` 10,000), the size of each counting eval
    set, and the question rules (``CountingConfig``'s fields)."""

    train_size: int = 400
    eval_size: int = E.EVAL_SETS["counting_fine"].size


class SpatialCampConfig(dagster_config(SpatialConfig, name="SpatialCampConfig")):
    """Spatial camp size (full scale: ``train_size`` 9,000), eval set sizes, and the scene and
    question rules (``SpatialConfig``'s fields)."""

    train_size: int = 360
    eval_tf_size: int = E.EVAL_SETS["spatial_tf"].size
    eval_open_size: int = E.EVAL_SETS["spatial_open"].size


class MazeCampConfig(dagster_config(MazeConfig, name="MazeCampConfig")):
    """Maze camp size (report: ``train_size`` 460,000), eval set size, and ``MazeConfig``'s
    fields."""

    train_size: int = 400
    eval_size: int = E.EVAL_SETS["maze"].size


class PathTracingCampConfig(dagster_config(PathConfig, name="PathTracingCampConfig")):
    """Path-tracing camp size (report: ``train_size`` 125,000), eval set size, and
    ``PathConfig``'s fields."""

    train_size: int = 400
    eval_size: int = E.EVAL_SETS["path_tracing"].size


#: what each camp's assets read and are made with (the lake through DuckDB, or Pillow drawings)
_SPEC = {
    "counting": {"deps": ["lake"], "kinds": {"parquet", "duckdb"}},
    "spatial": {"kinds": {"parquet", "pillow"}},
    "maze": {"kinds": {"parquet", "pillow"}},
    "path_tracing": {"kinds": {"parquet", "pillow"}},
}


def _metadata(store, summaries: list[R.Summary], camp: str) -> dict:
    rows = sum(s.rows for s in summaries)
    seconds = sum(s.seconds for s in summaries)
    rejects: Counter = Counter()
    difficulty: Counter = Counter()
    answer_types: Counter = Counter()
    for s in summaries:
        rejects.update(s.rejects)
        difficulty.update(s.by_difficulty)
        answer_types.update(s.by_answer_type)
    preview = pick_preview([r for s in summaries for r in s.preview], 8)
    png = grid_png(preview)
    grid_rel = layout.camp_preview_path(camp, summaries[0].path.rsplit("/", 1)[-1])
    with store.atomic_path(grid_rel) as tmp, store.fs.open(tmp, "wb") as f:
        f.write(png)
    columns = ("sample_id", "difficulty", "prompt", "answer")
    meta = {
        "dagster/row_count": rows,
        "samples_per_second": round(rows / seconds, 2) if seconds else 0.0,
        "seconds": round(seconds, 2),
        "by_difficulty": dg.MetadataValue.md(
            counts_table(dict(sorted(difficulty.items())), "difficulty", "samples")
        ),
        "rejected_by_reason": dg.MetadataValue.md(
            counts_table(dict(sorted(rejects.items())), "reason", "attempts")
            if rejects
            else "(none)"
        ),
        "samples_grid": dg.MetadataValue.md(markdown_image(png, f"{camp} samples")),
        "samples_grid_png": dg.MetadataValue.path(store.url(grid_rel)),
        "preview": dg.MetadataValue.md(md_table([{k: r[k] for k in columns} for r in preview])),
        "paths": dg.MetadataValue.json([s.path for s in summaries]),
    }
    if answer_types:
        meta["by_answer_type"] = dg.MetadataValue.md(
            counts_table(dict(sorted(answer_types.items())), "answer_type", "samples")
        )
    if summaries[0].lake_version:
        meta["lake_version"] = summaries[0].lake_version
        meta["pool_images"] = summaries[0].pool_images
    return meta


def train_partitions(context: dg.AssetExecutionContext, store, camp: str, config) -> list:
    """Every partition of the run (one, or a range) as jobs of ``runs.train_partition`` in up
    to VPRIM_WORKERS processes; their summaries in partition order."""
    keys = seed_partitions.get_partition_keys()
    jobs = [
        {"camp": camp, "root": store.root_url, "partition": keys.index(key),
         "partitions": SEED_PARTITIONS, "train_size": config.train_size,
         "config": config.settings(), "duckdb_memory": _profile.duckdb_memory}
        for key in context.partition_keys
    ]  # fmt: skip
    results = map_shards(
        R.train_partition, jobs, _profile.workers, shared=store.shared_across_processes
    )
    for key, r in zip(context.partition_keys, results, strict=True):
        context.log.info(f"{key}: {r.seconds:.1f} s -> {r.path}")
    return results


def _camp_asset(camp: str, config_cls: type, description: str) -> dg.AssetsDefinition:
    @dg.asset(name=f"{camp}_camp", group_name="camps", partitions_def=seed_partitions,
              backfill_policy=dg.BackfillPolicy.single_run(), description=description,
              **_SPEC[camp])  # fmt: skip
    def _asset(
        context: dg.AssetExecutionContext, config: config_cls, storage: StorageResource
    ) -> dg.MaterializeResult:
        store = storage.get()
        summaries = train_partitions(context, store, camp, config)
        return dg.MaterializeResult(metadata=_metadata(store, summaries, camp))

    return _asset


def _eval_asset(name: str, config_cls: type, sizes: dict[str, str], description: str):
    """The asset ``name`` that builds the eval sets of ``sizes`` (eval set -> the config field
    that holds its size)."""
    camp = E.EVAL_SETS[next(iter(sizes))].camp

    def build(config, store, con=None) -> dg.MaterializeResult:
        settings = config.settings()
        summaries = [
            E.build_eval(store, eval_set, getattr(config, field), config=settings, con=con)
            for eval_set, field in sizes.items()
        ]
        return dg.MaterializeResult(metadata=_metadata(store, summaries, camp))

    spec = {"name": name, "group_name": "camps", "description": description, **_SPEC[camp]}
    if camp == "counting":  # reads the lake

        @dg.asset(**spec)
        def _asset(
            config: config_cls, storage: StorageResource, duckdb: DuckDBResource
        ) -> dg.MaterializeResult:
            con = duckdb.connect()
            try:
                return build(config, storage.get(), con)
            finally:
                con.close()

        return _asset

    @dg.asset(**spec)
    def _drawn(config: config_cls, storage: StorageResource) -> dg.MaterializeResult:
        return build(config, storage.get())

    return _drawn


counting_camp = _camp_asset(
    "counting", CountingCampConfig,
    "Counting camp (training): coarse and GQA-style constrained counts over lake train "
    "images, every counted instance boxed and checked; one seed range per partition.",
)  # fmt: skip
counting_eval = _eval_asset(
    "counting_eval", CountingCampConfig, {"counting_fine": "eval_size"},
    "Eval set counting_fine: fine-grained counting (attributes, relations, negatives) over "
    "the lake's holdout images only, seeds disjoint from training.",
)  # fmt: skip
counting_coarse_eval = _eval_asset(
    "counting_coarse_eval", CountingCampConfig, {"counting_coarse": "eval_size"},
    "Eval set counting_coarse: plain counts (the counting camp's simplest level, what a first "
    "training run learns) on the lake's holdout images, seeds from 6 << 40.",
)  # fmt: skip
spatial_camp = _camp_asset(
    "spatial", SpatialCampConfig,
    "Spatial reasoning camp (training): CLEVR-style 2D scenes, functional programs whose "
    "trace grounds every step to boxes; one seed range per partition.",
)  # fmt: skip
spatial_eval = _eval_asset(
    "spatial_eval", SpatialCampConfig,
    {"spatial_tf": "eval_tf_size", "spatial_open": "eval_open_size"},
    "Eval sets spatial_tf (true/false) and spatial_open (numbers and words), refusals "
    "included, from seed ranges disjoint from training.",
)  # fmt: skip
maze_camp = _camp_asset(
    "maze", MazeCampConfig,
    "Maze camp (training): rectangular, circular and hexagonal grids carved by DFS, Prim or "
    "Kruskal, 30% made unsolvable; targets walk the solution or the exploration as points.",
)  # fmt: skip
maze_eval = _eval_asset(
    "maze_eval", MazeCampConfig, {"maze": "eval_size"},
    "Eval set maze (2,000 by default), seeds disjoint from training.",
)  # fmt: skip
path_tracing_camp = _camp_asset(
    "path_tracing", PathTracingCampConfig,
    "Path-tracing camp (training): tangled Bezier curves with distractors, single-colour "
    "mode; targets trace the marked curve with curvature- and crossing-adaptive points.",
)  # fmt: skip
path_tracing_eval = _eval_asset(
    "path_tracing_eval", PathTracingCampConfig, {"path_tracing": "eval_size"},
    "Eval set path_tracing (2,000 by default), seeds disjoint from training.",
)  # fmt: skip

camps_assets = [
    counting_camp,
    counting_eval,
    counting_coarse_eval,
    spatial_camp,
    spatial_eval,
    maze_camp,
    maze_eval,
    path_tracing_camp,
    path_tracing_eval,
]

__all__ = ["camps_assets", "seed_partitions", "train_partitions"]
