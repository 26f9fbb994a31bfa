"""The production Dagster instance files: Dagster accepts them, the classes they name import and
accept their config, their run limits do what the pipeline needs, and the hosts' instance
starts on a real PostgreSQL."""

from __future__ import annotations

import datetime
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy
from dagster._config import process_config, resolve_to_config_type
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config
from dagster._core.launcher import DefaultRunLauncher
from dagster._serdes.config_class import class_from_code_pointer
from dagster._utils.tags import TagConcurrencyLimitsCounter
from dagster_k8s import K8sRunLauncher
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import get_conn_string

from tests.deploy import DEPLOY, deploy_yaml
from vprim.assets.settings import PROJECT_ROOT
from vprim.dagster_project import schedules
from vprim.dagster_project.definitions import defs
from vprim.resources.storage import StorageResource

PG_ENV = {
    "DAGSTER_PG_USER": "vprim",
    "DAGSTER_PG_PASSWORD": "not-a-secret",
    "DAGSTER_PG_HOST": "127.0.0.1",
    "DAGSTER_PG_DB": "dagster",
    "DAGSTER_PG_PORT": "5433",
}
LAUNCHERS = {"dagster.yaml": DefaultRunLauncher, "dagster-k8s.yaml": K8sRunLauncher}


@pytest.fixture
def pg_env(monkeypatch):
    for name, value in PG_ENV.items():
        monkeypatch.setenv(name, value)


def _processed(config_schema, value: dict) -> dict:
    result = process_config(resolve_to_config_type(config_schema), value)
    assert result.success, [error.message for error in result.errors]
    return result.value


@pytest.mark.parametrize("name", LAUNCHERS)
def test_dagster_accepts_the_instance_file(pg_env, name):
    config, custom_instance_class = dagster_instance_config(str(DEPLOY), name)
    assert custom_instance_class is None
    assert config["run_retries"] == {
        "enabled": True,
        "max_retries": 2,
        "retry_on_asset_or_op_failure": True,
    }
    assert config["run_monitoring"]["enabled"] and config["telemetry"] == {"enabled": False}


@pytest.mark.parametrize(("name", "launcher"), LAUNCHERS.items())
def test_the_classes_it_names_import_and_accept_their_config(pg_env, name, launcher):
    instance = deploy_yaml(name)
    named = {}
    for section in ("run_launcher", "run_coordinator"):
        ref = instance[section]
        named[section] = cls = class_from_code_pointer(ref["module"], ref["class"])
        _processed(cls.config_type(), ref.get("config", {}))
    assert named == {"run_launcher": launcher, "run_coordinator": dg.QueuedRunCoordinator}
    storage = _processed(DagsterPostgresStorage.config_type(), instance["storage"]["postgres"])
    # every connection setting comes from the environment, none from the file
    db = storage["postgres_db"]
    assert {k: db[k] for k in ("username", "password", "hostname", "db_name", "port")} == {
        "username": "vprim",
        "password": "not-a-secret",
        "hostname": "127.0.0.1",
        "db_name": "dagster",
        "port": 5433,
    }
    # ... and through a driver the lock installs (a bare postgresql:// would need psycopg 3)
    assert sqlalchemy.create_engine(get_conn_string(**db)).dialect.driver == "psycopg2"


def test_the_two_instances_differ_only_in_how_runs_start():
    hosts, k8s = deploy_yaml("dagster.yaml"), deploy_yaml("dagster-k8s.yaml")
    monitoring = dict(k8s["run_monitoring"])
    # only the Kubernetes launcher can start a lost run again; the hosts' one cannot
    assert monitoring.pop("max_resume_run_attempts") == 3
    assert not DefaultRunLauncher().supports_resume_run
    assert {**k8s, "run_launcher": None, "run_monitoring": monitoring} == {
        **hosts,
        "run_launcher": None,
    }


@pytest.mark.parametrize(
    ("old", "new", "schema"),
    [
        # a misspelt section: Dagster's instance schema refuses it
        ("run_retries:", "run_retires:", "instance"),
        # a misspelt field in the coordinator's own config: its config type refuses it
        ("max_concurrent_runs: 10", "max_concurent_runs: 10", "run_coordinator"),
    ],
)
def test_a_misspelt_instance_file_is_refused(pg_env, tmp_path, old, new, schema):
    text = (DEPLOY / "dagster.yaml").read_text()
    assert old in text
    (tmp_path / "dagster.yaml").write_text(text.replace(old, new))
    if schema == "instance":
        with pytest.raises(DagsterInvalidConfigError, match="run_retires"):
            dagster_instance_config(str(tmp_path))
    else:
        config = dagster_instance_config(str(tmp_path))[0]["run_coordinator"]["config"]
        result = process_config(
            resolve_to_config_type(dg.QueuedRunCoordinator.config_type()), config
        )
        assert not result.success


