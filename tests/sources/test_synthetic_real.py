"""Real-image sources of the synthetic corpus: what the generator guarantees about their files.

Checked on the tiny corpus with tools that do not share the generator's code: ``zipfile``,
``gzip``, ``yaml``, Pillow (its ``ImageOps.exif_transpose`` is the reference for EXIF
orientation), plain JSON parsing and the small readers of ``mini_readers``. Layouts and cases
are those of ``assets/sources/synthetic/layouts.py`` and ``real_images.py``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image, ImageOps, UnidentifiedImageError

from tests.sources import mini_readers as M
from vprim.assets.contracts import hashing as H
from vprim.assets.sources.render import NAMED_COLOURS, label_look
from vprim.assets.sources.synthetic.corpus import generate_corpus
from vprim.assets.sources.synthetic.plan import LAYOUT_FORMAT, plan_source

IMAGE_CODES = ("image_missing", "image_undecodable", "image_size_mismatch", "exif_rotated")
ORIENTATION = 0x0112  # the EXIF tag


@dataclass
class Img:
    """One image an annotation names: where its file should be, the size the annotation
    states (None: YOLO states none), and its boxes (``box_index`` order)."""

    image_id: str
    path: str  # relative to the source's root (the archive's root for a zip)
    size: tuple[int, int] | None
    boxes: list[dict] = field(default_factory=list)


# --- reading the files, independently of the generator ---------------------------------------
def source_files(uri: str) -> dict[str, bytes]:
    """Every file of a source by its path under the root: a folder's, or a zip's members."""
    if uri.endswith(".zip"):
        with zipfile.ZipFile(uri) as archive:
            return {n: archive.read(n) for n in archive.namelist() if not n.endswith("/")}
    root = Path(uri)
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def coco_images(uri: str) -> dict[str, Img]:
    """A COCO layout's images: ``instances_<subset>.json`` names files in ``<subset>/`` (official
    and gzip layouts), a Roboflow ``_annotations.coco.json`` files beside it."""
    docs = M.coco_documents(uri)
    out = {}
    for rel, raw in docs:
        name = rel.removesuffix(".gz").removesuffix(".json")
        stem = os.path.basename(name)
        folder = stem.removeprefix("instances_") if stem.startswith("instances_") else None
        folder = folder or os.path.dirname(rel)
        prefix = f"{name}:" if len(docs) > 1 else ""
        doc = json.loads(raw)
        cats = {c["id"]: c["name"] for c in doc["categories"]}
        by_id = {}
        for im in doc["images"]:
            img = Img(prefix + str(im["id"]), f"{folder}/{im['file_name']}",
                      (im["width"], im["height"]))  # fmt: skip
            out[img.image_id] = by_id[im["id"]] = img
        for ann in doc["annotations"]:
            img = by_id[ann["image_id"]]
            x, y, w, h = ann["bbox"]
            img.boxes.append({"box_index": len(img.boxes), "xyxy": (x, y, x + w, y + h),
                              "label": cats[ann["category_id"]],
                              "attributes": ann.get("attributes", {})})  # fmt: skip
    return out


def yolo_images(uri: str) -> dict[str, Img]:
    """An Ultralytics layout's images (boxes in the displayed picture's pixels)."""
    read = M.read_ultralytics(Path(uri))
    out = {}
    for image_id in read.images:
        split_stem = image_id.removeprefix("labels/")
        (path,) = [str(p.relative_to(uri)) for p in (Path(uri) / "images").glob(split_stem + ".*")]
        out[image_id] = Img(image_id, path, None)
    for box in read.boxes:
        out[box["image_id"]].boxes.append({**box, "attributes": {}})
    return out


def decode(raw: bytes) -> Image.Image:
    with Image.open(io.BytesIO(raw)) as img:
        img.load()
        return img


def displayed(img: Image.Image) -> Image.Image:
    return ImageOps.exif_transpose(img).convert("RGB")


def stored_to_displayed(box, orientation: int, stored_size: tuple[int, int]) -> tuple:
    """A box in a stored picture's pixels, in the displayed picture's (EXIF orientation 6: the
    stored picture is shown turned 90 degrees clockwise; 8: counter-clockwise)."""
    x0, y0, x1, y1 = box
    w, h = stored_size
    if orientation == 6:
        return (h - y1, x0, h - y0, x1)
    if orientation == 8:
        return (y0, w - x1, y1, w - x0)
    return tuple(box)


def thumb(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L").resize((32, 32), Image.Resampling.BILINEAR), np.float64)


# --- fixtures --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tiny_corpus):
    return tiny_corpus


@pytest.fixture(scope="module")
def planted(tiny) -> list[dict]:
    return pq.read_table(tiny.planted_path).to_pylist()


@pytest.fixture(scope="module")
def real(tiny) -> dict[str, dict]:
    """Every real-image source of tiny: its catalog row, plan, files and images."""
    out = {}
    for row in pq.read_table(tiny.catalog_path).to_pylist():
        plan = plan_source("tiny", 0, int(row["source_id"].split("-")[1]))
        if plan.layout:
            images = (yolo_images if row["format"] == "yolo" else coco_images)(row["uri"])
            out[row["source_id"]] = {"row": row, "plan": plan, "images": images,
                                     "files": source_files(row["uri"])}  # fmt: skip
    return out


@pytest.fixture(scope="module")
def cases(planted, real) -> dict[str, dict[tuple[str, str], list[dict]]]:
    """The planted rows of real-image sources: {code: {(source_id, image_id): rows}}."""
    out: dict = defaultdict(lambda: defaultdict(list))
    for p in planted:
        if p["source_id"] in real and p["defect"] in (*IMAGE_CODES, "duplicate_content"):
            out[p["defect"]][(p["source_id"], p["image_id"])].append(p)
    return out


def image_of(real, key) -> tuple[Img, dict]:
    sid, image_id = key
    return real[sid]["images"][image_id], real[sid]


# --- tests -----------------------------------------------------------------------------------
def test_tiny_holds_every_layout_and_every_image_case(real, cases):
    assert {s["plan"].layout for s in real.values()} == set(LAYOUT_FORMAT)
    assert {s["row"]["format"] for s in real.values()} == {"coco", "yolo"}
    for code in (*IMAGE_CODES, "duplicate_content"):
        assert cases[code], f"tiny plants no {code}"


def test_files_are_in_the_documented_layouts(real):
    seen = set()
    for sid, s in real.items():
        layout, files, uri = s["plan"].layout, s["files"], s["row"]["uri"]
        tops = {rel.split("/")[0] for rel in files}
        if layout == "coco_official":
            jsons = [rel for rel in files if rel.endswith(".json")]
            assert jsons and all(rel.startswith("annotations/instances_") for rel in jsons)
            subsets = {rel.removeprefix("annotations/instances_")[:-5] for rel in jsons}
            assert tops == {"annotations", *subsets}, sid
        elif layout in ("roboflow", "roboflow_zip"):
            assert uri.endswith(".zip") == (layout == "roboflow_zip")
            jsons = sorted(rel for rel in files if rel.endswith(".json"))
            assert jsons == [f"{t}/_annotations.coco.json" for t in sorted(tops) if "." not in t]
            assert tops - {"train", "valid", "test"} == {"README.dataset.txt",
                                                         "README.roboflow.txt"}  # fmt: skip
            for rel, raw in files.items():  # Roboflow's category 0 names the project, unused
                if rel.endswith(".json"):
                    doc = json.loads(raw)
                    assert doc["categories"][0]["id"] == 0
                    assert all(a["category_id"] != 0 for a in doc["annotations"])
        elif layout == "ultralytics":
            spec = yaml.safe_load(files["data.yaml"])
            assert (spec["path"], spec["train"], spec["val"]) == (".", "images/train", "images/val")
            names = spec["names"]
            assert spec["nc"] == len(names)
            assert isinstance(names, list) or sorted(names) == list(range(len(names)))
            stems = {rel.split(".")[0].removeprefix("images/") for rel in files
                     if rel.startswith("images/")}  # fmt: skip
            labels = {rel[:-4].removeprefix("labels/") for rel in files if rel.endswith(".txt")}
            assert stems == labels and tops == {"data.yaml", "images", "labels"}, sid
            assert {st.split("/")[0] for st in stems} == {"train", "val"}
        else:
            assert layout == "coco_gz"
            assert tops == {"annotations", "val"}
            assert [rel for rel in files if rel.startswith("annotations/")] == [
                "annotations/instances_val.json.gz"
            ]
            json.loads(gzip.decompress(files["annotations/instances_val.json.gz"]))
        seen.add(layout)
    assert seen == set(LAYOUT_FORMAT)


def test_the_zip_deflates_annotations_and_stores_images(real):
    (s,) = [s for s in real.values() if s["plan"].layout == "roboflow_zip"]
    with zipfile.ZipFile(s["row"]["uri"]) as archive:
        infos = archive.infolist()
        assert archive.testzip() is None
    kinds = {(i.filename.rsplit(".", 1)[-1], i.compress_type) for i in infos}
    assert kinds == {("json", zipfile.ZIP_DEFLATED), ("txt", zipfile.ZIP_DEFLATED),
                     ("jpg", zipfile.ZIP_STORED)}  # fmt: skip


def test_every_named_image_is_a_small_real_file_but_the_planted_ones(real, cases):
    missing = set(cases["image_missing"])
    undecodable = set(cases["image_undecodable"])
    n = Counter()
    for sid, s in real.items():
        for img in s["images"].values():
            key = (sid, img.image_id)
            if key in missing:
                continue
            raw = s["files"][img.path]
            if key in undecodable:
                continue
            pic = decode(raw)
            assert pic.format == {"jpg": "JPEG", "png": "PNG"}[img.path.rsplit(".", 1)[1]]
            assert all(64 * 0.5 <= side <= 200 for side in pic.size), (key, pic.size)
            n[pic.format] += 1
    assert n["JPEG"] > 100 and n["PNG"] >= 3, n


def test_planted_rows_name_real_boxes_and_cover_their_image(real, cases):
    for code in IMAGE_CODES:
        for key, rows in cases[code].items():
            img, _ = image_of(real, key)
            # every box of the image, once, with the instance id of (source, image, box)
            assert sorted(r["box_index"] for r in rows) == list(range(len(img.boxes))), key
            for r in rows:
                want = H.instance_ids(r["source_id"], [r["image_id"]], [r["box_index"]])[0]
                assert r["instance_id"] == int(want) and r["near"] is None
    for key, rows in cases["duplicate_content"].items():
        img, _ = image_of(real, key)
        assert len(rows) == 1 and rows[0]["box_index"] is None and rows[0]["instance_id"] is None
        assert img.boxes


def test_missing_images_are_not_written(real, cases):
    assert cases["image_missing"]
    for key in cases["image_missing"]:
        img, s = image_of(real, key)
        assert img.path not in s["files"]
        assert not any(rel.endswith("/" + os.path.basename(img.path)) for rel in s["files"])


def test_undecodable_images_exist_but_no_decoder_reads_their_header(real, cases):
    variants = set()
    for key in cases["image_undecodable"]:
        img, s = image_of(real, key)
        raw = s["files"][img.path]
        assert img.path.endswith(".jpg")
        with pytest.raises((UnidentifiedImageError, OSError)):
            Image.open(io.BytesIO(raw))
        variants.add("empty" if not raw else "html" if raw.startswith(b"<") else raw[:2].hex())
    assert variants == {"empty", "html", "ffd8"}  # nothing, an error page, a cut JPEG


def test_mismatched_sizes_are_neither_the_stored_nor_the_displayed_size(real, cases):
    assert cases["image_size_mismatch"]
    for key in cases["image_size_mismatch"]:
        img, s = image_of(real, key)
        pic = decode(s["files"][img.path])
        w, h = pic.size
        assert pic.getexif().get(ORIENTATION, 1) == 1
        assert img.size not in ((w, h), (h, w)), key


@pytest.mark.parametrize(
    ("orientation", "expected"),
    [
        # a 100 x 160 stored picture with a box at x 10-30, y 20-60, by hand: turned clockwise
        # (6) x becomes 160 - y and y becomes x; counter-clockwise (8) x becomes y, y 100 - x
        (6, (100, 10, 140, 30)),
        (8, (20, 70, 60, 90)),
        (1, (10, 20, 30, 60)),
    ],
)
def test_stored_to_displayed_agrees_with_pillow(orientation, expected):
    stored = np.zeros((160, 100, 3), dtype=np.uint8)
    stored[20:60, 10:30] = 255
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    buf = io.BytesIO()
    Image.fromarray(stored).save(buf, "PNG", exif=exif.tobytes())  # lossless
    shown = np.asarray(displayed(decode(buf.getvalue())))
    ys, xs = np.nonzero(shown[..., 0])
    assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == expected
    assert stored_to_displayed((10, 20, 30, 60), orientation, (100, 160)) == expected


def test_exif_rotated_files_carry_the_planted_orientation(real, cases):
    rotated = set(cases["exif_rotated"])
    conventions = Counter()
    for sid, s in real.items():
        for img in s["images"].values():
            raw = s["files"].get(img.path)
            if raw is None or (sid, img.image_id) in cases["image_undecodable"]:
                continue
            pic = decode(raw)
            turn = pic.getexif().get(ORIENTATION, 1)
            assert (turn in (6, 8)) == ((sid, img.image_id) in rotated), (sid, img.image_id)
            if turn == 1:
                continue
            assert pic.format == "JPEG"
            w, h = pic.size
            if img.size is None:  # YOLO: boxes are fractions of the displayed picture
                conventions["yolo", turn] += 1
            elif img.size == (h, w):
                conventions["displayed", turn] += 1
            else:
                assert img.size == (w, h), (sid, img.image_id)
                conventions["stored", turn] += 1
    assert set(conventions) == {(c, t) for c in ("yolo", "displayed", "stored") for t in (6, 8)}


def _expected_colour(box: dict) -> tuple[int, int, int] | None:
    """The fill ``render`` gives a box's object, or None where something may hide its centre."""
    attrs = {k.lower(): str(v).lower() for k, v in box["attributes"].items()}
    if attrs.get("occluded") == "1":
        return None
    if attrs.get("colour") in NAMED_COLOURS:
        return NAMED_COLOURS[attrs["colour"]]
    return label_look(box["label"])[1]


