"""Completion markers: what each shard and each global output was built from.

Datatrove's habit, kept for every stage: a step that finished writes, last, a small JSON
marker beside its outputs naming its inputs (a digest of named parts: the source
fingerprints, upstream data versions, config, code version) and the files it wrote with their
sizes and mtimes. A later run computes the same inputs; when they are equal and every output
is still there as written, the step is skipped: nothing is read again, nothing rewritten.
The inputs digest is also the output's data version (outputs are deterministic functions of
their inputs), which is what Dagster records and what downstream markers name.

Markers live under ``_markers/`` in the storage root (``layout.marker_file``).
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from vprim.assets.contracts import layout
from vprim.assets.settings import PROJECT_ROOT
from vprim.assets.storage import Storage


def digest(parts: object) -> str:
    """A stable 16-hex digest of any JSON-serialisable value (dict keys sorted)."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def code_version(*globs: str) -> str:
    """Digest of the project files that decide a stage's output (paths under the repo root).

    Any edit to them, even a comment, makes every output of the stage stale: conservative,
    never wrong. Dagster shows the same string as the asset's code version.
    """
    h = hashlib.sha256()
    for pattern in globs:
        for path in sorted(PROJECT_ROOT.glob(pattern)):
            if path.is_file() and "__pycache__" not in path.parts:
                h.update(str(path.relative_to(PROJECT_ROOT)).encode() + b"\0")
                h.update(path.read_bytes())
    return h.hexdigest()[:12]


def file_facts(store: Storage, rel: str) -> dict | None:
    """Size and modification time of one file under the root (None when it is missing)."""
    try:
        info = store.fs.info(store.path(rel))
    except FileNotFoundError:
        return None
    mtime = info.get("mtime") or info.get("LastModified") or info.get("created")
    return {"size": info.get("size"), "mtime": str(mtime)}


def read_marker(store: Storage, stage: str, key: str | None = None) -> dict | None:
    rel = layout.marker_file(stage, key)
    if not store.exists(rel):
        return None
    try:
        return store.read_json(rel)
    except (ValueError, OSError):  # a torn or foreign file is no proof of anything
        return None


def intact(store: Storage, marker: Mapping) -> bool:
    """Every file a marker names is still there with the size and mtime it had."""
    return all(file_facts(store, rel) == facts for rel, facts in marker["outputs"].items())


def up_to_date(store: Storage, stage: str, key: str | None, inputs: Mapping) -> dict | None:
    """The marker of ``stage``/``key`` when it was built from ``inputs`` and every file it
    wrote is still there as written; else None (the step must run)."""
    marker = read_marker(store, stage, key)
    if marker is None or marker.get("data_version") != digest(inputs):
        return None
    return marker if intact(store, marker) else None


def write_marker(
    store: Storage,
    stage: str,
    key: str | None,
    inputs: Mapping,
    outputs: Iterable[str],
    summary: Mapping,
) -> dict:
    """Record that ``stage``/``key`` was built from ``inputs`` into ``outputs`` (written last)."""
    marker = {
        "stage": stage,
        "key": key,
        "inputs": dict(inputs),
        "data_version": digest(inputs),
        "outputs": {rel: file_facts(store, rel) for rel in outputs},
        "summary": dict(summary),
    }
    store.write_json(marker, layout.marker_file(stage, key))
    return marker


def data_version(store: Storage, stage: str, key: str | None = None) -> str | None:
    """The data version a finished step recorded (None when it never finished)."""
    marker = read_marker(store, stage, key)
    return marker["data_version"] if marker else None


def snapshot(root: str | Path, skip: Iterable[str] = ()) -> dict[str, tuple[int, int]]:
    """Every file under a local root with (size, mtime_ns), leaving out the top-level folders
    in ``skip`` (the corpus, an input): to count what a run rewrote."""
    root = str(root)
    out = {}
    for folder, dirs, files in os.walk(root):
        if folder == root:
            dirs[:] = [d for d in dirs if d not in set(skip)]
        for name in files:
            st = os.stat(os.path.join(folder, name))
            out[posixpath.relpath(os.path.join(folder, name), root)] = (st.st_size, st.st_mtime_ns)
    return out


def rewritten(before: Mapping, after: Mapping) -> list[str]:
    """Files added or changed between two :func:`snapshot` s."""
    return sorted(p for p, facts in after.items() if before.get(p) != facts)


def sharded_versions(store: Storage, directory: str, stage: str) -> dict[str, object]:
    """Per shard file under ``directory``: the data version its marker records, or the file's
    size and mtime when it has no marker (written by something other than its stage)."""
    out: dict[str, object] = {}
    for path in store.glob(f"{directory}/shard=*.parquet"):
        key = posixpath.basename(path).removeprefix("shard=").removesuffix(".parquet")
        rel = layout.shard_file(directory, key)
        marker = read_marker(store, stage, key)
        intact_marker = marker is not None and intact(store, marker)
        out[key] = marker["data_version"] if intact_marker else file_facts(store, rel)
    return out


@dataclass
class StepOutcome:
    """What one step did: ``rebuilt`` or ``unchanged``, its summary and data version."""

    status: str
    summary: dict
    data_version: str

    @property
    def rebuilt(self) -> bool:
        return self.status == "rebuilt"

    def as_shard(self, key: str) -> dict:
        """A shard step's summary as the defs read it: its figures, shard, status, version."""
        return {
            **self.summary,
            "shard": key,
            "status": self.status,
            "data_version": self.data_version,
        }


def run_once(
    store: Storage,
    stage: str,
    inputs: Mapping,
    outputs: Iterable[str],
    build: Callable[[], Mapping],
    key: str | None = None,
) -> StepOutcome:
    """``build()`` (which writes ``outputs`` and returns a JSON-able summary) unless the
    marker of ``stage`` (shard ``key``, or the global step) shows it was already built from
    ``inputs``; then nothing is read or written."""
    done = up_to_date(store, stage, key, inputs)
    if done is not None:
        return StepOutcome("unchanged", done["summary"], done["data_version"])
    summary = build()
    marker = write_marker(store, stage, key, inputs, outputs, summary)
    return StepOutcome("rebuilt", marker["summary"], marker["data_version"])
