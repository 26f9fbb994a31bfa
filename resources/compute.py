"""Compute resource: the torch device training and evaluation run on (``auto`` | cpu | cuda)."""

from __future__ import annotations

import dagster as dg

from vprim.assets.model.device import resolve_device


class ComputeResource(dg.ConfigurableResource):
    """Attributes:
    device: ``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.
    cpu_threads: torch intra-op threads on the CPU (0 leaves torch's default).
    """

    device: str = "auto"
    cpu_threads: int = 2

    def torch_device(self) -> str:
        return resolve_device(self.device, self.cpu_threads)
