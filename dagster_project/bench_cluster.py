"""The distributed engine against the local one, on this machine, and what N workers would take.

``python -m vprim.dagster_project.bench_cluster [--scales tiny,small] [--roots local,s3]``
(``make bench-cluster``):

1. a cold ``vprim rebuild-dataset`` on the local engine into a fresh local root;
2. the same through a local cluster (``cluster.up``: Redis, PostgreSQL, moto's S3, 2 Celery
   workers, the daemon), as a backfill of one shard per run, into a local folder every
   process shares (``local``: the engine's own cost) and into ``s3://vprim/<scale>`` on the
   cluster's S3 server (``s3``: the engine and the object store);

and prints the wall time of each, the seconds of each step (summed over the backfill's runs)
and where the cluster's extra time goes: waiting for the daemon's backfill ticks and the run
queue, starting runs, handing steps to Celery. Then a paper estimate of the full corpus on N
workers from the measured full-scale step costs (``FULL_SCALE``) and the overheads just
measured.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from vprim.assets.reporting import md_table
from vprim.assets.settings import PROJECT_ROOT
from vprim.dagster_project import cluster as C

#: Step wall seconds of the cold full-scale rebuild on 2 cores (docs/BENCHMARKS.md, issue 19's
#: run: 64 shards; raw_instances in 3 processes, clean_instances in 2), catalog without the
#: corpus generation (the listing of an existing corpus, ~45 s).
FULL_SCALE = {
    "catalog": 45.0,
    "raw_instances": 948.0,
    "label_vocabulary": 29.0,
    "label_embeddings": 16.0,
    "label_map": 2.0,
    "image_duplicates": 1.6,
    "clean_instances": 234.0,
    "curation_funnel": 19.0,
    "lake_samples": 482.0,
    "lake": 2.0,
}
FULL_SHARDS = 64
#: the sharded steps (their cost divides over shards); the rest run once, one after the other
SHARDED = ("raw_instances", "clean_instances")
#: the levels of the backfill: each waits for the previous one's runs (catalog, ingest, label
#: steps, curation, lake)
BACKFILL_LEVELS = 5


def _rebuild(env: dict[str, str]) -> float:
    started = time.perf_counter()
    argv = [sys.executable, "-m", "vprim.dagster_project.cli", "rebuild-dataset"]
    proc = subprocess.run(argv, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"rebuild failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - started


def _step_seconds(home: str, env: dict[str, str]) -> tuple[dict[str, float], dict[str, float]]:
    """Per step: seconds summed over the runs; per phase: where the runs' time went."""
    os.environ.update({k: v for k, v in env.items() if k.startswith("DAGSTER_PG_")})
    import dagster as dg

    steps: dict[str, float] = defaultdict(float)
    phases: dict[str, float] = defaultdict(float)
    per_run: list[float] = []
    with dg.DagsterInstance.from_config(home) as instance:
        for record in instance.get_run_records():
            stats = instance.get_run_step_stats(record.dagster_run.run_id)
            for s in stats:
                steps[s.step_key] += (s.end_time or 0) - (s.start_time or 0)
            begun, ended = record.start_time or 0, record.end_time or 0
            starting = begun - record.create_timestamp.timestamp()
            outside = (ended - begun) - sum((s.end_time or 0) - (s.start_time or 0) for s in stats)
            phases["runs"] += 1
            phases["queued and starting (created -> started)"] += starting
            phases["in the run, outside steps (waiting for a worker, Celery hand-off)"] += outside
            per_run.append(starting + outside)
    # half the runs of a level wait for one of the 2 workers: the median is closer to what a
    # run costs when a worker is free
    phases["median overhead of one run"] = statistics.median(per_run) if per_run else 0.0
    return dict(steps), dict(phases)


