"""The training loop: deterministic batches, checkpoints through Storage, resume after a crash.

A run lives under ``model/runs/<run>/`` in the storage root: ``ckpt-<step>.pt`` files (model,
optimizer, step, loss curve, tokenizer, configs) and ``LATEST`` naming the newest. A restarted
run loads LATEST and continues; batches are drawn from ``(seed, step)``, so a resumed run
computes the same steps as one that never stopped.
"""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from vprim.assets.contracts import layout
from vprim.assets.model.data import Encoded, encode_rows, read_rows
from vprim.assets.model.model import SIZES, CompactVLM, ModelConfig
from vprim.assets.model.tokenizer import Tokenizer


@dataclass(frozen=True)
class TrainConfig:
    """How a run trains (what its checkpoints record; a run resumes only under the same).

    Attributes:
        size: the model size (``model.SIZES``).
        steps, batch, lr: the optimisation (AdamW, linear warmup then cosine decay).
        camps: the mix: camp -> weight of its rows in a batch.
        seed: seeds the weights and the batches (drawn from ``(seed, step)``).
        checkpoint_every: steps between checkpoints (and one at the end).
        warmup: steps of linear warmup.
        max_text: prompt + target tokens kept per row.
        indexer_loss: weight of the indexers' KL (their only gradient); 0: untrained.
    """

    size: str = "tiny"
    steps: int = 300
    batch: int = 32
    lr: float = 2e-3
    camps: dict[str, float] = field(default_factory=lambda: {"counting": 1.0})
    seed: int = 0
    checkpoint_every: int = 100
    warmup: int = 20
    max_text: int = 160
    indexer_loss: float = 1.0

    def model_config(self, vocab_size: int) -> ModelConfig:
        if self.size not in SIZES:
            raise ValueError(f"size must be one of {sorted(SIZES)}, got {self.size!r}")
        return ModelConfig(vocab_size=vocab_size, max_text=self.max_text, **SIZES[self.size])


def save_checkpoint(storage, run: str, state: dict) -> str:
    buf = io.BytesIO()
    torch.save(state, buf)
    folder, name = layout.model_run_dir(run), f"ckpt-{state['step']:07d}.pt"
    with storage.atomic_path(folder, name) as tmp, storage.fs.open(tmp, "wb") as f:
        f.write(buf.getvalue())
    with storage.atomic_path(folder, "LATEST") as tmp, storage.fs.open(tmp, "w") as f:
        f.write(name)
    return storage.path(folder, name)


def load_checkpoint(storage, run: str) -> dict | None:
    """The newest checkpoint of ``run`` (tensors and plain types only: ``weights_only``)."""
    folder = layout.model_run_dir(run)
    if not storage.exists(folder, "LATEST"):
        return None
    with storage.fs.open(storage.path(folder, "LATEST"), "r") as f:
        name = f.read().strip()
    with storage.fs.open(storage.path(folder, name), "rb") as f:
        return torch.load(io.BytesIO(f.read()), map_location="cpu", weights_only=True)


def model_from_checkpoint(state: dict, device="cpu") -> tuple[CompactVLM, Tokenizer]:
    tok = Tokenizer.from_json(state["tokenizer"])
    model = CompactVLM(ModelConfig(**json.loads(state["model_config"])))
    model.load_state_dict(state["model"])
    return model.to(device).eval(), tok


def _lr(cfg: TrainConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))


def batch_indices(data: dict[str, Encoded], cfg: TrainConfig, step: int) -> list[tuple[str, int]]:
    """The ``(camp, row)`` pairs of batch ``step``: camps by the mix weights, rows uniformly."""
    camps = [c for c in cfg.camps if c in data and len(data[c])]
    if not camps:
        raise ValueError(f"no training rows for the camps mix {cfg.camps}")
    w = np.array([cfg.camps[c] for c in camps], dtype=float)
    rng = np.random.default_rng([cfg.seed, step])
    which = rng.choice(len(camps), size=cfg.batch, p=w / w.sum())
    return [(camps[c], int(rng.integers(len(data[camps[c]])))) for c in which]


def split_params(model: CompactVLM) -> tuple[list, list]:
    """(the main model's parameters, the indexers' parameters)."""
    ids = {id(p) for p in model.indexer_parameters()}
    return [p for p in model.parameters() if id(p) not in ids], list(model.indexer_parameters())


def collate(data: dict[str, Encoded], picks: list[tuple[str, int]], device):
    images = torch.stack([data[c].images[i] for c, i in picks]).to(device).float() / 255
    L = max(data[c].tokens.shape[1] for c, _ in picks)
    pad = lambda t, v: F.pad(t, (0, L - t.shape[-1]), value=v)  # noqa: E731
    tokens = torch.stack([pad(data[c].tokens[i], 0) for c, i in picks]).to(device)
    mask = torch.stack([pad(data[c].loss_mask[i], False) for c, i in picks]).to(device)
    return images, tokens, mask


