"""Checkpoints through Storage: a crashed run resumes and ends where an uninterrupted one does."""

from __future__ import annotations

import pytest
import torch

from tests.model.synthetic import squares_rows
from vprim.assets.model.data import encode_rows
from vprim.assets.model.evaluate import baseline_predictions, predict, scorecard
from vprim.assets.model.tokenizer import Tokenizer
from vprim.assets.model.train import TrainConfig, load_checkpoint, model_from_checkpoint, train
from vprim.assets.storage import Storage


class Crash(RuntimeError):
    pass


@pytest.fixture(scope="module")
def setup():
    rows = squares_rows(16, seed=0)
    tok = Tokenizer.for_rows(rows)
    cfg = TrainConfig(steps=4, batch=4, checkpoint_every=2, warmup=1)
    data = {"counting": encode_rows(rows, tok, 126, cfg.max_text)}
    return rows, tok, cfg, data


def test_resume_after_crash_matches_uninterrupted(tmp_path, setup):
    rows, tok, cfg, data = setup
    store = Storage(str(tmp_path))
    full = train(store, "full", data, tok, cfg)

    def crash_at_3(step, loss):
        if step == 2:  # after the step-2 checkpoint, before the next one
            raise Crash

    with pytest.raises(Crash):
        train(store, "crashy", data, tok, cfg, on_step=crash_at_3)
    assert load_checkpoint(store, "crashy")["step"] == 2
    resumed = train(store, "crashy", data, tok, cfg)
    assert resumed["resumed_from"] == 2
    assert resumed["loss_curve"] == full["loss_curve"]
    a, b = load_checkpoint(store, "full"), load_checkpoint(store, "crashy")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    # a finished run is not retrained; another config under the same name is refused
    assert train(store, "full", data, tok, cfg)["loss_curve"] == full["loss_curve"]
    with pytest.raises(ValueError, match="another config"):
        train(store, "full", data, tok, TrainConfig(steps=5, batch=4))
    model, tok2 = model_from_checkpoint(a)
    preds = predict(model, tok2, data["counting"], batch=8, max_new=8)
    assert [p["sample_id"] for p in preds] == [r["sample_id"] for r in rows]
    card = scorecard(preds, rows)
    assert card["camp"] == "counting" and card["n"] == len(rows) and card["missing"] == 0
    assert 0.0 <= card["accuracy"] <= 1.0 and "exact" in card["components"]
    # the baseline (the camps' scorer's: the most frequent answer) scores its answer's share
    top = max(sum(r["answer"] == a for r in rows) for a in {r["answer"] for r in rows})
    assert card["baseline_accuracy"] == round(top / len(rows), 4)
    base = scorecard(baseline_predictions(rows), rows, baseline=False)
    assert base["accuracy"] == card["baseline_accuracy"]
    oracle = scorecard([{"sample_id": r["sample_id"], "prediction": r["target"]} for r in rows],
                       rows, baseline=False)  # fmt: skip
    assert (oracle["accuracy"], oracle["reward"]) == (1.0, 1.0)
