"""The ODVG writer: one JSON line per image (detection or grounding), docs/FORMATS.md."""

from __future__ import annotations

import numpy as np

from vprim.assets.sources.synthetic.source import SourceData
from vprim.assets.sources.synthetic.text import Files, json_str, num_texts


def write_odvg(data: SourceData, rng: np.random.Generator) -> tuple[Files, list[str], int]:
    b, lt = data.b, data.labels
    n_img = data.n_images
    grounding = rng.random() < 0.25
    image_ids = [
        data.escape_ref(i)
        if data.img_flag[i] == 3
        else data.uri(f"img_{i:06d}", data.W[i], data.H[i])
        for i in range(n_img)
    ]
    names = [json_str(s) for s in lt.names]
    c = [num_texts(b[k]) for k in ("x0", "y0", "x1", "y1")]
    if grounding:
        inst = [
            f'{{"bbox":[{a},{bb},{cc},{d}],"phrase":{names[lab]}}}'
            for lab, a, bb, cc, d in zip(b["lab"].tolist(), *c)
        ]
    else:
        inst = [
            f'{{"bbox":[{a},{bb},{cc},{d}],"label":{lab},"category":{names[lab]}}}'
            for lab, a, bb, cc, d in zip(b["lab"].tolist(), *c)
        ]
    lines = []
    file_rows = 0
    for i in range(n_img):
        s, e = int(data.starts[i]), int(data.starts[i + 1])
        head = f'{{"filename":{json_str(image_ids[i])},"height":{data.H[i]},"width":{data.W[i]},'
        if grounding:
            phrases = sorted({lt.names[k] for k in b["lab"][s:e].tolist()})
            body = (
                f'"grounding":{{"caption":{json_str(". ".join(phrases))},'
                f'"regions":[{",".join(inst[s:e])}]}}}}'
            )
        else:
            body = f'"detection":{{"instances":[{",".join(inst[s:e])}]}}}}'
        line = head + body
        if data.img_flag[i] == 1:  # invalid_json: a truncated line, the file goes on
            line = line[: int(len(line) * rng.uniform(0.3, 0.8))]
            file_rows += 1
        lines.append(line)
    label_map = "{" + ",".join(f'"{k}":{nm}' for k, nm in enumerate(names)) + "}\n"
    files: Files = [
        ("odvg_train.jsonl", ("\n".join(lines) + "\n").encode("utf-8")),
        ("label_map.json", label_map.encode("utf-8")),
    ]
    return files, image_ids, file_rows
