"""A `tiny` rebuild as a user runs it, for the end-to-end tests: ``vprim rebuild-dataset`` in a
subprocess, into a throwaway root and DAGSTER_HOME."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from vprim.assets.settings import PROJECT_ROOT


def tiny_env(base: Path) -> dict[str, str]:
    """The settings of a shell that rebuilds the tiny corpus and then opens the UI."""
    return {
        **os.environ,
        "VPRIM_ROOT": str(base / "data"),
        "DAGSTER_HOME": str(base / "home"),
        "VPRIM_SCALE": "tiny",
        "VPRIM_SHARDS": "4",
        "VPRIM_WORKERS": "2",
    }


def rebuild(base: Path, *flags: str) -> str:
    """``vprim rebuild-dataset`` with ``flags``; its stdout (the test fails on an error)."""
    proc = subprocess.run(
        [sys.executable, "-m", "vprim.dagster_project.cli", "rebuild-dataset", *flags],
        env=tiny_env(base),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def lake_rows(root: str, storage_options: dict | None = None) -> list[str]:
    """The published lake's rows as sorted digests, the root's own prefix taken out of every
    string (a corpus generated under the root names its images by absolute address)."""
    import hashlib
    import json
    import posixpath

    import fsspec
    import pyarrow.parquet as pq

    fs, base = fsspec.core.url_to_fs(root, **(storage_options or {}))
    with fs.open(posixpath.join(base, "lake", "CURRENT"), "r") as f:
        version = f.read().strip()
    prefixes = sorted({root.rstrip("/"), fs.unstrip_protocol(base).rstrip("/"), base}, key=len)
    digests = []
    for path in sorted(fs.glob(posixpath.join(base, "lake", f"v={version}", "samples", "**"))):
        if not path.endswith(".parquet"):
            continue
        with fs.open(path, "rb") as f:
            for row in pq.read_table(f).to_pylist():
                text = json.dumps(row, sort_keys=True)
                for prefix in reversed(prefixes):  # the longest spelling first
                    text = text.replace(prefix, "<root>")
                digests.append(hashlib.md5(text.encode()).hexdigest())
    return sorted(digests)
