"""Backend choice shared by the ops: Triton on CUDA (or under ``TRITON_INTERPRET=1``)."""

from __future__ import annotations

import os

import torch


def use_triton(x: torch.Tensor, backend: str) -> bool:
    """``backend``: ``auto`` (Triton on CUDA, the reference elsewhere), ``triton``, ``torch``."""
    if backend not in ("auto", "triton", "torch"):
        raise ValueError(f"backend must be auto|triton|torch, got {backend!r}")
    if backend == "torch":
        return False
    if backend == "triton":
        if not (x.is_cuda or os.environ.get("TRITON_INTERPRET") == "1"):
            raise RuntimeError("backend='triton' needs a CUDA tensor or TRITON_INTERPRET=1")
        return True
    return x.is_cuda


def next_pow2(n: int) -> int:
    return 1 << max(0, (int(n) - 1).bit_length())
