"""The code location loads and behaves: schedules, GPU routing, executor, settings.

Its whole shape (assets, checks, jobs, schedules, sensors) is snapshotted in
``test_code_location.py``.
"""

from __future__ import annotations

import importlib
import sys

import dagster as dg
import pytest

from vprim.assets.settings import SettingsError, current, write_deployment
from vprim.dagster_project.definitions import defs
from vprim.resources.storage import StorageResource


def test_definitions_load_and_validate():
    dg.Definitions.validate_loadable(defs)


def test_nightly_schedule_skips_with_a_reason_before_the_first_build(tmp_path):
    schedule = defs.get_schedule_def("nightly_recuration")
    context = dg.build_schedule_context(  # no instance: a disposed one would stay referenced
        scheduled_execution_time=__import__("datetime").datetime(2026, 11, 29, 2, 0),
        resources={"storage": StorageResource(root=str(tmp_path))},
    )
    result = schedule.evaluate_tick(context)
    assert not result.run_requests
    assert "does not exist" in result.skip_message and "make rebuild-dataset" in result.skip_message


def test_the_deployment_file_wins_over_the_daemons_environment(tmp_path):
    """What `vprim rebuild-dataset` persisted in DAGSTER_HOME is what the daemon curates, not
    whatever its shell exports; the command itself reads the environment and writes the file."""
    home = {"DAGSTER_HOME": str(tmp_path / "home")}
    built = current({**home, "VPRIM_SCALE": "tiny", "VPRIM_ROOT": "/srv/lake", "VPRIM_SHARDS": "8"})
    path = write_deployment(built, home)
    daemon = current(
        {**home, "VPRIM_SCALE": "full", "VPRIM_ROOT": "/tmp/else", "VPRIM_SHARDS": "2"}
    )
    assert (daemon.scale, daemon.root, daemon.shards) == ("tiny", "/srv/lake", 8)
    cli = current({**home, "VPRIM_SCALE": "small"}, deployment=False)
    assert cli.scale == "small"
    path.write_text("{not json")
    with pytest.raises(SettingsError, match="cannot be read"):
        current(home)


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
