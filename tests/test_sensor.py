"""The catalog sensor requests exactly the shards whose sources changed."""

from __future__ import annotations

import json

import dagster as dg

from vprim.assets.contracts import hashing as H
from vprim.assets.contracts import layout
from vprim.assets.partitions import SHARD_COUNT
from vprim.assets.sources import catalog as cat
from vprim.assets.storage import Storage
from vprim.dagster_project.definitions import defs
from vprim.resources.storage import StorageResource


def _catalog(tmp_path, hashes: dict[str, str]) -> str:
    rows = [
        {"source_id": sid, "uri": f"/data/{sid}", "format": "coco", "content_hash": h}
        for sid, h in hashes.items()
    ]
    path = tmp_path / "catalog.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return str(path)


def _evaluate(sensor, root: str, cursor: str | None):
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(
            instance=instance,
            cursor=cursor,
            resources={"storage": StorageResource(root=root)},
            definitions=defs,
        )
        result = sensor.evaluate_tick(context)
        return result, context.cursor


def test_sensor_requests_only_changed_shards(tmp_path, monkeypatch):
    hashes = {f"src{i}": f"h{i}" for i in range(40)}
    url = _catalog(tmp_path, hashes)
    monkeypatch.setenv("VPRIM_CATALOG", url)
    sensor = defs.get_sensor_def("catalog_change_sensor")
    root = str(tmp_path / "root")

    result, _ = _evaluate(sensor, root, None)
    assert not result.run_requests and "rebuild_dataset first" in result.skip_message

    table = cat.build_catalog(url, SHARD_COUNT, storage_root=root, scale="tiny", seed=0)[0]
    Storage(root).write_parquet(table, layout.CATALOG_PATH)
    result, cursor = _evaluate(sensor, root, None)
    assert not result.run_requests  # nothing changed since the materialised catalog

    hashes["src3"] = "new-content"  # one source changed
    hashes["src99"] = "brand-new"  # one source added
    _catalog(tmp_path, hashes)
    result, cursor = _evaluate(sensor, root, cursor)
    expected = {layout.shard_key(H.shard_of(s, SHARD_COUNT)) for s in ("src3", "src99")}
    assert {r.partition_key for r in result.run_requests} == expected
    assert all(r.job_name in (None, "ingest_shards") for r in result.run_requests)

    result, _ = _evaluate(sensor, root, cursor)  # the cursor remembers what it saw
    assert not result.run_requests


def test_changed_shards_counts_removed_shards():
    from vprim.dagster_project.sensors import changed_shards

    assert changed_shards({"000": "a", "001": "b"}, {"000": "a"}) == ["001"]
    assert changed_shards({}, {"002": "c"}) == ["002"]
    assert changed_shards({"000": "a"}, {"000": "a"}) == []
