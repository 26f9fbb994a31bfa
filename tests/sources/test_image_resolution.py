"""Images are resolved among a source's files, never guessed (docs/FORMATS.md, "Image references").

Real annotation files (tests/sources/data/image_resolution, see its README) are laid out in
the folder layouts of the tools that write them; images are tiny files written by Pillow.
Expected URIs and details are written out by hand.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.sources.reading import image, jsonl, read, write
from vprim.assets.sources.readers import coco as coco_module
from vprim.assets.sources.readers import get_reader
from vprim.assets.sources.readers.base import Source
from vprim.assets.sources.readers.coco import CocoReader
from vprim.assets.sources.readers.images import index_of
from vprim.assets.sources.readers.jsonscan import SlowPath

DATA = Path(__file__).parent / "data" / "image_resolution"
DATUMARO = DATA / "datumaro"


def _copy(name: Path, to: Path) -> Path:
    to.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(name, to)
    return to


def _uri(path: Path) -> str:
    return path.as_uri()


def _missing(out) -> list[tuple[str, int, str]]:
    return [(r.image_id, r.box_index, r.reason) for r in out.rejects]


# --- COCO ----------------------------------------------------------------------------------------
def test_coco_official_layout_subset_folder_beside_annotations(tmp_path):
    """annotations/instances_val.json beside val/ (the official layout): the image is
    val/b.jpg; before, the reader named images/b.jpg, a file that does not exist."""
    root = tmp_path / "coco"
    _copy(DATUMARO / "coco_instances_val.json", root / "annotations" / "instances_val.json")
    image(root / "val" / "b.jpg", 5, 10)
    out = read("coco", root)
    assert out.rejects == []
    assert [(r["image_id"], r["box_index"]) for r in out.rows] == [("40", 0), ("40", 1)]
    assert {r["image_uri"] for r in out.rows} == {_uri(root / "val" / "b.jpg")}


def test_coco_candidate_order_subset_before_images_folder(tmp_path):
    root = tmp_path / "coco"
    _copy(DATUMARO / "coco_instances_val.json", root / "annotations" / "instances_val.json")
    image(root / "images" / "b.jpg", 5, 10)  # third candidate
    image(root / "images" / "val" / "b.jpg", 5, 10)  # second
    assert {r["image_uri"] for r in read("coco", root).rows} == {
        _uri(root / "images" / "val" / "b.jpg")
    }
    image(root / "val" / "b.jpg", 5, 10)  # first
    assert {r["image_uri"] for r in read("coco", root).rows} == {_uri(root / "val" / "b.jpg")}


def test_coco_roboflow_export_images_beside_the_annotation_file(tmp_path):
    """train/_annotations.coco.json beside its images: before, images/train_001.jpg."""
    root = tmp_path / "rf"
    train = root / "train"
    _copy(DATUMARO / "roboflow_coco_train_annotations.coco.json", train / "_annotations.coco.json")
    image(train / "train_001.jpg", 10, 5)
    image(train / "train_002.jpg", 10, 5)
    out = read("coco", root)
    assert out.rejects == []
    uris = {r["image_id"]: r["image_uri"] for r in out.rows}
    assert uris == {"1": _uri(train / "train_001.jpg"), "2": _uri(train / "train_002.jpg")}


def test_coco_image_in_a_folder_that_is_no_candidate_is_missing(tmp_path):
    root = tmp_path / "coco"
    _copy(DATUMARO / "coco_instances_val.json", root / "annotations" / "instances_val.json")
    image(root / "other" / "b.jpg", 5, 10)  # present, but under no folder COCO tries
    out = read("coco", root)
    assert out.rows == []
    assert _missing(out) == [("40", 0, "image_missing"), ("40", 1, "image_missing")]
    assert out.rejects[0].detail == (
        "annotations/instances_val.json: image 'b.jpg': not among the source's files "
        "(tried val/, images/val/, images/, annotations/, <root>/)"
    )


def test_coco_image_with_another_extension_is_missing(tmp_path):
    root = tmp_path / "coco"
    _copy(DATUMARO / "coco_instances_val.json", root / "annotations" / "instances_val.json")
    image(root / "val" / "b.png", 5, 10)  # b.jpg is named: b.png is another file
    assert [r.reason for r in read("coco", root).rejects] == ["image_missing"] * 2


def _small_coco(file_names: list[str]) -> str:
    images = [
        {"id": i, "file_name": name, "width": 8, "height": 8} for i, name in enumerate(file_names)
    ]
    annotations = [
        {"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 2, 2], "iscrowd": 0}
        for i in range(len(file_names))
    ]
    doc = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "a"}]}
    return json.dumps(doc)


def test_coco_by_file_name_within_the_candidate_folders_when_unique(tmp_path):
    root = tmp_path / "coco"
    write(
        root,
        {
            "instances_val.json": _small_coco(
                [
                    "JPEGImages/x.jpg",  # no such folder; one x.jpg in a candidate folder
                    "sub/y.jpg",  # y.jpg in two candidate folders: ambiguous
                    "./val/z.jpg",  # not plain: resolved in Python, the same rules
                    "https://example.com/w.jpg",  # remote: as it is, never looked up
                ]
            )
        },
    )
    image(root / "images" / "x.jpg", 8, 8)
    image(root / "images" / "y.jpg", 8, 8)
    image(root / "val" / "y.jpg", 8, 8)
    image(root / "val" / "z.jpg", 8, 8)
    out = read("coco", root)
    uris = {r["image_id"]: r["image_uri"] for r in out.rows}
    assert uris == {
        "0": _uri(root / "images" / "x.jpg"),
        "2": _uri(root / "val" / "z.jpg"),
        "3": "https://example.com/w.jpg",
    }
    assert _missing(out) == [("1", 0, "image_missing")]
    assert out.rejects[0].detail == (
        "instances_val.json: image 'sub/y.jpg': 2 files named 'y.jpg' there, none at that path "
        "(tried val/, images/val/, images/, <root>/)"
    )


def test_coco_annotation_only_source_keeps_the_old_uris(tmp_path):
    """No image file in the source at all (an annotation-only download): not rejected; the
    URIs are the old default, images/<file_name>, and the source says its images are absent."""
    root = tmp_path / "coco"
    _copy(DATUMARO / "coco_instances_val.json", root / "annotations" / "instances_val.json")
    write(root, {"README.txt": "images: download them from the website\n"})
    source = Source("src", str(root))
    path = str(root / "annotations" / "instances_val.json")
    result = CocoReader().read_file(source, None, path)
    assert result.rejects == [] and result.boxes.num_rows == 2
    assert set(result.boxes["image_uri"].to_pylist()) == {_uri(root / "images" / "b.jpg")}
    index = index_of(source)
    assert index.present is False and index.unchecked == 1


def test_coco_path_escape_is_still_refused_when_images_exist(tmp_path):
    root = tmp_path / "coco"
    write(root, {"instances_val.json": _small_coco(["../../etc/passwd", "/abs/a.jpg", "ok.jpg"])})
    image(root / "ok.jpg", 8, 8)
    out = read("coco", root)
    assert [r["image_id"] for r in out.rows] == ["2"]
    assert _missing(out) == [("0", 0, "parse_path_escape"), ("1", 0, "parse_path_escape")]


# --- COCO's ignore flag (Objects365, mmdetection) -------------------------------------------
_OBJ365 = DATA / "mmdetection" / "unsorted_obj365_sample.json"


def _obj365(tmp_path: Path) -> Path:
    root = tmp_path / "obj365"
    _copy(_OBJ365, root / "unsorted_obj365_sample.json")
    for name in ("fake1.jpg", "fake2.jpg", "fake3.jpg", "fake4.jpg"):
        image(root / name, 8, 8)
    return root


def _force_slow_path(monkeypatch) -> None:
    def refuse(self, items):
        raise SlowPath

    monkeypatch.setattr(coco_module._Annotations, "fast", refuse)


@pytest.mark.parametrize("path", ["fast", "slow"])
def test_coco_ignore_flag_is_crowd_and_kept_as_attribute(tmp_path, monkeypatch, path):
    if path == "slow":
        _force_slow_path(monkeypatch)
    out = read("coco", _obj365(tmp_path))
    rows = out.rows
    # annotation ids 1, 2, 3, 4, 5, 7, 9 (id 6 names category 3, which is not defined)
    assert [(r["image_id"], r["box_index"]) for r in rows] == [
        ("0", 0), ("0", 1), ("1", 0), ("1", 1), ("1", 2), ("3", 0), ("3", 1),
    ]  # fmt: skip
    # id 2 is iscrowd 1; id 4 is iscrowd 0 with ignore 1
    assert [r["is_crowd"] for r in rows] == [False, True, False, True, False, False, False]
    assert [dict(r["attributes"]) for r in rows] == [{}, {}, {}, {"ignore": "1"}, {}, {}, {}]
    assert _missing(out) == [("1", 3, "parse_unknown_category")]


@pytest.mark.parametrize("path", ["fast", "slow"])
def test_coco_ignore_flag_values(tmp_path, monkeypatch, path):
    if path == "slow":
        _force_slow_path(monkeypatch)
    values = [True, 2.5, 0.0, False, "1", None]
    annotations = [
        {"id": i, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "ignore": v}
        for i, v in enumerate(values)
    ]
    annotations.append(
        {"id": 9, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "ignore": 1,
         "attributes": {"ignore": "its own", "kind": 3}}
    )  # fmt: skip
    doc = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 8, "height": 8}],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "a"}],
    }
    root = write(tmp_path / "src", {"instances.json": json.dumps(doc)})
    rows = read("coco", root).rows
    # true and numbers other than 0 are set; 0, false, a string and null are not
    assert [r["is_crowd"] for r in rows] == [True, True, False, False, False, False, True]
    assert [dict(r["attributes"]) for r in rows] == [
        {"ignore": "true"}, {"ignore": "2.5"}, {}, {}, {}, {},
        {"ignore": "its own", "kind": "3"},  # the annotation's own attribute wins
    ]  # fmt: skip


# --- YOLO (Ultralytics data.yaml) ----------------------------------------------------------
def _ultralytics(root: Path, yaml_file: str, ext: str = "jpg") -> Path:
    _copy(DATUMARO / yaml_file, root / "data.yaml")
    _copy(DATUMARO / "yolov8_labels_train_1.txt", root / "labels" / "train" / "1.txt")
    image(root / "images" / "train" / f"1.{ext}", 30, 20)
    return root


@pytest.mark.parametrize(
    "yaml_file", ["yolov8_data.yaml", "yolov8_with_list_of_names_data.yaml"], ids=["dict", "list"]
)
def test_yolo_ultralytics_layout_names_as_dict_and_list(tmp_path, yaml_file):
    root = _ultralytics(tmp_path / "y8", yaml_file)
    out = read("yolo", root)
    assert out.rejects == [] and out.images == 1
    rows = out.rows
    assert [r["raw_label"] for r in rows] == ["label_2", "label_4"]
    assert {r["image_uri"] for r in rows} == {_uri(root / "images" / "train" / "1.jpg")}
    # "2 0.133333 0.300000 0.266667 0.200000" in a 30 x 20 image
    assert out.xyxy()[0] == pytest.approx((0.0, 4.0, 8.0, 8.0), abs=1e-4)


def test_yolo_image_of_any_image_extension(tmp_path):
    root = _ultralytics(tmp_path / "y8", "yolov8_data.yaml", ext="png")
    assert {r["image_uri"] for r in read("yolo", root).rows} == {
        _uri(root / "images" / "train" / "1.png")
    }


def test_yolo_data_yaml_image_list(tmp_path):
    """data.yaml's train: train.txt, whose entry data/images/train/1.jpg drops data/."""
    root = tmp_path / "y8"
    _copy(DATUMARO / "yolov8_with_subset_txt_data.yaml", root / "data.yaml")
    _copy(DATUMARO / "yolov8_with_subset_txt_train.txt", root / "train.txt")
    _copy(DATUMARO / "yolov8_labels_train_1.txt", root / "labels" / "train" / "1.txt")
    image(root / "images" / "train" / "1.jpg", 30, 20)
    out = read("yolo", root)
    assert out.rejects == [] and out.images == 1  # train.txt is a list, not a label file
    assert {r["image_uri"] for r in out.rows} == {_uri(root / "images" / "train" / "1.jpg")}


