"""The Pascal VOC writer: one ``Annotations/<id>.xml`` per image, docs/FORMATS.md."""

from __future__ import annotations

import numpy as np

from vprim.assets.sources.synthetic.defects import TRUNC
from vprim.assets.sources.synthetic.labels import NON_ASCII_LABELS
from vprim.assets.sources.synthetic.source import COLOURS, POSES, SourceData
from vprim.assets.sources.synthetic.text import Files, num_texts, xml_escape
from vprim.assets.sources.synthetic.vocabulary import cap

_VOC_OBJ = (
    "\t<object>\n\t\t<name>{}</name>\n\t\t<pose>{}</pose>\n\t\t<truncated>{}</truncated>\n"
    "\t\t<difficult>0</difficult>\n{}\t\t<bndbox>\n\t\t\t<xmin>{}</xmin>\n\t\t\t<ymin>{}</ymin>\n"
    "\t\t\t<xmax>{}</xmax>\n\t\t\t<ymax>{}</ymax>\n\t\t</bndbox>\n{}\t</object>\n"
)


def write_voc(data: SourceData, rng: np.random.Generator) -> tuple[Files, list[str], int]:
    plan, b, lt = data.plan, data.b, data.labels
    sid, n_img = plan.source_id, data.n_images
    prefix = f"{int(rng.integers(2007, 2013))}_" if rng.random() < 0.5 else ""
    image_ids = [f"{prefix}{i + 1:06d}" for i in range(n_img)]
    names = [xml_escape(s) for s in lt.names]
    sx0, sy0 = num_texts(b["x0"] + 1.0, False), num_texts(b["y0"] + 1.0, False)
    sx1, sy1 = num_texts(b["x1"], False), num_texts(b["y1"], False)
    trunc = (b["code"] == TRUNC).astype(np.int8).tolist()
    if data.colour is not None:
        poses = [cap(POSES[k]) for k in data.pose.tolist()]
        occl = [f"\t\t<occluded>{k}</occluded>\n" for k in data.occluded.tolist()]
        attrs = [
            "\t\t<attributes>\n\t\t\t<attribute>\n\t\t\t\t<name>colour</name>\n"
            f"\t\t\t\t<value>{COLOURS[k]}</value>\n\t\t\t</attribute>\n\t\t</attributes>\n"
            for k in data.colour.tolist()
        ]
    else:
        poses = ["Unspecified"] * data.n_boxes
        occl = attrs = [""] * data.n_boxes
    objs = [
        _VOC_OBJ.format(names[lab], pose, t, oc, a, bb, c, d, at)
        for lab, pose, t, oc, a, bb, c, d, at in zip(
            b["lab"].tolist(), poses, trunc, occl, sx0, sy0, sx1, sy1, attrs
        )
    ]
    db = f"{sid} database"
    files: Files = []
    file_rows = 0
    for i in range(n_img):
        s, e = int(data.starts[i]), int(data.starts[i + 1])
        w, h = int(data.W[i]), int(data.H[i])
        flag = data.img_flag[i]
        size = (
            f"\t<size>\n\t\t<width>{w}</width>\n\t\t<height>{h}</height>\n"
            "\t\t<depth>3</depth>\n\t</size>\n"
        )
        ref = xml_escape(data.uri(image_ids[i], w, h))
        if flag == 2:
            ref, size = f"{image_ids[i]}.jpg", ""
        elif flag == 3:
            ref = data.escape_ref(i)
        body = "".join(objs[s:e])
        text = (
            f"<annotation>\n\t<folder>VOC</folder>\n\t<filename>{ref}</filename>\n"
            f"\t<source>\n\t\t<database>{db}</database>\n\t</source>\n{size}"
            f"\t<segmented>0</segmented>\n{body}</annotation>\n"
        )
        raw = text.encode("utf-8")
        if flag == 1:
            file_rows += 1
            if plan.file_defect == "empty_file":
                raw = b""
            else:  # bad_encoding: one object's name in latin-1
                label = NON_ASCII_LABELS[plan.index % len(NON_ASCII_LABELS)]
                head, sep, tail = text.partition("<name>")
                tail = tail[tail.index("</name>") :]
                raw = (head + sep).encode() + label.encode("latin-1") + tail.encode()
        files.append((f"Annotations/{image_ids[i]}.xml", raw))
    return files, image_ids, file_rows
