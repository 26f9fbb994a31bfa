"""The nightly re-curation: only what changed since the last build."""

import dagster as dg

from vprim.assets.lake.recuration import PlanError, plan
from vprim.assets.partitions import range_tags
from vprim.assets.settings import current
from vprim.dagster_project.jobs import rebuild_dataset
from vprim.resources.storage import StorageResource


def recuration_request(storage: StorageResource, run_key: str | None, trigger: str):
    """A run of ``rebuild_dataset`` over the stale shards, or why there is none.

    The deployment (root, catalog, scale, seed, shards) comes from the file ``vprim
    rebuild-dataset`` persisted in DAGSTER_HOME, never from the daemon's environment. A run
    covers one range of shards: the stale ones, from the first to the last. A shard inside
    that range that did not change is skipped by its completion marker.
    """
    profile = current()
    try:
        todo = plan(storage.get(), profile)
    except PlanError as exc:
        return dg.SkipReason(str(exc))
    if todo.nothing_to_do:
        return dg.SkipReason(todo.describe())
    return dg.RunRequest(
        run_key=run_key or f"{trigger}:{todo.state}",
        tags={
            **range_tags(*todo.run_range()),
            "vprim/trigger": trigger,
            "vprim/stale_shards": ",".join(sorted(todo.stale)) or "none",
            "vprim/plan": todo.describe()[:500],
        },
    )


@dg.schedule(
    job=rebuild_dataset,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="02:00 UTC every night: re-curate only the shards whose sources, code or "
    "settings changed, and the global steps after them; skipped when nothing changed.",
)
def nightly_recuration(context: dg.ScheduleEvaluationContext, storage: StorageResource):
    stamp = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return recuration_request(storage, f"nightly-{stamp}", "nightly")
