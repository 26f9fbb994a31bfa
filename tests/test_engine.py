"""The engine setting: which executor a deployment gets, what both sides of Celery share, and
the settings a cluster's long-running processes hold the rebuild to."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from vprim.assets.parallel import pid_alive
from vprim.assets.settings import SettingsError, current, deployment_conflicts, write_deployment
from vprim.dagster_project import bench_cluster, cluster
from vprim.dagster_project.engine import celery_settings, executor_for, root_is_shared


def _profile(**env):
    return current({"VPRIM_SHARDS": "8", **env}, deployment=False)


@pytest.mark.parametrize(
    ("env", "executor"),
    [
        ({}, "multi_or_in_process_executor"),
        ({"VPRIM_ENGINE": "celery"}, "celery"),
        ({"VPRIM_ENGINE": "k8s"}, "k8s"),
        ({"VPRIM_ENGINE": "celery", "VPRIM_ROOT": "memory://x"}, "in_process"),
    ],
)
def test_each_engine_gets_its_executor(env, executor):
    name = executor_for(_profile(**env)).name
    assert name == executor or (executor.startswith("multi") and name == "multiprocess")


def test_a_memory_root_is_not_shared_and_the_others_are():
    assert not root_is_shared("memory://lake")
    assert all(root_is_shared(r) for r in ("/data", "file:///data", "s3://b/p"))


def test_settings_are_checked_with_a_one_line_reason():
    with pytest.raises(SettingsError, match="VPRIM_ENGINE='spark'"):
        _profile(VPRIM_ENGINE="spark")
    with pytest.raises(SettingsError, match=r"VPRIM_SHARDS_PER_RUN=9; expected 1..8"):
        _profile(VPRIM_SHARDS_PER_RUN="9")
    assert _profile().shards_per_run == 8 and _profile(VPRIM_SHARDS="4").shards_per_run == 4


def test_a_killed_worker_gives_its_task_back():
    settings = celery_settings({"VPRIM_CELERY_VISIBILITY_S": "120"})
    assert settings["task_acks_late"] and settings["task_reject_on_worker_lost"]
    assert settings["worker_prefetch_multiplier"] == 1
    assert settings["broker_transport_options"]["visibility_timeout"] == 120


def test_a_rebuild_on_other_settings_than_the_clusters_names_what_differs(tmp_path):
    home = {"DAGSTER_HOME": str(tmp_path)}
    started = current({**home, "VPRIM_SCALE": "tiny", "VPRIM_SHARDS": "4"}, deployment=False)
    write_deployment(started, home)
    assert deployment_conflicts(started, home) == []
    asked = current({**home, "VPRIM_SCALE": "small", "VPRIM_SHARDS": "4"}, deployment=False)
    assert deployment_conflicts(asked, home) == ["VPRIM_SCALE='tiny' (asked: 'small')"]


def test_the_cluster_listens_on_loopback_ports_in_a_row(tmp_path):
    env = cluster.Cluster(tmp_path, base_port=20000, pg_password="pw").env()
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:20002"
    assert env["VPRIM_CELERY_BROKER"] == "redis://127.0.0.1:20000/0"
    assert env["DAGSTER_PG_PORT"] == "20001" and env["VPRIM_CLUSTER_UI"].endswith(":20003")
    assert all("127.0.0.1" in v for k, v in env.items() if "://" in v and k != "VPRIM_ROOT")


def test_down_finds_a_grandchild_that_left_the_process_group():
    # a parent whose child starts a session of its own, as a code server may
    code = (
        "import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], "
        "start_new_session=True); time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not cluster._descendants(parent.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        (grandchild,) = cluster._descendants(parent.pid)
        cluster._stop_group(parent.pid, grace_s=2)
        assert parent.wait(timeout=10) is not None
        time.sleep(0.3)
        assert not pid_alive(grandchild) or _zombie(grandchild)
    finally:
        parent.kill()


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_the_paper_estimate_divides_only_the_sharded_steps_and_caps_at_the_shards():
    one, eight = bench_cluster.estimate(1, 10.0), bench_cluster.estimate(8, 10.0)
    sharded = (
        bench_cluster.FULL_SCALE["raw_instances"] + bench_cluster.FULL_SCALE["clean_instances"]
    )
    assert one["sharded steps s"] == round(sharded, 1)
    assert eight["sharded steps s"] == round(sharded / 8, 1)
    assert bench_cluster.estimate(128, 10.0)["sharded steps s"] == round(sharded / 64, 1)
    assert one["one-worker steps s"] == eight["one-worker steps s"]
