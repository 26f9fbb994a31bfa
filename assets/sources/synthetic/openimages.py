"""The Open Images writer: the boxable CSVs (classes, boxes, images), docs/FORMATS.md."""

from __future__ import annotations

import numpy as np

from vprim.assets.contracts import hashing as H
from vprim.assets.sources.synthetic.defects import TRUNC
from vprim.assets.sources.synthetic.source import SourceData
from vprim.assets.sources.synthetic.text import Files, csv_field, f6_texts


def _mid(name: str) -> str:
    h = H.stable_hash64("mid\x1f" + name)
    chars = "0123456789abcdefghijklmnopqrstuvwxyz_"
    out = []
    for _ in range(5):
        h, r = divmod(h, len(chars))
        out.append(chars[r])
    return "/m/0" + "".join(out)


def write_openimages(data: SourceData, rng: np.random.Generator) -> tuple[Files, list[str], int]:
    plan, b, lt = data.plan, data.b, data.labels
    n_img = data.n_images
    raw_ids = rng.integers(0, 2**63, n_img, dtype=np.int64)
    image_ids = [f"{v:016x}" for v in raw_ids.tolist()]
    if len(set(image_ids)) != n_img:  # (never seen) make them unique, still 16 hex digits
        image_ids = [f"{v & 0xFFFFFFFFFFF:011x}{i:05x}" for i, v in enumerate(raw_ids.tolist())]
    mids, used = [], set()
    for name in lt.names:
        m = _mid(name)
        while m in used:
            m = _mid(m + name)
        used.add(m)
        mids.append(m)
    Wb = data.W[b["img"]].astype(np.float64)
    Hb = data.H[b["img"]].astype(np.float64)
    xmin, xmax = f6_texts(b["x0"] / Wb), f6_texts(b["x1"] / Wb)
    ymin, ymax = f6_texts(b["y0"] / Hb), f6_texts(b["y1"] / Hb)
    n = data.n_boxes
    if data.occluded is not None:
        occ = data.occluded.tolist()
        trunc = (b["code"] == TRUNC).astype(np.int8).tolist()
        dep = ins = [0] * n
    else:
        occ = trunc = dep = ins = [-1] * n
    group = b["crowd"].astype(np.int8).tolist()
    img_of = [image_ids[i] for i in b["img"].tolist()]
    rows = [
        f"{iid},xclick,{mids[lab]},1,{a},{bb},{c},{d},{o},{t},{g},{dp},{ic}"
        for iid, lab, a, bb, c, d, o, t, g, dp, ic in zip(
            img_of, b["lab"].tolist(), xmin, xmax, ymin, ymax, occ, trunc, group, dep, ins
        )
    ]
    header = (
        "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,"
        "IsGroupOf,IsDepiction,IsInside\n"
    )
    classes = "".join(f"{m},{csv_field(name)}\n" for m, name in zip(mids, lt.names))
    img_rows = [
        f"{image_ids[i]},train,{data.uri(image_ids[i], data.W[i], data.H[i])},,"
        f"{plan.licence or ''},,,,,,,0\n"
        for i in range(n_img)
    ]
    img_header = (
        "ImageID,Subset,OriginalURL,OriginalLandingURL,License,AuthorProfileURL,Author,Title,"
        "OriginalSize,OriginalMD5,Thumbnail300KURL,Rotation\n"
    )
    files: Files = [
        ("class-descriptions-boxable.csv", classes.encode("utf-8")),
        ("train-annotations-bbox.csv", (header + "\n".join(rows) + "\n").encode("utf-8")),
        ("image_ids_and_rotation.csv", (img_header + "".join(img_rows)).encode("utf-8")),
    ]
    return files, image_ids, 0
