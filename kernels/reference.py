"""Plain fp32 torch references: they define what each Triton kernel computes.

Shapes: ``B`` batch, ``T`` tokens, ``H`` heads, ``D`` head dim, ``m`` compression ratio,
``N = ceil(T / m)`` compressed entries, ``K`` selected entries per query.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def compress_ref(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor, m: int) -> torch.Tensor:
    """Learned weighted pooling of every ``m`` consecutive tokens.

    Within block ``n``, token ``j`` gets the score ``x[n*m+j] . w[h] + bias[h, j]``; the entry is
    the softmax-weighted sum of the block's tokens. A ragged last block pools the tokens it has.

    Args:
        x: ``[B, T, H, D]``.
        w: ``[H, D]`` scoring vector per head.
        bias: ``[H, m]`` positional bias per head and position in the block.
        m: tokens per entry.

    Returns:
        ``[B, N, H, D]`` with ``N = ceil(T / m)``.
    """
    B, T, H, D = x.shape
    N = math.ceil(T / m)
    xp = F.pad(x.float(), (0, 0, 0, 0, 0, N * m - T)).view(B, N, m, H, D)
    s = torch.einsum("bnjhd,hd->bnjh", xp, w.float()) + bias.float().t()[None, None]
    valid = (torch.arange(N * m, device=x.device) < T).view(1, N, m, 1)
    p = torch.softmax(s.masked_fill(~valid, float("-inf")), dim=2)
    return torch.einsum("bnjh,bnjhd->bnhd", p, xp).to(x.dtype)


def visible(T: int, N: int, m: int, device=None) -> torch.Tensor:
    """``[T, N]`` bool: query ``t`` may use entry ``n`` once its block is complete (causal)."""
    t = torch.arange(T, device=device)[:, None]
    n = torch.arange(N, device=device)[None, :]
    return (n + 1) * m - 1 <= t


def indexer_scores_ref(q: torch.Tensor, k: torch.Tensor, w: torch.Tensor, m: int) -> torch.Tensor:
    """Lightning-indexer scores: ``sum_h w[t, h] * relu(q[t, h] . k[n])``, causal.

    Args:
        q: ``[B, T, HI, DI]`` indexer queries.
        k: ``[B, N, DI]`` indexer keys over compressed entries (shared by the heads).
        w: ``[B, T, HI]`` per-query head weights.
        m: compression ratio (for the causal mask).

    Returns:
        ``[B, T, N]`` fp32 scores, ``-inf`` where an entry is not yet complete.
    """
    s = torch.relu(torch.einsum("bthd,bnd->bthn", q.float(), k.float()))
    s = torch.einsum("bthn,bth->btn", s, w.float())
    return s.masked_fill(~visible(q.shape[1], k.shape[1], m, q.device), float("-inf"))


def select_topk(scores: torch.Tensor, topk: int) -> torch.Tensor:
    """``[B, T, K]`` int32 indices of the top ``K = min(topk, N)`` entries; ``-1`` where masked."""
    vals, idx = scores.topk(min(topk, scores.shape[-1]), dim=-1)
    return torch.where(torch.isinf(vals), torch.full_like(idx, -1), idx).to(torch.int32)


def indexer_kl_ref(
    scores: torch.Tensor, q: torch.Tensor, kc: torch.Tensor, m: int, scale: float | None = None
) -> torch.Tensor:
    """The indexer's training loss (as DeepSeek-V3.2 trains its lightning indexer): the KL
    divergence from the main attention's distribution over the compressed entries to the
    indexer's.

    Target ``p[t, n]``: ``softmax_n(q[t, h] . kc[n, h] * scale)`` over the entries visible to
    ``t``, averaged over the heads (DeepSeek: summed over heads, L1-normalised; the same),
    detached. Indexer ``log r[t, n] = log_softmax_n(scores[t, n])``. Loss: ``sum_n p (log p -
    log r)`` averaged over the queries that see at least one entry (0 when none does). Top-k
    is not differentiable, so this is the indexer's only gradient; the caller detaches the
    indexer's inputs so the loss trains the indexer alone.

    Args:
        scores: ``[B, T, N]`` indexer scores (``-inf`` where not visible).
        q: ``[B, T, H, D]`` attention queries; kc: ``[B, N, H, D]`` compressed keys.
    """
    T, N, D = q.shape[1], kc.shape[1], q.shape[-1]
    scale = D**-0.5 if scale is None else scale
    vis = visible(T, N, m, q.device)  # [T, N]
    rows = vis.any(-1)  # queries that see an entry
    if not bool(rows.any()):
        return (scores.float().nan_to_num(0.0, 0.0, 0.0) * 0.0).sum()  # keeps the graph
    with torch.no_grad():
        a = torch.einsum("bthd,bnhd->bhtn", q.float(), kc.float()) * scale
        p = torch.softmax(a.masked_fill(~vis, float("-inf")), dim=-1).mean(1)  # [B, T, N]
        p = p[:, rows]
    ok = vis[rows][None]
    logr = torch.log_softmax(scores[:, rows].float(), dim=-1).masked_fill(~ok, 0.0)
    kl = p * (torch.log(p.clamp_min(1e-30)) - logr)  # p is 0 where not visible
    return kl.sum(-1).mean()


def sparse_attention_ref(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    kc: torch.Tensor,
    vc: torch.Tensor,
    idx: torch.Tensor,
    window: int,
    scale: float | None = None,
) -> torch.Tensor:
    """Each query attends to its selected compressed entries and its last ``window`` raw tokens.

    The reference materialises the scores (``[B, H, T, K + T]``); the kernel never does.

    Args:
        q, k, v: ``[B, T, H, D]`` raw queries, keys, values.
        kc, vc: ``[B, N, H, D]`` compressed keys and values.
        idx: ``[B, T, K]`` selected entries per query (shared by the heads), ``-1`` = none.
        window: raw tokens ``t - window < s <= t`` are attended.
        scale: softmax scale, ``D ** -0.5`` by default.

    Returns:
        ``[B, T, H, D]``.
    """
    B, T, _, D = q.shape
    scale = D**-0.5 if scale is None else scale
    qf, kf, vf, kcf, vcf = (t.float() for t in (q, k, v, kc, vc))
    safe = idx.long().clamp(min=0)
    bi = torch.arange(B, device=q.device)[:, None, None]
    kg, vg = kcf[bi, safe], vcf[bi, safe]  # [B, T, K, H, D]
    s_c = torch.einsum("bthd,btkhd->bhtk", qf, kg) * scale
    s_c = s_c.masked_fill((idx < 0)[:, None], float("-inf"))
    s_w = torch.einsum("bthd,bshd->bhts", qf, kf) * scale
    t = torch.arange(T, device=q.device)
    band = (t[None, :] <= t[:, None]) & (t[None, :] > t[:, None] - window)
    s_w = s_w.masked_fill(~band, float("-inf"))
    p = torch.softmax(torch.cat([s_c, s_w], dim=-1), dim=-1)
    K = idx.shape[-1]
    o = torch.einsum("bhtk,btkhd->bthd", p[..., :K], vg)
    o = o + torch.einsum("bhts,bshd->bthd", p[..., K:], vf)
    return o.to(q.dtype)
