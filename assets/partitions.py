"""Static source shards, the partitions of every sharded asset.

A source's shard is a stable hash of its id (``contracts.hashing.shard_of``).
"""

from __future__ import annotations

import dagster as dg

from vprim.assets.contracts.layout import shard_key
from vprim.assets.settings import current

SHARD_COUNT = current().shards

shard_partitions = dg.StaticPartitionsDefinition([shard_key(i) for i in range(SHARD_COUNT)])


def range_tags(first: str, last: str) -> dict[str, str]:
    """Tags that make one run cover the shards ``first`` .. ``last``."""
    return {
        "dagster/asset_partition_range_start": first,
        "dagster/asset_partition_range_end": last,
    }
