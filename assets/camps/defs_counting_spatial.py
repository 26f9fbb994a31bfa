"""Dagster definitions of the counting and spatial reasoning camps.

- ``counting_camp`` / ``spatial_camp``: training samples, one static partition per seed range
  (``camps/<camp>/train/part-NNNNN.parquet``); partitions run in parallel as separate runs or
  steps.
- ``counting_eval`` (``counting_fine``) and ``spatial_eval`` (``spatial_tf``,
  ``spatial_open``): the held-out eval sets (``camps/eval/<eval_set>.parquet``).

Wiring, config and metadata only; the work is in ``counting*.py`` and ``spatial*.py``.
"""

from collections import Counter

import dagster as dg

from vprim.assets.camps import counting_spatial_runs as R
from vprim.assets.camps.counting import CountingConfig
from vprim.assets.camps.evalsets import EVAL_SETS, build_counting_coarse
from vprim.assets.camps.preview_grid import grid_png, markdown_image, pick_preview
from vprim.assets.camps.spatial import SpatialConfig
from vprim.assets.parallel import map_shards
from vprim.assets.reporting import counts_table, md_table
from vprim.assets.settings import current
from vprim.resources.duckdb import DuckDBResource
from vprim.resources.storage import StorageResource

_profile = current()

SEED_PARTITIONS = 4
seed_partitions = dg.StaticPartitionsDefinition([f"seeds-{i:02d}" for i in range(SEED_PARTITIONS)])


class CountingCampConfig(dg.Config):
    """Counting camp size and rules (full scale: ``train_size`` 10,000)."""

    train_size: int = 400
    eval_size: int = 600
    pool_seed: int = 0
    margin: float = 0.03
    size_ratio: float = 1.25
    max_count: int = 24
    max_side: int = 512
    coarse_weight: float = 0.4
    attribute_weight: float = 0.2
    relation_weight: float = 0.25
    negative_weight: float = 0.15

    def counting(self) -> CountingConfig:
        return CountingConfig(
            family_weights={
                "coarse": self.coarse_weight,
                "attribute": self.attribute_weight,
                "relation": self.relation_weight,
                "negative": self.negative_weight,
            },
            margin=self.margin,
            size_ratio=self.size_ratio,
            max_count=self.max_count,
            max_side=self.max_side,
        )


class SpatialCampConfig(dg.Config):
    """Spatial camp size and rules (full scale: ``train_size`` 9,000)."""

    train_size: int = 360
    eval_tf_size: int = 1000
    eval_open_size: int = 1000
    refuse_rate: float = 0.12
    min_objects: int = 3
    max_objects: int = 10

    def spatial(self, kinds: tuple[str, ...] = ("tf", "open")) -> SpatialConfig:
        from vprim.assets.camps.spatial_scene import SceneConfig

        scene = SceneConfig(min_objects=self.min_objects, max_objects=self.max_objects)
        return SpatialConfig(scene=scene, kinds=kinds, refuse_rate=self.refuse_rate)


def _partition_index(key: str) -> int:
    return seed_partitions.get_partition_keys().index(key)


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
    png = grid_png(preview, columns=4, size=220)
    grid_rel = f"camps/{camp}/preview/{summaries[0].path.rsplit('/', 1)[-1]}.png"
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


def train_partitions(context, store, camp: str, size: int, fn=R.train_partition, **extra):
    """Every partition of the run (one, or a range) as jobs of ``fn`` (a module-level
    partition function: ``R.train_partition`` or the drawn camps' ``evalsets.train_partition``)
    in up to VPRIM_WORKERS processes; ``extra`` goes into every job."""
    jobs = [
        {"camp": camp, "root": store.root_url, "partition": _partition_index(key),
         "partitions": SEED_PARTITIONS, "train_size": size, **extra}
        for key in context.partition_keys
    ]  # fmt: skip
    results = map_shards(fn, jobs, _profile.workers)
    for key, r in zip(context.partition_keys, results, strict=True):
        context.log.info(f"{key}: {r.seconds:.1f} s -> {r.path}")
    return results


