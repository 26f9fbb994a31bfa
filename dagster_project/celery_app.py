"""The Celery app of vprim's workers, with the same settings as the runs that submit to them.

Start a worker on any host that has the project installed, the deployment's environment
(``VPRIM_ROOT``, ``DAGSTER_HOME`` with the PostgreSQL instance, ``AWS_*`` for an S3 root) and
the broker in ``VPRIM_CELERY_BROKER``::

    celery -A vprim.dagster_project.celery_app worker -Q dagster,cpu --concurrency 1

A GPU host adds ``gpu`` to its queues. Dagster's own ``dagster-celery worker start`` would build
the app from dagster_celery's defaults, without the late acknowledgement that lets a step
survive a killed worker (``engine.celery_settings``).
"""

from __future__ import annotations

import os

from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from vprim.dagster_project.engine import CELERY_BACKEND_ENV, CELERY_BROKER_ENV, celery_settings


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"vprim: {name} is not set; a worker needs the broker and result backend")
    return value


app = make_app(
    CeleryExecutor.for_cli(
        broker=_required(CELERY_BROKER_ENV),
        backend=_required(CELERY_BACKEND_ENV),
        config_source=celery_settings(),
    ).app_args()
)

#: the task every step of a run becomes (dagster_celery's executor submits it by name)
execute_plan = create_task(app)