def test_pictures_show_each_object_at_its_box(real, cases):
    """At the centre of a box that no later box covers, the picture shows the object's colour
    (boxes of a mismatched annotation scaled to the file, of a stored-pixel annotation turned to
    the displayed picture). Every such box of a rotated or mismatched image does; of the
    others, 97% at least (JPEG's blur on small boxes). A copy shows its origin's objects, as
    its origin labelled them: the copy test compares it with them."""
    skip = {*cases["image_missing"], *cases["image_undecodable"], *cases["duplicate_content"]}
    turned_or_scaled = {*cases["exif_rotated"], *cases["image_size_mismatch"]}
    seen = {True: Counter(), False: Counter()}
    for sid, s in real.items():
        for img in s["images"].values():
            if (sid, img.image_id) not in skip:
                hits = _centre_colour_hits(img, s["files"][img.path])
                seen[(sid, img.image_id) in turned_or_scaled].update(hits)
    assert seen[True][True] >= 20 and not seen[True][False], seen[True]
    assert sum(seen[False].values()) >= 60 and seen[False][False] <= 0.03 * seen[False][True]


def _centre_colour_hits(img: Img, raw: bytes) -> list[bool]:
    """For each box whose centre shows its object, whether the picture has its colour there."""
    pic = decode(raw)
    turn = pic.getexif().get(ORIENTATION, 1)
    shown = np.asarray(displayed(pic), dtype=np.int64)
    out = []
    for box in img.boxes:
        colour = _expected_colour(box)
        xyxy = _in_displayed_pixels(box["xyxy"], img.size, pic.size, turn)
        if colour is None or not _visible_at_centre(xyxy, img, box, shown.shape[1::-1]):
            continue
        cx, cy = int((xyxy[0] + xyxy[2]) / 2), int((xyxy[1] + xyxy[3]) / 2)
        centre = np.median(shown[cy - 1 : cy + 2, cx - 1 : cx + 2].reshape(-1, 3), axis=0)
        out.append(bool(np.abs(centre - colour).max() <= 40))
    return out


