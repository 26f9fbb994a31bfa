"""``vprim``: the same entry points as the Makefile, for people who do not use make.

vprim rebuild-dataset [--scale tiny|small|full] [--root DIR] [--catalog URL]
vprim generate        [--scale ...] [--seed N] [--out DIR]
vprim ui              [--host 127.0.0.1] [--port 3000]
vprim query "SQL"     (runs against the views in sql/views)
vprim score --eval-set NAME --predictions preds.jsonl [--reference oracle|baseline]
vprim cluster up|down|status|env [--dir DIR] [--base-port N] [--workers N]
vprim bench | test | lint | clean | setup
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from vprim.assets.settings import PROJECT_ROOT, SCALES, SettingsError, read_deployment
from vprim.assets.settings import dagster_home as settings_dagster_home

if TYPE_CHECKING:  # dagster is imported only by the commands that use it (~1 s at start)
    import dagster as dg

DAGSTER_YAML = """\
# Written by vprim: a project-owned Dagster instance, so runs show up in `make ui`.
telemetry:
  enabled: false
run_queue:
  max_concurrent_runs: 2
"""


def dagster_home() -> Path:
    """The project's DAGSTER_HOME (``$DAGSTER_HOME`` or ``.dagster_home``), created if needed."""
    home = settings_dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    return home


def _env(args: argparse.Namespace) -> dict[str, str]:
    """The environment a child process runs in: the persisted deployment, overridden by the
    environment, overridden by the flags."""
    home = str(dagster_home())
    env = {**read_deployment({"DAGSTER_HOME": home}), **os.environ, "DAGSTER_HOME": home}
    for flag, var in (
        ("scale", "VPRIM_SCALE"),
        ("root", "VPRIM_ROOT"),
        ("catalog", "VPRIM_CATALOG"),
    ):
        value = getattr(args, flag, None)
        if value:
            env[var] = (
                str(Path(value).resolve()) if flag == "root" and "://" not in value else value
            )
    if getattr(args, "workers", None):
        env["VPRIM_WORKERS"] = str(args.workers)
    return env


def _dagster(*argv: str) -> list[str]:
    exe = Path(sys.executable).with_name("dagster")
    return [str(exe) if exe.exists() else "dagster", *argv]


def cmd_rebuild(args: argparse.Namespace) -> int:
    """Bring the lake up to date: one rebuild_dataset run over the shards whose sources, code
    or settings changed (every shard with ``--all-shards``, none when nothing changed)."""
    env = _env(args)
    from vprim.assets.settings import current, write_deployment
    from vprim.dagster_project.engine import root_is_shared

    profile = current(env, deployment=False)
    if not root_is_shared(profile.root):
        raise SettingsError(
            f"VPRIM_ROOT={profile.root} lives in one process and a rebuild runs in others; "
            "use a folder, file:// or s3:// (memory:// is for in-process tests)"
        )
    if profile.distributed:
        _refuse_other_deployment(profile, env)
    saved = write_deployment(profile, env)  # what the daemon and the UI read from now on
    source = profile.catalog or f"synthetic corpus, scale={profile.scale}, seed={profile.seed}"
    print(f"vprim: rebuilding from {source} into {profile.root}", flush=True)
    print(f"vprim: deployment saved in {saved} (the daemon and the UI read it)", flush=True)
    first, last, todo = _rebuild_range(profile, args.all_shards)
    if todo is not None and todo.nothing_to_do and not args.all_shards:
        print(f"vprim: {todo.describe()} (--all-shards launches a run anyway)", flush=True)
        return 0
    if todo is not None:
        print(f"vprim: {todo.describe()}", flush=True)
    from vprim.assets.partitions import range_tags

    trigger = "rebuild-dataset" + (" --all-shards" if args.all_shards else "")
    tags = {**range_tags(first, last), "vprim/trigger": trigger}
    print(
        f"vprim: {profile.shards} shards, {profile.workers} workers "
        f"({profile.ingest_workers} for ingest), "
        f"DAGSTER_HOME={env['DAGSTER_HOME']}",
        flush=True,
    )
    started = time.perf_counter()
    os.environ.update(env)  # the code server and the run worker read the profile from it
    if profile.distributed:
        run_ids = _rebuild_distributed(env["DAGSTER_HOME"], profile, first, last, trigger)
    else:
        run = _launch_rebuild(env["DAGSTER_HOME"], tags)
        run_ids = None if run is None else _report_run(env["DAGSTER_HOME"], run)
    elapsed = time.perf_counter() - started
    if run_ids is None:
        print(f"vprim: rebuild failed after {elapsed:.0f}s; see its logs in `make ui`", flush=True)
        return 1
    print(f"vprim: rebuild finished in {elapsed:.1f}s", flush=True)
    for run_id in run_ids:
        print(_step_times(env["DAGSTER_HOME"], run_id), flush=True)
    print(_summary(profile.root), flush=True)
    return 0


