"""Generation on held-out eval sets, predictions JSONL, and scorecards from the camps' scorer
(:mod:`vprim.assets.camps.scorer`, the same code as ``vprim score``), with the trivial baseline."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import torch

from vprim.assets.camps import scorer
from vprim.assets.contracts import layout
from vprim.assets.model.data import Encoded, encode_rows, read_rows
from vprim.assets.model.model import CompactVLM
from vprim.assets.model.tokenizer import Tokenizer
from vprim.assets.model.train import load_checkpoint, model_from_checkpoint


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


class EvaluationError(RuntimeError):
    """The run has no checkpoint, or an eval set has no rows."""


@dataclass
class Evaluation:
    step: int  # the checkpoint's step
    scorecard: dict[str, dict]  # per eval set: :func:`scorecard`
    previous: dict[str, dict] | None  # the previous evaluation's scorecard, if any
    comparison: list[dict]  # :func:`compare` of the two


def evaluate_run(
    storage,
    run: str,
    eval_sets: list[str],
    *,
    difficulties: tuple[str, ...],
    max_rows: int,
    batch: int,
    max_new_tokens: int,
    device: str = "cpu",
    log: Callable[[str], None] | None = None,
) -> Evaluation:
    """Greedy answers of ``run``'s newest checkpoint on each eval set (its first ``max_rows``
    rows of the given ``difficulties``), written as predictions JSONL and scored; the
    scorecard then replaces ``model/evals/last_scorecard.json``, after it is compared with it.
    """
    state = load_checkpoint(storage, run)
    if state is None:
        raise EvaluationError(f"no checkpoint for run {run!r}: materialise training_run")
    model, tok = model_from_checkpoint(state, device)
    card: dict[str, dict] = {}
    for name in eval_sets:
        rows = read_rows(storage, layout.eval_set_path(name), difficulties, max_rows)
        if not rows:
            raise EvaluationError(f"eval set {name!r} has no rows under camps/eval/")
        data = encode_rows(rows, tok, model.c.image_size, model.c.max_text)
        preds = predict(model, tok, data, batch, max_new_tokens, device)
        path = layout.predictions_path(run, name, state["step"])
        with storage.atomic_path(path) as tmp, storage.fs.open(tmp, "w") as f:
            f.write(to_jsonl(preds))
        card[name] = scorecard(preds, rows)
        if log is not None:
            log(f"{name}: {card[name]}")
    previous = None
    if storage.exists(layout.LAST_SCORECARD_PATH):
        with storage.fs.open(storage.path(layout.LAST_SCORECARD_PATH), "r") as f:
            previous = json.load(f)["scorecard"]
    comparison = compare(card, previous)
    with storage.atomic_path(layout.LAST_SCORECARD_PATH) as tmp, storage.fs.open(tmp, "w") as f:
        json.dump({"run_name": run, "step": state["step"], "scorecard": card}, f)
    return Evaluation(state["step"], card, previous, comparison)


def scorecard_table(card: dict[str, dict]) -> str:
    """The scorecards of single-camp eval sets as markdown (several camps: see the JSON)."""
    lines = ["| eval set | n | accuracy (95% CI) | mean reward (95% CI) | baseline accuracy "
             "| baseline reward |", "|---|---:|---|---|---:|---:|"]  # fmt: skip
    for name, c in sorted(card.items()):
        if "accuracy" not in c:  # several camps in one set: see the scorecard JSON
            continue
        lines.append(
            f"| {name} | {c['n']} | {c['accuracy']:.3f} ± {c['accuracy_ci95']:.3f} | "
            f"{c['reward']:.3f} ± {c['reward_ci95']:.3f} | {c.get('baseline_accuracy', '')} | "
            f"{c.get('baseline_reward', '')} |"
        )
    return "\n".join(lines)


def comparison_table(comparison: list[dict]) -> str:
    """:func:`compare`'s rows as markdown."""
    lines = ["| eval set | metric | current | previous | delta |", "|---|---|---:|---:|---:|"]
    lines += [
        f"| {r['eval_set']} | {r['metric']} | {r['current']} | {r['previous']} | {r['delta']} |"
        for r in comparison
    ]
    return "\n".join(lines)
