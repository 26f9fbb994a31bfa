"""Dagster wiring shared by the stages' defs modules: per-partition figures, data versions,
and how a skipped (unchanged) step reports itself.

One step may cover a range of shards (``make rebuild-dataset`` runs all 64 in one run). Dagster
records one materialisation per partition; each gets that partition's own figures here, so a
partition's page shows its rows, sources and rejects, not the run's totals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import dagster as dg

from vprim.assets.incremental import StepOutcome, digest
from vprim.assets.reporting import counts_table, md_table


def add_partition_metadata(
    context: dg.AssetExecutionContext,
    asset_key: str,
    per_partition: Mapping[str, Mapping[str, object]],
) -> None:
    """Attach each partition's own metadata to its materialisation event."""
    for key, metadata in per_partition.items():
        context.add_asset_metadata(dict(metadata), asset_key=asset_key, partition_key=key)


def step_data_version(summaries: Sequence[Mapping]) -> dg.DataVersion:
    """The data version of a sharded step: the shard's own when it covered one shard (the
    sensor's and the nightly runs), else a digest of the shards' versions (Dagster keeps one
    data version per step; each partition's own is in its ``data_version`` metadata)."""
    versions = {s["shard"]: s["data_version"] for s in summaries}
    if len(versions) == 1:
        return dg.DataVersion(next(iter(versions.values())))
    return dg.DataVersion(digest(versions))


def status_counts(summaries: Sequence[Mapping]) -> dict[str, int]:
    """How many shards of a step were rebuilt and how many were unchanged (skipped)."""
    rebuilt = sum(1 for s in summaries if s["status"] == "rebuilt")
    return {"shards_rebuilt": rebuilt, "shards_unchanged": len(summaries) - rebuilt}


def shards_table(summaries: Sequence[Mapping], columns: Sequence[str]) -> dg.MetadataValue:
    """The step's shards as one markdown table: shard and status, then ``columns``."""
    return dg.MetadataValue.md(md_table(summaries, ["shard", "status", *columns]))


def outcome_metadata(outcome: StepOutcome) -> dict:
    """What every global step reports about itself: rebuilt or unchanged, and why."""
    why = "inputs, config and code as last built" if not outcome.rebuilt else "inputs changed"
    return {"status": outcome.status, "status_reason": why, "data_version": outcome.data_version}


def shard_metadata(summary: Mapping, rows: int, **figures: object) -> dict:
    """One shard's own figures for its partition's event: rows, status, data version, more."""
    return {
        "dagster/row_count": rows,
        "status": summary["status"],
        "data_version": summary["data_version"],
        **figures,
    }


def rejects_metadata(summary: Mapping, unit: str) -> dict:
    """One shard's ledger rows by reason, for its partition's event."""
    rejects = summary["rejects_by_reason"]
    table = dg.MetadataValue.md(counts_table(rejects, "reason", unit))
    return shard_metadata(summary, sum(rejects.values()), rejects_by_reason=table)
