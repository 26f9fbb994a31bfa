"""The honest learning check: the tiny CPU configuration, a few minutes of training on a
counting table at its simplest level (how many squares, 1..4), beats the trivial baseline
(always the most frequent training answer) in exact match on held-out rows by a clear margin.

The table is generated here with the camp schema (tests/model/synthetic.py); the same check
on the real counting camp's ``coarse`` level is not wired yet (see the README)."""

from __future__ import annotations

import pytest
import torch

from assets.model.data import encode_rows
from assets.model.evaluate import baseline_predictions, exact_match, predict
from assets.model.tokenizer import Tokenizer
from assets.model.train import TrainConfig, load_checkpoint, model_from_checkpoint, train
from assets.storage import Storage
from tests.model.synthetic import squares_rows


@pytest.mark.slow
def test_tiny_model_beats_trivial_baseline_on_counting(tmp_path):
    torch.set_num_threads(2)
    train_rows, eval_rows = squares_rows(2000, 0), squares_rows(200, 1, split="eval")
    tok = Tokenizer.build(r["prompt"] + " " + r["target"] for r in train_rows)
    cfg = TrainConfig(size="tiny", steps=300, batch=32, lr=2e-3, checkpoint_every=300)
    size = cfg.model_config(len(tok)).image_size
    data = {"counting": encode_rows(train_rows, tok, size, cfg.max_text)}
    store = Storage(str(tmp_path))
    out = train(store, "learn", data, tok, cfg)
    assert out["loss_curve"][-1] < 0.5 * out["loss_curve"][0]
    model, tok = model_from_checkpoint(load_checkpoint(store, "learn"))
    preds = predict(model, tok, encode_rows(eval_rows, tok, size, cfg.max_text))
    model_em = exact_match(preds, eval_rows)
    base_em = exact_match(
        baseline_predictions([r["answer"] for r in train_rows], eval_rows), eval_rows
    )
    print(f"exact match: model {model_em:.3f}, baseline {base_em:.3f}")
    assert model_em >= base_em + 0.25