def test_yolo_data_yaml_lists_and_folders_anywhere(tmp_path):
    root = write(
        tmp_path / "y8",
        {
            "data.yaml": "path: .\ntrain: splits/mine.txt\nval: pics/val\nnames: [cat]\n",
            "splits/mine.txt": "./images/train/a.jpg\n",
            "labels/train/a.txt": "0 0.5 0.5 0.5 0.5\n",
            "labels/val/b.txt": "0 0.5 0.5 0.5 0.5\n",
        },
    )
    image(root / "images" / "train" / "a.jpg", 8, 8)
    image(root / "pics" / "val" / "b.jpg", 8, 8)  # only data.yaml's val: names this folder
    out = read("yolo", root)
    assert out.rejects == [] and out.images == 2  # splits/mine.txt is not a label file
    uris = {r["image_id"]: r["image_uri"] for r in out.rows}
    assert uris == {
        "labels/train/a": _uri(root / "images" / "train" / "a.jpg"),
        "labels/val/b": _uri(root / "pics" / "val" / "b.jpg"),
    }


def test_yolo_roboflow_data_yaml_relative_to_its_parent(tmp_path):
    """Roboflow writes train: ../train/images (outside the source): the mirrored images/
    folder of train/labels/ still finds the image."""
    root = tmp_path / "rf"
    _copy(DATUMARO / "roboflow_yolo_data.yaml", root / "data.yaml")
    _copy(DATUMARO / "roboflow_yolo_train_001.txt", root / "train" / "labels" / "train_001.txt")
    image(root / "train" / "images" / "train_001.jpg", 10, 5)
    out = read("yolo", root)
    assert out.rejects == []
    assert [r["raw_label"] for r in out.rows] == ["label_0"]
    assert out.rows[0]["image_uri"] == _uri(root / "train" / "images" / "train_001.jpg")