def _nightly_run_tags(monkeypatch, root: Path) -> dict[str, str]:
    """The tags of the run the nightly schedule requests on a night when one shard changed."""

    class OneStaleShard:
        nothing_to_do, stale, state = False, {"002"}, "state-1"

        def describe(self) -> str:
            return "shard 002 changed"

        def run_range(self) -> tuple[str, str]:
            return ("002", "002")

    monkeypatch.setattr(schedules, "plan", lambda store, profile: OneStaleShard())
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime.datetime(2026, 11, 29, 2, 0),
        resources={"storage": StorageResource(root=str(root))},
    )
    (request,) = defs.get_schedule_def("nightly_recuration").evaluate_tick(context).run_requests
    return request.tags


def _queue(in_progress: list[dict[str, str]]) -> TagConcurrencyLimitsCounter:
    """The daemon's tag limits of the instance, with runs of these tags in progress."""
    limits = deploy_yaml("dagster.yaml")["run_coordinator"]["config"]["tag_concurrency_limits"]
    runs = [dg.DagsterRun(job_name="rebuild_dataset", tags=tags) for tags in in_progress]
    return TagConcurrencyLimitsCounter(limits, runs)


def test_a_nightly_run_waits_for_the_previous_night(monkeypatch, tmp_path):
    nightly = _nightly_run_tags(monkeypatch, tmp_path)
    assert nightly["vprim/trigger"] == "nightly"
    blocked = _queue([nightly]).is_blocked
    assert blocked(dg.DagsterRun(job_name="rebuild_dataset", tags=nightly))
    # a user's rebuild or the sensor's ingest does not wait for it
    assert not blocked(dg.DagsterRun(job_name="rebuild_dataset", tags={"vprim/trigger": "cli"}))
    assert not _queue([]).is_blocked(dg.DagsterRun(job_name="rebuild_dataset", tags=nightly))


def test_gpu_runs_are_limited_to_the_gpus(monkeypatch, tmp_path):
    blocked = _queue([{"vprim/gpu": "training"}]).is_blocked
    # any value of the tag counts: an evaluation waits for a training run on the one GPU
    assert blocked(dg.DagsterRun(job_name="model", tags={"vprim/gpu": "evaluation"}))
    assert not blocked(dg.DagsterRun(job_name="rebuild_dataset", tags={}))
    assert not blocked(
        dg.DagsterRun(job_name="model", tags=_nightly_run_tags(monkeypatch, tmp_path))
    )


def test_the_only_pool_is_the_one_the_docs_limit():
    # a pool has no limit until `dagster instance concurrency set <pool> <n>` (dagster.yaml):
    # a new pool needs its line in docs/DEPLOY.md
    graph = defs.resolve_asset_graph()
    pools = {graph.get(key).assets_def.op.pool for key in graph.get_all_asset_keys()}
    assert pools - {None} == {"lake"}
    docs = (PROJECT_ROOT / "docs" / "DEPLOY.md").read_text()
    assert "dagster instance concurrency set lake 1" in docs


# -- the hosts' instance on a real PostgreSQL ------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL server of this module's own (the local cluster's code: Debian's binaries),
    with an empty database ``dagster``; the environment that dagster.yaml reads."""
    from vprim.dagster_project import postgres as pg

    folder = Path(tempfile.mkdtemp(prefix="vprim-deploy-pg-"))
    folder.chmod(0o755)  # as root, PostgreSQL runs as the postgres user: it must get in
    env = {**PG_ENV, "DAGSTER_PG_PORT": str(_free_port())}
    port, password = int(env["DAGSTER_PG_PORT"]), env["DAGSTER_PG_PASSWORD"]
    try:
        pg.start(folder / "data", port, password)
    except pg.PostgresError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        # CI installs it (`make services`): there a missing server is a failure
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"no PostgreSQL here: {exc}")
    try:
        pg.create_database(port, password, env["DAGSTER_PG_DB"])
        yield env
    finally:
        pg.stop(folder / "data")
        shutil.rmtree(folder, ignore_errors=True)


def test_the_hosts_instance_runs_on_postgresql(postgres, monkeypatch, tmp_path):
    for name, value in postgres.items():
        monkeypatch.setenv(name, value)
    shutil.copy(DEPLOY / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert isinstance(instance.run_coordinator, dg.QueuedRunCoordinator)
        assert isinstance(instance.run_launcher, DefaultRunLauncher)
        assert type(instance.run_storage).__module__.startswith("dagster_postgres")
        assert (instance.run_retries_max_retries, instance.run_monitoring_enabled) == (2, True)
        run = instance.add_run(dg.DagsterRun(job_name="rebuild_dataset", tags={"vprim/gpu": "1"}))
        assert instance.get_run_by_id(run.run_id).tags == {"vprim/gpu": "1"}
    # the deployment step docs/DEPLOY.md and dagster.yaml prescribe, as written there
    dagster = Path(sys.executable).with_name("dagster")
    command = [str(dagster), "instance", "concurrency", "set", "lake", "1"]
    done = subprocess.run(
        command, env={**os.environ, "DAGSTER_HOME": str(tmp_path)}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.event_log_storage.get_concurrency_info("lake").slot_count == 1
