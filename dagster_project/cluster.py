"""A real distributed deployment on this machine, to try: ``vprim cluster up|down|status|env``.

``up`` starts, each listening on 127.0.0.1 only:

- Redis (Debian's ``redis-server``): the Celery broker and result backend;
- PostgreSQL (Debian's ``postgresql``): Dagster's run, event and schedule storage;
- an S3 API server: moto in server mode (MinIO is not packaged here; moto's server speaks the
  S3 API that s3fs uses and installs from PyPI with the lock). It keeps objects in memory, so
  ``down`` drops them: this S3 is for trying the cluster, not for keeping a lake;
- N Celery workers (``celery_app``), the Dagster daemon (queued runs, backfills, retries) and
  the webserver, with the production instance file ``deploy/dagster.yaml``.

Everything lives in one folder (``.cluster`` by default): data, logs, the processes' ids, and
``env``, the settings a shell needs to use the cluster (``eval "$(vprim cluster env)"``). Each
process runs in a session of its own, so ``down`` stops it and every child it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from vprim.assets.parallel import pid_alive
from vprim.assets.settings import PROJECT_ROOT, SCALES, current, write_deployment
from vprim.dagster_project import postgres
from vprim.dagster_project.engine import CELERY_BACKEND_ENV, CELERY_BROKER_ENV
from vprim.dagster_project.postgres import PG_USER

DEFAULT_DIR = PROJECT_ROOT / ".cluster"
DEFAULT_BASE_PORT = 17300
#: where the cluster's lake goes unless ``--root`` says otherwise: its own S3 server
DEFAULT_ROOT = "s3://vprim/root"
PG_DB, BUCKET = "dagster", "vprim"
#: the production instance file the cluster's DAGSTER_HOME uses
INSTANCE_FILE = Path(__file__).resolve().parent / "deploy" / "dagster.yaml"


class ClusterError(RuntimeError):
    """The cluster cannot start or is not running; the message says what to do."""


#: what a user can act on: printed as one line by ``vprim cluster``
USER_ERRORS = (ClusterError, postgres.PostgresError)


@dataclass(frozen=True)
class Cluster:
    """Where the cluster lives and the ports its servers listen on (127.0.0.1 only)."""

    dir: Path
    base_port: int = DEFAULT_BASE_PORT
    workers: int = 2
    pg_password: str = ""
    root: str = DEFAULT_ROOT

    @property
    def ports(self) -> dict[str, int]:
        names = ("redis", "postgres", "s3", "webserver")
        return {name: self.base_port + i for i, name in enumerate(names)}

    @property
    def home(self) -> Path:
        return self.dir / "home"

    def env(self) -> dict[str, str]:
        """The settings every cluster process and a user's shell share."""
        p = self.ports
        redis = f"redis://127.0.0.1:{p['redis']}"
        return {
            "DAGSTER_HOME": str(self.home),
            "VPRIM_ENGINE": "celery",
            CELERY_BROKER_ENV: f"{redis}/0",
            CELERY_BACKEND_ENV: f"{redis}/1",
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": str(p["postgres"]),
            "DAGSTER_PG_USER": PG_USER,
            "DAGSTER_PG_PASSWORD": self.pg_password,
            "DAGSTER_PG_DB": PG_DB,
            # moto accepts any key pair; a real S3 takes these from the deployment's secrets
            "AWS_ACCESS_KEY_ID": "vprim-local",
            "AWS_SECRET_ACCESS_KEY": "vprim-local",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{p['s3']}",
            "VPRIM_ROOT": self.root,
            "VPRIM_CLUSTER_UI": f"http://127.0.0.1:{p['webserver']}",
            # one process per worker: the cluster's parallelism is its workers
            "VPRIM_WORKERS": "1",
            "VPRIM_INGEST_WORKERS": "1",
        }


def state_file(directory: Path) -> Path:
    return directory / "cluster.json"


def load(directory: Path = DEFAULT_DIR) -> tuple[Cluster, dict[str, int]]:
    """The running cluster in ``directory`` and its processes' ids."""
    path = state_file(directory)
    if not path.is_file():
        raise ClusterError(f"no cluster in {directory}; start one with `make cluster-up`")
    saved = json.loads(path.read_text())
    fields = ("base_port", "workers", "pg_password", "root")
    cluster = Cluster(Path(saved["dir"]), *(saved[name] for name in fields))
    return cluster, saved["pids"]


