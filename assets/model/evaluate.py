"""Generation on held-out eval sets, predictions JSONL, the trivial baseline, scorecards."""

from __future__ import annotations

import json
import re
from collections import Counter

import torch

from assets.model.data import Encoded
from assets.model.model import CompactVLM
from assets.model.tokenizer import Tokenizer

_ANSWER = re.compile(r"Answer:\s*(.*?)\s*$", re.DOTALL)


def answer_of(text: str) -> str | None:
    """The final ``Answer: X`` of a generated text (None when there is none)."""
    m = _ANSWER.search(text or "")
    return m.group(1).strip() if m else None


@torch.no_grad()
def predict(
    model: CompactVLM, tok: Tokenizer, data: Encoded, batch: int = 64, max_new: int = 96,
    device: str = "cpu",
) -> list[dict]:  # fmt: skip
    """Greedy answers: ``[{"sample_id", "prediction"}]`` in row order."""
    model.eval()
    out = []
    for s in range(0, len(data), batch):
        images = data.images[s : s + batch].to(device).float() / 255
        new = model.generate(images, data.prompts[s : s + batch], tok.eos, tok.pad, max_new)
        for row, ids in zip(data.rows[s : s + batch], new, strict=True):
            out.append({"sample_id": row["sample_id"], "prediction": tok.decode(ids)})
    return out


def baseline_predictions(train_answers: list[str], rows: list[dict]) -> list[dict]:
    """The trivial baseline: always the most frequent training answer, in the answer format."""
    mode = Counter(str(a) for a in train_answers).most_common(1)[0][0]
    return [{"sample_id": r["sample_id"], "prediction": f"\nAnswer: {mode}"} for r in rows]


def exact_match(predictions: list[dict], rows: list[dict]) -> float:
    """Share of rows whose predicted final answer equals the row's ``answer``."""
    gold = {r["sample_id"]: str(r["answer"]).strip() for r in rows}
    hits = sum(answer_of(p["prediction"]) == gold.get(p["sample_id"]) for p in predictions)
    return hits / max(len(rows), 1)


def to_jsonl(predictions: list[dict]) -> str:
    return "".join(json.dumps(p) + "\n" for p in predictions)


def compare(current: dict[str, dict], previous: dict[str, dict] | None) -> list[dict]:
    """Per eval set and metric: current, previous and delta (previous None when absent)."""
    rows = []
    for name, metrics in sorted(current.items()):
        for k, v in sorted(metrics.items()):
            if not isinstance(v, int | float) or isinstance(v, bool):
                continue
            prev = (previous or {}).get(name, {}).get(k)
            delta = None if prev is None else round(v - prev, 4)
            rows.append({"eval_set": name, "metric": k, "current": v, "previous": prev,
                         "delta": delta})  # fmt: skip
    return rows
