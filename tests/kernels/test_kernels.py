"""Every Triton kernel (under TRITON_INTERPRET=1, see conftest) against its fp32 reference,
forward and every gradient, at odd shapes with ragged ends (T not a multiple of m or blocks)."""

from __future__ import annotations

import math

import pytest
import torch

from vprim.kernels.compress import compress
from vprim.kernels.indexer import indexer_scores, indexer_topk
from vprim.kernels.reference import (
    compress_ref,
    indexer_scores_ref,
    sparse_attention_ref,
    visible,
)
from vprim.kernels.sparse_attention import sparse_attention

FP32_TOL = 1e-5  # rel RMS in fp32; the bf16 bound (5e-3) applies on a GPU only


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-12)).item()


def leaves(*shapes):
    return [torch.randn(*s, requires_grad=True) for s in shapes]


@pytest.mark.parametrize(
    "B,T,H,D,m",
    [
        (2, 13, 2, 12, 4),  # ragged last block (13 = 3*4 + 1), D not a power of two
        (1, 16, 1, 16, 4),  # exact blocks
        (1, 7, 3, 5, 3),  # m not a power of two
    ],
)
def test_compress_matches_reference(B, T, H, D, m):
    torch.manual_seed(0)
    x, w, b = leaves((B, T, H, D), (H, D), (H, m))
    o = compress(x, w, b, m, backend="triton")
    assert o.shape == (B, math.ceil(T / m), H, D)
    do = torch.randn_like(o)
    g = torch.autograd.grad(o, (x, w, b), do)
    r = compress_ref(x, w, b, m)
    gr = torch.autograd.grad(r, (x, w, b), do)
    assert rel(o, r) < FP32_TOL
    for a, c in zip(g, gr, strict=True):
        assert rel(a, c) < FP32_TOL


@pytest.mark.parametrize("B,T,N,HI,DI,m", [(2, 19, 5, 2, 8, 4), (1, 33, 9, 3, 12, 4)])
def test_indexer_matches_reference(B, T, N, HI, DI, m):
    torch.manual_seed(1)
    q, k, w = leaves((B, T, HI, DI), (B, N, DI), (B, T, HI))
    s = indexer_scores(q, k, w, m, backend="triton")
    r = indexer_scores_ref(q, k, w, m)
    # the causal mask is exact: an entry is visible once its block of m tokens is complete
    assert torch.equal(torch.isinf(s), torch.isinf(r))
    assert torch.equal(torch.isinf(r[0]), ~visible(T, N, m))
    f = torch.isfinite(r)
    assert rel(s[f], r[f]) < FP32_TOL
    ds = torch.randn_like(s)
    g = torch.autograd.grad(s[f].sum() + (s[f] * ds[f]).sum(), (q, k, w))
    gr = torch.autograd.grad(r[f].sum() + (r[f] * ds[f]).sum(), (q, k, w))
    for a, c in zip(g, gr, strict=True):
        assert rel(a, c) < FP32_TOL
    idx = indexer_topk(q, k, w, topk=3, m=m, backend="triton")
    assert idx.shape == (B, T, 3)
    assert (idx[:, : m - 1] == -1).all()  # no entry is complete before token m-1
    vis = visible(T, N, m)
    ok = idx >= 0
    assert vis[torch.arange(T)[None, :, None].expand_as(idx)[ok], idx[ok].long()].all()


@pytest.mark.parametrize(
    "B,T,H,D,m,K,W",
    [
        (2, 19, 2, 12, 4, 3, 5),  # ragged T, odd D, window smaller than T
        (1, 33, 1, 16, 4, 4, 8),  # T one past a block boundary
        (1, 10, 2, 8, 4, 2, 16),  # window longer than the sequence
    ],
)
def test_sparse_attention_matches_reference(B, T, H, D, m, K, W):
    torch.manual_seed(2)
    N = math.ceil(T / m)
    q, k, v = leaves(*[(B, T, H, D)] * 3)
    kc, vc = leaves(*[(B, N, H, D)] * 2)
    qi, ki, wi = leaves((B, T, 2, 8), (B, N, 8), (B, T, 2))
    idx = indexer_topk(qi, ki, wi, K, m, backend="torch")
    ins = (q, k, v, kc, vc)
    o = sparse_attention(*ins, idx, W, backend="triton")
    r = sparse_attention_ref(*ins, idx, W)
    do = torch.randn_like(o)
    g = torch.autograd.grad(o, ins, do)
    gr = torch.autograd.grad(r, ins, do)
    assert rel(o, r) < FP32_TOL
    for a, c in zip(g, gr, strict=True):
        assert rel(a, c) < FP32_TOL


