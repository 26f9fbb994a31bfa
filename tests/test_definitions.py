"""The code location loads, and its asset graph is what the README says it is."""

from __future__ import annotations

import importlib
import sys

import dagster as dg
import pytest

from vprim.assets.settings import current
from vprim.dagster_project.definitions import defs


def test_definitions_load_and_validate():
    dg.Definitions.validate_loadable(defs)


def test_asset_graph_snapshot():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"catalog", "raw_instances", "parse_rejects"} <= keys
    raw = graph.get(dg.AssetKey("raw_instances"))
    assert {d.to_user_string() for d in raw.parent_keys} == {"catalog"}
    assert raw.partitions_def is not None
    assert raw.partitions_def.get_partition_keys() == ["000", "001", "002", "003"]
    assert graph.get(dg.AssetKey("catalog")).partitions_def is None
    checks = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    assert ("raw_instances", "every_box_accounted_for") in checks
    assert raw.backfill_policy == dg.BackfillPolicy.multi_run(8)
    quality = {
        "label_vocabulary",
        "label_embeddings",
        "label_map",
        "clean_instances",
        "quality_rejects",
        "source_selection",
        "curation_funnel",
    }
    assert quality <= keys
    clean = graph.get(dg.AssetKey("clean_instances"))
    assert {d.to_user_string() for d in clean.parent_keys} == {"raw_instances", "label_map"}
    assert clean.partitions_def == raw.partitions_def
    assert ("clean_instances", "raw_equals_clean_plus_rejected") in checks
    assert {"lake_samples", "lake"} <= keys
    lake_samples = graph.get(dg.AssetKey("lake_samples"))
    assert {d.to_user_string() for d in lake_samples.parent_keys} == {
        "clean_instances",
        "source_selection",
        "label_map",
    }
    assert {d.to_user_string() for d in graph.get(dg.AssetKey("lake")).parent_keys} == {
        "lake_samples"
    }
    lake_checks = {name for key, name in checks if key == "lake_samples"}
    assert lake_checks == {
        "lake_schema",
        "boxes_inside_images",
        "no_rejected_label",
        "cap_respected",
        "no_duplicate_image_label",
        "manifest_counts_match",
    }
    for name in lake_checks:  # a failing check stops the publish
        spec = defs.resolve_asset_graph().get_check_spec(dg.AssetCheckKey(lake_samples.key, name))
        assert spec.blocking


def test_jobs_schedules_sensors():
    assert {j.name for j in defs.jobs} >= {"rebuild_dataset", "ingest_shards"}
    (schedule,) = list(defs.schedules)
    assert schedule.name == "nightly_recuration"
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "UTC"
    assert {s.name for s in defs.sensors} == {"catalog_change_sensor"}


def test_nightly_schedule_requests_one_run_over_every_shard():
    schedule = defs.get_schedule_def("nightly_recuration")
    context = dg.build_schedule_context(
        scheduled_execution_time=__import__("datetime").datetime(2026, 11, 29, 2, 0)
    )
    request = schedule.evaluate_tick(context).run_requests[0]
    assert request.tags["dagster/asset_partition_range_start"] == "000"
    assert request.tags["dagster/asset_partition_range_end"] == "003"
    assert request.run_key == "nightly-2026-11-29"


def test_model_assets_route_to_gpu_workers():
    graph = defs.resolve_asset_graph()
    train = graph.get(dg.AssetKey("training_run"))
    assert {d.to_user_string() for d in train.parent_keys} == {"counting_camp", "spatial_camp"}
    evaluation = graph.get(dg.AssetKey("evaluation"))
    assert "training_run" in {d.to_user_string() for d in evaluation.parent_keys}
    for key in ("training_run", "evaluation"):
        spec = defs.get_assets_def(key).op.tags
        k8s = spec["dagster-k8s/config"]
        k8s = __import__("json").loads(k8s) if isinstance(k8s, str) else k8s
        assert k8s["container_config"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert spec["dagster-celery/queue"] == "gpu"


def test_steps_fork_from_a_server_that_has_loaded_the_code_location():
    # a spawned step imported dagster, torch and every asset module again: ~5 s a step
    config = defs.executor.apply_config_mapping({}).value["config"]
    (preload,) = config["start_method"]["forkserver"]["preload_modules"]
    # multiprocessing ignores a preload that fails to import, so the name must be right
    assert importlib.import_module(preload) is sys.modules["vprim.dagster_project.definitions"]
    limits = config["tag_concurrency_limits"]
    assert {"key": "vprim/memory", "value": "duckdb", "limit": 1} in limits


def test_ingest_runs_one_process_more_than_the_other_steps():
    assert current({"VPRIM_WORKERS": "2"}).ingest_workers == 3
    assert current({"VPRIM_WORKERS": "2", "VPRIM_INGEST_WORKERS": "1"}).ingest_workers == 1
    assert current({}).ingest_workers == current({}).workers + 1


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("VPRIM_SCALE", "huge", "VPRIM_SCALE='huge'; expected one of ('tiny', 'small', 'full')"),
        ("VPRIM_SHARDS", "0", "VPRIM_SHARDS=0; expected 1..4096"),
        ("VPRIM_SHARDS", "4097", "VPRIM_SHARDS=4097; expected 1..4096"),
        ("VPRIM_WORKERS", "two", "VPRIM_WORKERS='two'; expected a whole number"),
        ("VPRIM_PROFILE", "prod", "VPRIM_PROFILE='prod'; expected one of"),
    ],
)
def test_a_bad_setting_is_one_line(monkeypatch, capsys, tmp_path, setting, value, message):
    # a user's mistake: exit 2 with one line on stderr, before anything is generated or launched
    from vprim.dagster_project.cli import main

    monkeypatch.setenv(setting, value)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    assert main(["rebuild-dataset", "--root", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vprim: {message}") and err.count("\n") == 1, err
    assert not (tmp_path / "data").exists()
