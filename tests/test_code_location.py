"""A snapshot of the whole code location: every asset spec, check, job, schedule and sensor.

Any change to the graph a user sees in the UI (a key, group, dependency, partitioning, tag,
kind, check, run config field or default, job selection, schedule or sensor) fails this test
until the snapshot is rewritten and the diff reviewed, as dagster-open-platform's
``test_defs.py`` does:

    VPRIM_UPDATE_SNAPSHOT=1 .venv/bin/python -m pytest tests/test_code_location.py
    git diff tests/snapshots/code_location.json
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

import dagster as dg

from vprim.dagster_project.definitions import defs

SNAPSHOT = Path(__file__).with_name("snapshots") / "code_location.json"


def _partitions(partitions_def: dg.PartitionsDefinition | None) -> dict | None:
    if partitions_def is None:
        return None
    return {"type": type(partitions_def).__name__, "keys": partitions_def.get_partition_keys()}


def _tags(tags: dict) -> dict:
    """Tags as JSON values (Dagster keeps some as JSON strings, some as dicts)."""
    out = {}
    for key, value in sorted(tags.items()):
        try:
            out[key] = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError:
            out[key] = value
    return out


def _config(config_type) -> dict | None:
    """Every run config field with its default (nested config as a dict): the launchpad's view."""
    if not hasattr(config_type, "fields"):
        return None
    out = {}
    for name, field in sorted(config_type.fields.items()):
        nested = _config(field.config_type)
        if nested is not None:
            out[name] = nested
        elif field.default_provided:
            out[name] = field.default_value
        else:
            out[name] = "<required>" if field.is_required else "<optional>"
    return out


def _asset(graph, key: dg.AssetKey) -> dict:
    node = graph.get(key)
    checks = sorted((graph.get_check_spec(c) for c in node.check_keys), key=lambda spec: spec.name)
    condition = node.automation_condition
    policy = node.backfill_policy
    return {
        "group": node.group_name,
        "deps": sorted(k.to_user_string() for k in node.parent_keys),
        "partitions": _partitions(node.partitions_def),
        "kinds": sorted(node.kinds),
        "tags": _tags(node.tags),
        "op_tags": _tags(node.assets_def.op.tags),
        "owners": sorted(node.owners),
        # a digest of the stage's files: any edit changes it, so the snapshot records only
        # whether the asset has one (the data versions of its outputs depend on it)
        "code_version": "<digest of the stage's code>" if node.code_version else None,
        "automation_condition": condition.get_label() if condition else None,
        "backfill_policy": (
            {"type": policy.policy_type.value, "max_partitions": policy.max_partitions_per_run}
            if policy
            else None
        ),
        "checks": [{"name": c.name, "blocking": c.blocking} for c in checks],
        "config": _config(schema.config_type)
        if (schema := node.assets_def.op.config_schema)
        else None,
        "has_description": bool(node.description),
    }


def code_location_snapshot(defs: dg.Definitions = defs) -> dict:
    """What a reviewer checks about the code location, as plain JSON."""
    graph = defs.resolve_asset_graph()
    assets = {k.to_user_string(): _asset(graph, k) for k in graph.get_all_asset_keys()}
    jobs = {}
    for job in defs.jobs:
        resolved = defs.resolve_job_def(job.name)
        jobs[job.name] = {
            "assets": sorted(
                k.to_user_string() for k in resolved.asset_layer.executable_asset_keys
            ),
            "partitions": _partitions(resolved.partitions_def),
            "tags": _tags(resolved.tags),
        }
    schedules = {
        s.name: {
            "cron": s.cron_schedule,
            "timezone": s.execution_timezone,
            "job": s.job_name,
            "default_status": s.default_status.value,
        }
        for s in defs.schedules
    }
    sensors = {
        s.name: {
            "job": s.job_name,
            "minimum_interval_seconds": s.minimum_interval_seconds,
            "default_status": s.default_status.value,
        }
        for s in defs.sensors
    }
    return {
        "assets": dict(sorted(assets.items())),
        "jobs": dict(sorted(jobs.items())),
        "schedules": schedules,
        "sensors": sensors,
        "resources": sorted(defs.resources),
    }


def test_code_location_matches_its_reviewed_snapshot():
    text = json.dumps(code_location_snapshot(), indent=1, sort_keys=False) + "\n"
    if os.environ.get("VPRIM_UPDATE_SNAPSHOT"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(text)
    expected = SNAPSHOT.read_text()
    diff = "".join(
        difflib.unified_diff(
            expected.splitlines(keepends=True), text.splitlines(keepends=True), "snapshot", "now"
        )
    )
    assert not diff, f"the code location changed; review, then VPRIM_UPDATE_SNAPSHOT=1:\n{diff}"


def test_snapshot_sees_a_change():
    """The snapshot is not blind: one asset given an owner shows in it, and only there."""
    moved = defs.map_asset_specs(
        func=lambda spec: (
            spec.replace_attributes(owners=["team:curation"])
            if spec.key == dg.AssetKey("raw_instances")
            else spec
        )
    )
    before, after = code_location_snapshot(), code_location_snapshot(moved)
    assert after["assets"]["raw_instances"]["owners"] == ["team:curation"]
    assert before["assets"]["raw_instances"]["owners"] == []
    assert {k: v for k, v in after["assets"].items() if k != "raw_instances"} == {
        k: v for k, v in before["assets"].items() if k != "raw_instances"
    }