def test_yolo_image_in_no_candidate_folder_is_missing(tmp_path):
    root = _ultralytics(tmp_path / "y8", "yolov8_data.yaml")
    write(root, {"labels/train/2.txt": "1 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.1 0.1\n"})
    image(root / "elsewhere" / "2.jpg", 30, 20)
    out = read("yolo", root)
    assert _missing(out) == [
        ("labels/train/2", 0, "image_missing"),
        ("labels/train/2", 1, "image_missing"),
    ]
    assert out.rejects[0].detail == (
        "labels/train/2.txt: image '2.<image extension>': not among the source's files "
        "(tried labels/train/, images/train/)"
    )
    assert {r["image_id"] for r in out.rows} == {"labels/train/1"}


def test_yolo_listed_image_that_is_absent_is_missing(tmp_path):
    root = write(
        tmp_path / "src",
        {
            "obj.names": "cat\n",
            "train.txt": "data/obj/a.jpg\ndata/obj/b.jpg\n",
            "obj/a.txt": "0 0.5 0.5 0.1 0.2\n",
            "obj/b.txt": "0 0.5 0.5 0.1 0.2\n",
        },
    )
    image(root / "obj" / "a.jpg", 10, 10)
    out = read("yolo", root)
    assert out.rows[0]["image_uri"] == _uri(root / "obj" / "a.jpg")
    assert _missing(out) == [("obj/b", 0, "image_missing")]
    assert out.rejects[0].detail == (
        "obj/b.txt: image 'data/obj/b.jpg': not among the source's files (tried <root>/, obj/)"
    )


