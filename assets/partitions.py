"""Static source shards, the partitions of every sharded asset.

A source's shard is a stable hash of its id (``contracts.hashing.shard_of``).
"""

from __future__ import annotations

import dagster as dg

from vprim.assets.contracts.layout import shard_key
from vprim.assets.settings import current

SHARD_COUNT = current().shards

shard_partitions = dg.StaticPartitionsDefinition([shard_key(i) for i in range(SHARD_COUNT)])

#: Tags that make one run cover every shard (what the nightly schedule and rebuild launch).
ALL_SHARDS_TAGS = {
    "dagster/asset_partition_range_start": shard_key(0),
    "dagster/asset_partition_range_end": shard_key(SHARD_COUNT - 1),
}
