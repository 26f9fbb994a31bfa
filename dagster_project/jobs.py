"""Jobs over the curation assets."""

from __future__ import annotations

import dagster as dg

from vprim.assets.partitions import shard_partitions

#: Every curation asset, from the catalog to the last stage that exists.
CURATION = dg.AssetSelection.groups("sources", "quality", "lake")

rebuild_dataset = dg.define_asset_job(
    "rebuild_dataset",
    selection=CURATION,
    partitions_def=shard_partitions,
    description=(
        "Re-curate everything: catalog, every shard, and the global steps after them. "
        "Launched over all shards in one run by the nightly schedule and `make rebuild-dataset`."
    ),
)

ingest_shards = dg.define_asset_job(
    "ingest_shards",
    selection=dg.AssetSelection.assets("catalog", "raw_instances", "parse_rejects"),
    partitions_def=shard_partitions,
    description="Refresh the catalog and re-ingest the shards named by the run (sensor target).",
)