# --- VOC -----------------------------------------------------------------------------------------
_VOC = DATUMARO / "voc_2007_000001.xml"


def test_voc_jpegimages_beside_annotations_below_the_root(tmp_path):
    """VOCdevkit/VOC2007/{Annotations,JPEGImages}: before, <root>/JPEGImages/ was assumed."""
    root = tmp_path / "VOCdevkit"
    _copy(_VOC, root / "VOC2007" / "Annotations" / "2007_000001.xml")
    image(root / "VOC2007" / "JPEGImages" / "2007_000001.jpg", 20, 10)
    out = read("voc", root)
    assert out.rejects == [] and len(out.rows) == 2  # cat, person
    assert {r["image_uri"] for r in out.rows} == {
        _uri(root / "VOC2007" / "JPEGImages" / "2007_000001.jpg")
    }


def test_voc_folder_element_and_own_folder(tmp_path):
    root = tmp_path / "voc"
    _copy(_VOC, root / "Annotations" / "2007_000001.xml")  # <folder>VOC2007</folder>
    image(root / "VOC2007" / "2007_000001.jpg", 20, 10)
    _copy(DATUMARO / "roboflow_voc_train_001.xml", root / "train" / "train_001.xml")
    image(root / "train" / "train_001.jpg", 10, 5)  # beside its xml (Roboflow)
    uris = {r["image_id"]: r["image_uri"] for r in read("voc", root).rows}
    assert uris == {
        "2007_000001": _uri(root / "VOC2007" / "2007_000001.jpg"),
        "train_001": _uri(root / "train" / "train_001.jpg"),
    }


