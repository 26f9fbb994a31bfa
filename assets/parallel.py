"""Run per-shard work in worker processes (spawned: the parent may hold Arrow/DuckDB thread
pools that a fork would break)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any


def map_shards(
    fn: Callable[[Any], Any], jobs: Sequence[Any], workers: int | None, *, shared: bool = True
) -> list:
    """``[fn(job) for job in jobs]``, in up to ``workers`` processes (default: all cores).

    ``fn`` must be a module-level function and each job picklable; results keep job order.
    ``shared``: whether other processes see the storage the jobs read and write
    (``Storage.shared_across_processes``); when not (``memory://``), every job runs here.
    """
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    if workers == 1 or not shared:
        return [fn(job) for job in jobs]
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        return list(pool.map(fn, jobs))


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (ours or another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True
