"""A tiny published lake for the model's learning check, and the counting camp's rows on it.

Every image holds 1..4 instances of one label (``cat``: cyan rectangles, or ``kite``: orange
ellipses, as ``assets/sources/render.py`` draws them; ``labels_per_image=2`` puts both labels
in every image), one instance per cell of a 3x3 grid so no box hides another, on the
renderer's textured gradient background; a share of the images is held out by the lake's
own split. One question per image (``questions_per_image=1``), so every seed asks something.
The rows come from the counting camp itself (``counting_run``, ``coarse`` family) and the
held-out eval set from ``evalsets.build_eval``: the model sees what a real run
sees, at a size the CPU can train on.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np

from tests.lake.roots import box, build, write_root
from vprim.assets.camps.counting import CountingConfig
from vprim.assets.camps.evalsets import build_eval
from vprim.assets.camps.runs import counting_run
from vprim.assets.lake import publish as P
from vprim.assets.lake.balance import BalanceConfig
from vprim.assets.storage import Storage

LABELS = ("cat", "kite")
ONE_QUESTION = CountingConfig(questions_per_image=1)


def coarse_lake(root: Path, n_images: int, seed: int = 0, side: int = 252,
                holdout_permille: int = 100, labels_per_image: int = 1) -> Storage:  # fmt: skip
    """Build and publish the lake under ``root``; returns its storage."""
    rng = np.random.default_rng(seed)
    cell = side // 3
    boxes = []
    for i in range(n_images):
        cells = rng.permutation(9)
        k = 0
        labels = LABELS if labels_per_image == 2 else [LABELS[int(rng.integers(len(LABELS)))]]
        for label in labels:
            for c in cells[k : k + int(rng.integers(1, 5))]:
                s = int(rng.integers(cell * 60 // 100, cell * 90 // 100))
                x = (c % 3) * cell + int(rng.integers(0, cell - s))
                y = (c // 3) * cell + int(rng.integers(0, cell - s))
                boxes.append(box("src_a", f"img{i:05d}", label, (x, y, x + s, y + s),
                                 w=side, h=side))  # fmt: skip
                k += 1
    store = write_root(root, boxes, {"src_a": "keep"})
    config = BalanceConfig(cap=max(n_images, 1), buckets=2, holdout_permille=holdout_permille)
    P.publish(store, build(store, config).version)
    return store


def coarse_rows(store: Storage, n_train: int, n_eval: int) -> tuple[list[dict], list[dict]]:
    """(training rows: seeds ``0..n_train-1`` over ``train`` images, the ``counting_coarse``
    eval rows: written to ``camps/eval/counting_coarse.parquet`` and returned)."""
    con = duckdb.connect()
    try:
        train = counting_run(store, con, range(n_train), split="train", families=("coarse",),
                             config=ONE_QUESTION)  # fmt: skip
        build_eval(store, "counting_coarse", n_eval, config=ONE_QUESTION, con=con)
    finally:
        con.close()
    return train.rows, store.read_parquet("camps/eval/counting_coarse.parquet").to_pylist()
