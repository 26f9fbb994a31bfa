"""KV compression: every ``m`` consecutive tokens -> one entry (learned weighted pooling)."""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from vprim.kernels._common import next_pow2, use_triton
from vprim.kernels.reference import compress_ref


@triton.jit
def _compress_fwd(
    x, w, bias, o, T, N, H, D, M,
    BM: tl.constexpr, BD: tl.constexpr,
):  # fmt: skip
    i_n, i_bh = tl.program_id(0), tl.program_id(1)
    i_b, i_h = i_bh // H, i_bh % H
    o_j = tl.arange(0, BM)
    o_d = tl.arange(0, BD)
    rows = i_n * M + o_j  # [BM]
    m_j = (o_j < M) & (rows < T)
    m_d = o_d < D
    p_x = x + ((i_b * T + rows[:, None]) * H + i_h) * D + o_d[None, :]
    b_x = tl.load(p_x, mask=m_j[:, None] & m_d[None, :], other=0.0).to(tl.float32)  # [BM, BD]
    b_w = tl.load(w + i_h * D + o_d, mask=m_d, other=0.0).to(tl.float32)  # [BD]
    b_b = tl.load(bias + i_h * M + o_j, mask=o_j < M, other=0.0).to(tl.float32)  # [BM]
    b_s = tl.sum(b_x * b_w[None, :], axis=1) + b_b  # [BM]
    b_s = tl.where(m_j, b_s, float("-inf"))
    b_p = tl.exp(b_s - tl.max(b_s, axis=0))
    b_p = b_p / tl.sum(b_p, axis=0)
    b_o = tl.sum(b_p[:, None] * b_x, axis=0)  # [BD]
    tl.store(o + ((i_b * N + i_n) * H + i_h) * D + o_d, b_o.to(o.dtype.element_ty), mask=m_d)


@triton.jit
def _compress_bwd(
    x, w, bias, do, dx, dw, dbias, T, N, H, D, M,
    BM: tl.constexpr, BD: tl.constexpr,
):  # fmt: skip
    i_n, i_bh = tl.program_id(0), tl.program_id(1)
    i_b, i_h = i_bh // H, i_bh % H
    o_j = tl.arange(0, BM)
    o_d = tl.arange(0, BD)
    rows = i_n * M + o_j
    m_j = (o_j < M) & (rows < T)
    m_d = o_d < D
    m_x = m_j[:, None] & m_d[None, :]
    p_x = ((i_b * T + rows[:, None]) * H + i_h) * D + o_d[None, :]
    b_x = tl.load(x + p_x, mask=m_x, other=0.0).to(tl.float32)  # [BM, BD]
    b_w = tl.load(w + i_h * D + o_d, mask=m_d, other=0.0).to(tl.float32)
    b_b = tl.load(bias + i_h * M + o_j, mask=o_j < M, other=0.0).to(tl.float32)
    b_s = tl.where(m_j, tl.sum(b_x * b_w[None, :], axis=1) + b_b, float("-inf"))
    b_p = tl.exp(b_s - tl.max(b_s, axis=0))
    b_p = b_p / tl.sum(b_p, axis=0)  # [BM]
    b_do = tl.load(do + ((i_b * N + i_n) * H + i_h) * D + o_d, mask=m_d, other=0.0)
    b_do = b_do.to(tl.float32)  # [BD]
    b_dp = tl.sum(b_x * b_do[None, :], axis=1)  # [BM]
    b_ds = b_p * (b_dp - tl.sum(b_p * b_dp, axis=0))  # [BM]
    b_dx = b_p[:, None] * b_do[None, :] + b_ds[:, None] * b_w[None, :]  # [BM, BD]
    tl.store(dx + p_x, b_dx.to(dx.dtype.element_ty), mask=m_x)
    tl.atomic_add(dw + i_h * D + o_d, tl.sum(b_ds[:, None] * b_x, axis=0), mask=m_d)
    tl.atomic_add(dbias + i_h * M + o_j, b_ds, mask=m_j)


class CompressFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, bias, m):
        B, T, H, D = x.shape
        N = math.ceil(T / m)
        x, w, bias = x.contiguous(), w.contiguous(), bias.contiguous()
        o = torch.empty(B, N, H, D, device=x.device, dtype=x.dtype)
        BM, BD = next_pow2(m), next_pow2(D)
        _compress_fwd[(N, B * H)](x, w, bias, o, T, N, H, D, m, BM=BM, BD=BD)
        ctx.save_for_backward(x, w, bias)
        ctx.m = m
        return o

    @staticmethod
    def backward(ctx, do):
        x, w, bias = ctx.saved_tensors
        m = ctx.m
        B, T, H, D = x.shape
        N = math.ceil(T / m)
        dx = torch.empty_like(x)
        dw = torch.zeros(H, D, device=x.device, dtype=torch.float32)
        dbias = torch.zeros(H, m, device=x.device, dtype=torch.float32)
        BM, BD = next_pow2(m), next_pow2(D)
        _compress_bwd[(N, B * H)](
            x, w, bias, do.contiguous(), dx, dw, dbias, T, N, H, D, m, BM=BM, BD=BD
        )
        return dx, dw.to(w.dtype), dbias.to(bias.dtype), None


def compress(
    x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor, m: int = 4, backend: str = "auto"
) -> torch.Tensor:
    """Compress ``x [B, T, H, D]`` into ``[B, ceil(T/m), H, D]``; see :func:`compress_ref`.

    Args:
        w: ``[H, D]``; bias: ``[H, m]``; backend: ``auto`` | ``triton`` | ``torch``.
    """
    if x.ndim != 4 or w.shape != (x.shape[2], x.shape[3]) or bias.shape != (x.shape[2], m):
        raise ValueError(
            f"expected x [B,T,H,D], w [H,D], bias [H,{m}]; got {tuple(x.shape)}, "
            f"{tuple(w.shape)}, {tuple(bias.shape)}"
        )
    if use_triton(x, backend):
        return CompressFunction.apply(x, w, bias, m)
    return compress_ref(x, w, bias, m)
