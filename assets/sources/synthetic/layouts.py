"""The writer of real-image sources: annotation files and image files in the layouts people
download (``plan.LAYOUT_FORMAT``), docs/CONTRACTS.md#planted-synthetic-corpus-ground-truth.

- ``coco_official``: ``annotations/instances_<subset>.json`` beside ``<subset>/<id:012d>.jpg``
  (subsets ``train2017``/``val2017`` or ``train``/``val``; image ids unique across files);
- ``roboflow``: ``<split>/_annotations.coco.json`` beside ``<split>/<name>_jpg.rf.<hash>.jpg``
  (splits ``train``, ``valid``, ``test``; image ids restart at 0 in each file; an unused
  category 0 named after the project), ``README.dataset.txt`` and ``README.roboflow.txt``;
- ``roboflow_zip``: the same files in one ``<project>.v<k>i.coco.zip`` (JSON and text
  deflated, images stored), which is the catalog uri;
- ``ultralytics``: ``data.yaml`` (``path: .``, ``train: images/train``, ``val: images/val``,
  ``names`` a list or a dict) with ``images/<split>/<stem>.jpg`` and ``labels/<split>/<stem>.txt``;
- ``coco_gz``: one ``annotations/instances_val.json.gz`` beside ``val/<id:012d>.jpg``.

Splits are contiguous runs of images (a COCO file holds one run), so the copies a source
appends land in its last split.
"""

from __future__ import annotations

import gzip
import io
import zipfile

import numpy as np
import yaml

from vprim.assets.sources.synthetic.coco import CocoFiles, write_coco
from vprim.assets.sources.synthetic.plan import (
    COCO_GZ,
    COCO_OFFICIAL,
    ROBOFLOW,
    ROBOFLOW_ZIP,
    ULTRALYTICS,
)
from vprim.assets.sources.synthetic.real_images import annotation_view, image_file
from vprim.assets.sources.synthetic.source import SourceData
from vprim.assets.sources.synthetic.text import Files
from vprim.assets.sources.synthetic.yolo import label_files

#: the share of images in each split, by the number of splits a source has
SPLIT_SHARES = {1: (1.0,), 2: (0.8, 0.2), 3: (0.7, 0.2, 0.1)}
PROJECTS = ("hard-hats", "pcb-parts", "fruit-stand", "street-scenes", "pets", "litter",
            "workshop-tools", "shelf-items", "drone-survey", "kitchen")  # fmt: skip
#: stems of camera and frame-grab file names
STEMS = ("IMG_", "DSC", "PXL_2023", "frame_", "photo-", "vid3_frame")
#: a zip member's time stamp: fixed, so the archive's bytes depend on its content only
ZIP_TIME = (2024, 3, 1, 12, 0, 0)


def write_real_source(data: SourceData, rng: np.random.Generator) -> tuple[Files, list[str], str]:
    """Write a real-image source (``data.real`` set by ``real_images.build_real_source``).

    Returns:
        ``(files, image_ids, entry)``: the files under the source's folder, each image's id as
        the reader reports it (docs/FORMATS.md), and the file the catalog names inside the
        folder (the zip; ``""``: the folder itself).
    """
    layout = data.plan.layout
    if layout == ULTRALYTICS:
        files, image_ids = _ultralytics(data, rng)
    else:
        files, image_ids = _coco(data, rng)
    if layout != ROBOFLOW_ZIP:
        return files, image_ids, ""
    name = f"{PROJECTS[int(rng.integers(0, len(PROJECTS)))]}.v{int(rng.integers(1, 9))}i.coco.zip"
    return [(name, zip_bytes(files))], image_ids, name


def _splits(n: int, n_splits: int) -> np.ndarray:
    """The split of each of ``n`` images: contiguous runs in :data:`SPLIT_SHARES` (every split
    keeps at least one image)."""
    n_splits = max(1, min(n_splits, n))
    cuts = np.round(np.cumsum(SPLIT_SHARES[n_splits])[:-1] * n).astype(np.int64)
    cuts = np.clip(cuts, np.arange(1, n_splits), n - np.arange(n_splits - 1, 0, -1))
    return np.searchsorted(cuts, np.arange(n), side="right").astype(np.int16)


def _images(data: SourceData, paths: list[str]) -> Files:
    """The image files (none where one is planted missing)."""
    out = []
    for i, path in enumerate(paths):
        raw = image_file(data, i)
        if raw is not None:
            out.append((path, raw))
    return out


def _ext(data: SourceData) -> list[str]:
    return ["png" if p else "jpg" for p in data.real.png.tolist()]


