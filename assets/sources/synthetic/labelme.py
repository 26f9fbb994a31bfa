"""The LabelMe writer: one JSON per image (rectangles, polygons, a few points)."""

from __future__ import annotations

import numpy as np

from vprim.assets.sources.synthetic.source import SourceData
from vprim.assets.sources.synthetic.text import (
    Files,
    attr_pairs,
    json_str,
    num_texts,
    polygon_texts,
)


def write_labelme(data: SourceData, rng: np.random.Generator) -> tuple[Files, list[str], int]:
    b, lt = data.b, data.labels
    n_img = data.n_images
    stem = ("IMG", "DSC", "photo", "frame")[int(rng.integers(0, 4))]
    batched = n_img > 300
    image_ids = [
        (f"batch_{i // 250:03d}/" if batched else "") + f"{stem}_{i:05d}" for i in range(n_img)
    ]
    names = [json_str(s) for s in lt.names]
    c = [num_texts(b[k]) for k in ("x0", "y0", "x1", "y1")]
    polys = polygon_texts(data)
    points_p = 0.3 if rng.random() < 0.3 else 0.0
    shapes = []
    for p, (lab, a, bb, cc, d) in enumerate(zip(b["lab"].tolist(), *c)):
        if p in polys:
            pts = polys[p]
            pts_text = ", ".join(f"[{pts[k]}, {pts[k + 1]}]" for k in range(0, len(pts), 2))
            kind = "polygon"
        else:
            pts_text = f"[{a}, {bb}], [{cc}, {d}]"
            kind = "rectangle"
        attrs = attr_pairs(data, p)
        attr_text = ", ".join(f'"{k}": "{v}"' for k, v in attrs)
        shapes.append(
            f'    {{"label": {names[lab]}, "points": [{pts_text}], "group_id": null, '
            f'"description": "", "shape_type": "{kind}", "flags": {{}}, '
            f'"attributes": {{{attr_text}}}}}'
        )
    files: Files = []
    for i in range(n_img):
        s, e = int(data.starts[i]), int(data.starts[i + 1])
        w, h = int(data.W[i]), int(data.H[i])
        items = shapes[s:e]
        if points_p and rng.random() < points_p and len(lt.good):
            lab = int(lt.good[int(rng.integers(0, len(lt.good)))])
            px, py = int(rng.integers(0, w)), int(rng.integers(0, h))
            items = list(items)
            items.insert(
                int(rng.integers(0, len(items) + 1)),
                f'    {{"label": {names[lab]}, "points": [[{px}, {py}]], "group_id": null, '
                f'"description": "", "shape_type": "point", "flags": {{}}}}',
            )
        flag = data.img_flag[i]
        ref = data.uri(image_ids[i], w, h)
        size = f',\n  "imageHeight": {h},\n  "imageWidth": {w}'
        if flag == 2:
            ref, size = f"{image_ids[i].rsplit('/', 1)[-1]}.jpg", ""
        elif flag == 3:
            ref = data.escape_ref(i)
        body = ",\n".join(items)
        text = (
            f'{{\n  "version": "5.2.1",\n  "flags": {{}},\n  "shapes": [\n{body}\n  ],\n'
            f'  "imagePath": {json_str(ref)},\n  "imageData": null{size}\n}}\n'
        )
        files.append((f"{image_ids[i]}.json", text.encode("utf-8")))
    return files, image_ids, 0
