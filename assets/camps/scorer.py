"""Score a model's predictions on an eval set and print a scorecard.

Predictions are JSONL, one ``{"sample_id": ..., "prediction": "..."}`` per line (read as a
stream; malformed lines and unknown ids are counted, not fatal). A missing prediction scores
as the empty text: wrong, reward 0. Per camp the scorecard gives accuracy (the answer
component: exact count, exact spatial answer, maze yes/no, path endpoint letter) and the
mean total reward, each with a 95% normal-approximation confidence interval, plus the mean of
every reward component and the format reward.

Two reference "models" (:func:`reference_predictions`): ``oracle`` (prediction = target,
scores 1.0) and ``baseline`` (the eval set's most frequent answer, no primitives).
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa

from vprim.assets.camps.rewards import REWARDS, format_reward
from vprim.assets.contracts import layout
from vprim.assets.storage import Storage

ACCURACY_KEY = {"counting": "exact", "spatial": "exact", "maze": "answer", "path_tracing": "answer"}
COLUMNS = ["sample_id", "camp", "difficulty", "target", "answer", "meta"]


def read_eval(store: Storage, name: str) -> pa.Table:
    """The eval set's columns the scorer needs."""
    return store.read_parquet(layout.eval_set_path(name), columns=COLUMNS)


def read_predictions(lines: Iterable[str]) -> tuple[dict[str, str], int]:
    """``sample_id -> prediction`` from JSONL lines, and the count of malformed lines."""
    preds: dict[str, str] = {}
    bad = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            preds[str(obj["sample_id"])] = obj.get("prediction") or ""
        except (ValueError, KeyError, TypeError):
            bad += 1
    return preds, bad


def _ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% normal confidence interval."""
    n = len(values)
    if n == 0:
        return 0.0, 0.0
    m = sum(values) / n
    if n == 1:
        return m, 0.0
    var = sum((v - m) ** 2 for v in values) / (n - 1)
    return m, 1.96 * math.sqrt(var / n)


@dataclass
class CampScore:
    camp: str
    n: int = 0
    missing: int = 0
    accuracy: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    components: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def summary(self) -> dict:
        acc, acc_ci = _ci(self.accuracy)
        tot, tot_ci = _ci(self.total)
        comps = {k: round(sum(v) / len(v), 4) for k, v in sorted(self.components.items())}
        return {"camp": self.camp, "n": self.n, "missing": self.missing,
                "accuracy": round(acc, 4), "accuracy_ci95": round(acc_ci, 4),
                "reward": round(tot, 4), "reward_ci95": round(tot_ci, 4),
                "components": comps}  # fmt: skip


def score(table: pa.Table, preds: dict[str, str]) -> dict:
    """Score every eval row; returns ``{"camps": [...], "unknown_ids": int}``."""
    by: dict[str, CampScore] = {}
    ids = table.column("sample_id").to_pylist()
    for sid, camp, meta in zip(
        ids, table.column("camp").to_pylist(), table.column("meta").to_pylist(), strict=True
    ):
        cs = by.setdefault(camp, CampScore(camp))
        cs.n += 1
        pred = preds.get(sid)
        if pred is None:
            cs.missing += 1
            pred = ""
        m = json.loads(meta)
        r = REWARDS[camp](m, pred)
        cs.accuracy.append(float(r.get(ACCURACY_KEY[camp], 0.0)))
        cs.total.append(r["total"])
        for k, v in r.items():
            if k != "total":
                cs.components[k].append(float(v))
        cs.components["format"].append(format_reward(m, pred)["total"])
    known = set(ids)
    return {
        "camps": [by[c].summary() for c in sorted(by)],
        "unknown_ids": sum(1 for k in preds if k not in known),
    }


def reference_predictions(table: pa.Table, model: str) -> Iterator[dict]:
    """``oracle``: the target; ``baseline``: ``Answer: <most frequent answer of the camp>``."""
    ids, camps = table.column("sample_id").to_pylist(), table.column("camp").to_pylist()
    if model == "oracle":
        for sid, t in zip(ids, table.column("target").to_pylist(), strict=True):
            yield {"sample_id": sid, "prediction": t}
        return
    if model != "baseline":
        raise ValueError(f"unknown reference model {model!r}: expected oracle or baseline")
    freq: dict[str, Counter] = defaultdict(Counter)
    for c, a in zip(camps, table.column("answer").to_pylist(), strict=True):
        freq[c][a] += 1
    top = {c: f.most_common(1)[0][0] for c, f in freq.items()}
    for sid, c in zip(ids, camps, strict=True):
        yield {"sample_id": sid, "prediction": f"Answer: {top[c]}"}


def scorecard_text(name: str, result: dict, bad_lines: int = 0) -> str:
    """The scorecard as a markdown table."""
    lines = [f"scorecard: {name}", "",
             "| camp | n | missing | accuracy (95% CI) | mean reward (95% CI) | components |",
             "|---|---:|---:|---|---|---|"]  # fmt: skip
    for c in result["camps"]:
        comps = ", ".join(f"{k} {v:.3f}" for k, v in c["components"].items())
        lines.append(
            f"| {c['camp']} | {c['n']} | {c['missing']} | {c['accuracy']:.3f} ± "
            f"{c['accuracy_ci95']:.3f} | {c['reward']:.3f} ± {c['reward_ci95']:.3f} | {comps} |"
        )
    lines.append("")
    lines.append(f"unknown ids: {result['unknown_ids']}; malformed lines: {bad_lines}")
    return "\n".join(lines)


__all__ = ["read_eval", "read_predictions", "reference_predictions", "score", "scorecard_text"]
