"""Versions of the lake: build one completely, then publish it by rewriting ``lake/CURRENT``.

Layout under the storage root::

    lake/CURRENT                      the published version's name (one line)
    lake/STAGED                       the last version built and awaiting its checks
    lake/v=<version>/_manifest.json   written last: a version without it is incomplete
    lake/v=<version>/samples/label_bucket=NNN/part-0.parquet

Readers resolve CURRENT and read that version only; nothing a build does touches CURRENT or
the published version until :func:`publish`, which replaces CURRENT atomically. A killed build
leaves at most an incomplete ``v=`` folder, removed by the next :func:`apply_retention`.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow.parquet as pq

from vprim.assets.contracts import layout
from vprim.assets.storage import Storage


class LakeError(RuntimeError):
    """A lake version is missing, incomplete or inconsistent."""


def new_version(inputs_digest: str, now: float | None = None) -> str:
    """``<UTC time>-<first 8 hex of the inputs' digest>``: sorts by time, names its inputs."""
    stamp = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return f"{stamp:%Y%m%dT%H%M%S}-{inputs_digest[:8]}"


def file_digest(store: Storage, path: str) -> str:
    """sha256 of a file's bytes (absolute path inside the storage filesystem)."""
    h = hashlib.sha256()
    with store.fs.open(path, "rb") as f:
        while chunk := f.read(8 << 20):
            h.update(chunk)
    return h.hexdigest()


def inputs_digest(inputs: dict[str, str], config: dict) -> str:
    """One digest over the inputs' file digests and the config."""
    blob = json.dumps({"inputs": inputs, "config": config}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


def current_version(store: Storage) -> str | None:
    return store.read_text(layout.LAKE_CURRENT)


def published_with(store: Storage, digest: str) -> str | None:
    """The published version when it was built from inputs and config of this ``digest``."""
    version = current_version(store)
    if version is None or not version.endswith("-" + digest[:8]):
        return None
    try:
        manifest = read_manifest(store, version)
    except LakeError:
        return None
    return version if manifest.get("inputs_digest") == digest else None


def read_manifest(store: Storage, version: str) -> dict:
    rel = f"{layout.lake_version_dir(version)}/{layout.LAKE_MANIFEST}"
    if not store.exists(rel):
        raise LakeError(f"lake version {version!r} has no {layout.LAKE_MANIFEST}: it is incomplete")
    return store.read_json(rel)


def file_facts(store: Storage, version: str, rel_paths: list[str]) -> list[dict]:
    """Rows, instances and bytes of each samples file, read from the Parquet footers."""
    facts = []
    for rel in rel_paths:
        path = store.path(rel)
        with store.fs.open(path, "rb") as f:
            meta = pq.ParquetFile(f).metadata
        facts.append(
            {
                "path": posixpath.relpath(rel, layout.lake_version_dir(version)),
                "rows": meta.num_rows,
                "bytes": store.fs.size(path),
            }
        )
    return facts


def publish(store: Storage, version: str) -> str | None:
    """Make ``version`` the one readers see; returns the version it replaced."""
    read_manifest(store, version)  # refuses an incomplete version
    previous = current_version(store)
    store.write_text(version, layout.LAKE_CURRENT)
    return previous


@dataclass
class Published:
    version: str
    previous: str | None  # the version it replaced (None when nothing was published before)
    removed: list[str]  # versions the retention removed
    manifest: dict
    unchanged: bool = False  # the staged version was already the published one


def publish_staged(store: Storage, retention: int | None) -> Published:
    """Publish the version named in ``lake/STAGED``, then keep ``retention`` complete versions."""
    version = store.read_text(layout.LAKE_STAGED)
    if version is None:
        raise LakeError("nothing staged: materialise lake_samples first")
    if version == current_version(store):  # a build that found nothing changed
        removed = apply_retention(store, retention)
        return Published(version, version, removed, read_manifest(store, version), True)
    previous = publish(store, version)
    removed = apply_retention(store, retention)
    return Published(version, previous, removed, read_manifest(store, version))


def versions(store: Storage) -> list[str]:
    """Every ``v=`` folder's version, oldest first (names sort by build time)."""
    found = store.glob(f"{layout.LAKE_DIR}/v=*")
    return sorted(posixpath.basename(p).split("=", 1)[1] for p in found)


def apply_retention(store: Storage, keep: int | None, building: str | None = None) -> list[str]:
    """Keep the newest ``keep`` distinct complete versions (all when None); remove the rest,
    older copies of a version built from the same inputs, and incomplete versions (builds
    that were killed).

    Distinct means built from different inputs and config (the digest in the name), so quiet
    nights cannot push the last different version out of the rollback history. Never removes
    the published version, the staged one, nor ``building``. Returns what was removed.
    """
    if keep is not None and keep < 1:
        raise ValueError(f"retention={keep}: at least the published version must be kept")
    protected = {current_version(store), store.read_text(layout.LAKE_STAGED), building} - {None}
    complete = [
        v
        for v in versions(store)
        if store.exists(f"{layout.lake_version_dir(v)}/{layout.LAKE_MANIFEST}")
    ]
    newest_per_digest: dict[str, str] = {}
    for v in complete:  # oldest first, so the newest of each digest wins
        newest_per_digest[_digest_of(v)] = v
    distinct = sorted(newest_per_digest.values())
    keep_set = set(distinct if keep is None else distinct[-keep:]) | protected
    removed = []
    for v in versions(store):
        if v not in keep_set:
            store.fs.rm(store.path(layout.lake_version_dir(v)), recursive=True)
            removed.append(v)
    return removed


def _digest_of(version: str) -> str:
    """The inputs digest a version's name carries (``<time>-<digest>``)."""
    return version.rsplit("-", 1)[-1]
