"""The distributed engine on a real local cluster (`vprim cluster up`): Redis, PostgreSQL, an S3
API server, two Celery workers, the daemon and the webserver, all on 127.0.0.1.

One tiny rebuild goes through it with ``VPRIM_ROOT=s3://...``, and one worker process is killed
with SIGKILL while it runs a step. The lake must come out the same as the local engine's on a
local root, every box accounted for, and the webserver must list the runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import dagster as dg
import psutil
import pytest

from tests.tiny import lake_rows, tiny_env
from vprim.assets.settings import PROJECT_ROOT
from vprim.dagster_project import cluster as C

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

#: the step during which a worker is killed: its model load leaves seconds to hit it mid-step
KILLED_STEP = "label_embeddings"
#: the lake's root on the cluster's S3 server
ROOT = "s3://vprim/tiny"


def _services_installed() -> bool:
    return bool(shutil.which("redis-server")) and any(
        Path("/usr/lib/postgresql").glob("*/bin/initdb")
    )


def _free_base_port(span: int = 4) -> int:
    """A base port whose ``span`` successors are all free on 127.0.0.1."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + span < 65535 and all(C._port_free(base + i) for i in range(span)):
            return base
    raise RuntimeError("no four free ports in a row on 127.0.0.1")


@pytest.fixture(scope="module")
def cluster():
    if not _services_installed():
        message = "redis-server and postgresql are not installed: `make services`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # PostgreSQL runs as the postgres user when we are root: its folder must be reachable
    folder = Path(tempfile.mkdtemp(prefix="vprim-cluster-"))
    folder.chmod(0o755)
    # the deployment the cluster's processes load: tiny, 4 shards (conftest), one per run
    os.environ["VPRIM_SHARDS_PER_RUN"] = "1"
    try:
        running = C.up(folder, _free_base_port(), workers=2, root=ROOT)
    finally:
        del os.environ["VPRIM_SHARDS_PER_RUN"]
    try:
        yield running
    finally:
        C.down(folder)
        shutil.rmtree(folder, ignore_errors=True)


def _worker_logs(running: C.Cluster) -> dict[str, Path]:
    return {f"worker{i}": running.dir / "logs" / f"worker{i}.log" for i in (1, 2)}


def _kill_when_step_starts(running: C.Cluster, proc: subprocess.Popen, step: str, out) -> str:
    """SIGKILL the pool process of the worker whose log shows ``step`` starting; its name."""
    _, pids = C.load(running.dir)
    pattern = re.compile(rf"{step} - STEP_START")
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        for name, log in _worker_logs(running).items():
            if log.exists() and pattern.search(log.read_text(errors="replace")):
                (child,) = psutil.Process(pids[name]).children()  # --concurrency 1
                child.send_signal(signal.SIGKILL)
                return name
        time.sleep(0.05)
    out.seek(0)
    raise AssertionError(f"no worker started {step}: exit {proc.poll()}\n{out.read()[-3000:]}")


@pytest.fixture(scope="module")
def distributed(cluster, tmp_path_factory):
    """The tiny rebuild through the cluster, one worker killed mid-step: (stdout, killed)."""
    base = tmp_path_factory.mktemp("distributed")
    env = {
        **tiny_env(base),
        **cluster.env(),
        "VPRIM_SHARDS_PER_RUN": "1",  # four ingest runs, four curation runs
    }
    argv = [sys.executable, "-m", "vprim.dagster_project.cli", "rebuild-dataset"]
    with open(base / "rebuild.log", "w+") as out:
        proc = subprocess.Popen(argv, env=env, cwd=PROJECT_ROOT, stdout=out, stderr=out)
        try:
            killed = _kill_when_step_starts(cluster, proc, KILLED_STEP, out)
            proc.wait(timeout=900)
        finally:
            if proc.poll() is None:
                proc.kill()
        out.seek(0)
        stdout = out.read()
    assert proc.returncode == 0, stdout[-4000:]
    return stdout, killed


def _instance(running: C.Cluster) -> dg.DagsterInstance:
    os.environ.update({k: v for k, v in running.env().items() if k.startswith("DAGSTER_PG_")})
    return dg.DagsterInstance.from_config(str(running.home))


def test_the_distributed_rebuild_gives_the_local_lake(cluster, distributed, tiny_rebuilt):
    local_base, _ = tiny_rebuilt
    env = cluster.env()
    s3 = {
        "key": env["AWS_ACCESS_KEY_ID"],
        "secret": env["AWS_SECRET_ACCESS_KEY"],
        "endpoint_url": env["AWS_ENDPOINT_URL"],
    }
    remote = lake_rows(ROOT, storage_options=s3)
    local = lake_rows(str(local_base / "data"))
    assert len(local) > 500
    assert remote == local  # the same rows, root prefixes aside


def test_a_killed_worker_loses_nothing(cluster, distributed):
    stdout, killed = distributed
    instance = _instance(cluster)
    try:
        runs = instance.get_runs()
        assert runs and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), [
            (r.run_id, r.status) for r in runs
        ]
        # the killed step ran again, on a worker: two starts, one success, in one run
        starts = {}
        for run in runs:
            records = instance.get_records_for_run(
                run.run_id, of_type=dg.DagsterEventType.STEP_START
            ).records
            for record in records:
                starts.setdefault(record.event_log_entry.step_key, []).append(run.run_id)
        assert len(starts[KILLED_STEP]) == 2 and len(set(starts[KILLED_STEP])) == 1
        # sharded steps: one run per shard batch, every box accounted for in each
        for check in ("every_box_accounted_for", "raw_equals_clean_plus_rejected"):
            asset = "raw_instances" if check.startswith("every") else "clean_instances"
            key = dg.AssetCheckKey(dg.AssetKey(asset), check)
            history = instance.event_log_storage.get_asset_check_execution_history(key, limit=10)
            assert len(history) == 4 and {r.status.value for r in history} == {"SUCCEEDED"}
        ingest_runs = [r for r in runs if dg.AssetKey("raw_instances") in r.asset_selection]
        assert len(ingest_runs) == 4
    finally:
        instance.dispose()
    assert killed in {"worker1", "worker2"} and "backfill" in stdout


BACKFILL_QUERY = """
query ($id: String!) {
  partitionBackfillOrError(backfillId: $id) { __typename ... on PartitionBackfill { status } }
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
    ... on Runs { results { runId jobName status
                            repositoryOrigin { repositoryLocationName } } } }
}
"""


def test_the_webserver_lists_the_backfill_and_its_runs(cluster, distributed):
    stdout, _ = distributed
    (backfill_id,) = re.findall(r"backfill (\w+) over 4 shards", stdout)
    body = json.dumps({"query": BACKFILL_QUERY, "variables": {"id": backfill_id}}).encode()
    url = cluster.env()["VPRIM_CLUSTER_UI"] + "/graphql"
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        data = json.load(response)["data"]
    assert data["partitionBackfillOrError"]["status"] == "COMPLETED_SUCCESS"
    runs = data["runsOrError"]["results"]
    assert len(runs) >= 9  # catalog, 4 ingest, globals, 4 curation, the lake
    assert {r["status"] for r in runs} == {"SUCCESS"}
    assert {r["repositoryOrigin"]["repositoryLocationName"] for r in runs} == {"vprim"}
