"""Sparse attention vs ``torch.nn.functional.scaled_dot_product_attention`` on a GPU.

``python -m vprim.kernels.bench`` times forward and forward+backward at 4k, 16k and 64k tokens
(bf16, B=1, H=8, D=64, m=4, top-k 16, window 512) and reports achieved TFLOP/s and GB/s as a
fraction of the device's peak (``--peak-tflops``, ``--peak-gbs``; H200 defaults). SDPA runs
causal dense attention on the same q, k, v. On a machine without CUDA it exits with status 2.
"""

from __future__ import annotations

import argparse
import math
import sys

import torch


def _time(fn, reps: int = 10) -> float:
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / reps / 1e3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tokens", type=int, nargs="+", default=[4096, 16384, 65536])
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--topk", type=int, default=16)
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak")
    ap.add_argument("--peak-gbs", type=float, default=4800.0, help="HBM bandwidth")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("vprim.kernels.bench needs a CUDA GPU; none is available here.", file=sys.stderr)
        return 2
    from vprim.kernels.compress import compress
    from vprim.kernels.indexer import indexer_topk
    from vprim.kernels.sparse_attention import sparse_attention

    dev, dt, H, D, m = "cuda", torch.bfloat16, args.heads, args.dim, 4
    print("| T | op | fwd ms | fwd+bwd ms | TFLOP/s fwd | % peak | GB/s fwd | % peak |")
    print("|---|---|---|---|---|---|---|---|")
    for T in args.tokens:
        torch.manual_seed(0)
        q, k, v = (torch.randn(1, T, H, D, device=dev, dtype=dt, requires_grad=True) for _ in "qkv")
        w, b = torch.randn(H, D, device=dev, dtype=dt), torch.zeros(H, m, device=dev, dtype=dt)
        kc, vc = compress(k.detach(), w, b, m), compress(v.detach(), w, b, m)
        kc.requires_grad_(), vc.requires_grad_()
        N = math.ceil(T / m)
        qi = torch.randn(1, T, 4, 32, device=dev, dtype=dt)
        ki, wi = torch.randn(1, N, 32, device=dev, dtype=dt), torch.rand(1, T, 4, device=dev)
        idx = indexer_topk(qi, ki, wi, args.topk, m)
        K, W = idx.shape[-1], args.window

        def csa(q=q, k=k, v=v, kc=kc, vc=vc, idx=idx, W=W):
            return sparse_attention(q, k, v, kc, vc, idx, W)

        def sdpa(q=q, k=k, v=v):
            qt, kt, vt = (t.transpose(1, 2) for t in (q, k, v))
            return torch.nn.functional.scaled_dot_product_attention(qt, kt, vt, is_causal=True)

        keys = {"csa": K + min(W, T), "sdpa": (T + 1) / 2}
        for name, fn in (("csa", csa), ("sdpa", sdpa)):
            t_f = _time(fn)
            do = torch.randn_like(fn())
            t_fb = _time(lambda fn=fn, do=do: fn().backward(do))
            flops = 4 * H * D * T * keys[name]
            # csa reads every gathered key/value row once per query; sdpa streams q, k, v once
            moved = (2 * H * D * T * keys[name] if name == "csa" else 4 * H * D * T) * 2
            tf, gb = flops / t_f / 1e12, moved / t_f / 1e9
            print(
                f"| {T} | {name} | {t_f * 1e3:.3f} | {t_fb * 1e3:.3f} | {tf:.1f} | "
                f"{100 * tf / args.peak_tflops:.1f} | {gb:.0f} | {100 * gb / args.peak_gbs:.1f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
