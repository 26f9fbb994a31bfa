"""The compact vision-language model.

Image (``S x S``) -> 14x14 patch embedding -> 3x3 merge (``(S/42)^2`` image tokens) ->
decoder layers over ``[image tokens, text tokens]``. Each layer's attention is compressed
sparse attention (``kernels``): keys and values are compressed ``m``:1 by learned pooling, a
lightning indexer picks the top-k compressed entries per query, and each query attends to
those plus a sliding window of recent raw tokens. On CUDA the Triton kernels run, on the CPU
the torch references. 756x756 -> 2,916 patches -> 324 tokens -> 81 KV entries.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn

from vprim.kernels.compress import compress
from vprim.kernels.indexer import indexer_kl, indexer_scores
from vprim.kernels.reference import select_topk
from vprim.kernels.sparse_attention import sparse_attention

PATCH, MERGE, KV_RATIO = 14, 3, 4


def kv_accounting(width: int, height: int, patch=PATCH, merge=MERGE, m=KV_RATIO) -> dict:
    """KV entries an image of ``width x height`` costs: patches are whole (the image is cut to a
    multiple of ``patch * merge``), merged ``merge x merge``, compressed ``m``:1 (ceil)."""
    gw, gh = (width // patch) // merge * merge, (height // patch) // merge * merge
    patches = (width // patch) * (height // patch)
    merged = (gw // merge) * (gh // merge)
    entries = math.ceil(merged / m)
    return {
        "patch_tokens": patches,
        "merged_tokens": merged,
        "kv_entries": entries,
        "pixels_per_entry": round(width * height / max(entries, 1), 1),
    }


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    image_size: int = 756
    d_model: int = 384
    n_layers: int = 6
    n_heads: int = 6
    indexer_heads: int = 4
    indexer_dim: int = 32
    m: int = KV_RATIO
    topk: int = 16
    window: int = 128
    max_text: int = 256

    def __post_init__(self):
        if self.image_size % (PATCH * MERGE):
            raise ValueError(f"image_size must be a multiple of {PATCH * MERGE}")
        if self.d_model % self.n_heads:
            raise ValueError("d_model must be a multiple of n_heads")

    @property
    def image_tokens(self) -> int:
        return (self.image_size // (PATCH * MERGE)) ** 2

    @property
    def kv_entries_per_image(self) -> int:
        return math.ceil(self.image_tokens / self.m)

    def to_dict(self) -> dict:
        return asdict(self)


SIZES = {
    # tiny: the CPU configuration (every compressed entry fits in top-k, so what the indexer
    # learns does not change what is attended there)
    "tiny": dict(image_size=126, d_model=128, n_layers=2, n_heads=4, topk=32, window=32),
    "small": dict(image_size=756, d_model=384, n_layers=6, n_heads=6, topk=16, window=128),
    "base": dict(image_size=756, d_model=768, n_layers=12, n_heads=12, topk=32, window=512),
}


class CSAttention(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.c, self.hd = c, c.d_model // c.n_heads
        H, D = c.n_heads, self.hd
        self.qkv = nn.Linear(c.d_model, 3 * c.d_model, bias=False)
        self.out = nn.Linear(c.d_model, c.d_model, bias=False)
        self.wk, self.wv = nn.Parameter(torch.zeros(H, D)), nn.Parameter(torch.zeros(H, D))
        self.bk, self.bv = nn.Parameter(torch.zeros(H, c.m)), nn.Parameter(torch.zeros(H, c.m))
        self.iq = nn.Linear(c.d_model, c.indexer_heads * c.indexer_dim, bias=False)
        self.ik = nn.Linear(c.d_model, c.indexer_dim, bias=False)
        self.iw = nn.Linear(c.d_model, c.indexer_heads, bias=False)
        self.wi = nn.Parameter(torch.zeros(1, c.indexer_dim))
        self.bi = nn.Parameter(torch.zeros(1, c.m))

    def indexer_parameters(self) -> list[nn.Parameter]:
        return [*self.iq.parameters(), *self.ik.parameters(), *self.iw.parameters(),
                self.wi, self.bi]  # fmt: skip

    def forward(self, x: torch.Tensor, backend: str = "auto", indexer_loss: bool = False):
        """``[B, T, d] -> [B, T, d]``; with ``indexer_loss`` also the indexer's KL loss.

        The indexer reads ``x`` detached and top-k has no gradient, so the LM loss never
        reaches it and it changes the main model only through what it selects; its one
        gradient is the KL toward the attention's distribution over the compressed entries
        (DeepSeek-V3.2's recipe, :func:`vprim.kernels.indexer.indexer_kl`)."""
        c, (B, T, _) = self.c, x.shape
        q, k, v = self.qkv(x).view(B, T, 3, c.n_heads, self.hd).unbind(2)
        kc = compress(k, self.wk, self.bk, c.m, backend)
        vc = compress(v, self.wv, self.bv, c.m, backend)
        with torch.set_grad_enabled(indexer_loss and torch.is_grad_enabled()):
            xi = x.detach()
            ki = compress(self.ik(xi)[:, :, None], self.wi, self.bi, c.m, backend)[:, :, 0]
            qi = self.iq(xi).view(B, T, c.indexer_heads, c.indexer_dim)
            scores = indexer_scores(qi, ki, self.iw(xi), c.m, backend)
        idx = select_topk(scores.detach(), c.topk)
        o = self.out(sparse_attention(q, k, v, kc, vc, idx, c.window, backend=backend)
                     .reshape(B, T, c.d_model))  # fmt: skip
        if not indexer_loss:
            return o
        return o, indexer_kl(scores, q, kc, c.m)


class Block(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.n1, self.n2 = nn.RMSNorm(c.d_model), nn.RMSNorm(c.d_model)
        self.attn = CSAttention(c)
        self.mlp = nn.Sequential(
            nn.Linear(c.d_model, 4 * c.d_model), nn.GELU(), nn.Linear(4 * c.d_model, c.d_model)
        )

    def forward(self, x, backend="auto", indexer_loss: bool = False):
        a = self.attn(self.n1(x), backend, indexer_loss)
        a, kl = a if indexer_loss else (a, None)
        x = x + a
        x = x + self.mlp(self.n2(x))
        return (x, kl) if indexer_loss else x


class CompactVLM(nn.Module):
    """``forward(images [B, 3, S, S] in 0..1, tokens [B, L]) -> logits [B, L, vocab]``."""

    def __init__(self, c: ModelConfig):
        super().__init__()
        self.c = c
        dp = c.d_model // 2
        self.patch = nn.Conv2d(3, dp, PATCH, PATCH)
        self.merge = nn.Linear(MERGE * MERGE * dp, c.d_model)
        self.tok = nn.Embedding(c.vocab_size, c.d_model)
        self.pos = nn.Parameter(torch.randn(c.image_tokens + c.max_text, c.d_model) * 0.02)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layers))
        self.norm = nn.RMSNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.vocab_size, bias=False)

    def indexer_parameters(self) -> list[nn.Parameter]:
        """The lightning indexers' parameters (trained by their KL loss alone)."""
        return [p for b in self.blocks for p in b.attn.indexer_parameters()]

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, S, S] -> [B, (S/42)^2, d_model]``."""
        p = self.patch(images * 2 - 1)  # [B, dp, S/14, S/14]
        B, dp, g, _ = p.shape
        p = p.view(B, dp, g // MERGE, MERGE, g // MERGE, MERGE).permute(0, 2, 4, 3, 5, 1)
        return self.merge(p.reshape(B, (g // MERGE) ** 2, MERGE * MERGE * dp))

    def forward(self, images, tokens, backend: str = "auto", indexer_loss: bool = False):
        """Logits; with ``indexer_loss`` also the indexers' KL loss, summed over the layers."""
        if tokens.shape[1] > self.c.max_text:
            raise ValueError(f"{tokens.shape[1]} text tokens > max_text {self.c.max_text}")
        x = torch.cat([self.encode_image(images), self.tok(tokens)], dim=1)
        x = x + self.pos[: x.shape[1]]
        kl = x.new_zeros(())
        for b in self.blocks:
            if indexer_loss:
                x, layer_kl = b(x, backend, True)
                kl = kl + layer_kl
            else:
                x = b(x, backend)
        logits = self.head(self.norm(x[:, self.c.image_tokens :]))
        return (logits, kl) if indexer_loss else logits

    @torch.no_grad()
    def generate(self, images, prompts: list[list[int]], eos: int, pad: int, max_new: int = 64):
        """Greedy decoding, left-aligned prompts of different lengths; returns new ids per row."""
        B = len(prompts)
        lens = torch.tensor([len(p) for p in prompts])
        L = min(int(lens.max()) + max_new, self.c.max_text)
        seq = torch.full((B, L), pad, dtype=torch.long, device=images.device)
        for i, p in enumerate(prompts):
            seq[i, : len(p)] = torch.tensor(p)
        pos = lens.clone().to(images.device)
        done = torch.zeros(B, dtype=torch.bool, device=images.device)
        rows = torch.arange(B, device=images.device)
        while not done.all() and int(pos.min()) < L:
            # rows are left-aligned; later pads never influence earlier positions (causal)
            logits = self(images, seq[:, : int(pos.max())])
            nxt = logits[rows, pos - 1].argmax(-1)
            live = ~done & (pos < L)
            seq[rows[live], pos[live]] = nxt[live]
            done |= live & (nxt == eos)
            pos = torch.where(live, pos + 1, pos)
            done |= pos >= L
        return [seq[i, len(p) : int(pos[i])].tolist() for i, p in enumerate(prompts)]
