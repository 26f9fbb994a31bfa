"""The nightly re-curation."""

import dagster as dg

from vprim.assets.partitions import ALL_SHARDS_TAGS
from vprim.dagster_project.jobs import rebuild_dataset


@dg.schedule(
    job=rebuild_dataset,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="02:00 UTC every night: re-curate every source in one run over all shards.",
)
def nightly_recuration(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    stamp = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return dg.RunRequest(
        run_key=f"nightly-{stamp}", tags={**ALL_SHARDS_TAGS, "vprim/trigger": "nightly"}
    )
