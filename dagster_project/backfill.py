"""A distributed rebuild: the curation assets as one Dagster asset backfill.

On the local engine a rebuild is one run whose sharded steps cover every shard with a local
process pool. On a distributed engine the same selection goes to the daemon as an asset
backfill: each sharded asset splits into runs of ``VPRIM_SHARDS_PER_RUN`` shards
(``partitions.shard_backfill_policy``), the run queue hands them out, and each run's steps go to
whichever worker is free. The global steps (label vocabulary, embeddings, funnel, lake) run once
their shards are done. It is what the UI's "Materialize all" does, so the backfill, its runs and
their logs show up there the same way.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import dagster as dg
from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
from dagster._core.definitions.events import AssetKeyPartitionKey
from dagster._core.execution.backfill import (
    BULK_ACTION_TERMINAL_STATUSES,
    BulkActionStatus,
    PartitionBackfill,
)
from dagster._core.storage.tags import BACKFILL_ID_TAG
from dagster._core.utils import make_new_backfill_id
from dagster._time import get_current_timestamp

from vprim.dagster_project.jobs import CURATION
from vprim.dagster_project.launch import code_location

#: A run of the backfill still going after this long is failed by the daemon's run monitoring:
#: a Celery task that dies outside its step (a lost database connection) leaves the run
#: waiting for it forever otherwise. Longer than any step at full scale (16 min).
MAX_RUN_SECONDS = 6 * 3600


def run_tags(trigger: str) -> dict[str, str]:
    """The tags of the backfill, which each of its runs carries."""
    return {"vprim/trigger": trigger, "dagster/max_runtime": str(MAX_RUN_SECONDS)}


def curation_subset(asset_graph, shard_keys: list[str]) -> AssetGraphSubset:
    """Every curation asset; the sharded ones over ``shard_keys`` only."""
    wanted = set()
    for key in CURATION.resolve(asset_graph):
        if asset_graph.get(key).partitions_def is None:
            wanted.add(AssetKeyPartitionKey(key, None))
        else:
            wanted.update(AssetKeyPartitionKey(key, shard) for shard in shard_keys)
    return AssetGraphSubset.from_asset_partition_set(wanted, asset_graph)


def submit(instance: dg.DagsterInstance, shard_keys: list[str], tags: Mapping[str, str]) -> str:
    """Hand the rebuild of ``shard_keys`` to the daemon as a backfill; returns its id."""
    with code_location(instance) as (request, _location):
        subset = curation_subset(request.asset_graph, shard_keys)
    backfill = PartitionBackfill.from_asset_graph_subset(
        backfill_id=make_new_backfill_id(),
        backfill_timestamp=get_current_timestamp(),
        tags=dict(tags),
        dynamic_partitions_store=instance,
        asset_graph_subset=subset,
        title="rebuild-dataset",
        description=f"curation over {len(shard_keys)} shards, in runs of shard batches",
        run_config=None,
    )
    instance.add_backfill(backfill)
    return backfill.backfill_id


def runs_of(instance: dg.DagsterInstance, backfill_id: str) -> list[dg.DagsterRun]:
    """The runs the backfill has launched so far, oldest first."""
    records = instance.get_run_records(filters=dg.RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}))
    return [record.dagster_run for record in sorted(records, key=lambda r: r.create_timestamp)]


def wait(instance: dg.DagsterInstance, backfill_id: str, poll_s: float = 2.0) -> PartitionBackfill:
    """Block until the backfill reaches a final status, printing each run as it finishes."""
    reported: set[str] = set()
    while True:
        backfill = instance.get_backfill(backfill_id)
        for run in runs_of(instance, backfill_id):
            if run.is_finished and run.run_id not in reported:
                reported.add(run.run_id)
                print(f"vprim: run {run.run_id[:8]} {run.status.value.lower()}: {_what(run)}")
        if backfill is not None and backfill.status in BULK_ACTION_TERMINAL_STATUSES:
            return backfill
        time.sleep(poll_s)


def _what(run: dg.DagsterRun) -> str:
    keys = sorted(k.to_user_string() for k in run.asset_selection or ())
    first = run.tags.get("dagster/asset_partition_range_start") or run.tags.get("dagster/partition")
    last = run.tags.get("dagster/asset_partition_range_end", first)
    shards = f" shards {first}..{last}" if first else ""
    return ", ".join(keys) + shards


def succeeded(backfill: PartitionBackfill) -> bool:
    return backfill.status == BulkActionStatus.COMPLETED_SUCCESS
