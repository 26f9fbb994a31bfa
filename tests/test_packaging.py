"""The install a fresh clone gets: import names that shadow nothing, a lock that pins everything."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from vprim.assets.settings import PROJECT_ROOT
from vprim.dagster_project import launch

PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
PACKAGE_DIR = PYPROJECT["tool"]["setuptools"]["package-dir"]
LOCK = PROJECT_ROOT / "requirements.lock"

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


def _locked() -> dict[str, str]:
    """``{normalised name: version}`` of every requirement in the lock, each with a hash."""
    text = LOCK.read_text()
    pins = {}
    for entry in re.split(r"\n(?=[A-Za-z0-9])", text):
        if entry.startswith("#") or not entry.strip():
            continue
        match = re.match(r"([A-Za-z0-9_.\-]+)==(\S+)", entry)
        assert match, f"not an exact pin: {entry.splitlines()[0]}"
        assert "--hash=sha256:" in entry, f"no hash for {match.group(1)}"
        pins[_normalise(match.group(1))] = match.group(2)
    return pins


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    return _normalise(re.match(r"[A-Za-z0-9_.\-]+", requirement).group(0))


def test_lock_pins_every_dependency_by_hash():
    pins = _locked()
    project = PYPROJECT["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    missing = {_requirement_name(r) for r in wanted} - set(pins)
    assert not missing, f"in pyproject.toml but not in requirements.lock: {sorted(missing)}"
    # the CPU build of torch, never the CUDA build the default PyPI wheel is
    assert pins["torch"] == "2.13.0+cpu"


def test_environment_is_exactly_the_lock():
    # every distribution `make setup` put into .venv comes from the lock, at the locked version
    if not Path(sys.prefix, "bin", ".installed").exists():
        pytest.skip("not the .venv that `make setup` built")
    pins = _locked()
    installed = {
        _normalise(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()
    }
    # pip is the interpreter's own; vprim is this checkout; uv comes only with `make lock`
    extra = set(installed) - set(pins) - {"pip", "vprim", "uv"}
    assert not extra, f"installed but not locked: {sorted(extra)}"
    differ = {n: (installed[n], v) for n, v in pins.items() if installed.get(n) != v}
    assert not differ, f"installed != locked: {differ}"
