"""Shared fixtures. Tests never touch ./data or ./.dagster_home: everything goes to tmp."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# The code location reads its profile at import; pin a small, fast one for every test, whatever
# the developer's shell exports (a VPRIM_CATALOG or VPRIM_WORKERS there would change the job's
# config defaults, and with them the code-location snapshot). The test suite's own switches stay.
TEST_SWITCHES = {"VPRIM_SLOW", "VPRIM_UPDATE_SNAPSHOT", "VPRIM_HYPOTHESIS_EXAMPLES"}
for name in [n for n in os.environ if n.startswith("VPRIM_") and n not in TEST_SWITCHES]:
    del os.environ[name]
os.environ.update({"VPRIM_SHARDS": "4", "VPRIM_SCALE": "tiny", "VPRIM_WORKERS": "1"})
# ... and a DAGSTER_HOME of their own: the deployment file a developer's `make rebuild-dataset`
# left in ./.dagster_home would otherwise win over the settings above
os.environ["DAGSTER_HOME"] = tempfile.mkdtemp(prefix="vprim-tests-home-")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Triton reads it when a kernel module is imported: set before any test module imports the
# code location (tests/deploy does, and is collected before tests/kernels and its conftest)
os.environ["TRITON_INTERPRET"] = "1"

SHARED_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


@pytest.fixture
def shared_fixtures() -> Path:
    """The real-format sample files beside the repo; tests skip when they are absent."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip("../shared/fixtures is not present (a user's clone has none)")
    return SHARED_FIXTURES


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """The ``tiny`` synthetic corpus (seed 0), generated once per session. Read it, never
    write into it: several modules share it."""
    from vprim.assets.sources.synthetic.corpus import generate_corpus

    return generate_corpus(str(tmp_path_factory.mktemp("tiny-corpus") / "tiny"), "tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_rebuilt(tmp_path_factory):
    """One tiny ``vprim rebuild-dataset`` on the local engine into a throwaway root and
    DAGSTER_HOME, shared by the modules that read it: (base folder, its stdout)."""
    from tests.tiny import rebuild

    base = tmp_path_factory.mktemp("e2e")
    return base, rebuild(base)
