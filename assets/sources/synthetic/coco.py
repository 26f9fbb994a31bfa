"""The COCO writer: one ``instances_*.json`` (or up to three files), docs/FORMATS.md; a
real-image source names its files, image ids and image files itself (:class:`CocoFiles`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vprim.assets.sources.synthetic.labels import NON_ASCII_LABELS
from vprim.assets.sources.synthetic.source import SourceData
from vprim.assets.sources.synthetic.text import (
    Files,
    attr_pairs,
    json_str,
    num_texts,
    polygon_texts,
)


@dataclass(frozen=True)
class CocoFiles:
    """How a real-image source lays out its COCO files (``layouts.py``)."""

    paths: tuple[str, ...]  # the annotation file of each ``data.img_file`` value
    ids: np.ndarray  # (n_images,) the image ids
    refs: list[str]  # the ``file_name`` of each image
    #: a category 0 no box uses, named after the project (as Roboflow exports write it)
    project: str | None = None


def write_coco(
    data: SourceData, rng: np.random.Generator, layout: CocoFiles | None = None
) -> tuple[Files, list[str], int]:
    plan, b, lt = data.plan, data.b, data.labels
    sid, n_img = plan.source_id, data.n_images
    if layout is None:
        ids = int(rng.integers(1, 400_000)) + np.cumsum(rng.integers(1, 3, n_img))
        n_files = int(data.img_file.max()) + 1 if n_img else 1
        paths = [f"annotations/{_coco_file_stem(n_files, f)}.json" for f in range(n_files)]
    else:
        ids, paths = layout.ids, list(layout.paths)
    raw_ids = ids.astype(str).tolist()
    n_files = len(paths)
    # docs/FORMATS.md: with several COCO files, image ids carry their file's path
    image_ids = raw_ids
    if n_files > 1:
        image_ids = [
            f"{paths[k].removesuffix('.json')}:{i}" for k, i in zip(data.img_file.tolist(), raw_ids)
        ]
    img_lines = []
    for i in range(n_img):
        w, h = int(data.W[i]), int(data.H[i])
        if layout is not None:
            ref = layout.refs[i]
        elif data.img_flag[i] == 3:
            ref = data.escape_ref(i)
        else:
            ref = data.uri(image_ids[i], w, h)
        img_lines.append(
            f'{{"id":{raw_ids[i]},"file_name":{json_str(ref)},"width":{w},"height":{h},"license":1}}'
        )
    cat_ids = np.cumsum(rng.integers(1, 3, len(lt.names)))
    supers = ("object", "thing", "vehicle", "animal", "indoor", "outdoor", "food", "none")
    sup = supers[int(rng.integers(0, len(supers)))]
    categories = [
        f'{{"id":{c},"name":{json_str(name)},"supercategory":"{sup}"}}'
        for c, name in zip(cat_ids.tolist(), lt.names)
    ]
    if layout is not None and layout.project:
        categories.insert(0, f'{{"id":0,"name":{json_str(layout.project)},"supercategory":"none"}}')
    x, y = b["x0"], b["y0"]
    with np.errstate(invalid="ignore"):
        w, h = b["x1"] - b["x0"], b["y1"] - b["y0"]
        area = w * h
    sx, sy, sw, sh, sa = num_texts(x), num_texts(y), num_texts(w), num_texts(h), num_texts(area)
    extra = [""] * data.n_boxes
    for p, poly in polygon_texts(data).items():
        extra[p] = ',"segmentation":[[' + ",".join(poly) + "]]"
    for p in np.flatnonzero(b["crowd"]).tolist():
        i = int(b["img"][p])
        total = int(data.W[i]) * int(data.H[i])
        inside = max(1, int(np.nan_to_num(area[p])))
        start = min(total - inside, int(b["y0"][p] * data.W[i]))
        extra[p] = (
            f',"segmentation":{{"size":[{int(data.H[i])},{int(data.W[i])}],'
            f'"counts":[{start},{inside},{total - start - inside}]}}'
        )
    if data.colour is not None:
        for p in range(data.n_boxes):
            pairs = ",".join(f'"{k}":"{v}"' for k, v in attr_pairs(data, p))
            extra[p] += ',"attributes":{' + pairs + "}"
    ann_base = int(rng.integers(1, 1_000_000))
    img_ids_of_box = ids[b["img"]].tolist()
    cats_of_box = cat_ids[b["lab"]].tolist()
    crowd = b["crowd"].astype(np.int8).tolist()
    anns = [
        f'{{"id":{ann_base + k},"image_id":{iid},"category_id":{c},'
        f'"bbox":[{a},{bb},{cc},{d}],"area":{ar},"iscrowd":{cr}{ex}}}'
        for k, (iid, c, a, bb, cc, d, ar, cr, ex) in enumerate(
            zip(img_ids_of_box, cats_of_box, sx, sy, sw, sh, sa, crowd, extra)
        )
    ]
    info = (
        f'{{"description":"{sid} synthetic detection export","version":"1.0",'
        f'"year":{2015 + plan.index % 10},"contributor":"vprim"}}'
    )
    licences = '[{"id":1,"name":"' + (plan.licence or "unknown") + '","url":""}]'
    files: Files = []
    file_rows = 0
    for f in range(n_files):
        on = np.flatnonzero(data.img_file == f)
        a, z = (int(on[0]), int(on[-1]) + 1) if len(on) else (0, 0)
        s, e = int(data.starts[a]), int(data.starts[z])
        cats = list(categories)
        bad_label = NON_ASCII_LABELS[plan.index % len(NON_ASCII_LABELS)]
        if f == data.bad_file and plan.file_defect == "bad_encoding":
            cats.append(
                f'{{"id":{int(cat_ids[-1]) + 7},"name":"{bad_label}","supercategory":"food"}}'
            )
        text = (
            f'{{"info":{info},"licenses":{licences},"images":[{",".join(img_lines[a:z])}],'
            f'"annotations":[{",".join(anns[s:e])}],"categories":[{",".join(cats)}]}}\n'
        )
        raw = text.encode("utf-8")
        if f == data.bad_file:
            file_rows += 1
            if plan.file_defect == "invalid_json":
                raw = raw[: int(len(raw) * rng.uniform(0.3, 0.9))]
            elif plan.file_defect == "empty_file":
                raw = b""
            elif plan.file_defect == "bad_encoding":
                raw = raw.replace(bad_label.encode("utf-8"), bad_label.encode("latin-1"))
        files.append((paths[f], raw))
    return files, image_ids, file_rows


def _coco_file_stem(n_files: int, f: int) -> str:
    return "instances_default" if n_files == 1 else COCO_SPLIT_FILES[f]


COCO_SPLIT_FILES = ("instances_train", "instances_part2", "instances_part3")