def _save(cluster: Cluster, pids: dict[str, int]) -> None:
    state = {**asdict(cluster), "dir": str(cluster.dir), "pids": pids}
    path = state_file(cluster.dir)
    path.write_text(json.dumps(state, indent=1) + "\n")
    path.chmod(0o600)  # holds the database password
    env = "".join(f"export {k}={v}\n" for k, v in cluster.env().items())
    (cluster.dir / "env").write_text(env)
    (cluster.dir / "env").chmod(0o600)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _wait(what: str, ready, timeout_s: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.3)
    tail = log.read_text()[-1500:] if log and log.exists() else ""
    raise ClusterError(f"{what} did not become ready in {timeout_s:.0f}s; its log: {log}\n{tail}")


def _listening(port: int):
    return lambda: not _port_free(port)


def _spawn(cluster: Cluster, name: str, argv: list[str], env: dict[str, str]) -> int:
    """Start ``argv`` in its own session, output to ``logs/NAME.log``; returns its pid."""
    log = cluster.dir / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # down kills the whole group: children included
        )
    return proc.pid


def _bin(name: str) -> str:
    """A console script of this Python's environment (dagster, celery, moto_server...)."""
    exe = Path(sys.executable).with_name(name)
    return str(exe) if exe.exists() else name


def _start_redis(cluster: Cluster, env: dict[str, str]) -> int:
    if not shutil.which("redis-server"):
        raise ClusterError("redis-server is not installed: apt-get install redis-server")
    port = cluster.ports["redis"]
    data = cluster.dir / "redis"
    data.mkdir(exist_ok=True)
    argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data)]
    pid = _spawn(cluster, "redis", [*argv, "--save", "", "--appendonly", "no"], env)
    _wait("redis", _listening(port), 20, cluster.dir / "logs" / "redis.log")
    return pid


