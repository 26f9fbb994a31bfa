"""Every path vprim writes under the storage root, defined once (docs/CONTRACTS.md).

Paths are relative to the root and use ``/``; ``Storage`` joins them with the root's URL.
"""

from __future__ import annotations

import posixpath

# the synthetic corpus, inside synthetic_dir(root, scale, seed)
SYNTHETIC_CATALOG = "catalog.parquet"
SYNTHETIC_PLANTED = "planted.parquet"
SYNTHETIC_SOURCES_DIR = "sources"
SYNTHETIC_MARKER = "_COMPLETE"  # written last: a folder without it is not a corpus

# sources
CATALOG_PATH = "catalog/catalog.parquet"
CATALOG_INFO_PATH = "catalog/_info.json"  # where the catalog came from (planted table, scale)
RAW_DIR = "raw_instances"
SOURCE_STATS_DIR = "source_stats"
REJECTS_DIR = "rejects"

# quality
VOCABULARY_PATH = "quality/label_vocabulary.parquet"
EMBEDDING_CACHE_PATH = "quality/label_embeddings.parquet"
LABEL_TRIAGE_PATH = "quality/label_triage.parquet"  # label_embeddings writes, label_map reads
LABEL_MAP_PATH = "quality/label_map.parquet"
QUALITY_VS_PLANTED_PATH = "quality/quality_vs_planted.json"
FUNNEL_PATH = "quality/funnel.json"
IMAGE_PROBES_DIR = "images/probes"  # ingest's image step: one probe table per shard (the cache)
IMAGE_GROUPS_PATH = "images/groups.parquet"  # image_duplicates: near-duplicate content groups
CLEAN_DIR = "clean_instances"
SELECTION_DIR = "source_selection"

# lake
LAKE_DIR = "lake"
LAKE_CURRENT = f"{LAKE_DIR}/CURRENT"
LAKE_STAGED = f"{LAKE_DIR}/STAGED"
LAKE_MANIFEST = "_manifest.json"
LAKE_DISTRIBUTION_PNG = "label_distribution.png"  # in a version's folder: the balance plot

# completion markers: what each step was built from (vprim.assets.incremental)
MARKERS_DIR = "_markers"

# camps and model
CAMPS_DIR = "camps"
MODEL_RUNS_DIR = "model/runs"
MODEL_EVALS_DIR = "model/evals"
LAST_SCORECARD_PATH = f"{MODEL_EVALS_DIR}/last_scorecard.json"


def synthetic_dir(storage_root: str, scale: str, seed: int) -> str:
    """Where the synthetic corpus of (scale, seed) is generated (and cached) under the root."""
    return posixpath.join(storage_root.rstrip("/"), "raw", f"synthetic-{scale}-seed{seed}")


def shard_key(shard: int) -> str:
    """The partition key of a shard number: ``000`` .. ``VPRIM_SHARDS - 1``."""
    return f"{shard:03d}"


def shard_file(directory: str, shard_key: str) -> str:
    """One shard's file of a sharded table."""
    return f"{directory}/shard={shard_key}.parquet"


def marker_file(stage: str, key: str | None = None) -> str:
    """A step's completion marker: one per shard of a sharded stage, one for a global step."""
    return f"{MARKERS_DIR}/{stage}/shard={key}.json" if key else f"{MARKERS_DIR}/{stage}.json"


def rejects_dir(stage: str) -> str:
    """The ledger's folder of one stage (``parse``, ``label``, ``geometry``, ``source``)."""
    return f"{REJECTS_DIR}/stage={stage}"


def lake_version_dir(version: str) -> str:
    return f"{LAKE_DIR}/v={version}"


def lake_samples_dir(version: str) -> str:
    return f"{lake_version_dir(version)}/samples"


def lake_bucket_file(version: str, bucket: int) -> str:
    """One label bucket's samples file of a lake version."""
    return f"{lake_samples_dir(version)}/label_bucket={bucket:03d}/part-0.parquet"


def lake_samples_glob(version: str) -> str:
    """Every samples file of a lake version."""
    return f"{lake_samples_dir(version)}/label_bucket=*/part-*.parquet"


def camp_train_path(camp: str, part: int) -> str:
    """One training partition of a camp."""
    return f"{CAMPS_DIR}/{camp}/train/part-{part:05d}.parquet"


def camp_train_glob(camp: str) -> str:
    return f"{CAMPS_DIR}/{camp}/train/*.parquet"


def camp_preview_path(camp: str, name: str) -> str:
    """The sample grid the UI shows for a camp."""
    return f"{CAMPS_DIR}/{camp}/preview/{name}.png"


def eval_set_path(eval_set: str) -> str:
    return f"{CAMPS_DIR}/eval/{eval_set}.parquet"


def model_run_dir(run: str) -> str:
    """Where a training run's checkpoints go."""
    return f"{MODEL_RUNS_DIR}/{run}"


def predictions_path(run: str, eval_set: str, step: int) -> str:
    return f"{MODEL_EVALS_DIR}/{run}/{eval_set}-step{step:07d}.jsonl"
