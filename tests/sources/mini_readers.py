"""Small readers of the synthetic corpus's files, written from docs/FORMATS.md and independent
of ``assets/sources/readers``, and the geometry and label helpers the synthetic tests share.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import json
import math
import re
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import yaml
from PIL import Image

from vprim.assets.contracts import hashing as H
from vprim.assets.sources.synthetic.vocabulary import load_vocabulary


def size_from_uri(uri: str) -> tuple[int, int] | None:
    parts = urlsplit(uri)
    if parts.scheme != "synthetic":
        return None
    q = parse_qs(parts.query)
    return int(q["w"][0]), int(q["h"][0])


class Read:
    """What a small reader found in one source."""

    def __init__(self) -> None:
        self.boxes: list[dict] = []
        self.file_errors: list[str] = []
        self.images: dict[str, tuple[int, int] | None] = {}  # image_id -> size

    def add(
        self, image_id, box_index, label, xyxy, size, ref, crowd=False, polygon=None,
        truncated=None,
    ):  # fmt: skip
        self.boxes.append(
            {
                "image_id": image_id,
                "box_index": box_index,
                "label": label,
                "xyxy": tuple(float(v) for v in xyxy),
                "size": size,
                "ref": ref,
                "crowd": crowd,
                "polygon": polygon,
                "truncated": truncated,  # the truncated attribute's text, None when absent
            }
        )


def _text(path: Path) -> str:
    return _decode(path.read_bytes())


def _decode(data: bytes) -> str:
    if not data.strip():
        raise ValueError("parse_empty_file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("parse_bad_encoding") from None


def coco_documents(uri: str) -> list[tuple[str, bytes]]:
    """(path relative to the root, bytes) of every COCO file: ``*.json`` and ``*.json.gz``
    under a folder, or ``*.json`` in a zip (whose root is the archive's)."""
    if uri.endswith(".zip"):
        with zipfile.ZipFile(uri) as archive:
            names = sorted(n for n in archive.namelist() if n.endswith(".json"))
            return [(n, archive.read(n)) for n in names]
    root = Path(uri)
    paths = sorted([*root.rglob("*.json"), *root.rglob("*.json.gz")])
    return [
        (str(p.relative_to(root)), gzip.decompress(p.read_bytes()) if p.suffix == ".gz"
         else p.read_bytes())
        for p in paths
    ]  # fmt: skip


def read_coco(uri: str) -> Read:
    out = Read()
    docs = coco_documents(uri)
    for rel, raw in docs:
        # several files: image ids are "<file path without .json>:<id>" (docs/FORMATS.md)
        prefix = f"{rel.removesuffix('.gz').removesuffix('.json')}:" if len(docs) > 1 else ""
        try:
            doc = json.loads(_decode(raw))
        except ValueError as exc:
            out.file_errors.append(str(exc) if str(exc).startswith("parse_") else "json")
            continue
        images = {im["id"]: im for im in doc["images"]}
        cats = {c["id"]: c["name"] for c in doc["categories"]}
        for im in doc["images"]:
            out.images[prefix + str(im["id"])] = (im["width"], im["height"])
        seen: Counter = Counter()
        for ann in doc["annotations"]:
            im = images[ann["image_id"]]
            k = seen[ann["image_id"]]
            seen[ann["image_id"]] += 1
            x, y, w, h = ann["bbox"]
            seg = ann.get("segmentation")
            poly = seg[0] if isinstance(seg, list) and seg else None
            out.add(
                prefix + str(ann["image_id"]), k, cats[ann["category_id"]], (x, y, x + w, y + h),
                (im["width"], im["height"]), im["file_name"], ann["iscrowd"] == 1, poly,
                ann.get("attributes", {}).get("truncated"),
            )  # fmt: skip
    return out


def displayed_size(path: Path) -> tuple[int, int]:
    """An image file's size as shown: EXIF orientations 5-8 swap width and height."""
    with Image.open(path) as img:
        w, h = img.size
        return (h, w) if img.getexif().get(0x0112, 1) in (5, 6, 7, 8) else (w, h)


def read_ultralytics(root: Path) -> Read:
    """``data.yaml`` names; ``labels/<split>/<stem>.txt`` beside ``images/<split>/<stem>.*``,
    whose displayed size the normalised boxes are fractions of."""
    out = Read()
    names = yaml.safe_load((root / "data.yaml").read_text(encoding="utf-8"))["names"]
    for path in sorted((root / "labels").rglob("*.txt")):
        image_id = str(path.relative_to(root).with_suffix(""))
        rel = path.relative_to(root / "labels").with_suffix("")
        (image,) = (root / "images" / rel.parent).glob(rel.name + ".*")
        W, H = displayed_size(image)
        out.images[image_id] = (W, H)
        _yolo_boxes(out, image_id, path, names, (W, H), str(image.relative_to(root)))
    return out


def _yolo_boxes(out: Read, image_id: str, path: Path, names, size, ref: str) -> None:
    """The boxes of one label file: ``cls cx cy w h`` or ``cls x1 y1 x2 y2 ...`` (YOLO-seg)."""
    W, H = size
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    for k, line in enumerate(lines):
        tok = line.split()
        cls, vals = int(tok[0]), [float(v) for v in tok[1:]]
        if len(vals) == 4:
            cx, cy, w, h = vals
            xyxy = ((cx - w / 2) * W, (cy - h / 2) * H, (cx + w / 2) * W, (cy + h / 2) * H)
            out.add(image_id, k, names[cls], xyxy, (W, H), ref)
        else:
            pts = np.array(vals).reshape(-1, 2) * [W, H]
            xyxy = (*pts.min(0), *pts.max(0))
            out.add(image_id, k, names[cls], xyxy, (W, H), ref, polygon=pts.ravel().tolist())


def read_yolo(uri: str) -> Read:
    root = Path(uri)
    if (root / "data.yaml").exists():
        return read_ultralytics(root)
    out = Read()
    names = (root / "obj.names").read_text().splitlines()
    by_stem = {}
    for line in (root / "train.txt").read_text().splitlines():
        stem = Path(urlsplit(line).path).stem
        by_stem[stem] = line
    for path in sorted(root.rglob("*.txt")):
        if path.name == "train.txt":
            continue
        image_id = str(path.relative_to(root).with_suffix(""))
        ref = by_stem[path.stem]
        out.images[image_id] = size_from_uri(ref)
        _yolo_boxes(out, image_id, path, names, size_from_uri(ref), ref)
    return out


def read_voc(uri: str) -> Read:
    out = Read()
    for path in sorted(Path(uri).rglob("*.xml")):
        try:
            root = ET.fromstring(_text(path))
        except ValueError as exc:
            out.file_errors.append(str(exc))
            continue
        image_id = path.stem
        ref = root.findtext("filename")
        size = root.find("size")
        wh = (
            (int(size.findtext("width")), int(size.findtext("height")))
            if size is not None
            else None
        )
        out.images[image_id] = wh
        for k, obj in enumerate(root.findall("object")):
            bb = obj.find("bndbox")
            xmin, ymin, xmax, ymax = (
                float(bb.findtext(t)) for t in ("xmin", "ymin", "xmax", "ymax")
            )
            label = obj.findtext("name").strip()
            xyxy = (xmin - 1, ymin - 1, xmax, ymax)
            out.add(image_id, k, label, xyxy, wh, ref, truncated=obj.findtext("truncated"))
    return out


def read_openimages(uri: str) -> Read:
    out = Read()
    root = Path(uri)
    names = dict(csv.reader(io.StringIO((root / "class-descriptions-boxable.csv").read_text())))
    urls = {r["ImageID"]: r["OriginalURL"] for r in csv.DictReader(io.StringIO(
        (root / "image_ids_and_rotation.csv").read_text()))}  # fmt: skip
    seen: Counter = Counter()
    for r in csv.DictReader(io.StringIO((root / "train-annotations-bbox.csv").read_text())):
        iid = r["ImageID"]
        W, H = size_from_uri(urls[iid])
        out.images[iid] = (W, H)
        k = seen[iid]
        seen[iid] += 1
        xyxy = (
            float(r["XMin"]) * W,
            float(r["YMin"]) * H,
            float(r["XMax"]) * W,
            float(r["YMax"]) * H,
        )
        truncated = None if r["IsTruncated"] == "-1" else r["IsTruncated"]
        out.add(iid, k, names[r["LabelName"]], xyxy, (W, H), urls[iid], r["IsGroupOf"] == "1",
                truncated=truncated)  # fmt: skip
    return out


def read_odvg(uri: str) -> Read:
    out = Read()
    for path in sorted(Path(uri).rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                out.file_errors.append("json")
                continue
            image_id = rec["filename"]
            wh = (rec["width"], rec["height"])
            out.images[image_id] = wh
            items = (
                rec["detection"]["instances"] if "detection" in rec else rec["grounding"]["regions"]
            )
            for k, inst in enumerate(items):
                label = inst.get("category") or inst.get("phrase")
                out.add(image_id, k, label, inst["bbox"], wh, image_id)
    return out


def read_labelme(uri: str) -> Read:
    out = Read()
    root = Path(uri)
    for path in sorted(root.rglob("*.json")):
        doc = json.loads(_text(path))
        image_id = str(path.relative_to(root).with_suffix(""))
        wh = (doc["imageWidth"], doc["imageHeight"]) if "imageWidth" in doc else None
        out.images[image_id] = wh
        k = 0
        for shape in doc["shapes"]:
            if shape["shape_type"] not in ("rectangle", "polygon"):
                continue
            pts = np.array(shape["points"], dtype=np.float64)
            xs, ys = pts[:, 0].tolist(), pts[:, 1].tolist()
            xyxy = (min(xs), min(ys), max(xs), max(ys))
            if not np.isfinite(pts).all():
                xyxy = (math.nan, math.nan, math.nan, math.nan)
            poly = pts.ravel().tolist() if shape["shape_type"] == "polygon" else None
            truncated = shape.get("attributes", {}).get("truncated")
            out.add(image_id, k, shape["label"], xyxy, wh, doc["imagePath"], polygon=poly,
                    truncated=truncated)  # fmt: skip
            k += 1
    return out


MINI_READERS = {
    "coco": read_coco,
    "yolo": read_yolo,
    "voc": read_voc,
    "openimages": read_openimages,
    "odvg": read_odvg,
    "labelme": read_labelme,
}

# --- label and geometry helpers --------------------------------------------------------------


def _compact(label: str) -> str:
    return re.sub(r"[^0-9a-z]", "", label.lower())


@functools.cache
def vocab_keys() -> dict[str, int]:
    """Every compact vocabulary term and synonym -> its row."""
    vocab = load_vocabulary()
    keys = {}
    for row, (canon, syns) in enumerate(zip(vocab.canonical, vocab.synonyms)):
        for term in (canon, *syns):
            keys.setdefault(_compact(term), row)
    return keys


def vocab_row(label: str, keys: dict[str, int]) -> int | None:
    c = _compact(label)
    for cand in (c, c[:-1] if c.endswith("s") else None, c[:-2] if c.endswith("es") else None,
                 c[:-3] + "y" if c.endswith("ies") else None):  # fmt: skip
        if cand and cand in keys:
            return keys[cand]
    return None


def iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _segments_cross(p1, p2, p3, p4) -> bool:
    def orient(a, b, c):
        return np.sign((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))

    return (orient(p1, p2, p3) * orient(p1, p2, p4) < 0) and (
        orient(p3, p4, p1) * orient(p3, p4, p2) < 0
    )


def self_intersects(flat: list[float]) -> bool:
    pts = np.array(flat, dtype=np.float64).reshape(-1, 2)
    n = len(pts)
    edges = [(pts[i], pts[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        for j in range(i + 2, n):
            if i == 0 and j == n - 1:
                continue
            if _segments_cross(*edges[i], *edges[j]):
                return True
    return False


def box_id(source_id: str, box: dict) -> int:
    return int(H.instance_ids(source_id, [box["image_id"]], [box["box_index"]])[0])
