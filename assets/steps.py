"""What each kind of step needs from a machine, as op tags both distributed engines read.

``dagster-k8s/config`` is read by dagster-k8s's ``k8s_job_executor``, which runs each step in
its own pod with these resources; ``dagster-celery/queue`` by the Celery executor, which sends
the step to the workers of that queue ("cpu" on the CPU hosts, "gpu" on the GPU hosts). A step
without a kind gets the executor's defaults (``k8s_executor_config``) and Celery's default queue
"dagster". docs/DEPLOY.md explains the figures.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping

from vprim.assets.settings import SettingsError, current

K8S_CONFIG = "dagster-k8s/config"
CELERY_QUEUE = "dagster-celery/queue"
CPU_QUEUE, GPU_QUEUE, DEFAULT_QUEUE = "cpu", "gpu", "dagster"
GPU = "nvidia.com/gpu"

#: cores a shard step's pod asks for; its process pools are sized to match (os.cpu_count()
#: in a pod is the node's count, not the pod's share)
SHARD_CPUS = 2

#: memory a DuckDB step needs beyond DuckDB's own limit: Python, Arrow buffers and the rows it
#: streams out (BENCHMARKS.md, full scale, 4GB limit: lake_samples peaked at 4.94 GB RSS,
#: label_vocabulary at 4.25 GB)
DUCKDB_OVERHEAD_GIB = 2
#: DuckDB's memory_limit is not a hard cap on the process, so its pod may burst this much more
#: before the kernel kills it
DUCKDB_BURST_GIB = 2

_UNITS = {"b": 1, **{f"{p}b": 1000**i for i, p in enumerate("kmgt", 1)}}
_UNITS |= {f"{p}ib": 1024**i for i, p in enumerate("kmgt", 1)}


def _step(
    resources: dict, queue: str, *, env: list | None = None, pod_spec_config: dict | None = None
) -> dict[str, object]:
    """Op tags for one kind of step: its pod's container resources (and environment, and pod
    spec fields such as tolerations) and its Celery queue."""
    container = {"resources": resources, **({"env": env} if env else {})}
    k8s = {"container_config": container}
    if pod_spec_config:
        k8s["pod_spec_config"] = pod_spec_config
    return {K8S_CONFIG: k8s, CELERY_QUEUE: queue}


#: Ingest and curation over a batch of shards: VPRIM_WORKERS processes, one per core asked for
#: (ingest one more: it also waits on the disk). Full-scale ingest peaked at 3.4 GB in 3
#: processes (BENCHMARKS.md); a step that outgrows 8 GiB is killed rather than starve its node.
SHARD_STEP = _step(
    {"requests": {"cpu": str(SHARD_CPUS), "memory": "4Gi"}, "limits": {"memory": "8Gi"}},
    CPU_QUEUE,
    env=[
        {"name": "VPRIM_WORKERS", "value": str(SHARD_CPUS)},
        {"name": "VPRIM_INGEST_WORKERS", "value": str(SHARD_CPUS + 1)},
    ],
)


def duckdb_bytes(limit: str) -> int:
    """Bytes in a DuckDB memory limit such as ``4GB`` (10^9) or ``4GiB`` (2^30)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", limit.lower())
    if not match or match[2] not in _UNITS:
        raise SettingsError(f"VPRIM_DUCKDB_MEMORY={limit!r}; expected a size such as 4GB or 4GiB")
    return int(float(match[1]) * _UNITS[match[2]])


def duckdb_step(memory_limit: str) -> dict[str, object]:
    """Op tags for a global DuckDB step whose DuckDB may use ``memory_limit``: two cores (the
    DuckDB resource's threads), memory for DuckDB plus its overhead, in whole GiB."""
    need = math.ceil(duckdb_bytes(memory_limit) / 1024**3) + DUCKDB_OVERHEAD_GIB
    resources = {
        "requests": {"cpu": "2", "memory": f"{need}Gi"},
        "limits": {"memory": f"{need + DUCKDB_BURST_GIB}Gi"},
    }
    return _step(resources, CPU_QUEUE)


#: the global DuckDB steps of this deployment (VPRIM_DUCKDB_MEMORY, 4GB by default: 6 GiB)
DUCKDB_STEP = duckdb_step(current().duckdb_memory)

#: Training and evaluation: one GPU, asked for and limited (Kubernetes requires both equal for
#: a GPU), on nodes tainted for GPU work. No GPU run has been measured yet: CPU and memory are
#: a starting point.
GPU_STEP = _step(
    {
        "requests": {"cpu": "4", "memory": "16Gi", GPU: "1"},
        "limits": {"memory": "32Gi", GPU: "1"},
    },
    GPU_QUEUE,
    pod_spec_config={
        # GPU node pools are usually tainted so that only GPU work lands there
        "tolerations": [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}],
        # to pin a GPU model, add e.g. "node_selector": {"nvidia.com/gpu.product": "NVIDIA-H100"}
    },
)

#: resources of a step without a kind (catalog, label map, camps, checks...)
DEFAULT_STEP_RESOURCES = {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}}


def k8s_executor_config(env: Mapping[str, str] | None = None) -> dict:
    """Config of dagster-k8s's ``k8s_job_executor`` in production: one pod per step, in the
    namespace ``VPRIM_K8S_NAMESPACE`` (default "vprim")."""
    env = os.environ if env is None else env
    return {
        "job_namespace": env.get("VPRIM_K8S_NAMESPACE") or "vprim",
        # bounds what one run asks of the cluster at once; the asset graph rarely has more
        # independent steps than this
        "max_concurrent": 16,
        "step_k8s_config": {"container_config": {"resources": DEFAULT_STEP_RESOURCES}},
        # a step with a RetryPolicy (training resumes from its checkpoint) runs again
        "retries": {"enabled": {}},
    }
