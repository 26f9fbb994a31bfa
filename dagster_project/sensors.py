"""Notice new or changed sources and re-ingest only the shards they fall in."""

import json

import dagster as dg

from vprim.assets.contracts import layout
from vprim.assets.partitions import SHARD_COUNT
from vprim.assets.settings import current
from vprim.assets.sources import catalog as cat
from vprim.dagster_project.jobs import ingest_shards
from vprim.resources.storage import StorageResource


def changed_shards(previous: dict[str, str], now: dict[str, str]) -> list[str]:
    """Shards whose digest differs, appeared, or disappeared (all their sources removed)."""
    return sorted(k for k in set(previous) | set(now) if previous.get(k) != now.get(k))


@dg.sensor(
    job=ingest_shards,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Compares per-shard digests of the catalog (content hashes) with the last "
    "materialised catalog and requests a run for each shard that changed.",
)
def catalog_change_sensor(context: dg.SensorEvaluationContext, storage: StorageResource):
    profile = current()
    store = storage.get()
    if not store.exists(layout.CATALOG_PATH):
        return dg.SkipReason("no catalog materialised yet: run rebuild_dataset first")
    if context.cursor:
        previous = json.loads(context.cursor)
    else:
        previous = cat.shard_digests(store.read_parquet(layout.CATALOG_PATH))
    source_url = profile.catalog or str(
        layout.synthetic_dir(store.url(), profile.scale, profile.seed)
        + "/"
        + layout.SYNTHETIC_CATALOG
    )
    try:
        table = cat.validate_catalog(cat.read_catalog_file(source_url), where=source_url)
    except cat.CatalogError as exc:
        return dg.SkipReason(f"catalog cannot be read: {exc}")
    now = cat.shard_digests(cat.with_shards(cat.with_fingerprints(table), SHARD_COUNT))
    shards = changed_shards(previous, now)
    context.update_cursor(json.dumps(now, sort_keys=True))
    if not shards:
        return dg.SkipReason("no source changed since the last look")
    return [
        dg.RunRequest(
            run_key=f"{key}:{now.get(key, 'removed')}",
            partition_key=key,
            tags={"vprim/trigger": "catalog_change"},
        )
        for key in shards
    ]