def _in_displayed_pixels(xyxy, annotated, stored, turn) -> tuple:
    """An annotated box in the displayed picture's pixels: YOLO's already are; a stored-pixel
    annotation of a rotated file is turned (a square one is taken as displayed: its size says
    nothing); a mismatched one is scaled to the file."""
    if annotated is None:
        return tuple(xyxy)
    if turn != 1 and annotated == stored != stored[::-1]:
        return stored_to_displayed(xyxy, turn, stored)
    shown = stored if turn == 1 else stored[::-1]
    fx, fy = shown[0] / annotated[0], shown[1] / annotated[1]
    return (xyxy[0] * fx, xyxy[1] * fy, xyxy[2] * fx, xyxy[3] * fy)


def _corners(xyxy) -> tuple:
    """A box as ``render`` draws it: corners in order."""
    x0, x1 = sorted(xyxy[0::2])
    y0, y1 = sorted(xyxy[1::2])
    return x0, y0, x1, y1


def _visible_at_centre(xyxy, img: Img, box: dict, size) -> bool:
    """``xyxy`` (displayed pixels) lies in the picture, 8 px a side or more, and no box drawn
    after ``box`` covers its centre (compared in the annotation's pixels)."""
    x0, y0, x1, y1 = xyxy
    inside = np.isfinite(xyxy).all() and min(x0, y0) >= 0 and x1 <= size[0] and y1 <= size[1]
    if not inside or min(x1 - x0, y1 - y0) < 8:
        return False
    cx, cy = (box["xyxy"][0] + box["xyxy"][2]) / 2, (box["xyxy"][1] + box["xyxy"][3]) / 2
    for later in img.boxes[box["box_index"] + 1 :]:
        if np.isfinite(later["xyxy"]).all():  # a non-finite box is not drawn
            a0, b0, a1, b1 = _corners(later["xyxy"])
            if a0 - 2 <= cx <= a1 + 2 and b0 - 2 <= cy <= b1 + 2:
                return False
    return True


