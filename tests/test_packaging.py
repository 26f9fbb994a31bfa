"""The install a fresh clone gets: import names that shadow nothing, a lock that pins everything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from vprim.dagster_project import launch
from vprim.dagster_project.profiles import PROJECT_ROOT

PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
PACKAGE_DIR = PYPROJECT["tool"]["setuptools"]["package-dir"]

#: Run from the repo root, where Python puts the working directory first on sys.path: each
#: name must resolve to the dependency that owns it, never to one of our folders.
SHADOW_PROBE = """
import importlib.util, json, sys
import sentence_transformers
import transformers.integrations.hub_kernels
from kernels import CUDAProperties  # what transformers >= 5.25 imports from Hugging Face's kernels
names = sys.argv[1:]
found = {}
for name in names:
    spec = importlib.util.find_spec(name)
    found[name] = None if spec is None else spec.origin
print(json.dumps(found))
"""


#: The top-level folders the user fixed that hold code or data, each imported as vprim.<folder>.
FOLDERS = ("assets", "dagster_project", "kernels", "resources", "sql")


def _ours(path: str) -> bool:
    """A file of this checkout, not of the environment (which may be the checkout's .venv)."""
    return Path(path).is_relative_to(PROJECT_ROOT) and not Path(path).is_relative_to(sys.prefix)


def test_every_top_level_folder_is_mapped_under_vprim():
    assert {f"vprim.{folder}": folder for folder in FOLDERS} == PACKAGE_DIR


@pytest.mark.parametrize("folder", FOLDERS)
def test_top_level_folder_is_no_regular_package(folder):
    # an __init__.py here would make `import <folder>` from the repo root ours, shadowing any
    # installed package of that name (Hugging Face's `kernels` for one)
    assert not (PROJECT_ROOT / folder / "__init__.py").exists()


def test_dependencies_are_not_shadowed_from_the_repo_root():
    names = [*FOLDERS, "transformers", "sentence_transformers"]
    proc = subprocess.run(
        [sys.executable, "-c", SHADOW_PROBE, *names],
        cwd=PROJECT_ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "site-packages" in found["kernels"] and not _ours(found["kernels"])
    for name in FOLDERS:
        # at most an implicit namespace portion (no origin), which an installed package of the
        # same name beats; never a module or regular package of ours
        assert found[name] is None or not _ours(found[name]), (name, found[name])


def test_packages_list_every_folder_with_code_or_data():
    # a non-editable install copies only the listed packages: a new subfolder must be listed
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    wanted = set()
    for dotted, folder in PACKAGE_DIR.items():
        for path in (PROJECT_ROOT / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                rel = path.parent.relative_to(PROJECT_ROOT / folder)
                wanted.add(".".join([dotted, *rel.parts]))
    assert wanted == listed


def test_code_location_is_the_one_pyproject_names():
    # `vprim rebuild-dataset` launches through the location `dagster dev` loads from pyproject
    from dagster._core.workspace.load_target import get_target_from_toml_data

    block = PYPROJECT["tool"]["dagster"]
    assert (block["module_name"], block["code_location_name"]) == (
        launch.DEFS_MODULE,
        launch.LOCATION_NAME,
    )
    cwd = Path.cwd()
    try:
        os.chdir(PROJECT_ROOT)
        from_toml = get_target_from_toml_data(PYPROJECT)
    finally:
        os.chdir(cwd)
    assert from_toml == launch.workspace_target()
