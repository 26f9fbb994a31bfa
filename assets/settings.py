"""All environment branching lives here: local, CI and production differ only in this module.

Every setting has an environment variable and a default; the README lists them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]

SCALES = ("tiny", "small", "full")


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


def current(env: dict[str, str] | None = None) -> Profile:
    """The profile selected by ``VPRIM_PROFILE`` (local by default), with overrides from env."""
    env = dict(os.environ if env is None else env)
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
    )
