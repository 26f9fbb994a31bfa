"""Shared fixtures. Tests never touch ./data or ./.dagster_home: everything goes to tmp."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The code location reads its profile at import; pin a small, fast one for every test.
os.environ.setdefault("VPRIM_SHARDS", "4")
os.environ.setdefault("VPRIM_SCALE", "tiny")
os.environ.setdefault("VPRIM_WORKERS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHARED_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


@pytest.fixture
def shared_fixtures() -> Path:
    """The real-format sample files beside the repo; tests skip when they are absent."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip("../shared/fixtures is not present (a user's clone has none)")
    return SHARED_FIXTURES
