"""Generation on held-out eval sets, predictions JSONL, and scorecards from the camps' scorer
(:mod:`vprim.assets.camps.scorer`, the same code as ``vprim score``), with the trivial baseline."""

from __future__ import annotations

import json

import pyarrow as pa
import torch

from vprim.assets.camps import scorer
from vprim.assets.model.data import Encoded
from vprim.assets.model.model import CompactVLM
from vprim.assets.model.tokenizer import Tokenizer


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


def score_table(rows: list[dict]) -> pa.Table:
    """The columns of ``rows`` the camps' scorer reads (``sample_id``, ``camp``, ``meta`` ...)."""
    return pa.Table.from_pylist(
        [{c: r.get(c) for c in scorer.COLUMNS} for r in rows],
        pa.schema([(c, pa.string()) for c in scorer.COLUMNS]),
    )


def baseline_predictions(rows: list[dict]) -> list[dict]:
    """The camps' trivial baseline (``scorer.reference_predictions(.., "baseline")``): per
    camp, always the eval rows' most frequent answer, with no primitives."""
    return list(scorer.reference_predictions(score_table(rows), "baseline"))


def scorecard(predictions: list[dict], rows: list[dict], baseline: bool = True) -> dict:
    """Score ``predictions`` on ``rows`` with the camps' scorer (``assets/camps/scorer.py``,
    the code behind ``vprim score``).

    Returns, for an eval set of one camp, that camp's summary (``n``, ``missing``,
    ``accuracy`` (for counting: exact match of the count) and ``reward`` with their 95% CI
    half-widths, mean ``components``), plus ``baseline_accuracy`` / ``baseline_reward``
    (the trivial baseline scored the same way) and ``unknown_ids``. With several camps in
    one set, the summaries are under ``camps``.
    """
    table = score_table(rows)
    result = scorer.score(table, {p["sample_id"]: p["prediction"] for p in predictions})
    camps = result["camps"]
    card: dict = dict(camps[0]) if len(camps) == 1 else {"camps": camps, "n": len(rows)}
    card["unknown_ids"] = result["unknown_ids"]
    if baseline:
        base = scorer.score(table, {p["sample_id"]: p["prediction"]
                                    for p in baseline_predictions(rows)})["camps"]  # fmt: skip
        if len(base) == 1:
            card["baseline_accuracy"] = base[0]["accuracy"]
            card["baseline_reward"] = base[0]["reward"]
    return card


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