def test_auto_backend_is_the_reference_on_cpu_and_inputs_are_checked():
    x = torch.randn(1, 8, 1, 4)
    w, b = torch.randn(1, 4), torch.randn(1, 4)
    assert torch.equal(compress(x, w, b, 4), compress_ref(x, w, b, 4))
    with pytest.raises(ValueError, match="bias"):
        compress(x, w, torch.randn(1, 3), 4)
    with pytest.raises(ValueError, match="window"):
        q = torch.randn(1, 8, 1, 4)
        sparse_attention(q, q, q, q[:, :2], q[:, :2], torch.zeros(1, 8, 1, dtype=torch.int32), 0)


def _indexer_kl_loop(scores, q, kc, m):
    """The indexer KL written per query and head, with plain lists of visible entries."""
    B, T, H, D = q.shape
    N = kc.shape[1]
    total, rows = 0.0, 0
    for b in range(B):
        for t in range(T):
            seen = [n for n in range(N) if (n + 1) * m - 1 <= t]
            if not seen:
                continue
            p = (
                sum(
                    torch.softmax(torch.stack([q[b, t, h] @ kc[b, n, h] for n in seen]) / D**0.5, 0)
                    for h in range(H)
                )
                / H
            )
            logr = torch.log_softmax(scores[b, t, seen], 0)
            total = total + (p * (p.log() - logr)).sum()
            rows += 1
    return total / rows


@pytest.mark.parametrize("B,T,N,H,D,m", [(2, 13, 4, 2, 8, 4), (1, 10, 4, 3, 5, 3)])
def test_indexer_kl_matches_loop_reference_and_trains_the_indexer_only(B, T, N, H, D, m):
    from vprim.kernels.indexer import indexer_kl
    from vprim.kernels.reference import indexer_kl_ref

    torch.manual_seed(3)
    qi, ki, wi = leaves((B, T, 2, 6), (B, N, 6), (B, T, 2))
    q, kc = leaves((B, T, H, D), (B, N, H, D))
    s = indexer_scores(qi, ki, wi, m, backend="triton")
    loss = indexer_kl(s, q, kc, m)
    s_ref = indexer_scores_ref(qi, ki, wi, m)
    ref = _indexer_kl_loop(s_ref, q.detach(), kc.detach(), m)
    assert rel(loss, ref) < FP32_TOL and loss.item() >= 0
    g = torch.autograd.grad(loss, (qi, ki, wi))
    gr = torch.autograd.grad(ref, (qi, ki, wi))
    for a, c in zip(g, gr, strict=True):
        assert rel(a, c) < FP32_TOL
    # the target is detached: no gradient reaches the attention's queries or keys
    assert torch.autograd.grad(indexer_kl(s_ref, q, kc, m), (q, kc), allow_unused=True) == (
        None, None,
    )  # fmt: skip
    # the indexer that scores exactly like the attention (one head, its logits) has KL 0
    a = torch.einsum("bthd,bnhd->btn", q[:, :, :1], kc[:, :, 0:1]).detach() / D**0.5
    a = a.masked_fill(~visible(T, N, m), float("-inf"))
    assert indexer_kl_ref(a, q[:, :, :1].detach(), kc[:, :, :1].detach(), m).item() < 1e-6
    # a sequence shorter than one block sees no entry: the loss is 0 and still backpropagates
    short = indexer_scores_ref(qi[:, : m - 1], ki, wi[:, : m - 1], m)
    zero = indexer_kl_ref(short, q[:, : m - 1].detach(), kc.detach(), m)
    assert zero.item() == 0.0 and zero.requires_grad
