"""A Roboflow COCO export read zipped, in place, against the same export unzipped.

``make bench``'s "archives" entry. One export is written the way Roboflow ships it: folders
``train/`` and ``valid/``, each with ``_annotations.coco.json`` beside its JPEG files (small
real JPEGs written by Pillow), then zipped (the JSON deflated, the JPEGs stored, as Roboflow
does). Each is read with ``ingest.read_source`` after a warm-up; the median of three runs is
reported.

    python -m vprim.assets.sources.bench_archives [--images N] [--out DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from vprim.assets.sources.ingest import read_source

#: the share of the images in ``train/`` (the rest are in ``valid/``), as Roboflow splits
TRAIN_SHARE = 0.8
BOXES_PER_IMAGE = 3
WIDTH, HEIGHT = 64, 48
RUNS = 3
_CATEGORIES = [
    {"id": 0, "name": "parts", "supercategory": "none"},  # Roboflow's umbrella category
    {"id": 1, "name": "bolt", "supercategory": "parts"},
    {"id": 2, "name": "nut", "supercategory": "parts"},
]


def _jpeg(rng: np.random.Generator) -> bytes:
    """A small real JPEG of random colour blocks (not all alike, as a real export's)."""
    blocks = rng.integers(0, 256, size=(HEIGHT // 8, WIDTH // 8, 3), dtype=np.uint8)
    pixels = blocks.repeat(8, axis=0).repeat(8, axis=1)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _split(folder: Path, names: list[str], rng: np.random.Generator) -> int:
    """One split folder: its images and its ``_annotations.coco.json``; returns its boxes."""
    folder.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for image_id, name in enumerate(names):
        (folder / name).write_bytes(_jpeg(rng))
        images.append({"id": image_id, "license": 1, "file_name": name,
                       "height": HEIGHT, "width": WIDTH})  # fmt: skip
        for _ in range(BOXES_PER_IMAGE):
            x, y = rng.uniform(0, WIDTH / 2), rng.uniform(0, HEIGHT / 2)
            w, h = rng.uniform(2, WIDTH / 2), rng.uniform(2, HEIGHT / 2)
            annotations.append({"id": len(annotations), "image_id": image_id,
                                "category_id": int(rng.integers(1, 3)), "bbox": [x, y, w, h],
                                "area": w * h, "segmentation": [], "iscrowd": 0})  # fmt: skip
    doc = {"info": {"description": "vprim bench"}, "categories": _CATEGORIES,
           "images": images, "annotations": annotations}  # fmt: skip
    (folder / "_annotations.coco.json").write_text(json.dumps(doc))
    return len(annotations)


def write_export(root: Path, n_images: int, seed: int = 0) -> int:
    """A Roboflow-layout COCO export of ``n_images`` images under ``root``; returns boxes."""
    rng = np.random.default_rng(seed)
    names = [f"img_{i:06d}_jpg.rf.{i:032x}.jpg" for i in range(n_images)]
    n_train = round(n_images * TRAIN_SHARE)
    return _split(root / "train", names[:n_train], rng) + _split(
        root / "valid", names[n_train:], rng
    )


def zip_export(folder: Path, archive: Path) -> None:
    """``folder``'s files at the archive root: JSON deflated, JPEGs stored (as Roboflow)."""
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            stored = path.suffix.lower() == ".jpg"
            kind = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            z.write(path, path.relative_to(folder).as_posix(), compress_type=kind)


def _timed_read(source_id: str, uri: str) -> tuple[float, int]:
    """Median seconds of :data:`RUNS` reads after a warm-up, and the boxes read."""
    read_source(source_id, uri, "coco")  # warm-up: page cache, imports
    seconds, boxes = [], 0
    for _ in range(RUNS):
        started = time.perf_counter()
        out = read_source(source_id, uri, "coco")
        seconds.append(time.perf_counter() - started)
        boxes = sum(table.num_rows for table in out.boxes)
    return statistics.median(seconds), boxes


def bench_zip_vs_folder(out_dir: str | Path, n_images: int = 5000) -> dict:
    """Read one Roboflow export as a folder and as its zip; seconds, images/s and the ratio.

    Raises:
        RuntimeError: when the two reads do not give the same number of boxes.
    """
    out = Path(out_dir) / f"archives-{n_images}"
    folder, archive = out / "export", out / "export.zip"
    if not archive.exists():
        write_export(folder, n_images)
        zip_export(folder, archive)
    folder_seconds, folder_boxes = _timed_read("bench_folder", str(folder))
    zip_seconds, zip_boxes = _timed_read("bench_zip", str(archive))
    if folder_boxes != zip_boxes:
        raise RuntimeError(f"the zip read {zip_boxes} boxes, the folder {folder_boxes}")
    return {
        "images": n_images,
        "boxes": folder_boxes,
        "folder_seconds": round(folder_seconds, 4),
        "zip_seconds": round(zip_seconds, 4),
        "folder_images_per_second": round(n_images / folder_seconds),
        "zip_images_per_second": round(n_images / zip_seconds),
        "zip_vs_folder_time": round(zip_seconds / folder_seconds, 2),
        "zip_bytes": archive.stat().st_size,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m vprim.assets.sources.bench_archives")
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--out", default="bench_out")
    args = parser.parse_args(argv)
    figures = bench_zip_vs_folder(args.out, args.images)
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