def _refuse_other_deployment(profile, env: dict[str, str]) -> None:
    """A cluster's daemon and workers loaded the deployment it was started with: a rebuild
    on other settings would mix the two, so it stops with what differs."""
    from vprim.assets.settings import deployment_conflicts

    conflicts = deployment_conflicts(profile, env)
    if conflicts:
        raise SettingsError(
            f"the cluster was started for another deployment: {'; '.join(conflicts)}; "
            "restart it with the new settings (`make cluster-down cluster-up`)"
        )


def _report_run(home: str, run: dg.DagsterRun) -> list[str] | None:
    """``[run id]`` when the run succeeded; else prints its failed checks and returns None."""
    import dagster as dg

    if run.status == dg.DagsterRunStatus.SUCCESS:
        print(f"vprim: run {run.run_id} succeeded", flush=True)
        return [run.run_id]
    for line in _failed_checks(home, run.run_id):
        print(f"vprim: {line}", flush=True)
    print(f"vprim: run {run.run_id} {run.status.value}", flush=True)
    return None


def _rebuild_distributed(home: str, profile, first: str, last: str, trigger: str):
    """The rebuild as a backfill the daemon splits into runs of shard batches (backfill.py);
    the ids of its runs when it succeeded, else None."""
    import dagster as dg

    from vprim.assets.contracts.layout import shard_key
    from vprim.dagster_project import backfill

    keys = [shard_key(i) for i in range(profile.shards)]
    shards = keys[keys.index(first) : keys.index(last) + 1]
    with dg.DagsterInstance.from_config(home) as instance:
        backfill_id = backfill.submit(instance, shards, backfill.run_tags(trigger))
        print(
            f"vprim: backfill {backfill_id} over {len(shards)} shards, runs of "
            f"{profile.shards_per_run} on the {profile.engine} engine (the daemon launches them)",
            flush=True,
        )
        done = backfill.wait(instance, backfill_id)
        runs = backfill.runs_of(instance, backfill_id)
        if backfill.succeeded(done):
            return [run.run_id for run in runs]
        for run in runs:
            for line in _failed_checks(home, run.run_id):
                print(f"vprim: {line}", flush=True)
        print(f"vprim: backfill {backfill_id} {done.status.value}", flush=True)
        return None


def _rebuild_range(profile, all_shards: bool):
    """``(first shard, last shard, plan)``: the stale range, or every shard with
    ``--all-shards`` or on the first build (no catalog yet: the plan is None)."""
    from vprim.assets.contracts.layout import shard_key
    from vprim.assets.lake.recuration import PlanError, plan
    from vprim.assets.storage import Storage

    everything = (shard_key(0), shard_key(profile.shards - 1))
    try:
        todo = plan(Storage(profile.root), profile)
    except PlanError:
        return (*everything, None)
    return (*(everything if all_shards else todo.run_range()), todo)


def _launch_rebuild(home: str, tags: dict[str, str]) -> dg.DagsterRun | None:
    """The finished rebuild run, launched through the UI's code location; None if it can't load."""
    import dagster as dg

    from vprim.dagster_project.launch import CodeLocationError, launch_and_wait

    with dg.DagsterInstance.from_config(home) as instance:
        try:
            return launch_and_wait(instance, "rebuild_dataset", tags)
        except CodeLocationError as err:
            print(f"vprim: {err}", file=sys.stderr, flush=True)
            return None


def _failed_checks(dagster_home: str, run_id: str) -> list[str]:
    """One line per asset check that failed in the run: its name and what it found."""
    import dagster as dg

    with dg.DagsterInstance.from_config(dagster_home) as instance:
        records = instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
    lines = []
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        if evaluation.passed:
            continue
        error = evaluation.metadata.get("error")
        found = error.value if error is not None else "see its metadata in the UI"
        lines.append(f"check {evaluation.check_name} failed: {found}")
    return lines


