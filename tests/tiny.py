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
