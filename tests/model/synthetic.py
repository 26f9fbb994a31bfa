"""A small table with the camp schema for the model's tests: n squares on a plain background,
"How many squares are there?", target boxes + answer. Generated, seeded."""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image, ImageDraw


def _box999(b, size):
    return [round(v * 999 / size) for v in b]


def squares_rows(n_rows: int, seed: int, split: str = "train", size: int = 126, max_n: int = 4):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_rows):
        n = int(rng.integers(1, max_n + 1))
        img = Image.new("RGB", (size, size), (200, 200, 200))
        d = ImageDraw.Draw(img)
        boxes, cells = [], rng.permutation(9)[:n]  # one square per cell of a 3x3 grid
        for c in cells:
            s = int(rng.integers(14, 26))
            x0 = (c % 3) * 42 + int(rng.integers(0, 42 - s))
            y0 = (c // 3) * 42 + int(rng.integers(0, 42 - s))
            d.rectangle([x0, y0, x0 + s, y0 + s], fill=(200, 30, 30))
            boxes.append([x0, y0, x0 + s, y0 + s])
        boxes.sort()
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        b999 = ",".join("[" + ",".join(map(str, _box999(b, size))) + "]" for b in boxes)
        rows.append(
            {
                "sample_id": f"{split}-{seed}-{i}",
                "camp": "counting",
                "split": split,
                "eval_set": None if split == "train" else "counting_fine",
                "difficulty": "coarse",
                "seed": seed,
                "image_png": buf.getvalue(),
                "image_uri": None,
                "image_width": size,
                "image_height": size,
                "prompt": "How many squares are there?",
                "target": f"<|ref|>square<|/ref|><|box|>[{b999}]<|/box|>\nAnswer: {n}",
                "answer": str(n),
                "meta": json.dumps(
                    {
                        "gt": n,
                        "label": "square",
                        "phrase": "square",
                        "boxes_999": [_box999(b, size) for b in boxes],
                    }
                ),
            }
        )
    return rows