@dg.asset(
    group_name="camps",
    partitions_def=seed_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=["lake"],
    kinds={"parquet", "duckdb"},
    description="Counting camp (training): coarse and GQA-style constrained counts over lake "
    "train images, every counted instance boxed and checked; one seed range per partition.",
)
def counting_camp(
    context: dg.AssetExecutionContext, config: CountingCampConfig, storage: StorageResource
) -> dg.MaterializeResult:
    store = storage.get()
    summaries = train_partitions(
        context, store, "counting", config.train_size, config=config.counting(),
        pool_seed=config.pool_seed, duckdb_memory=_profile.duckdb_memory,
    )  # fmt: skip
    return dg.MaterializeResult(metadata=_metadata(store, summaries, "counting"))


@dg.asset(
    group_name="camps",
    deps=["lake"],
    kinds={"parquet", "duckdb"},
    description="Eval set counting_fine: fine-grained counting (attributes, relations, "
    "negatives) over the lake's holdout images only, seeds disjoint from training.",
)
def counting_eval(
    config: CountingCampConfig, storage: StorageResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    store, con = storage.get(), duckdb.connect()
    base = R.EVAL_SEED_BASE["counting_fine"]
    res = R.counting_run(store, con, range(base, base + config.eval_size), split="eval",
                         config=config.counting(), eval_set="counting_fine",
                         families=R.FINE_FAMILIES, pool_seed=config.pool_seed,
                         seed_base=base)  # fmt: skip
    summary = R.write(store, "camps/eval/counting_fine.parquet", res)
    return dg.MaterializeResult(metadata=_metadata(store, [summary], "counting"))


@dg.asset(
    group_name="camps",
    partitions_def=seed_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"parquet", "pillow"},
    description="Spatial reasoning camp (training): CLEVR-style 2D scenes, functional "
    "programs whose trace grounds every step to boxes; one seed range per partition.",
)
def spatial_camp(
    context: dg.AssetExecutionContext, config: SpatialCampConfig, storage: StorageResource
) -> dg.MaterializeResult:
    store = storage.get()
    summaries = train_partitions(
        context, store, "spatial", config.train_size, config=config.spatial()
    )
    return dg.MaterializeResult(metadata=_metadata(store, summaries, "spatial"))


@dg.asset(
    group_name="camps",
    kinds={"parquet", "pillow"},
    description="Eval sets spatial_tf (true/false) and spatial_open (numbers and words), "
    "refusals included, from seed ranges disjoint from training.",
)
def spatial_eval(config: SpatialCampConfig, storage: StorageResource) -> dg.MaterializeResult:
    store = storage.get()
    summaries = []
    for name, kinds, size in (("spatial_tf", ("tf",), config.eval_tf_size),
                              ("spatial_open", ("open",), config.eval_open_size)):  # fmt: skip
        base = R.EVAL_SEED_BASE[name]
        res = R.spatial_run(range(base, base + size), split="eval",
                            config=config.spatial(kinds), eval_set=name)  # fmt: skip
        summaries.append(R.write(store, f"camps/eval/{name}.parquet", res))
    return dg.MaterializeResult(metadata=_metadata(store, summaries, "spatial"))


class CountingCoarseEvalConfig(dg.Config):
    eval_size: int = EVAL_SETS["counting_coarse"].size


@dg.asset(
    group_name="camps",
    deps=["lake"],
    kinds={"parquet", "duckdb"},
    description="Eval set counting_coarse: plain counts (the counting camp's simplest level, "
    "what a first training run learns) on the lake's holdout images, seeds from 6 << 40.",
)
def counting_coarse_eval(
    config: CountingCoarseEvalConfig, storage: StorageResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    store, con = storage.get(), duckdb.connect()
    try:
        summary = build_counting_coarse(store, con, config.eval_size)
    finally:
        con.close()
    return dg.MaterializeResult(metadata=_metadata(store, [summary], "counting"))


counting_spatial_assets = [
    counting_camp,
    counting_eval,
    counting_coarse_eval,
    spatial_camp,
    spatial_eval,
]

__all__ = ["counting_spatial_assets", "seed_partitions", "train_partitions"]