def _step_times(dagster_home: str, run_id: str) -> str:
    """Wall seconds of each step of the run, from the run's step stats."""
    import dagster as dg

    from vprim.assets.reporting import md_table

    with dg.DagsterInstance.from_config(dagster_home) as instance:
        stats = instance.get_run_step_stats(run_id)
    rows = [
        {"step": s.step_key, "seconds": round((s.end_time or 0) - (s.start_time or 0), 1)}
        for s in sorted(stats, key=lambda s: s.start_time or 0)
    ]
    return "step wall times:\n" + md_table(rows)


def _summary(root: str) -> str:
    """The funnel from raw to the published lake, and the rejects by reason."""
    from vprim.assets.reporting import query_table
    from vprim.resources.duckdb import DuckDBResource

    con = DuckDBResource(root=root).connect()
    views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
    parts = []
    funnel = "lake_funnel" if "lake_funnel" in views else "curation_funnel"
    for view in (funnel, "rejects_by_reason"):
        if view in views:
            parts.append(f"{view}:\n" + query_table(con, f"SELECT * FROM {view}"))
    version = _lake_version(root)
    if version:
        parts.append(f"lake: version {version} published (lake/CURRENT)")
    return "\n".join(parts)


def _lake_version(root: str) -> str | None:
    from vprim.assets.lake.publish import current_version
    from vprim.assets.storage import Storage

    return current_version(Storage(root))


def cmd_generate(args: argparse.Namespace) -> int:
    from vprim.assets.contracts.layout import synthetic_dir
    from vprim.assets.settings import current
    from vprim.assets.sources.synthetic.corpus import generate_corpus

    profile = current(_env(args))
    out = args.out or synthetic_dir(profile.root, profile.scale, args.seed)
    started = time.perf_counter()
    corpus = generate_corpus(out, scale=profile.scale, seed=args.seed, workers=profile.workers)
    print(
        f"{corpus.n_sources:,} sources, {corpus.n_boxes:,} boxes in {out} "
        f"({time.perf_counter() - started:.1f}s); catalog: {corpus.catalog_path}"
    )
    return 0


#: how long a schedule or sensor tick may take under `vprim ui` (Dagster's default is 60 s)
TICK_TIMEOUT_S = 600


def cmd_ui(args: argparse.Namespace) -> int:
    env = _env(args)
    # No target: dagster dev loads pyproject.toml's [tool.dagster] location from the project
    # root, the one `vprim rebuild-dataset` launches its runs through (launch.workspace_target).
    cmd = _dagster("dev", "-h", args.host, "-p", str(args.port))
    # the nightly schedule and the sensor fingerprint every file of the corpus: ~80 s on the
    # full one, past Dagster's 60 s default for a tick
    for kind in ("SCHEDULE", "SENSOR"):
        env.setdefault(f"DAGSTER_{kind}_GRPC_TIMEOUT_SECONDS", str(TICK_TIMEOUT_S))
    print(
        f"vprim: Dagster UI on http://{args.host}:{args.port} (DAGSTER_HOME={env['DAGSTER_HOME']})"
    )
    return subprocess.call(cmd, env=env, cwd=PROJECT_ROOT)


def cmd_query(args: argparse.Namespace) -> int:
    from vprim.assets.reporting import md_table
    from vprim.assets.settings import current
    from vprim.assets.sql import QueryError, read_only_query
    from vprim.resources.duckdb import DuckDBResource

    con = DuckDBResource(root=current(_env(args)).root).connect()
    try:
        cursor = read_only_query(con, args.sql)
    except QueryError as err:  # the user's query, not a bug: one line, no traceback
        print(f"vprim: {err}", file=sys.stderr)
        return 2
    cols = [d[0] for d in cursor.description]
    print(md_table([dict(zip(cols, r)) for r in cursor.fetchmany(args.limit)], cols))
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from vprim.assets.camps import scorer
    from vprim.assets.settings import current
    from vprim.assets.storage import Storage

    store = Storage(current(_env(args)).root)
    table = scorer.read_eval(store, args.eval_set)
    if args.reference:  # write a reference model's predictions, then score them
        with open(args.predictions, "w") as f:
            for row in scorer.reference_predictions(table, args.reference):
                f.write(json.dumps(row) + "\n")
    with open(args.predictions) as f:
        preds, bad = scorer.read_predictions(f)
    result = scorer.score(table, preds)
    print(scorer.scorecard_text(f"{args.eval_set} <- {args.predictions}", result, bad))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


