"""Dagster definitions of the camps: maze and path tracing here, counting and spatial from
:mod:`vprim.assets.camps.defs_counting_spatial`; ``camps_assets`` gathers all of them.

- ``maze_camp`` / ``path_tracing_camp``: training samples, one static partition per seed
  range (``camps/<camp>/train/part-NNNNN.parquet``), partitions in parallel processes.
- ``maze_eval`` / ``path_tracing_eval``: held-out eval sets (``camps/eval/<name>.parquet``).

Wiring, config and metadata only; the work is in ``maze.py``, ``path_tracing.py`` and
``evalsets.py``.
"""

from collections import Counter

import dagster as dg

from vprim.assets.camps import evalsets as E
from vprim.assets.camps.defs_counting_spatial import (
    counting_spatial_assets,
    seed_partitions,
    train_partitions,
)
from vprim.assets.camps.preview_grid import grid_png, markdown_image, pick_preview
from vprim.assets.reporting import counts_table
from vprim.resources.storage import StorageResource


class DrawnCampConfig(dg.Config):
    """Training size over all seed partitions (full scale: maze 460,000, path 125,000)."""

    train_size: int = 400
    eval_size: int = 2000


def _metadata(store, runs: list[E.Run], camp: str) -> dict:
    count = sum(r.count for r in runs)
    seconds = sum(r.seconds for r in runs)
    difficulty: Counter = Counter()
    for r in runs:
        difficulty.update(r.by_difficulty)
    png = grid_png(pick_preview([x for r in runs for x in r.rows], 8))
    grid_rel = f"camps/{camp}/preview/{runs[0].path.rsplit('/', 1)[-1]}.png"
    with store.atomic_path(grid_rel) as tmp, store.fs.open(tmp, "wb") as f:
        f.write(png)
    return {
        "dagster/row_count": count,
        "samples_per_second": round(count / seconds, 2) if seconds else 0.0,
        "seconds": round(seconds, 2),
        "by_difficulty": dg.MetadataValue.md(
            counts_table(dict(sorted(difficulty.items())), "difficulty", "samples")
        ),
        "samples_grid": dg.MetadataValue.md(markdown_image(png, f"{camp} samples")),
        "samples_grid_png": dg.MetadataValue.path(store.url(grid_rel)),
        "paths": dg.MetadataValue.json([r.path for r in runs]),
    }


def _camp_asset(camp: str, description: str):
    @dg.asset(
        name=f"{camp}_camp",
        group_name="camps",
        partitions_def=seed_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"parquet", "pillow"},
        description=description,
    )
    def _asset(
        context: dg.AssetExecutionContext, config: DrawnCampConfig, storage: StorageResource
    ) -> dg.MaterializeResult:
        store = storage.get()
        runs = train_partitions(context, store, camp, config.train_size, E.train_partition)
        return dg.MaterializeResult(metadata=_metadata(store, runs, camp))

    return _asset


def _eval_asset(name: str, description: str):
    @dg.asset(name=f"{name}_eval", group_name="camps", kinds={"parquet", "pillow"},
              description=description)  # fmt: skip
    def _asset(config: DrawnCampConfig, storage: StorageResource) -> dg.MaterializeResult:
        store = storage.get()
        run = E.build_eval(store, name, config.eval_size)
        return dg.MaterializeResult(metadata=_metadata(store, [run], name))

    return _asset


maze_camp = _camp_asset(
    "maze",
    "Maze camp (training): rectangular, circular and hexagonal grids carved by DFS, Prim or "
    "Kruskal, 30% made unsolvable; targets walk the solution or the exploration as points.",
)
path_tracing_camp = _camp_asset(
    "path_tracing",
    "Path-tracing camp (training): tangled Bezier curves with distractors, single-colour "
    "mode; targets trace the marked curve with curvature- and crossing-adaptive points.",
)
maze_eval = _eval_asset("maze", "Eval set maze (2,000 by default), seeds disjoint from training.")
path_tracing_eval = _eval_asset(
    "path_tracing", "Eval set path_tracing (2,000 by default), seeds disjoint from training."
)

drawn_camps_assets = [maze_camp, maze_eval, path_tracing_camp, path_tracing_eval]
camps_assets = [*counting_spatial_assets, *drawn_camps_assets]

__all__ = ["camps_assets", "drawn_camps_assets"]