def _start_s3(cluster: Cluster, env: dict[str, str]) -> int:
    port = cluster.ports["s3"]
    argv = [_bin("moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    pid = _spawn(cluster, "s3", argv, env)
    _wait("the S3 server", _listening(port), 30, cluster.dir / "logs" / "s3.log")
    # the cluster's bucket, and the root's when the root is another bucket on this server
    buckets = {BUCKET}
    if cluster.root.startswith("s3://"):
        buckets.add(cluster.root.removeprefix("s3://").split("/", 1)[0])
    for bucket in sorted(buckets):
        request = urllib.request.Request(f"{env['AWS_ENDPOINT_URL']}/{bucket}", method="PUT")
        urllib.request.urlopen(request, timeout=10).close()
    return pid


def _start_dagster(cluster: Cluster, env: dict[str, str], pids: dict[str, int]) -> None:
    """Workers, daemon and webserver; each pid goes into ``pids`` (and the state file) as
    soon as it exists, so a start that fails half-way still stops everything it started."""
    cluster.home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(INSTANCE_FILE, cluster.home / "dagster.yaml")
    queues = "dagster,cpu,gpu"  # this machine runs GPU steps on its CPU
    for i in range(1, cluster.workers + 1):
        argv = [_bin("celery"), "-A", "vprim.dagster_project.celery_app", "worker"]
        argv += ["-Q", queues, "--concurrency", "1", "-n", f"worker{i}@%h", "-l", "INFO"]
        pids[f"worker{i}"] = _spawn(cluster, f"worker{i}", argv, env)
        _save(cluster, pids)
    pids["daemon"] = _spawn(cluster, "daemon", [_bin("dagster-daemon"), "run"], env)
    _save(cluster, pids)
    port = cluster.ports["webserver"]
    argv = [_bin("dagster-webserver"), "-h", "127.0.0.1", "-p", str(port)]
    pids["webserver"] = _spawn(cluster, "webserver", argv, env)
    _save(cluster, pids)
    url = f"http://127.0.0.1:{port}/server_info"
    _wait("the webserver", lambda: _http_ok(url), 180, cluster.dir / "logs" / "webserver.log")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def up(
    directory: Path = DEFAULT_DIR,
    base_port: int = DEFAULT_BASE_PORT,
    workers: int = 2,
    root: str = DEFAULT_ROOT,
) -> Cluster:
    """Start every server and worker of a local cluster; returns it once all are ready.

    The deployment (scale, shards, shards per run, catalog, seed: the environment's
    ``VPRIM_*``; the root) is written to the cluster's DAGSTER_HOME before the daemon and the
    workers start, so every process of the cluster loads the same code location.
    """
    if state_file(directory).exists():
        raise ClusterError(f"a cluster is already set up in {directory}; `make cluster-down` first")
    cluster = Cluster(directory.resolve(), base_port, workers, secrets.token_hex(16), root)
    busy = [f"{n} {p}" for n, p in cluster.ports.items() if not _port_free(p)]
    if busy:
        raise ClusterError(f"ports in use on 127.0.0.1: {', '.join(busy)}; pass another base port")
    cluster.dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **cluster.env()}
    pids: dict[str, int] = {}
    try:
        pids["redis"] = _start_redis(cluster, env)
        _save(cluster, pids)
        postgres.start(cluster.dir / "postgres", cluster.ports["postgres"], cluster.pg_password)
        pids["postgres"] = postgres.pid(cluster.dir / "postgres")
        _save(cluster, pids)
        postgres.create_database(cluster.ports["postgres"], cluster.pg_password, PG_DB)
        pids["s3"] = _start_s3(cluster, env)
        _save(cluster, pids)
        write_deployment(current(env, deployment=False), env)
        _start_dagster(cluster, env, pids)
    except BaseException:
        down(cluster.dir)
        raise
    return cluster


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc): a code server the daemon started may have left
    the daemon's process group."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def _stop_group(pid: int, grace_s: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left (dagster may ignore SIGTERM),
    and any descendant that left the group."""
    below = _descendants(pid)
    _signal_group(pid, grace_s)
    for child in below:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


def _signal_group(pid: int, grace_s: float) -> None:
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):  # reap it if it is our child
                os.waitpid(pid, os.WNOHANG)
            if not pid_alive(pid):
                return
            time.sleep(0.2)


def down(directory: Path = DEFAULT_DIR) -> list[str]:
    """Stop everything ``up`` started in ``directory``, last started first; returns the names."""
    cluster, pids = load(directory)
    stopped = []
    for name, pid in reversed(list(pids.items())):
        if name == "postgres":
            postgres.stop(cluster.dir / "postgres")
        else:
            _stop_group(pid)
        stopped.append(name)
    state_file(cluster.dir).unlink()
    (cluster.dir / "env").unlink(missing_ok=True)
    return stopped


def status(directory: Path = DEFAULT_DIR) -> dict[str, bool]:
    """Whether each process of the cluster is alive."""
    _, pids = load(directory)
    return {name: pid_alive(pid) for name, pid in pids.items()}


def main(argv: list[str]) -> int:
    """``vprim cluster up|down|status|env [--dir DIR] [--base-port N] [--workers N]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="vprim cluster")
    parser.add_argument("action", choices=("up", "down", "status", "env"))
    default_dir = Path(os.environ.get("VPRIM_CLUSTER_DIR") or DEFAULT_DIR)
    parser.add_argument("--dir", type=Path, default=default_dir)
    parser.add_argument("--base-port", type=int, default=DEFAULT_BASE_PORT)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--root", default=DEFAULT_ROOT, help="the cluster's storage root")
    parser.add_argument("--scale", choices=SCALES, help="synthetic corpus scale (VPRIM_SCALE)")
    args = parser.parse_args(argv)
    if args.scale:
        os.environ["VPRIM_SCALE"] = args.scale
    try:
        if args.action == "up":
            cluster = up(args.dir, args.base_port, args.workers, args.root)
            print(
                f"vprim: cluster up in {cluster.dir}: {cluster.workers} workers, daemon, UI on "
                f"{cluster.env()['VPRIM_CLUSTER_UI']}, root {cluster.env()['VPRIM_ROOT']}"
            )
            print('vprim: use it from a shell with: eval "$(vprim cluster env)"')
        elif args.action == "down":
            print(f"vprim: stopped {', '.join(down(args.dir))}")
        elif args.action == "status":
            for name, alive in status(args.dir).items():
                print(f"{name:10} {'running' if alive else 'STOPPED'}")
        else:
            print((load(args.dir)[0].dir / "env").read_text(), end="")
    except USER_ERRORS as err:
        print(f"vprim: {err}", file=sys.stderr)
        return 1
    return 0