def cmd_cluster(args: argparse.Namespace) -> int:
    from vprim.dagster_project import cluster

    return cluster.main(args.rest)


def cmd_bench(args: argparse.Namespace) -> int:
    return subprocess.call(
        [sys.executable, "-m", "vprim.assets.bench", *args.rest], cwd=PROJECT_ROOT
    )


def cmd_test(args: argparse.Namespace) -> int:
    return subprocess.call([sys.executable, "-m", "pytest", *args.rest], cwd=PROJECT_ROOT)


def cmd_lint(args: argparse.Namespace) -> int:
    ruff = [sys.executable, "-m", "ruff"]
    rc = subprocess.call([*ruff, "check", "."], cwd=PROJECT_ROOT)
    return rc or subprocess.call([*ruff, "format", "--check", "."], cwd=PROJECT_ROOT)


def cmd_setup(args: argparse.Namespace) -> int:
    """What `make setup` does, into this Python: the locked packages, vprim, then pip check."""
    pip = [sys.executable, "-m", "pip"]
    wheels = os.environ.get("TORCH_WHEELS", "/opt/wheels")  # as the Makefile: torch's CPU wheel
    find_links = ["--find-links", wheels] if Path(wheels).is_dir() else []
    steps = (
        [*pip, "install", "--require-hashes", "--no-deps", *find_links, "-r", "requirements.lock"],
        [*pip, "install", "--no-deps", "--no-build-isolation", "-e", "."],
        [*pip, "check"],
    )
    for step in steps:
        rc = subprocess.call(step, cwd=PROJECT_ROOT)
        if rc:
            return rc
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    for name in ("data", ".dagster_home", "bench_out", ".pytest_cache", ".ruff_cache"):
        shutil.rmtree(PROJECT_ROOT / name, ignore_errors=True)
    print("removed data/, .dagster_home/, bench_out/ and caches (.venv is kept)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vprim", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--scale", choices=SCALES, help="synthetic corpus scale (VPRIM_SCALE)")
        p.add_argument("--root", help="storage root: a folder or fsspec URL (VPRIM_ROOT)")
        p.add_argument("--catalog", help="a catalog CSV/JSONL/Parquet URL (VPRIM_CATALOG)")
        p.add_argument("--workers", type=int, help="processes per run (VPRIM_WORKERS)")

    p = sub.add_parser("rebuild-dataset", help="curate the corpus into the lake (one Dagster run)")
    common(p)
    p.add_argument(
        "--all-shards",
        action="store_true",
        help="launch a run over every shard even when nothing changed "
        "(unchanged steps still skip by their markers)",
    )
    p.set_defaults(func=cmd_rebuild)
    p = sub.add_parser("generate", help="generate the synthetic raw corpus only")
    common(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="output folder (default: under the storage root)")
    p.set_defaults(func=cmd_generate)
    p = sub.add_parser("ui", help="dagster dev on the project's DAGSTER_HOME")
    common(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=cmd_ui)
    p = sub.add_parser("query", help="run SQL against the DuckDB views of the storage root")
    common(p)
    p.add_argument("sql")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_query)
    p = sub.add_parser("score", help="score a model's predictions JSONL on a camp eval set")
    common(p)
    p.add_argument("--eval-set", required=True, help="eval set name (camps/eval/<name>.parquet)")
    p.add_argument("--predictions", required=True, help='JSONL of {"sample_id", "prediction"}')
    p.add_argument(
        "--reference",
        choices=("oracle", "baseline"),
        help="first write this reference model's predictions to --predictions",
    )
    p.add_argument("--json", help="also write the scorecard as JSON here")
    p.set_defaults(func=cmd_score)
    for name, func, text in (
        ("bench", cmd_bench, "run the benchmarks (figures vs peers)"),
        ("test", cmd_test, "run the test suite (pytest arguments pass through)"),
        ("cluster", cmd_cluster, "a local cluster: up | down | status | env (--dir, --base-port)"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(func=func)
    for name, func, text in (
        ("lint", cmd_lint, "ruff check and format check"),
        ("setup", cmd_setup, "install vprim and its dev tools into this Python"),
        ("clean", cmd_clean, "remove generated data, DAGSTER_HOME and caches"),
    ):
        sub.add_parser(name, help=text).set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SettingsError as err:  # a user's setting, not a bug: one line, no traceback
        print(f"vprim: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