def measure(scale: str, root_kind: str, workdir: Path) -> dict:
    """Local and cluster rebuilds of ``scale``: wall seconds, step seconds, overheads."""
    base = {**os.environ, "VPRIM_SCALE": scale, "VPRIM_SHARDS": "4" if scale == "tiny" else "8"}
    base.pop("VPRIM_ENGINE", None)
    local_home = str(workdir / f"{scale}-local-home")
    local = {**base, "VPRIM_ROOT": str(workdir / f"{scale}-local-root"), "DAGSTER_HOME": local_home}
    local_wall = _rebuild(local)
    local_steps, _ = _step_seconds(local_home, local)

    folder = Path(tempfile.mkdtemp(prefix="vprim-bench-cluster-"))
    folder.chmod(0o755)  # PostgreSQL runs as its own user when we are root
    os.environ.update({"VPRIM_SCALE": scale, "VPRIM_SHARDS": base["VPRIM_SHARDS"]})
    os.environ["VPRIM_SHARDS_PER_RUN"] = "1"
    root = f"s3://vprim/{scale}" if root_kind == "s3" else str(workdir / f"{scale}-cluster-root")
    running = C.up(folder, root=root)
    try:
        remote = {**base, **running.env(), "VPRIM_SHARDS_PER_RUN": "1"}
        cluster_wall = _rebuild(remote)
        cluster_steps, phases = _step_seconds(str(running.home), remote)
    finally:
        C.down(folder)
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "scale": scale,
        "root": root_kind,
        "local_wall": local_wall,
        "cluster_wall": cluster_wall,
        "local_steps": local_steps,
        "cluster_steps": cluster_steps,
        "phases": phases,
    }


def report(result: dict) -> str:
    local, remote = result["local_steps"], result["cluster_steps"]
    rows = [
        {
            "step": step,
            "local s": round(local.get(step, 0.0), 1),
            "cluster s (sum of runs)": round(remote.get(step, 0.0), 1),
        }
        for step in sorted(set(local) | set(remote), key=lambda k: -remote.get(k, 0.0))
    ]
    phases = [{"where": k, "seconds": round(v, 1)} for k, v in result["phases"].items()]
    ratio = result["cluster_wall"] / result["local_wall"]
    return (
        f"## {result['scale']}, cluster root {result['root']}: local {result['local_wall']:.1f} s, "
        "cluster "
        f"{result['cluster_wall']:.1f} s ({ratio:.2f}x)\n\n"
        + md_table(rows, ["step", "local s", "cluster s (sum of runs)"])
        + "\n\nthe cluster's runs:\n"
        + md_table(phases, ["where", "seconds"])
    )


def estimate(workers: int, per_run_overhead_s: float, tick_s: float = 30.0) -> dict:
    """Wall seconds of a cold full rebuild on ``workers`` 2-core workers, on paper.

    Each sharded step splits into ``min(64, workers)`` runs of equal shard batches (its
    measured cost divides by the runs it can run at once; 64 shards cap it); every other step
    runs once, on one worker; each backfill level waits half a daemon tick on average and one
    run start.
    """
    runs_at_once = min(FULL_SHARDS, workers)
    sharded = sum(FULL_SCALE[s] for s in SHARDED) / runs_at_once
    serial = sum(v for k, v in FULL_SCALE.items() if k not in SHARDED)
    overhead = BACKFILL_LEVELS * (tick_s / 2 + per_run_overhead_s)
    total = sharded + serial + overhead
    return {
        "workers": workers,
        "sharded steps s": round(sharded, 1),
        "one-worker steps s": round(serial, 1),
        "backfill overhead s": round(overhead, 1),
        "total min": round(total / 60, 1),
        "lake_samples share": f"{FULL_SCALE['lake_samples'] / total:.0%}",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vprim.dagster_project.bench_cluster")
    parser.add_argument("--scales", default="tiny,small")
    parser.add_argument("--roots", default="local,s3", help="the cluster's roots: local, s3")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="vprim-bench-"))
    results = []
    for scale in args.scales.split(","):
        for root_kind in args.roots.split(","):
            results.append(measure(scale, root_kind, workdir))
            print(report(results[-1]), flush=True)
    # the engine's own cost per run: queue, run start, Celery hand-off, on a shared folder
    # (on moto's S3 the steps themselves wait on the object store, measured above)
    engine = [r for r in results if r["root"] == "local"] or results
    per_run = engine[-1]["phases"]["median overhead of one run"]
    print(f"\n## full corpus on N workers, on paper ({per_run:.1f} s of overhead per run)\n")
    rows = [estimate(n, per_run) for n in (1, 8, 32, 128)]
    print(md_table(rows, list(rows[0])))
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