# --- COCO layouts ----------------------------------------------------------------------------
def _coco(data: SourceData, rng: np.random.Generator) -> tuple[Files, list[str]]:
    layout, n = data.plan.layout, data.n_images
    if layout == COCO_OFFICIAL:
        subsets = ("train2017", "val2017") if rng.random() < 0.5 else ("train", "val")
        split = _splits(n, 2 if n >= 10 else 1)
        folders = [subsets[k] if split.max() else subsets[1] for k in split.tolist()]
        paths = tuple(f"annotations/instances_{f}.json" for f in dict.fromkeys(folders))
        ids = int(rng.integers(1, 600_000)) + np.cumsum(rng.integers(1, 40, n))
        refs = [f"{i:012d}.{e}" for i, e in zip(ids.tolist(), _ext(data))]
        project = None
    elif layout == COCO_GZ:
        split = np.zeros(n, dtype=np.int16)
        folders = ["val"] * n
        paths = ("annotations/instances_val.json",)
        ids = int(rng.integers(1, 600_000)) + np.cumsum(rng.integers(1, 40, n))
        refs = [f"{i:012d}.{e}" for i, e in zip(ids.tolist(), _ext(data))]
        project = None
    else:  # Roboflow, in a folder or a zip
        split = _splits(n, 3 if n >= 20 else 2 if n >= 5 else 1)
        names = ("train", "valid", "test")
        folders = [names[k] for k in split.tolist()]
        paths = tuple(f"{f}/_annotations.coco.json" for f in dict.fromkeys(folders))
        ids = np.arange(n) - np.searchsorted(split, split)  # restart at 0 in each file
        refs = _roboflow_names(rng, n)
        project = str(PROJECTS[int(rng.integers(0, len(PROJECTS)))])
    view = annotation_view(data)
    view.img_file = split
    files, image_ids, _ = write_coco(view, rng, CocoFiles(paths, ids, refs, project))
    if layout == COCO_GZ:  # mtime 0: the bytes depend on the content only
        files = [(rel + ".gz", gzip.compress(raw, mtime=0)) for rel, raw in files]
    if layout in (ROBOFLOW, ROBOFLOW_ZIP):
        files += _roboflow_readmes(project, n)
    files += _images(data, [f"{folder}/{ref}" for folder, ref in zip(folders, refs)])
    return files, image_ids


def _roboflow_names(rng: np.random.Generator, n: int) -> list[str]:
    """``<original stem>_<ext>.rf.<32 hex>.jpg``: Roboflow renames every image and converts
    it to JPEG."""
    stem = STEMS[int(rng.integers(0, len(STEMS)))]
    first = int(rng.integers(1, 9000))
    digests = rng.integers(0, 16, (n, 32))
    hexes = ["".join("0123456789abcdef"[d] for d in row) for row in digests.tolist()]
    exts = rng.choice(np.array(["jpg", "jpeg", "png"]), n, p=[0.8, 0.1, 0.1]).tolist()
    return [f"{stem}{first + i:04d}_{e}.rf.{h}.jpg" for i, (e, h) in enumerate(zip(exts, hexes))]


def _roboflow_readmes(project: str, n: int) -> Files:
    dataset = f"# {project} > raw\nhttps://universe.roboflow.com/vprim/{project}\n\n{n} images\n"
    roboflow = f"{project} - v1 raw\n\nThis dataset was exported via roboflow.com\n"
    return [("README.dataset.txt", dataset.encode()), ("README.roboflow.txt", roboflow.encode())]


def zip_bytes(files: Files) -> bytes:
    """A zip of ``files``: text and JSON deflated, images stored (as exports do), members in
    path order with a fixed time stamp, so the same files give the same bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for rel, raw in sorted(files):
            info = zipfile.ZipInfo(rel, date_time=ZIP_TIME)
            info.create_system = 3  # unix, on every platform
            info.external_attr = 0o644 << 16
            stored = rel.endswith((".jpg", ".png"))
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            archive.writestr(info, raw)
    return buf.getvalue()


# --- Ultralytics YOLO ------------------------------------------------------------------------
def _ultralytics(data: SourceData, rng: np.random.Generator) -> tuple[Files, list[str]]:
    n = data.n_images
    split = _splits(n, 2)
    folders = [("train", "val")[k] for k in split.tolist()]
    stem = STEMS[int(rng.integers(0, len(STEMS)))]
    first = int(rng.integers(1, 9000))
    stems = [f"{folder}/{stem}{first + i:05d}" for i, folder in enumerate(folders)]
    image_ids = [f"labels/{s}" for s in stems]
    # YOLO has no size of its own: a rotated image's boxes are in its displayed orientation
    files = label_files(data, [f"{image_id}.txt" for image_id in image_ids])
    files += _images(data, [f"images/{s}.{e}" for s, e in zip(stems, _ext(data))])
    names = data.labels.names
    spec = {
        "path": ".",
        "train": "images/train",
        "val": "images/val",
        "nc": len(names),
        "names": names if rng.random() < 0.5 else dict(enumerate(names)),
    }
    text = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=1 << 16)
    files.append(("data.yaml", text.encode("utf-8")))
    return files, image_ids
