"""Torch device choice: ``auto`` is CUDA when there is one, else the CPU."""

from __future__ import annotations

import torch


def resolve_device(name: str = "auto", threads: int = 2) -> str:
    """``auto`` | ``cpu`` | ``cuda`` (or ``cuda:N``) -> a torch device string; sets CPU threads."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but torch sees no CUDA device")
    if name != "cpu" and not name.startswith("cuda"):
        raise ValueError(f"device must be auto, cpu or cuda[:N], got {name!r}")
    if threads > 0:
        torch.set_num_threads(threads)
    return name
