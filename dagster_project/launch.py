"""Launch a job's run through the code location that ``vprim ui`` serves, and wait for it.

``dagster job execute`` runs a job from its Python definition alone: its run has no code-location
origin, so the UI lists it on no job page, leaves it out of the Overview timeline and warns that
Re-execute comes "from a different code location". Here the run is created from the job as the
workspace loads it (the same ``[tool.dagster]`` target of pyproject.toml that ``dagster dev``
loads from the project root), then handed to the instance's run launcher, as the UI's Launch
button does. The run coordinator's queue is skipped on purpose: a command-line rebuild has no
daemon behind it to dequeue the run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import dagster as dg
from dagster._core.remote_representation.code_location import CodeLocation
from dagster._core.workspace.context import WorkspaceProcessContext, WorkspaceRequestContext
from dagster._core.workspace.load_target import ModuleTarget
from dagster.version import __version__ as dagster_version

from vprim.assets.settings import PROJECT_ROOT

#: The code location, exactly as pyproject.toml's ``[tool.dagster]`` names it for ``dagster dev``
#: run from the project root (tests/test_definitions.py checks the two agree).
DEFS_MODULE = "vprim.dagster_project.definitions"
LOCATION_NAME = "vprim"

FINISHED = frozenset(
    {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
)


class CodeLocationError(RuntimeError):
    """The code location failed to load; the message carries Dagster's error."""


def workspace_target() -> ModuleTarget:
    """The load target ``dagster dev`` builds from pyproject.toml with the project as cwd."""
    return ModuleTarget(
        module_name=DEFS_MODULE,
        attribute=None,
        working_directory=str(PROJECT_ROOT),
        location_name=LOCATION_NAME,
    )


@contextmanager
def code_location(
    instance: dg.DagsterInstance,
) -> Iterator[tuple[WorkspaceRequestContext, CodeLocation]]:
    """The workspace (with its code server running) and vprim's loaded code location."""
    with WorkspaceProcessContext(
        instance=instance,
        workspace_load_target=workspace_target(),
        version=dagster_version,
        read_only=False,
    ) as process:
        request = process.create_request_context()
        error = request.get_code_location_error(LOCATION_NAME)
        if error is not None:
            raise CodeLocationError(f"code location {LOCATION_NAME!r} failed to load:\n{error}")
        yield request, request.get_code_location(LOCATION_NAME)


def create_run(
    instance: dg.DagsterInstance,
    location: CodeLocation,
    job_name: str,
    tags: Mapping[str, str],
) -> dg.DagsterRun:
    """A NOT_STARTED run of ``job_name`` that carries the code location's origin."""
    (repo,) = location.get_repositories().values()
    remote_job = repo.get_full_job(job_name)
    plan = location.get_execution_plan(
        remote_job, {}, step_keys_to_execute=None, known_state=None, instance=instance
    )
    return instance.create_run(
        job_name=job_name,
        run_id=None,
        run_config={},
        resolved_op_selection=None,
        step_keys_to_execute=plan.execution_plan_snapshot.step_keys_to_execute,
        op_selection=None,
        status=None,
        root_run_id=None,
        parent_run_id=None,
        tags={**remote_job.tags, **tags},
        job_snapshot=remote_job.job_snapshot,
        execution_plan_snapshot=plan.execution_plan_snapshot,
        parent_job_snapshot=remote_job.parent_job_snapshot,
        remote_job_origin=remote_job.get_remote_origin(),
        job_code_origin=remote_job.get_python_origin(),
        asset_selection=None,
        asset_check_selection=None,
        asset_graph=repo.asset_graph,
    )


def wait_for(instance: dg.DagsterInstance, run_id: str, poll_s: float = 1.0) -> dg.DagsterRun:
    """Block until the run reaches a final status, and return it."""
    while True:
        run = instance.get_run_by_id(run_id)
        if run is not None and run.status in FINISHED:
            return run
        time.sleep(poll_s)


def launch_and_wait(
    instance: dg.DagsterInstance, job_name: str, tags: Mapping[str, str]
) -> dg.DagsterRun:
    """Launch ``job_name`` through the code location and wait for its run to finish.

    Ctrl-C asks the run launcher to terminate the run (its steps get the chance to clean up),
    then waits for the run to reach its final status.
    """
    with code_location(instance) as (request, location):
        run = create_run(instance, location, job_name, tags)
        print(f"vprim: launched run {run.run_id} of {job_name} in {LOCATION_NAME}", flush=True)
        instance.launch_run(run.run_id, request)
        try:
            return wait_for(instance, run.run_id)
        except KeyboardInterrupt:
            print(f"vprim: terminating run {run.run_id}", flush=True)
            instance.run_launcher.terminate(run.run_id)
            return wait_for(instance, run.run_id)
