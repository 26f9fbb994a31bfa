"""Lightning-indexer scoring (ReLU-gated multi-head dot products) and top-k selection."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from vprim.kernels._common import next_pow2, use_triton
from vprim.kernels.reference import indexer_kl_ref, indexer_scores_ref, select_topk


@triton.jit
def _indexer_fwd(
    q, k, w, s, T, N, HI, DI, M,
    BT: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr,
):  # fmt: skip
    i_t, i_n, i_b = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    o_t = i_t * BT + tl.arange(0, BT)
    o_n = i_n * BN + tl.arange(0, BN)
    o_d = tl.arange(0, BD)
    m_t, m_n, m_d = o_t < T, o_n < N, o_d < DI
    p_k = k + (i_b * N + o_n[:, None]) * DI + o_d[None, :]
    b_k = tl.load(p_k, mask=m_n[:, None] & m_d[None, :], other=0.0).to(tl.float32)  # [BN, BD]
    b_s = tl.zeros([BT, BN], dtype=tl.float32)
    for i_h in range(HI):
        p_q = q + ((i_b * T + o_t[:, None]) * HI + i_h) * DI + o_d[None, :]
        b_q = tl.load(p_q, mask=m_t[:, None] & m_d[None, :], other=0.0).to(tl.float32)  # [BT, BD]
        b_w = tl.load(w + (i_b * T + o_t) * HI + i_h, mask=m_t, other=0.0).to(tl.float32)  # [BT]
        b_qk = tl.dot(b_q, tl.trans(b_k), input_precision="ieee")  # [BT, BN]
        b_s += tl.maximum(b_qk, 0.0) * b_w[:, None]
    ok = (o_n[None, :] + 1) * M - 1 <= o_t[:, None]
    b_s = tl.where(ok, b_s, float("-inf"))
    tl.store(s + (i_b * T + o_t[:, None]) * N + o_n[None, :], b_s, mask=m_t[:, None] & m_n[None, :])


class IndexerScoresFunction(torch.autograd.Function):
    """Triton forward; the backward recomputes the torch reference (the scores are ``[T, N]``,
    ``m`` times smaller than attention, and only the indexer's own loss needs them)."""

    @staticmethod
    def forward(ctx, q, k, w, m):
        B, T, HI, DI = q.shape
        N = k.shape[1]
        s = torch.empty(B, T, N, device=q.device, dtype=torch.float32)
        BT, BN, BD = 16, 16, max(16, next_pow2(DI))
        grid = (triton.cdiv(T, BT), triton.cdiv(N, BN), B)
        _indexer_fwd[grid](
            q.contiguous(), k.contiguous(), w.contiguous(), s, T, N, HI, DI, m, BT=BT, BN=BN, BD=BD
        )
        ctx.save_for_backward(q, k, w)
        ctx.m = m
        return s

    @staticmethod
    def backward(ctx, ds):
        q, k, w = ctx.saved_tensors
        with torch.enable_grad():
            q_, k_, w_ = (t.detach().requires_grad_() for t in (q, k, w))
            s = indexer_scores_ref(q_, k_, w_, ctx.m)
            ds = torch.where(torch.isinf(s), torch.zeros_like(ds), ds)
            gq, gk, gw = torch.autograd.grad(s, (q_, k_, w_), ds)
        return gq, gk, gw, None


def indexer_scores(
    q: torch.Tensor, k: torch.Tensor, w: torch.Tensor, m: int = 4, backend: str = "auto"
) -> torch.Tensor:
    """``[B, T, N]`` causal indexer scores; see :func:`vprim.kernels.reference.indexer_scores_ref`.

    Args:
        q: ``[B, T, HI, DI]``; k: ``[B, N, DI]``; w: ``[B, T, HI]``.
    """
    if q.ndim != 4 or k.ndim != 3 or k.shape[-1] != q.shape[-1] or w.shape != q.shape[:3]:
        raise ValueError(
            f"expected q [B,T,HI,DI], k [B,N,DI], w [B,T,HI]; got {tuple(q.shape)}, "
            f"{tuple(k.shape)}, {tuple(w.shape)}"
        )
    if use_triton(q, backend):
        return IndexerScoresFunction.apply(q, k, w, m)
    return indexer_scores_ref(q, k, w, m)


def indexer_topk(
    q: torch.Tensor, k: torch.Tensor, w: torch.Tensor, topk: int, m: int = 4, backend="auto"
) -> torch.Tensor:
    """``[B, T, min(topk, N)]`` int32 selected entries per query, ``-1`` where none is visible."""
    return select_topk(indexer_scores(q, k, w, m, backend), topk)


def indexer_kl(scores: torch.Tensor, q: torch.Tensor, kc: torch.Tensor, m: int = 4) -> torch.Tensor:
    """The indexer's training loss: KL(main attention over the compressed entries || indexer
    distribution); see :func:`vprim.kernels.reference.indexer_kl_ref`. Torch on every backend (its
    cost is that of the indexer's own dense ``[T, N]`` scores, times the heads).

    Args:
        scores: ``[B, T, N]`` from :func:`indexer_scores`; q: ``[B, T, H, D]``;
        kc: ``[B, N, H, D]`` (both used detached, as the target).
    """
    B, T, N = scores.shape
    if q.shape[:2] != (B, T) or kc.shape[:2] != (B, N) or kc.shape[2:] != q.shape[2:]:
        raise ValueError(
            f"expected scores [B,T,N], q [B,T,H,D], kc [B,N,H,D]; got {tuple(scores.shape)}, "
            f"{tuple(q.shape)}, {tuple(kc.shape)}"
        )
    return indexer_kl_ref(scores, q.detach(), kc.detach(), m)