def lm_loss(model: CompactVLM, images, tokens, mask, indexer: bool = False):
    """Next-token cross-entropy on the target positions; with ``indexer`` also the indexers'
    KL loss (summed over layers), as ``(lm, kl)``."""
    out = model(images, tokens[:, :-1], indexer_loss=indexer)
    logits, kl = out if indexer else (out, None)
    tgt = tokens[:, 1:].masked_fill(~mask[:, 1:], -100)
    lm = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), tgt.reshape(-1))
    return (lm, kl) if indexer else lm


def train(
    storage,
    run: str,
    data: dict[str, Encoded],
    tok: Tokenizer,
    cfg: TrainConfig,
    device: str = "cpu",
    on_step: Callable[[int, float], None] | None = None,
) -> dict:
    """Train (or resume) ``run``; returns the final state summary.

    Args:
        data: encoded training rows per camp (images at the config's image size).
        on_step: called after every step with ``(step, loss)`` (a crash there is a crash).
    """
    torch.manual_seed(cfg.seed)
    mcfg = cfg.model_config(len(tok))
    model = CompactVLM(mcfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01, betas=(0.9, 0.95))
    state = load_checkpoint(storage, run)
    start, curve, kl_curve, resumed_from = 0, [], [], None
    if state is not None:
        if state["train_config"] != json.dumps(asdict(cfg), sort_keys=True):
            raise ValueError(f"run {run!r} exists with another config; use a new run name")
        if state["tokenizer"] != tok.to_json():
            raise ValueError(f"run {run!r} was trained with another vocabulary (other rows?)")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start, curve, resumed_from = state["step"], list(state["loss_curve"]), state["step"]
        kl_curve = list(state.get("indexer_kl_curve", []))
    t0 = time.monotonic()
    model.train()
    for step in range(start, cfg.steps):
        for g in opt.param_groups:
            g["lr"] = _lr(cfg, step)
        batch = collate(data, batch_indices(data, cfg, step), device)
        if cfg.indexer_loss > 0:
            loss, kl = lm_loss(model, *batch, indexer=True)
            kl_curve.append(float(kl.detach()))
            total = loss + cfg.indexer_loss * kl  # disjoint parameters: kl trains the indexers
        else:
            total = loss = lm_loss(model, *batch)
        opt.zero_grad(set_to_none=True)
        total.backward()
        for group in split_params(model):  # the indexers' KL never rescales the LM's step
            torch.nn.utils.clip_grad_norm_(group, 1.0)
        opt.step()
        curve.append(float(loss.detach()))
        if on_step is not None:
            on_step(step, float(loss))
        done = step + 1
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            save_checkpoint(
                storage,
                run,
                {
                    "step": done,
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "loss_curve": curve,
                    "indexer_kl_curve": kl_curve,
                    "tokenizer": tok.to_json(),
                    "model_config": json.dumps(mcfg.to_dict(), sort_keys=True),
                    "train_config": json.dumps(asdict(cfg), sort_keys=True),
                },
            )
    return {
        "run": run,
        "steps": cfg.steps,
        "resumed_from": resumed_from,
        "loss_curve": curve,
        "indexer_kl_curve": kl_curve,
        "seconds": round(time.monotonic() - t0, 1),
        "parameters": sum(p.numel() for p in model.parameters()),
        "model_config": mcfg.to_dict(),
    }


def camp_rows(
    storage, camps: Iterable[str], difficulties: tuple[str, ...], max_rows_per_camp: int
) -> dict[str, list[dict]]:
    """The training rows of each camp (``camps/<camp>/train/``): the first ``max_rows_per_camp``
    of the given ``difficulties`` (all when empty)."""
    return {
        camp: read_rows(storage, layout.camp_train_glob(camp), difficulties, max_rows_per_camp)
        for camp in camps
    }


def train_on_camps(
    storage,
    run: str,
    cfg: TrainConfig,
    *,
    difficulties: tuple[str, ...],
    max_rows_per_camp: int,
    device: str = "cpu",
) -> dict:
    """Train (or resume) ``run`` on the camps of ``cfg.camps``: read their rows, build the
    tokenizer from them, encode and :func:`train`. Returns :func:`train`'s summary plus
    ``train_rows`` (rows per camp) and ``image_size``."""
    rows = camp_rows(storage, cfg.camps, difficulties, max_rows_per_camp)
    tok = Tokenizer.for_rows(r for rs in rows.values() for r in rs)
    size = cfg.model_config(len(tok)).image_size
    data = {c: encode_rows(rs, tok, size, cfg.max_text) for c, rs in rows.items()}
    out = train(storage, run, data, tok, cfg, device=device)
    return {**out, "train_rows": {c: len(rs) for c, rs in rows.items()}, "image_size": size}


def curve_table(curve: list[float], kl: list[float], points: int = 25) -> str:
    """LM loss (and the indexers' KL, when trained) every few steps, as markdown."""
    every = max(1, len(curve) // points)
    if len(kl) != len(curve):
        kl = []
    lines = ["| step | loss | indexer KL |", "|---:|---:|---:|"]
    lines += [f"| {i + 1} | {curve[i]:.4f} | {f'{kl[i]:.4f}' if kl else ''} |"
              for i in range(0, len(curve), every)]  # fmt: skip
    return "\n".join(lines)
