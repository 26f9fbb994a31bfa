"""Nightly re-curation through Dagster on the `tiny` corpus: a rebuild with nothing changed
reads and writes nothing and publishes no version; one edited label in one generated VOC file
is seen by the sensor and the schedule, and one run carries it through to clean_instances and
the lake, leaving every other shard's files as they were."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from tests.tiny import rebuild, tiny_env
from vprim.assets.contracts import layout
from vprim.assets.incremental import rewritten, snapshot
from vprim.assets.lake import publish as P
from vprim.assets.lake.bench_incremental import NEW_LABEL, edit_one_voc_label
from vprim.assets.storage import Storage
from vprim.dagster_project.definitions import defs
from vprim.resources.storage import StorageResource

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A tiny rebuild, its root's files afterwards, and a Dagster instance over its home."""
    base = tmp_path_factory.mktemp("nightly")
    rebuild(base)
    before = snapshot(base / "data")
    with dg.DagsterInstance.from_config(str(base / "home")) as instance:
        yield base, before, instance


def _latest(instance, key: str, partition: str | None = None):
    event = instance.get_latest_materialization_event(dg.AssetKey(key))
    if partition is not None:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[partition]),
            limit=1,
        ).records
        event = records[0].event_log_entry
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def _schedule_request(base: Path, instance):
    schedule = defs.get_schedule_def("nightly_recuration")
    context = dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=dt.datetime(2026, 12, 8, 2, 0),
        resources={"storage": StorageResource(root=str(base / "data"))},
    )
    return schedule.evaluate_tick(context)


def test_partitions_carry_their_own_figures(site):
    base, _, instance = site
    per_shard = {
        key: pl.read_parquet(base / "data" / layout.shard_file(layout.RAW_DIR, key)).height
        for key in ("000", "001", "002", "003")
    }
    assert len(set(per_shard.values())) > 1  # shards differ, so equal figures would be a bug
    for key, rows in per_shard.items():
        meta = _latest(instance, "raw_instances", key)
        assert meta["dagster/row_count"] == rows and meta["status"] == "rebuilt"
    assert "run_shards" in _latest(instance, "raw_instances")  # a table, not a JSON list
    plot = _latest(instance, "lake_samples")["label_distribution_plot"]
    assert plot.startswith("![") and "data:image/png;base64," in plot


def test_a_rebuild_with_nothing_changed_reads_and_writes_nothing(site):
    base, before, instance = site
    version = P.current_version(Storage(str(base / "data")))
    runs = len(instance.get_runs())
    stdout = rebuild(base)
    assert "nothing changed: 4 of 4 shards up to date" in stdout
    assert len(instance.get_runs()) == runs  # no run was needed

    stdout = rebuild(base, "--all-shards")  # a run anyway: every step finds its marker
    assert rewritten(before, snapshot(base / "data")) == []
    store = Storage(str(base / "data"))
    assert P.current_version(store) == version and P.versions(store) == [version]
    for key in ("000", "003"):
        assert _latest(instance, "raw_instances", key)["status"] == "unchanged"
        assert _latest(instance, "clean_instances", key)["status"] == "unchanged"
    assert _latest(instance, "label_embeddings")["embedded_now"] == 0
    assert _latest(instance, "lake_samples")["status"] == "unchanged"
    assert _latest(instance, "lake")["status"] == "unchanged"

    skip = _schedule_request(base, instance)
    assert not skip.run_requests and "nothing changed" in skip.skip_message


def test_one_edited_label_reaches_the_lake_and_nothing_else_moves(site, monkeypatch):
    base, _, instance = site
    root = base / "data"
    store = Storage(str(root))
    published = P.current_version(store)
    source_id, _ = edit_one_voc_label(root, "tiny")
    shard = pl.read_parquet(root / layout.CATALOG_PATH).filter(pl.col("source_id") == source_id)[
        "shard"
    ][0]
    key = layout.shard_key(shard)
    before = snapshot(root)

    sensor = defs.get_sensor_def("catalog_change_sensor")
    context = dg.build_sensor_context(
        instance=instance, resources={"storage": StorageResource(root=str(root))}, definitions=defs
    )
    (request,) = sensor.evaluate_tick(context).run_requests
    assert request.tags["dagster/asset_partition_range_start"] == key
    assert request.tags["dagster/asset_partition_range_end"] == key
    assert request.tags["vprim/stale_shards"] == key
    nightly = _schedule_request(base, instance).run_requests
    assert [r.tags["vprim/stale_shards"] for r in nightly] == [key]

    from vprim.dagster_project.launch import launch_and_wait

    for name, value in tiny_env(base).items():  # the code server reads the deployment from here
        monkeypatch.setenv(name, value)
    run = launch_and_wait(instance, "rebuild_dataset", request.tags)
    assert run.status == dg.DagsterRunStatus.SUCCESS

    clean = pl.read_parquet(root / layout.shard_file(layout.CLEAN_DIR, key))
    assert NEW_LABEL in clean.filter(pl.col("source_id") == source_id)["raw_label"].to_list()
    version = P.current_version(store)
    assert version != published and P.versions(store) == [published, version]
    lake = pl.read_parquet(root / layout.lake_samples_glob(version))
    assert (
        lake.filter(pl.col("source_id") == source_id)["label"].str.contains("(?i)bandoneon").any()
    )

    changed = rewritten(before, snapshot(root))
    shard_files = [p for p in changed if re.search(r"shard=\d{3}", p)]
    assert shard_files and all(f"shard={key}" in p for p in shard_files)
    assert _latest(instance, "raw_instances", key)["status"] == "rebuilt"
    assert _latest(instance, "clean_instances", key)["status"] == "rebuilt"
    # the label map keeps the new name as a novel object after embedding it: one new text
    assert _latest(instance, "label_embeddings")["embedded_now"] == 1
    assert _latest(instance, "label_map")["new_labels"] == 1
