"""The production deployment profile (dagster_project/deploy/), validated as far as a machine
without a Kubernetes cluster or Helm allows; docs/DEPLOY.md says what is left for a cluster."""

from __future__ import annotations

from pathlib import Path

import yaml

from vprim.assets.settings import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "dagster_project" / "deploy"
DATA = Path(__file__).with_name("data")


def deploy_yaml(name: str) -> dict:
    """A file of the deployment profile, parsed (``helm/values.yaml``, ``dagster.yaml``...)."""
    return yaml.safe_load((DEPLOY / name).read_text())
