"""The YOLO writer: one ``.txt`` per image under ``obj_train_data/``, ``obj.names``, ``obj.data``
and ``train.txt`` (the image URIs)."""

from __future__ import annotations

import numpy as np

from vprim.assets.sources.synthetic.defects import TRUNC
from vprim.assets.sources.synthetic.source import SourceData
from vprim.assets.sources.synthetic.text import Files, f6_texts, polygon_texts


def write_yolo(data: SourceData, rng: np.random.Generator) -> tuple[Files, list[str], int]:
    lt = data.labels
    n_img = data.n_images
    stem = ("frame", "img", "image", "IMG")[int(rng.integers(0, 4))]
    image_ids = [f"obj_train_data/{stem}_{i:06d}" for i in range(n_img)]
    files = label_files(data, [f"{image_id}.txt" for image_id in image_ids])
    uris = [data.uri(image_ids[i], data.W[i], data.H[i]) for i in range(n_img)]
    files.append(("obj.names", ("\n".join(lt.names) + "\n").encode("utf-8")))
    files.append(
        (
            "obj.data",
            f"classes = {len(lt.names)}\ntrain = data/train.txt\nnames = data/obj.names\n"
            "backup = backup/\n".encode(),
        )
    )
    files.append(("train.txt", ("\n".join(uris) + "\n").encode("utf-8")))
    return files, image_ids, 0


def label_files(data: SourceData, paths: list[str]) -> Files:
    """One label file per image (``paths``): a line per box, normalised centre format (or a
    YOLO-seg polygon); an image without boxes gets an empty file."""
    b = data.b
    Wb = data.W[b["img"]].astype(np.float64)
    Hb = data.H[b["img"]].astype(np.float64)
    with np.errstate(invalid="ignore"):
        cx, cy = (b["x0"] + b["x1"]) / 2 / Wb, (b["y0"] + b["y1"]) / 2 / Hb
        bw, bh = (b["x1"] - b["x0"]) / Wb, (b["y1"] - b["y0"]) / Hb
    # a box cut by the left/top border reads back with x0 == 0 exactly: w has an even last
    # digit and cx is exactly half of it, so (cx - w/2) * W is 0.0 in floating point
    for lo, c, s in ((b["x0"], cx, bw), (b["y0"], cy, bh)):
        m = (b["code"] == TRUNC) & (lo == 0)
        s[m] = 2 * np.round(s[m] / 2, 6)
        c[m] = s[m] / 2
    cls = b["lab"].tolist()
    lines = [
        f"{k} {a} {bb} {c} {d}"
        for k, a, bb, c, d in zip(cls, f6_texts(cx), f6_texts(cy), f6_texts(bw), f6_texts(bh))
    ]
    for p, poly in polygon_texts(data, normalised=True).items():
        lines[p] = f"{cls[p]} " + " ".join(poly)
    files: Files = []
    for i, path in enumerate(paths):
        s, e = int(data.starts[i]), int(data.starts[i + 1])
        text = "\n".join(lines[s:e]) + "\n" if e > s else ""
        files.append((path, text.encode("utf-8")))
    return files
