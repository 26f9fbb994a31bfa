"""All environment branching lives here: local, CI and production differ only in this module.

Every setting has an environment variable and a default; the README lists them.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]

SCALES = ("tiny", "small", "full")
#: where a run's steps execute: this machine's processes, Celery workers, Kubernetes jobs
ENGINES = ("local", "celery", "k8s")


@dataclass(frozen=True)
class Profile:
    """The settings of one deployment."""

    name: str  # local | ci | production
    root: str  # VPRIM_ROOT: fsspec URL or path of the storage root
    scale: str  # VPRIM_SCALE / SCALE: synthetic corpus scale when no catalog is given
    seed: int  # VPRIM_SEED: seed of the synthetic corpus
    shards: int  # VPRIM_SHARDS: number of static source shards (Dagster partitions)
    catalog: str  # VPRIM_CATALOG: a user catalog (CSV/JSONL/Parquet URL); empty = synthetic
    workers: int  # VPRIM_WORKERS: processes for shard-parallel steps inside one run
    ingest_workers: int  # VPRIM_INGEST_WORKERS: ingest processes (default: workers + 1)
    duckdb_memory: str  # VPRIM_DUCKDB_MEMORY: memory limit of DuckDB steps
    engine: str  # VPRIM_ENGINE: where steps run: local | celery | k8s (docs/DEPLOY.md)
    shards_per_run: int  # VPRIM_SHARDS_PER_RUN: shards in one run of a distributed rebuild

    @property
    def distributed(self) -> bool:
        """Steps run on other processes or hosts: a rebuild fans its shards out as runs."""
        return self.engine != "local"


def _default_root() -> str:
    return str(PROJECT_ROOT / "data")


class SettingsError(ValueError):
    """A setting in the environment has a value vprim cannot use; the message names it."""


def _int(env: dict[str, str], name: str, default: int | str) -> int:
    value = env.get(name) or default
    try:
        return int(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r}; expected a whole number") from None


#: the deployment file in DAGSTER_HOME: what the last ``vprim rebuild-dataset`` curated
DEPLOYMENT_FILE = "vprim-deployment.json"
#: the settings it persists, with their environment variables
PERSISTED = {
    "root": "VPRIM_ROOT",
    "scale": "VPRIM_SCALE",
    "catalog": "VPRIM_CATALOG",
    "seed": "VPRIM_SEED",
    "shards": "VPRIM_SHARDS",
    "shards_per_run": "VPRIM_SHARDS_PER_RUN",
}


def dagster_home(env: dict[str, str] | None = None) -> Path:
    """The project's DAGSTER_HOME: ``$DAGSTER_HOME`` or ``./.dagster_home``."""
    env = os.environ if env is None else env
    return Path(env.get("DAGSTER_HOME") or PROJECT_ROOT / ".dagster_home").resolve()


def read_deployment(env: dict[str, str] | None = None) -> dict[str, str]:
    """The persisted deployment as environment variables ({} when none was written)."""
    path = dagster_home(env) / DEPLOYMENT_FILE
    if not path.is_file():
        return {}
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SettingsError(f"{path} cannot be read ({exc}); delete it or rebuild") from None
    return {var: str(saved[key]) for key, var in PERSISTED.items() if key in saved}


def write_deployment(profile: Profile, env: dict[str, str] | None = None) -> Path:
    """Persist the profile's root, scale, catalog, seed and shards in DAGSTER_HOME, so the
    daemon, the webserver and every run curate the same corpus into the same root whatever
    environment they were started in."""
    path = dagster_home(env) / DEPLOYMENT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    values = {k: v for k, v in asdict(profile).items() if k in PERSISTED}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(values, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def deployment_conflicts(profile: Profile, env: dict[str, str] | None = None) -> list[str]:
    """The persisted settings that differ from ``profile``'s, as ``VAR=saved (asked: new)``.

    Long-running processes (a cluster's daemon and workers) loaded the code location with the
    persisted deployment; a rebuild asking for other settings would mix the two.
    """
    saved = read_deployment(env)
    wanted = {var: str(getattr(profile, key)) for key, var in PERSISTED.items()}
    return [
        f"{var}={saved[var]!r} (asked: {wanted[var]!r})"
        for var in sorted(saved)
        if saved[var] != wanted[var]
    ]


def current(env: dict[str, str] | None = None, *, deployment: bool = True) -> Profile:
    """The profile selected by ``VPRIM_PROFILE`` (local by default), with overrides from env.

    With ``deployment`` (the default), the settings persisted in DAGSTER_HOME's deployment file
    win over the environment: a daemon started in another shell still curates the deployed
    corpus. ``vprim rebuild-dataset`` reads without it and writes the file.
    """
    env = dict(os.environ if env is None else env)
    if deployment:
        env.update(read_deployment(env))
    name = env.get("VPRIM_PROFILE", "ci" if env.get("CI") else "local")
    defaults = {
        "local": {"scale": "small", "shards": "64"},
        "ci": {"scale": "tiny", "shards": "8"},
        "production": {"scale": "full", "shards": "64"},
    }
    if name not in defaults:
        raise SettingsError(f"VPRIM_PROFILE={name!r}; expected one of {sorted(defaults)}")
    d = defaults[name]
    scale = env.get("VPRIM_SCALE") or env.get("SCALE") or d["scale"]
    if scale not in SCALES:
        raise SettingsError(f"VPRIM_SCALE={scale!r}; expected one of {SCALES}")
    shards = _int(env, "VPRIM_SHARDS", d["shards"])
    if not 1 <= shards <= 4096:
        raise SettingsError(f"VPRIM_SHARDS={shards}; expected 1..4096")
    workers = _int(env, "VPRIM_WORKERS", os.cpu_count() or 1)
    engine = env.get("VPRIM_ENGINE") or "local"
    if engine not in ENGINES:
        raise SettingsError(f"VPRIM_ENGINE={engine!r}; expected one of {ENGINES}")
    shards_per_run = _int(env, "VPRIM_SHARDS_PER_RUN", min(8, shards))
    if not 1 <= shards_per_run <= shards:
        raise SettingsError(f"VPRIM_SHARDS_PER_RUN={shards_per_run}; expected 1..{shards}")
    return Profile(
        name=name,
        root=env.get("VPRIM_ROOT") or _default_root(),
        scale=scale,
        seed=_int(env, "VPRIM_SEED", 0),
        shards=shards,
        catalog=env.get("VPRIM_CATALOG", ""),
        workers=workers,
        # Ingest also waits on the disk (small cold files left ~17% of the cores idle with one
        # process per core); one more keeps them busy: 12 full shards in 92-98 s, not 103-112.
        ingest_workers=_int(env, "VPRIM_INGEST_WORKERS", workers + 1),
        duckdb_memory=env.get("VPRIM_DUCKDB_MEMORY", "4GB"),
        engine=engine,
        shards_per_run=shards_per_run,
    )
