"""Camp rows -> model inputs: decoded, resized images and token ids."""

from __future__ import annotations

import io
from dataclasses import dataclass

import fsspec
import numpy as np
import pyarrow.parquet as pq
import torch
from PIL import Image

from vprim.assets.model.tokenizer import Tokenizer

COLUMNS = (
    "sample_id", "camp", "difficulty", "image_png", "image_uri", "prompt", "target", "answer",
    "meta",
)  # fmt: skip


def read_rows(
    storage, pattern: str, difficulties: tuple[str, ...] = (), limit: int | None = None
) -> list[dict]:
    """Rows of the Parquet files matching ``pattern`` under the storage root, in path order.

    Args:
        difficulties: keep only these ``difficulty`` levels (all when empty).
        limit: at most this many rows (the first ones, so the choice is deterministic).
    """
    rows: list[dict] = []
    for path in storage.glob(pattern):
        with storage.fs.open(path, "rb") as f:
            t = pq.read_table(f)
        t = t.select([c for c in COLUMNS if c in t.column_names])
        for r in t.to_pylist():
            if difficulties and r.get("difficulty") not in difficulties:
                continue
            rows.append(r)
            if limit is not None and len(rows) >= limit:
                return rows
    return rows


def load_image(row: dict, size: int) -> np.ndarray:
    """``[3, size, size]`` uint8 from ``image_png`` bytes, else from ``image_uri`` (fsspec)."""
    if row.get("image_png"):
        img = Image.open(io.BytesIO(row["image_png"]))
    elif row.get("image_uri"):
        with fsspec.open(row["image_uri"], "rb") as f:
            img = Image.open(io.BytesIO(f.read()))
    else:
        raise ValueError(f"sample {row.get('sample_id')!r} has neither image_png nor image_uri")
    img = img.convert("RGB").resize((size, size), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1).copy()


def prompt_ids(tok: Tokenizer, prompt: str) -> list[int]:
    return [tok.bos, *tok.encode(prompt), *tok.encode("\n")]


@dataclass
class Encoded:
    """A camp table ready for the model.

    Attributes:
        images: ``[n, 3, S, S]`` uint8.
        tokens: ``[n, L]`` prompt + target + eos, right-padded with ``pad``.
        loss_mask: ``[n, L]`` bool, true on the target and eos positions.
        prompts: prompt ids per row (for generation).
        rows: the rows themselves (``sample_id``, ``answer`` ...), without image bytes.
    """

    images: torch.Tensor
    tokens: torch.Tensor
    loss_mask: torch.Tensor
    prompts: list[list[int]]
    rows: list[dict]

    def __len__(self) -> int:
        return len(self.rows)


def encode_rows(rows: list[dict], tok: Tokenizer, image_size: int, max_text: int) -> Encoded:
    images = np.stack([load_image(r, image_size) for r in rows]) if rows else np.zeros(0)
    seqs, masks, prompts = [], [], []
    for r in rows:
        p = prompt_ids(tok, r["prompt"])[: max_text - 1]
        t = [*tok.encode(r["target"]), tok.eos][: max_text - len(p)]
        seqs.append(p + t)
        masks.append([False] * len(p) + [True] * len(t))
        prompts.append(p)
    L = max((len(s) for s in seqs), default=1)
    tokens = torch.full((len(rows), L), tok.pad, dtype=torch.long)
    loss_mask = torch.zeros((len(rows), L), dtype=torch.bool)
    for i, (s, m) in enumerate(zip(seqs, masks, strict=True)):
        tokens[i, : len(s)] = torch.tensor(s)
        loss_mask[i, : len(m)] = torch.tensor(m)
    light = [{k: v for k, v in r.items() if k != "image_png"} for r in rows]
    return Encoded(torch.from_numpy(images), tokens, loss_mask, prompts, light)
