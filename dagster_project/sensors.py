"""Notice new, edited or removed sources and re-curate only the shards they fall in."""

import dagster as dg

from vprim.dagster_project.jobs import rebuild_dataset
from vprim.dagster_project.schedules import recuration_request
from vprim.resources.storage import StorageResource


@dg.sensor(
    job=rebuild_dataset,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Every 5 minutes: fingerprints every source of the deployed catalog (names, "
    "sizes, mtimes of its files, plus the catalog's content_hash hint), compares each shard "
    "with what its completion marker says it was built from, and requests one rebuild_dataset "
    "run over the stale shards: ingest, curation, labels, funnel and lake.",
)
def catalog_change_sensor(context: dg.SensorEvaluationContext, storage: StorageResource):
    # the run key names the stale shards' state: the same change is requested once
    return recuration_request(storage, None, "catalog_change")
