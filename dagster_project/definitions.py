"""The code location: gathers each stage's assets and checks, jobs, schedules and sensors."""

from __future__ import annotations

import dagster as dg

from vprim.assets.camps.defs import camps_assets
from vprim.assets.lake.defs import lake_assets
from vprim.assets.model.defs import model_assets
from vprim.assets.quality.defs import quality_assets
from vprim.assets.settings import current
from vprim.assets.sources.defs import sources_assets
from vprim.dagster_project.engine import executor_for
from vprim.dagster_project.jobs import ingest_shards, rebuild_dataset
from vprim.dagster_project.schedules import nightly_recuration
from vprim.dagster_project.sensors import catalog_change_sensor
from vprim.resources.compute import ComputeResource
from vprim.resources.duckdb import DuckDBResource
from vprim.resources.embedder import LabelEmbedderResource
from vprim.resources.storage import StorageResource

_profile = current()

defs = dg.Definitions(
    assets=[
        *sources_assets,
        *quality_assets,
        *lake_assets,
        *camps_assets,
        *model_assets,
    ],
    jobs=[rebuild_dataset, ingest_shards],
    executor=executor_for(_profile),
    schedules=[nightly_recuration],
    sensors=[catalog_change_sensor],
    resources={
        "storage": StorageResource(root=_profile.root),
        "duckdb": DuckDBResource(root=_profile.root, memory_limit=_profile.duckdb_memory),
        "embedder": LabelEmbedderResource(),
        "compute": ComputeResource(),
    },
)
