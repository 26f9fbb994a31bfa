"""Ingest's image step on real JPEGs written by Pillow: reasons, the EXIF move, the cache."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from vprim.assets.contracts import layout
from vprim.assets.sources import ingest
from vprim.assets.storage import Storage

ORIENTATION = 0x0112


def _jpeg(path, size, orientation: int | None = None) -> None:
    img = Image.new("RGB", size, (200, 80, 40))
    exif = Image.Exif()
    if orientation is not None:
        exif[ORIENTATION] = orientation
    img.save(path, "JPEG", quality=90, exif=exif)


@pytest.fixture
def source(tmp_path):
    """A Roboflow-style COCO export: ``train/_annotations.coco.json`` beside its images."""
    train = tmp_path / "src" / "train"
    train.mkdir(parents=True)
    _jpeg(train / "plain.jpg", (40, 30))
    _jpeg(train / "rotated.jpg", (40, 30), orientation=6)  # stored 40x30, displayed 30x40
    _jpeg(train / "wrong.jpg", (40, 30))
    images = [  # (id, file, width, height as annotated)
        (1, "plain.jpg", 40, 30),
        (2, "rotated.jpg", 40, 30),  # the stored size: boxes in stored pixels
        (3, "wrong.jpg", 41, 30),  # one pixel off: neither stored nor displayed
        (4, "gone.jpg", 40, 30),  # never written
    ]
    coco = {
        "images": [{"id": i, "file_name": f, "width": w, "height": h} for i, f, w, h in images],
        "categories": [{"id": 1, "name": "cup"}],
        "annotations": [
            {"id": k, "image_id": k, "category_id": 1, "bbox": [4, 2, 10, 6]} for k in range(1, 5)
        ],
    }
    (train / "_annotations.coco.json").write_text(json.dumps(coco))
    return tmp_path / "src"


def _ingest(tmp_path, src) -> tuple[ingest.ShardSummary, Storage]:
    storage = Storage(str(tmp_path / "root"))
    catalog = pa.table({"source_id": ["rf"], "uri": [str(src)], "format": ["coco"]})
    return ingest.ingest_shard(storage, catalog, "000"), storage


def _read(storage: Storage, directory: str) -> list[dict]:
    return pq.read_table(storage.path(layout.shard_file(directory, "000"))).to_pylist()


def test_each_box_follows_its_image_file(tmp_path, source):
    summary, storage = _ingest(tmp_path, source)
    rows = {r["image_id"]: r for r in _read(storage, layout.RAW_DIR)}
    assert sorted(rows) == ["1", "2"]
    plain, rotated = rows["1"], rows["2"]
    assert (plain["x0"], plain["y0"], plain["x1"], plain["y1"]) == (4.0, 2.0, 14.0, 8.0)
    # orientation 6 shows the stored picture turned 90 degrees clockwise: a stored point
    # (x, y) is displayed at (30 - y, x), so the box (4, 2)-(14, 8) becomes (22, 4)-(28, 14)
    assert (rotated["x0"], rotated["y0"], rotated["x1"], rotated["y1"]) == (22.0, 4.0, 28.0, 14.0)
    assert (rotated["image_width"], rotated["image_height"]) == (30, 40)
    assert summary.boxes_rotated == 1 and summary.images_probed == 3
    ledger = {r["reason"]: r for r in _read(storage, layout.rejects_dir("image"))}
    assert sorted(ledger) == ["image_missing", "image_size_mismatch"]
    assert ledger["image_size_mismatch"]["uri"] == f"file://{source}/train/wrong.jpg"
    assert "annotation 41x30" in ledger["image_size_mismatch"]["detail"]
    assert "gone.jpg" in ledger["image_missing"]["detail"]
    assert all(r["stage"] == "image" for r in ledger.values())
    (acct,) = ingest.accounting(storage, ["000"])
    assert acct["ok"] and (acct["seen"], acct["raw"], acct["rejected"]) == (4, 2, 2)


def test_a_second_ingest_probes_only_what_changed(tmp_path, source):
    first, storage = _ingest(tmp_path, source)
    rows = _read(storage, layout.RAW_DIR)
    probes = _read(storage, layout.IMAGE_PROBES_DIR)
    assert sorted(os.path.basename(p["uri"]) for p in probes) == [
        "plain.jpg",
        "rotated.jpg",
        "wrong.jpg",
    ]
    assert all(p["phash"] is not None and p["source_id"] == "rf" for p in probes)
    assert (first.images_probed, first.images_cached) == (3, 0)
    again, _ = _ingest(tmp_path, source)
    assert (again.images_probed, again.images_cached) == (0, 3)
    assert _read(storage, layout.RAW_DIR) == rows  # the cached probes judge the same
    plain = source / "train" / "plain.jpg"
    stat = plain.stat()
    os.utime(plain, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    touched, _ = _ingest(tmp_path, source)
    assert (touched.images_probed, touched.images_cached) == (1, 2)


def test_an_annotation_only_source_is_not_probed(tmp_path, source):
    for image in (source / "train").glob("*.jpg"):
        image.unlink()
    summary, storage = _ingest(tmp_path, source)
    assert summary.images_probed == 0
    assert len(_read(storage, layout.RAW_DIR)) == 4
    assert _read(storage, layout.rejects_dir("image")) == []
