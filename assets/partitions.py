"""Static source shards, the partitions of every sharded asset.

A source's shard is a stable hash of its id (``contracts.hashing.shard_of``).
"""

from __future__ import annotations

import dagster as dg

from vprim.assets.contracts.layout import shard_key
from vprim.assets.settings import current

_profile = current()
SHARD_COUNT = _profile.shards

shard_partitions = dg.StaticPartitionsDefinition([shard_key(i) for i in range(SHARD_COUNT)])

#: How a backfill of a sharded asset splits into runs: batches of VPRIM_SHARDS_PER_RUN shards,
#: each its own run, so on a distributed engine any worker can take any batch. A run that
#: covers a range itself (``range_tags``) stays one run: the local fast path.
shard_backfill_policy = dg.BackfillPolicy.multi_run(max_partitions_per_run=_profile.shards_per_run)


def range_tags(first: str, last: str) -> dict[str, str]:
    """Tags that make one run cover the shards ``first`` .. ``last``."""
    return {
        "dagster/asset_partition_range_start": first,
        "dagster/asset_partition_range_end": last,
    }