def test_copies_show_an_earlier_picture_in_other_bytes_with_scaled_boxes(real, cases):
    """Each ``duplicate_content`` image decodes to nearly the picture of one image of an
    earlier real-image source (mean absolute difference of 32 x 32 grey thumbnails), far from
    the others; its bytes are in no other file; its boxes are that image's, scaled."""
    copies = set(cases["duplicate_content"])
    digests = Counter(hashlib.sha256(raw).digest() for s in real.values()
                      for raw in s["files"].values())  # fmt: skip
    pool = []
    for sid, s in real.items():
        for img in s["images"].values():
            raw = s["files"].get(img.path)
            key = (sid, img.image_id)
            if raw is None or key in copies or key in cases["image_undecodable"]:
                continue
            pic = decode(raw)
            if pic.getexif().get(ORIENTATION, 1) == 1 and img.size in (None, pic.size):
                pool.append((key, thumb(pic), pic.size, img))
    kinds = Counter()
    for sid, image_id in copies:
        img, s = image_of(real, (sid, image_id))
        raw = s["files"][img.path]
        assert digests[hashlib.sha256(raw).digest()] == 1  # no file elsewhere has its bytes
        pic = decode(raw)
        mine = thumb(pic)
        earlier = [p for p in pool if p[0][0] < sid]
        gaps = np.array([np.abs(mine - t).mean() for _, t, _, _ in earlier])
        best = int(np.argmin(gaps))
        _, _, origin_size, origin = earlier[best]
        assert gaps[best] < 4.0, (sid, image_id, gaps[best])
        assert np.median(gaps) > 15.0 and np.partition(gaps, 1)[1] > 3 * gaps[best]
        ratio = pic.size[0] / origin_size[0]
        kinds["same size" if ratio == 1 else "resized"] += 1
        assert ratio == 1 or 0.49 <= ratio <= 0.76
        mine_boxes = np.array([b["xyxy"] for b in img.boxes]) / np.tile(pic.size, 2)
        theirs = np.array([b["xyxy"] for b in origin.boxes]) / np.tile(origin_size, 2)
        assert mine_boxes.shape == theirs.shape and np.allclose(mine_boxes, theirs, atol=1e-4)
        keys = M.vocab_keys()
        assert [M.vocab_row(b["label"], keys) for b in img.boxes] == [
            M.vocab_row(b["label"], keys) for b in origin.boxes
        ]
    assert kinds["same size"] and kinds["resized"], kinds


def test_real_sources_are_deterministic_with_two_workers(tiny, real, planted, tmp_path):
    again = generate_corpus(str(tmp_path / "again"), "tiny", seed=0, workers=2)
    rows = pq.read_table(again.planted_path).to_pylist()
    for sid, s in real.items():
        uri = s["row"]["uri"].replace(tiny.sources_dir, again.sources_dir)
        assert source_files(uri) == s["files"], sid
        assert [r for r in rows if r["source_id"] == sid] == [
            r for r in planted if r["source_id"] == sid
        ]
