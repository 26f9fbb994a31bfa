"""Sparse attention: selected compressed entries + a sliding window of raw tokens.

One program per (query, batch*head); online softmax over the gathered compressed entries,
then over the window, so no score matrix is ever materialised. The backward recomputes the
probabilities from the saved log-sum-exp and scatters key/value gradients with atomics
(fp32 accumulators: the order of additions, and so the last bits, may vary between runs).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from vprim.kernels._common import next_pow2, use_triton
from vprim.kernels.reference import sparse_attention_ref


@triton.jit
def _sparse_fwd(
    q, k, v, kc, vc, idx, o, lse, scale, T, N, H, D, K, W,
    BK: tl.constexpr, BW: tl.constexpr, BD: tl.constexpr,
):  # fmt: skip
    i_t, i_bh = tl.program_id(0), tl.program_id(1)
    i_b, i_h = i_bh // H, i_bh % H
    o_d = tl.arange(0, BD)
    m_d = o_d < D
    b_q = tl.load(q + ((i_b * T + i_t) * H + i_h) * D + o_d, mask=m_d, other=0.0).to(tl.float32)
    b_m = tl.full([1], float("-inf"), dtype=tl.float32)
    b_l = tl.zeros([1], dtype=tl.float32)
    b_o = tl.zeros([BD], dtype=tl.float32)
    # selected compressed entries
    for k0 in range(0, K, BK):
        o_k = k0 + tl.arange(0, BK)
        b_i = tl.load(idx + (i_b * T + i_t) * K + o_k, mask=o_k < K, other=-1)  # [BK]
        m_k = b_i >= 0
        p_c = ((i_b * N + b_i[:, None]) * H + i_h) * D + o_d[None, :]
        m_c = m_k[:, None] & m_d[None, :]
        b_kc = tl.load(kc + p_c, mask=m_c, other=0.0).to(tl.float32)  # [BK, BD]
        b_vc = tl.load(vc + p_c, mask=m_c, other=0.0).to(tl.float32)  # [BK, BD]
        b_s = tl.where(m_k, tl.sum(b_kc * b_q[None, :], axis=1) * scale, float("-inf"))  # [BK]
        b_mn = tl.maximum(b_m, tl.max(b_s, axis=0))
        b_p = tl.where(m_k, tl.exp(b_s - b_mn), 0.0)
        b_a = tl.where(b_m == float("-inf"), 0.0, tl.exp(b_m - b_mn))
        b_l = b_l * b_a + tl.sum(b_p, axis=0)
        b_o = b_o * b_a + tl.sum(b_p[:, None] * b_vc, axis=0)
        b_m = b_mn
    # sliding window of raw tokens: t - W < s <= t
    s_lo = tl.maximum(i_t - W + 1, 0)
    for s0 in range(s_lo, i_t + 1, BW):
        o_s = s0 + tl.arange(0, BW)
        m_s = o_s <= i_t
        p_r = ((i_b * T + o_s[:, None]) * H + i_h) * D + o_d[None, :]
        m_r = m_s[:, None] & m_d[None, :]
        b_k = tl.load(k + p_r, mask=m_r, other=0.0).to(tl.float32)  # [BW, BD]
        b_v = tl.load(v + p_r, mask=m_r, other=0.0).to(tl.float32)  # [BW, BD]
        b_s = tl.where(m_s, tl.sum(b_k * b_q[None, :], axis=1) * scale, float("-inf"))
        b_mn = tl.maximum(b_m, tl.max(b_s, axis=0))
        b_p = tl.where(m_s, tl.exp(b_s - b_mn), 0.0)
        b_a = tl.where(b_m == float("-inf"), 0.0, tl.exp(b_m - b_mn))
        b_l = b_l * b_a + tl.sum(b_p, axis=0)
        b_o = b_o * b_a + tl.sum(b_p[:, None] * b_v, axis=0)
        b_m = b_mn
    b_o = b_o / b_l
    tl.store(o + ((i_b * T + i_t) * H + i_h) * D + o_d, b_o.to(o.dtype.element_ty), mask=m_d)
    o_1 = tl.arange(0, 1)
    tl.store(lse + (i_b * H + i_h) * T + i_t + o_1, b_m + tl.log(b_l))


@triton.jit
def _sparse_bwd(
    q, k, v, kc, vc, idx, do, lse, delta, dq, dk, dv, dkc, dvc, scale, T, N, H, D, K, W,
    BK: tl.constexpr, BW: tl.constexpr, BD: tl.constexpr,
):  # fmt: skip
    i_t, i_bh = tl.program_id(0), tl.program_id(1)
    i_b, i_h = i_bh // H, i_bh % H
    o_d = tl.arange(0, BD)
    m_d = o_d < D
    p_q = ((i_b * T + i_t) * H + i_h) * D + o_d
    b_q = tl.load(q + p_q, mask=m_d, other=0.0).to(tl.float32)  # [BD]
    b_do = tl.load(do + p_q, mask=m_d, other=0.0).to(tl.float32)  # [BD]
    o_1 = tl.arange(0, 1)
    b_lse = tl.load(lse + (i_b * H + i_h) * T + i_t + o_1)  # [1]
    b_delta = tl.load(delta + (i_b * H + i_h) * T + i_t + o_1)  # [1]
    b_dq = tl.zeros([BD], dtype=tl.float32)
    for k0 in range(0, K, BK):
        o_k = k0 + tl.arange(0, BK)
        b_i = tl.load(idx + (i_b * T + i_t) * K + o_k, mask=o_k < K, other=-1)
        m_k = b_i >= 0
        p_c = ((i_b * N + b_i[:, None]) * H + i_h) * D + o_d[None, :]
        m_c = m_k[:, None] & m_d[None, :]
        b_kc = tl.load(kc + p_c, mask=m_c, other=0.0).to(tl.float32)  # [BK, BD]
        b_vc = tl.load(vc + p_c, mask=m_c, other=0.0).to(tl.float32)
        b_s = tl.sum(b_kc * b_q[None, :], axis=1) * scale
        b_p = tl.where(m_k, tl.exp(b_s - b_lse), 0.0)  # [BK]
        b_dp = tl.sum(b_vc * b_do[None, :], axis=1)
        b_ds = b_p * (b_dp - b_delta) * scale  # [BK]
        b_dq += tl.sum(b_ds[:, None] * b_kc, axis=0)
        tl.atomic_add(dkc + p_c, b_ds[:, None] * b_q[None, :], mask=m_c)
        tl.atomic_add(dvc + p_c, b_p[:, None] * b_do[None, :], mask=m_c)
    s_lo = tl.maximum(i_t - W + 1, 0)
    for s0 in range(s_lo, i_t + 1, BW):
        o_s = s0 + tl.arange(0, BW)
        m_s = o_s <= i_t
        p_r = ((i_b * T + o_s[:, None]) * H + i_h) * D + o_d[None, :]
        m_r = m_s[:, None] & m_d[None, :]
        b_k = tl.load(k + p_r, mask=m_r, other=0.0).to(tl.float32)
        b_v = tl.load(v + p_r, mask=m_r, other=0.0).to(tl.float32)
        b_s = tl.sum(b_k * b_q[None, :], axis=1) * scale
        b_p = tl.where(m_s, tl.exp(b_s - b_lse), 0.0)
        b_dp = tl.sum(b_v * b_do[None, :], axis=1)
        b_ds = b_p * (b_dp - b_delta) * scale
        b_dq += tl.sum(b_ds[:, None] * b_k, axis=0)
        tl.atomic_add(dk + p_r, b_ds[:, None] * b_q[None, :], mask=m_r)
        tl.atomic_add(dv + p_r, b_p[:, None] * b_do[None, :], mask=m_r)
    tl.store(dq + p_q, b_dq.to(dq.dtype.element_ty), mask=m_d)


def _blocks(K: int, W: int, D: int) -> tuple[int, int, int]:
    return min(32, next_pow2(max(K, 1))), min(64, next_pow2(W)), next_pow2(D)


class SparseAttentionFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, kc, vc, idx, window, scale):
        B, T, H, D = q.shape
        N, K = kc.shape[1], idx.shape[-1]
        q, k, v, kc, vc = (t.contiguous() for t in (q, k, v, kc, vc))
        idx = idx.to(torch.int32).contiguous()
        o = torch.empty_like(q)
        lse = torch.empty(B, H, T, device=q.device, dtype=torch.float32)
        BK, BW, BD = _blocks(K, window, D)
        _sparse_fwd[(T, B * H)](
            q, k, v, kc, vc, idx, o, lse, scale, T, N, H, D, K, window, BK=BK, BW=BW, BD=BD
        )
        ctx.save_for_backward(q, k, v, kc, vc, idx, o, lse)
        ctx.window, ctx.scale = window, scale
        return o

    @staticmethod
    def backward(ctx, do):
        q, k, v, kc, vc, idx, o, lse = ctx.saved_tensors
        B, T, H, D = q.shape
        N, K = kc.shape[1], idx.shape[-1]
        do = do.contiguous()
        delta = (do.float() * o.float()).sum(-1).transpose(1, 2).contiguous()  # [B, H, T]
        dq = torch.empty_like(q)
        dk, dv = (torch.zeros(q.shape, device=q.device, dtype=torch.float32) for _ in range(2))
        dkc, dvc = (torch.zeros(kc.shape, device=q.device, dtype=torch.float32) for _ in range(2))
        BK, BW, BD = _blocks(K, ctx.window, D)
        _sparse_bwd[(T, B * H)](
            q, k, v, kc, vc, idx, do, lse, delta, dq, dk, dv, dkc, dvc, ctx.scale,
            T, N, H, D, K, ctx.window, BK=BK, BW=BW, BD=BD,
        )  # fmt: skip
        grads = (dq, dk.to(k.dtype), dv.to(v.dtype), dkc.to(kc.dtype), dvc.to(vc.dtype))
        return (*grads, None, None, None)


def sparse_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    kc: torch.Tensor,
    vc: torch.Tensor,
    idx: torch.Tensor,
    window: int,
    scale: float | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """``[B, T, H, D]`` attention over selected compressed entries + a raw sliding window.

    Args:
        q, k, v: ``[B, T, H, D]``; kc, vc: ``[B, N, H, D]``; idx: ``[B, T, K]`` (``-1`` = none);
        window: raw tokens per query (itself included, so ``>= 1``); see
        :func:`vprim.kernels.reference.sparse_attention_ref`.
    """
    B, T, H, D = q.shape
    if k.shape != q.shape or v.shape != q.shape:
        raise ValueError(f"q, k, v must share [B,T,H,D]; got {q.shape}, {k.shape}, {v.shape}")
    if kc.shape[0] != B or kc.shape[2:] != (H, D) or vc.shape != kc.shape:
        raise ValueError(f"kc, vc must be [B,N,{H},{D}]; got {kc.shape}, {vc.shape}")
    if idx.shape[:2] != (B, T) or idx.ndim != 3:
        raise ValueError(f"idx must be [B,T,K]; got {tuple(idx.shape)}")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    scale = D**-0.5 if scale is None else float(scale)
    if use_triton(q, backend):
        return SparseAttentionFunction.apply(q, k, v, kc, vc, idx, window, scale)
    return sparse_attention_ref(q, k, v, kc, vc, idx, window, scale)