def test_voc_missing_image_names_the_folders_tried(tmp_path):
    root = tmp_path / "voc"
    _copy(_VOC, root / "Annotations" / "2007_000001.xml")
    image(root / "pictures" / "2007_000001.jpg", 20, 10)
    out = read("voc", root)
    assert _missing(out) == [
        ("2007_000001", 0, "image_missing"),
        ("2007_000001", 1, "image_missing"),
    ]
    assert out.rejects[0].detail == (
        "Annotations/2007_000001.xml: image '2007_000001.jpg': not among the source's files "
        "(tried JPEGImages/, VOC2007/, Annotations/, <root>/)"
    )


def test_voc_annotation_only(tmp_path):
    root = tmp_path / "voc"
    _copy(_VOC, root / "Annotations" / "2007_000001.xml")
    out = read("voc", root)
    assert out.rejects == []
    assert {r["image_uri"] for r in out.rows} == {_uri(root / "JPEGImages" / "2007_000001.jpg")}


# --- LabelMe -------------------------------------------------------------------------------------
_MANDRILL = DATA / "labelme-rs" / "Mandrill.json"


def test_labelme_image_path_from_the_json_folder(tmp_path):
    root = tmp_path / "lm"
    _copy(_MANDRILL, root / "ann" / "Mandrill.json")
    image(root / "ann" / "Mandrill.jpg", 256, 256)
    out = read("labelme", root)
    assert out.rejects == []
    # 2 polygons, 2 circles, 1 rectangle; linestrips, a line and points are not boxes
    assert [r["raw_label"] for r in out.rows] == ["Eye", "Eye", "Iris", "Iris", "Nose"]
    assert {r["image_uri"] for r in out.rows} == {_uri(root / "ann" / "Mandrill.jpg")}


