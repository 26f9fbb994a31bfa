"""What a re-curation has to do: the shards whose sources, code or settings changed since they
were built, and the global steps that were never finished.

The nightly schedule and the catalog sensor ask :func:`plan` and request a run over the stale
shards only (or none); ``make bench``'s incremental entry measures it. The completion markers
(``incremental``) are the memory: no cursor, no state outside the storage root.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from vprim.assets.contracts import layout
from vprim.assets.incremental import digest, intact, read_marker
from vprim.assets.lake import publish as P
from vprim.assets.quality import curate
from vprim.assets.quality.geometry import GeometryConfig
from vprim.assets.quality.labels import LabelConfig
from vprim.assets.settings import Profile
from vprim.assets.sources import catalog as cat
from vprim.assets.sources import ingest
from vprim.assets.storage import Storage

#: the global steps of curation, in order, each with one completion marker
GLOBAL_STEPS = (
    "catalog",
    "image_duplicates",
    "label_vocabulary",
    "label_embeddings",
    "label_map",
    "curation_funnel",
)


class PlanError(ValueError):
    """The deployment's catalog cannot be read; the message says what to do."""


@dataclass
class Plan:
    """Stale shards with the reason each is stale, and global steps never finished."""

    shards: int
    stale: dict[str, str] = field(default_factory=dict)  # shard key -> why
    unfinished: list[str] = field(default_factory=list)  # global steps without a marker
    lake_version: str | None = None
    inputs: dict[str, str] = field(default_factory=dict)  # stale shard -> its inputs now

    @property
    def state(self) -> str:
        """A digest of what is to be done: the same change gives the same state."""
        return digest([self.inputs, self.unfinished, self.lake_version])

    @property
    def nothing_to_do(self) -> bool:
        return not self.stale and not self.unfinished

    def run_range(self) -> tuple[str, str]:
        """The shards a run must cover: the stale ones, first to last (every shard when only
        global steps are unfinished). Shards inside the range that did not change are
        skipped by their markers."""
        keys = sorted(self.stale) or [layout.shard_key(0), layout.shard_key(self.shards - 1)]
        return keys[0], keys[-1]

    def describe(self) -> str:
        if self.nothing_to_do:
            return (
                f"nothing changed: {self.shards} of {self.shards} shards up to date, "
                f"lake version {self.lake_version} stays"
            )
        parts = [f"{len(self.stale)} of {self.shards} shards stale"]
        parts += [f"{k}: {why}" for k, why in list(self.stale.items())[:8]]
        if self.unfinished:
            parts.append("unfinished: " + ", ".join(self.unfinished))
        return "; ".join(parts)


def catalog_url(store: Storage, profile: Profile) -> str:
    """The catalog a deployment curates: the user's, or the synthetic corpus's."""
    if profile.catalog:
        return profile.catalog
    folder = layout.synthetic_dir(store.url(), profile.scale, profile.seed)
    return f"{folder}/{layout.SYNTHETIC_CATALOG}"


def load_catalog(store: Storage, profile: Profile) -> pa.Table:
    """The deployment's catalog as ingest sees it: validated, fingerprinted, sharded."""
    url = catalog_url(store, profile)
    try:
        table = cat.validate_catalog(cat.read_catalog_file(url), where=url)
    except cat.CatalogError as exc:
        raise PlanError(f"{exc}; run `make rebuild-dataset` once to create it") from None
    return cat.with_shards(cat.with_fingerprints(table), profile.shards)


def plan(store: Storage, profile: Profile) -> Plan:
    """Compare every shard's inputs now with what its markers say it was built from."""
    table = load_catalog(store, profile)
    result = Plan(shards=profile.shards, lake_version=P.current_version(store))
    defaults = _default_settings(profile)
    for shard in range(profile.shards):
        key = layout.shard_key(shard)
        rows = table.filter(pc.equal(table["shard"], shard))
        inputs = ingest.shard_inputs(rows, key)
        raw = read_marker(store, ingest.MARKER_STAGE, key)
        why = _raw_staleness(raw, inputs, store) or _clean_staleness(
            read_marker(store, curate.MARKER_STAGE, key), raw, defaults, store
        )
        if why:
            result.stale[key] = why
            result.inputs[key] = digest(inputs)
    result.unfinished = [s for s in GLOBAL_STEPS if read_marker(store, s) is None]
    if result.lake_version is None:
        result.unfinished.append("lake")
    return result


def _raw_staleness(raw: dict | None, inputs: dict, store: Storage) -> str | None:
    if raw is None:
        return "never ingested"
    if raw["data_version"] != digest(inputs):
        same_code = raw["inputs"].get("code") == inputs["code"]
        return "sources changed" if same_code else "ingest code changed"
    if not intact(store, raw):
        return "raw files changed on disk"
    return None


def _clean_staleness(clean: dict | None, raw: dict, defaults: dict, store: Storage) -> str | None:
    if clean is None:
        return "never curated"
    built = clean["inputs"]
    if built.get("raw") != raw["data_version"]:
        return "raw shard changed since curation"
    if built.get("code") != curate.CODE_VERSION:
        return "curation code changed"
    if any(digest(built.get(name)) != digest(value) for name, value in defaults.items()):
        return "curation settings changed"
    if not intact(store, clean):
        return "clean files changed on disk"
    return None


def _default_settings(profile: Profile) -> dict:
    """The settings a scheduled run curates with (the run config's defaults)."""
    return {
        "geometry": dataclasses.asdict(GeometryConfig()),
        "label_config": dataclasses.asdict(LabelConfig()),
        "seed": profile.seed,
    }
