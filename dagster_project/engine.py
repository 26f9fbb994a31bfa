"""Where a run's steps execute: the executor of the code location, chosen by ``VPRIM_ENGINE``.

- ``local``: Dagster's multiprocess executor on this machine (the fast path: steps forked from
  a server that has imported the code location once; DuckDB-heavy steps one at a time).
- ``celery``: each step is a Celery task on a Redis broker, taken by any worker on any host
  (``celery -A vprim.dagster_project.celery_app worker -Q dagster,cpu,gpu``); queues ``cpu``
  and ``gpu`` come from the steps' ``dagster-celery/queue`` tags (``assets/steps.py``).
- ``k8s``: each step is a Kubernetes Job (``dagster_k8s.k8s_job_executor``), with the resource
  requests of its step kind.

A root that other processes cannot see (``memory://``) runs every step in the run's own
process, whatever the engine.
"""

from __future__ import annotations

import os

import dagster as dg

from vprim.assets.settings import Profile
from vprim.assets.storage import shared_across_processes as root_is_shared
from vprim.resources.duckdb import DUCKDB_HEAVY_TAG

#: The broker and result backend of the Celery engine; read from the environment when a run
#: starts (the code location itself needs neither to load).
CELERY_BROKER_ENV = "VPRIM_CELERY_BROKER"
CELERY_BACKEND_ENV = "VPRIM_CELERY_BACKEND"
#: seconds a taken task may run before Redis hands it to another worker (see celery_settings)
CELERY_VISIBILITY_ENV = "VPRIM_CELERY_VISIBILITY_S"
DEFAULT_VISIBILITY_S = 6 * 3600


def celery_settings(env: dict[str, str] | None = None) -> dict:
    """Celery settings that both sides share: the run submitting steps and every worker.

    A task is acknowledged only once its step has finished (``task_acks_late``), and given back
    to the queue when the process running it dies (``task_reject_on_worker_lost``): a worker
    killed mid-step loses no step, another worker runs it again. Steps are idempotent (each
    shard is rewritten whole, atomically), so a repeat leaves the same files. A worker takes
    one task at a time (``worker_prefetch_multiplier``), so no step waits behind a long one
    on a busy host. A host that vanishes outright (its whole worker gone) has its task handed
    out again after the visibility timeout: longer than the longest step, or a slow step would
    run twice at once.
    """
    env = os.environ if env is None else env
    visibility = int(env.get(CELERY_VISIBILITY_ENV) or DEFAULT_VISIBILITY_S)
    return {
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {"visibility_timeout": visibility},
        "result_backend_transport_options": {"visibility_timeout": visibility},
        "result_expires": 7 * 24 * 3600,
    }


def celery_executor() -> dg.ExecutorDefinition:
    from dagster_celery import celery_executor as executor

    return executor.configured(
        {
            "broker": {"env": CELERY_BROKER_ENV},
            "backend": {"env": CELERY_BACKEND_ENV},
            "config_source": celery_settings(),
        },
        name="celery",
    )


def k8s_executor() -> dg.ExecutorDefinition:
    from dagster_k8s import k8s_job_executor

    from vprim.assets.steps import k8s_executor_config

    return k8s_job_executor.configured(k8s_executor_config(), name="k8s")


def local_executor() -> dg.ExecutorDefinition:
    # Steps in parallel, but never two that may each fill DuckDB's memory limit. Each step
    # still gets its own process, forked from a server that has imported this code location
    # once: a spawned step imported dagster, torch and every asset module again (about 5 s).
    return dg.multiprocess_executor.configured(
        {
            "start_method": {
                "forkserver": {"preload_modules": ["vprim.dagster_project.definitions"]}
            },
            "tag_concurrency_limits": [
                {"key": DUCKDB_HEAVY_TAG[0], "value": DUCKDB_HEAVY_TAG[1], "limit": 1}
            ],
        }
    )


def executor_for(profile: Profile) -> dg.ExecutorDefinition:
    """The executor of every job in the code location, for this deployment."""
    if not root_is_shared(profile.root):
        return dg.in_process_executor
    if profile.engine == "celery":
        return celery_executor()
    if profile.engine == "k8s":
        return k8s_executor()
    return local_executor()