@pytest.mark.parametrize(
    "where", ["images/Mandrill.jpg", "ann/Mandrill.png"], ids=["other-folder", "other-extension"]
)
def test_labelme_image_not_found_is_missing(tmp_path, where):
    root = tmp_path / "lm"
    _copy(_MANDRILL, root / "ann" / "Mandrill.json")
    image(root / where, 256, 256)
    out = read("labelme", root)
    assert out.rows == []
    assert _missing(out) == [("ann/Mandrill", i, "image_missing") for i in range(5)]
    assert out.rejects[0].detail == (
        "ann/Mandrill.json: image 'Mandrill.jpg': not among the source's files "
        "(tried ann/, <root>/)"
    )


# --- ODVG and Open Images ------------------------------------------------------------------
def test_odvg_filename_from_root_then_images(tmp_path):
    box = {"detection": {"instances": [{"bbox": [1, 1, 3, 3], "category": "cat"}]}}
    root = write(
        tmp_path / "odvg",
        {
            "train.jsonl": jsonl(
                {"filename": "a.jpg", "height": 8, "width": 8, **box},
                {"filename": "b.jpg", "height": 8, "width": 8, **box},
            )
        },
    )
    image(root / "images" / "a.jpg", 8, 8)
    out = read("odvg", root)
    assert [r["image_uri"] for r in out.rows] == [_uri(root / "images" / "a.jpg")]
    assert _missing(out) == [("b.jpg", 0, "image_missing")]


def test_openimages_image_without_file_or_url_is_missing(tmp_path):
    header = "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsGroupOf\n"
    root = write(
        tmp_path / "oi",
        {
            "boxes-bbox.csv": header
            + "a,x,/m/1,1,0.1,0.5,0.1,0.5,0\nb,x,/m/1,1,0.1,0.5,0.1,0.5,0\n",
            "class-descriptions.csv": "/m/1,Cat\n",
            "images.meta": "a 8 8\nb 8 8\n",
        },
    )
    image(root / "images" / "a.jpg", 8, 8)
    out = read("openimages", root)
    assert [r["image_uri"] for r in out.rows] == [_uri(root / "images" / "a.jpg")]
    assert _missing(out) == [("b", 0, "image_missing")]


# --- cost: one listing per source, no call per image ---------------------------------------------
def _many_voc(root: Path) -> None:
    for i in range(20):
        _copy(_VOC, root / "Annotations" / f"{i:04d}.xml")
    image(root / "JPEGImages" / "2007_000001.jpg", 20, 10)


def _many_labelme(root: Path) -> None:
    doc = json.loads(_MANDRILL.read_text())
    del doc["imagePath"]  # no imagePath: the image with the JSON's stem, any extension
    for i in range(20):
        write(root, {f"{i:04d}.json": json.dumps(doc)})
        image(root / f"{i:04d}.png", 256, 256)


def _many_yolo(root: Path) -> None:
    listed = "".join(f"data/obj/{i:04d}.jpg\n" for i in range(20))
    write(root, {"obj.names": "cat\n", "train.txt": listed})
    for i in range(20):
        write(root, {f"obj/{i:04d}.txt": "0 0.5 0.5 0.1 0.2\n"})
        image(root / "obj" / f"{i:04d}.jpg", 8, 8)


@pytest.mark.parametrize(
    ("fmt", "build"), [("voc", _many_voc), ("labelme", _many_labelme), ("yolo", _many_yolo)]
)
def test_no_exists_call_per_image(tmp_path, monkeypatch, fmt, build):
    """One listing per source (Source.find), then dict lookups: no fs.exists per image."""
    root = tmp_path / fmt
    build(root)
    source = Source("src", str(root))
    calls: list[str] = []
    monkeypatch.setattr(source.fs, "exists", lambda path, **kw: calls.append(path) or True)
    reader = get_reader(fmt)
    context = reader.prepare(source)
    results = [reader.read_file(source, context, path) for path in reader.files(source, context)]
    assert len(results) == 20 and not any(result.rejects for result in results)
    assert calls == []
