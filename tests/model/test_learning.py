"""The honest learning check: the tiny CPU configuration, a few minutes of training on the
counting camp's simplest level (``coarse``: "How many cats are there?"), beats the trivial
baseline's exact match on the held-out ``counting_coarse`` eval set by a clear margin, both
scored by the camps' scorer (``assets/camps/scorer.py``, what ``vprim score`` runs).

The rows are the counting camp's own (``counting_run`` and ``build_counting_coarse``) over a
tiny lake built here (tests/model/camp_lake.py): training on the lake's ``train`` images with
seeds below 2**40, evaluation on its ``holdout`` images with seeds from 6 << 40.

CI runs the default size; ``VPRIM_SLOW=1`` runs the full one (more rows, steps and eval rows).
"""

from __future__ import annotations

import os
import time

import pytest
import torch

from tests.model.camp_lake import coarse_lake, coarse_rows
from vprim.assets.model.data import encode_rows
from vprim.assets.model.evaluate import predict, scorecard
from vprim.assets.model.tokenizer import Tokenizer
from vprim.assets.model.train import TrainConfig, load_checkpoint, model_from_checkpoint, train

FULL = os.environ.get("VPRIM_SLOW") == "1"
# (lake images, training rows, eval rows, steps, batch). 400 steps, not 300: at 300 the exact
# match sat at the asserted margin (0.520 in one environment, 0.470 in a fresh install on
# 3 Dec, presumably other library versions, against 0.475 needed); at 400 it is 0.61-0.88:
# 0.795 on 3 Dec, 0.610 and 0.880 on 4 Dec after changes that moved a few box coordinates by
# one 0..999 cell (rounding) and which source's copy of a shared image the lake keeps. The
# figure moves with small changes of the data; the margin over the baseline (0.275) holds.
SIZE = (5000, 4000, 400, 600, 32) if FULL else (2400, 2000, 200, 400, 32)


@pytest.mark.slow
def test_tiny_model_beats_trivial_baseline_on_counting_coarse(tmp_path):
    # One thread, always, so that the figures do not depend on the machine's load (the thread
    # count may change the order of floating-point sums, and with it the trained model); two
    # threads on a loaded 2-core machine also ran 7x slower per step than one (they spin).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _learn_and_score(tmp_path)
    finally:
        torch.set_num_threads(threads)


def _learn_and_score(tmp_path):
    images, n_train, n_eval, steps, batch = SIZE
    t0 = time.monotonic()
    store = coarse_lake(tmp_path, images)
    train_rows, eval_rows = coarse_rows(store, n_train, n_eval)
    assert {r["difficulty"] for r in train_rows + eval_rows} == {"coarse"}
    assert not {r["image_uri"] for r in train_rows} & {r["image_uri"] for r in eval_rows}
    assert max(r["seed"] for r in train_rows) < 2**40 <= min(r["seed"] for r in eval_rows)
    t_rows = time.monotonic() - t0

    tok = Tokenizer.for_rows(train_rows)
    cfg = TrainConfig(size="tiny", steps=steps, batch=batch, lr=3e-3, checkpoint_every=steps)
    size = cfg.model_config(len(tok)).image_size
    out = train(store, "learn", {"counting": encode_rows(train_rows, tok, size, cfg.max_text)},
                tok, cfg)  # fmt: skip
    assert out["loss_curve"][-1] < 0.5 * out["loss_curve"][0]

    model, tok = model_from_checkpoint(load_checkpoint(store, "learn"))
    t1 = time.monotonic()
    preds = predict(model, tok, encode_rows(eval_rows, tok, size, cfg.max_text))
    card = scorecard(preds, eval_rows)
    print(
        f"\n{len(train_rows)} train rows, {len(eval_rows)} eval rows ({t_rows:.0f} s), "
        f"{steps} steps of {batch} ({out['seconds']:.0f} s), eval {time.monotonic() - t1:.0f} s;"
        f"\nexact match {card['accuracy']:.3f} ± {card['accuracy_ci95']:.3f} "
        f"(baseline {card['baseline_accuracy']:.3f}), reward {card['reward']:.3f} ± "
        f"{card['reward_ci95']:.3f} (baseline {card['baseline_reward']:.3f}); "
        f"loss {out['loss_curve'][0]:.3f} -> {out['loss_curve'][-1]:.3f}"
    )
    assert card["n"] == len(eval_rows) and card["missing"] == 0
    # a clear margin: 0.2 absolute (about three CI half-widths at 200 rows), and the model's
    # lower 95% bound above the baseline
    assert card["accuracy"] >= card["baseline_accuracy"] + 0.2
    assert card["accuracy"] - card["accuracy_ci95"] > card["baseline_accuracy"]
