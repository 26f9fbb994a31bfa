"""What people download: zip archives, .gz/.zst annotation files, and symlinks that point out.

The fixtures under ``data/archives`` are real files: the Roboflow-layout COCO export of
datumaro's test assets, zipped with Info-ZIP's ``zip`` (json deflated, jpgs stored, as
Roboflow ships them), and datumaro's COCO and Open Images files compressed with the
``gzip`` and ``zstd`` command-line tools (data/archives/README.md). Expected values are
written out by hand from those files.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import fsspec
import pytest

from vprim.assets.contracts.reasons import Reason
from vprim.assets.sources import ingest
from vprim.assets.sources.readers.base import Source, compression_of, has_suffix, plain_name

DATA = Path(__file__).parent / "data" / "archives"
ROBOFLOW_ZIP = DATA / "roboflow_coco.zip"
JPEG = DATA / "roboflow_coco" / "train" / "train_001.jpg"  # a real 10x5 JPEG

#: the boxes of the Roboflow export, read by hand from its two _annotations.coco.json files:
#: (image_id, file name, label, x0, y0, x1, y1); bbox [x, y, w, h] -> x + w, y + h
ROBOFLOW_BOXES = [
    ("train/_annotations.coco:1", "train/train_001.jpg", "label_0", 2.0, 1.0, 5.0, 2.0),
    ("train/_annotations.coco:2", "train/train_002.jpg", "label_1", 0.0, 0.0, 2.0, 4.0),
    ("val/_annotations.coco:1", "val/val_001.jpg", "label_0", 0.0, 0.0, 1.0, 2.0),
    ("val/_annotations.coco:1", "val/val_001.jpg", "label_1", 0.0, 0.0, 9.0, 1.0),
]


def _rows(out: ingest.SourceOutcome) -> list[dict]:
    return [row for table in out.boxes for row in table.to_pylist()]


def _boxes(out: ingest.SourceOutcome) -> list[tuple]:
    return [(r["image_id"], r["raw_label"], r["x0"], r["y0"], r["x1"], r["y1"]) for r in _rows(out)]


def _ledger(out: ingest.SourceOutcome) -> list[tuple[str, str | None]]:
    """(reason, instance_id is None) of every ledger row."""
    return [(r["reason"], r["instance_id"] is None) for r in out.rejects]


# --- zip archives ---------------------------------------------------------------------------
def test_roboflow_zip_is_read_in_place_like_its_folder():
    zipped = ingest.read_source("rf", str(ROBOFLOW_ZIP), "coco")
    folder = ingest.read_source("rf", str(DATA / "roboflow_coco"), "coco")
    expected = [(i, label, *xyxy) for i, _, label, *xyxy in ROBOFLOW_BOXES]
    assert _boxes(zipped) == expected
    assert _boxes(folder) == expected
    assert zipped.rejects == []
    assert zipped.stats["files"] == 2 and zipped.stats["images"] == 3
    # the images are found inside the archive, and their URIs point into it
    outer = f"::file://{ROBOFLOW_ZIP.resolve()}"
    assert [r["image_uri"] for r in _rows(zipped)] == [
        f"zip://{name}{outer}" for _, name, *_ in ROBOFLOW_BOXES
    ]
    assert [r["image_width"] for r in _rows(zipped)] == [10, 10, 10, 10]


def test_an_image_uri_inside_a_zip_opens_with_fsspec():
    out = ingest.read_source("rf", str(ROBOFLOW_ZIP), "coco")
    uri = _rows(out)[0]["image_uri"]
    expected = JPEG.read_bytes()
    with fsspec.open(uri) as f:
        assert f.read() == expected
    # fsspec's documented rule: keep the OpenFile while its file is used (the archive
    # closes with it), so `fsspec.open(uri).open()` on one line is not enough
    opened = fsspec.open(uri)
    assert opened.open().read() == expected
    opened.close()


def test_a_zip_with_one_top_folder_is_rooted_there_and_detected():
    out = ingest.read_source("kaggle", str(DATA / "roboflow_coco_top.zip"), "auto")
    assert out.stats["format"] == "coco"
    assert _boxes(out) == [(i, label, *xyxy) for i, _, label, *xyxy in ROBOFLOW_BOXES]
    assert _rows(out)[0]["image_uri"].startswith("zip://roboflow_coco/train/train_001.jpg::")


def test_members_that_leave_the_archive_are_escapes_and_never_read(tmp_path):
    coco = (DATA / "roboflow_coco" / "train" / "_annotations.coco.json").read_bytes()
    secret = coco.replace(b'"label_0"', b'"secret"')
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("train/_annotations.coco.json", coco)
        for name in ("train/train_001.jpg", "train/train_002.jpg"):
            z.writestr(name, (DATA / "roboflow_coco" / name).read_bytes())
        z.writestr("../evil.json", secret)
        z.writestr("/etc/abs.json", secret)
        z.writestr("train/../../up.json", secret)
        z.writestr("__MACOSX/train/._annotations.coco.json", b"\x00\x05\x16\x07 resource fork")
    out = ingest.read_source("zip", str(archive), "coco")
    assert {r["raw_label"] for r in _rows(out)} == {"label_0", "label_1"}
    escapes = [r for r in out.rejects if r["reason"] == Reason.PARSE_PATH_ESCAPE]
    assert sorted(r["detail"].split("'")[1] for r in escapes) == [
        "../evil.json",
        "/etc/abs.json",
        "train/../../up.json",
    ]
    assert all(r["instance_id"] is None for r in escapes)
    assert len(out.rejects) == 3  # the __MACOSX resource fork is not a file of the dataset


def test_a_file_named_zip_that_is_no_archive_is_one_source_row(tmp_path):
    broken = tmp_path / "download.zip"
    broken.write_text("<html>rate limited</html>")
    out = ingest.read_source("broken", str(broken), "coco")
    assert _ledger(out) == [(Reason.PARSE_UNKNOWN_FORMAT, True)]
    assert "is not a readable zip archive" in out.rejects[0]["detail"]
    assert out.boxes == []


def test_zip_members_are_listed_once_per_source(monkeypatch):
    calls = []
    real = zipfile.ZipFile.infolist
    monkeypatch.setattr(zipfile.ZipFile, "infolist", lambda z: calls.append(1) or real(z))
    out = ingest.read_source("rf", str(ROBOFLOW_ZIP), "auto")
    assert len(_rows(out)) == 4
    # vprim's own listing and fsspec's directory cache; neither again per file or image
    assert len(calls) <= 2


def test_source_find_gives_absolute_paths_of_the_archive():
    source = Source("rf", str(ROBOFLOW_ZIP))
    assert source.root == ""
    assert source.find() == [
        "train/_annotations.coco.json",
        "train/train_001.jpg",
        "train/train_002.jpg",
        "val/_annotations.coco.json",
        "val/val_001.jpg",
    ]
    with source.fs.open(source.find()[1]) as f:
        assert f.read(3) == b"\xff\xd8\xff"  # a JPEG's first bytes
    assert source.relpath("train/train_001.jpg") == "train/train_001.jpg"


def test_a_chained_zip_url_names_one_folder_of_an_archive():
    uri = f"zip://val::file://{ROBOFLOW_ZIP.resolve()}"
    out = ingest.read_source("val", uri, "coco")
    assert _boxes(out) == [
        ("1", "label_0", 0.0, 0.0, 1.0, 2.0),  # one COCO file: ids without the file's name
        ("1", "label_1", 0.0, 0.0, 9.0, 1.0),
    ]
    assert _rows(out)[0]["image_uri"] == f"zip://val/val_001.jpg::file://{ROBOFLOW_ZIP.resolve()}"


# --- compressed annotation files ------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "codec", "plain"),
    [
        ("a/instances_val.json.gz", "gzip", "a/instances_val.json"),
        ("labels.CSV.ZST", "zstd", "labels.CSV"),
        ("data.jsonl", None, "data.jsonl"),
        ("archive.tar", None, "archive.tar"),
        ("x.gzip", None, "x.gzip"),  # not a suffix we read
    ],
)
def test_compression_suffixes(path, codec, plain):
    assert compression_of(path) == codec
    assert plain_name(path) == plain


def test_a_compressed_file_has_its_plain_suffix():
    assert has_suffix("a/instances.json.gz", (".json",))
    assert has_suffix("A/LABELS.JSONL.ZST", (".jsonl",))
    assert not has_suffix("a/instances.json.gz", (".jsonl",))
    assert not has_suffix("a/b.gz", (".json",))


def test_a_gz_coco_file_is_a_source_of_its_own():
    # the bug: "no coco annotation files in <that existing file>"
    uri = DATA / "coco_compressed" / "annotations" / "instances_val.json.gz"
    out = ingest.read_source("gz", str(uri), "coco")
    assert out.rejects == []
    assert _boxes(out) == [("40", "a", 0.0, 0.0, 1.0, 2.0), ("40", "b", 0.0, 0.0, 1.0, 9.0)]
    assert [r["is_crowd"] for r in _rows(out)] == [False, True]


def test_gz_and_zst_coco_files_in_a_folder_are_detected_and_read():
    out = ingest.read_source("cc", str(DATA / "coco_compressed"), "auto")
    assert out.stats["format"] == "coco"
    assert out.rejects == []
    # two files: ids carry the file's path without .json and without the compression suffix
    assert _boxes(out) == [
        ("annotations/instances_train:5", "b", 2.0, 2.0, 5.0, 3.0),
        ("annotations/instances_val:40", "a", 0.0, 0.0, 1.0, 2.0),
        ("annotations/instances_val:40", "b", 0.0, 0.0, 1.0, 9.0),
    ]


def test_gz_and_zst_odvg_files_are_detected_and_streamed():
    out = ingest.read_source("od", str(DATA / "odvg_compressed"), "auto")
    assert out.stats["format"] == "odvg"
    assert out.rejects == []
    assert _boxes(out) == [
        ("000000391895.jpg", "motorcycle", 359.17, 146.17, 471.62, 359.74),
        ("000000391895.jpg", "person", 339.88, 22.16, 493.76, 322.89),
        ("000000522418.jpg", "person", 382.48, 0.0, 639.28, 474.31),
        ("000000000139.jpg", "person", 236.98, 142.51, 261.68, 212.01),
        ("000000000139.jpg", "chair", 7.03, 167.76, 156.35, 262.63),
    ]


def test_gz_and_zst_open_images_csvs_are_detected_and_read():
    out = ingest.read_source("oi", str(DATA / "openimages_compressed"), "auto")
    assert out.stats["format"] == "openimages"
    assert out.rejects == []
    # b: XMin 0.2, XMax 1, YMin 0.3, YMax 0.5; images.meta says height 2, width 8
    assert _boxes(out) == [("b", "Generic label #0", 1.6, 0.6, 8.0, 1.0)]


def test_corrupt_compressed_files_are_file_rows_not_tracebacks(tmp_path):
    out = ingest.read_source("bad", str(DATA / "corrupt_gz"), "coco")
    assert _ledger(out) == [(Reason.PARSE_BAD_ENCODING, True)] * 2
    truncated, not_gzip = (r["detail"] for r in out.rejects)
    assert truncated.startswith("instances_val.json.gz is not valid gzip data (")
    assert not_gzip.startswith("not_gzip.json.gz is not valid gzip data (Not a gzipped file")
    assert out.stats["files"] == 2 and out.stats["files_rejected"] == 2


def test_a_truncated_zst_jsonl_is_one_file_row(tmp_path):
    whole = (DATA / "odvg_compressed" / "val.jsonl.zst").read_bytes()
    (tmp_path / "cut.jsonl.zst").write_bytes(whole[: len(whole) // 2])
    good = (DATA / "odvg_compressed" / "train.jsonl.gz").read_bytes()
    (tmp_path / "ok.jsonl.gz").write_bytes(good)
    out = ingest.read_source("cut", str(tmp_path), "odvg")
    assert _ledger(out) == [(Reason.PARSE_BAD_ENCODING, True)]
    assert out.rejects[0]["detail"].startswith("cut.jsonl.zst is not valid zstd data (")
    assert len(_rows(out)) == 3  # the good file goes on


# --- symlinks -------------------------------------------------------------------------------
# the size of JPEG (10x5): the image step compares the annotation with the file
def _coco(label: str, file_name: str = "a.jpg") -> str:
    return json.dumps(
        {
            "images": [{"id": 1, "file_name": file_name, "width": 10, "height": 5}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2]}],
            "categories": [{"id": 1, "name": label}],
        }
    )


@pytest.fixture
def linked(tmp_path) -> tuple[Path, Path]:
    """A source folder ``src`` holding one COCO file, and a folder ``outside`` beside it."""
    root, outside = tmp_path / "src", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "instances.json").write_text(_coco("mine"))
    (outside / "secret.json").write_text(_coco("secret"))
    return root, outside


def test_a_file_link_out_of_the_source_is_an_escape_row(linked):
    root, outside = linked
    os.symlink("../outside/secret.json", root / "evil.json")
    out = ingest.read_source("s", str(root), "coco")
    assert {r["raw_label"] for r in _rows(out)} == {"mine"}
    assert _ledger(out) == [(Reason.PARSE_PATH_ESCAPE, True)]
    row = out.rejects[0]
    assert row["uri"] == f"file://{root}/evil.json"
    target = outside.resolve() / "secret.json"
    assert row["detail"] == f"evil.json is a link to {target}, outside the source"


def test_a_folder_link_out_of_the_source_is_an_escape_row(linked):
    root, outside = linked
    os.symlink(outside, root / "more")
    out = ingest.read_source("s", str(root), "coco")
    assert {r["raw_label"] for r in _rows(out)} == {"mine"}
    assert _ledger(out) == [(Reason.PARSE_PATH_ESCAPE, True)]
    assert out.rejects[0]["detail"].startswith(f"more is a link to {outside.resolve()}")


def test_links_that_stay_inside_the_source_are_read(linked):
    root, _ = linked
    (root / "store").mkdir()
    (root / "store" / "other.data").write_text(_coco("linked"))
    os.symlink("store/other.data", root / "other.json")
    os.symlink("store", root / "alias")  # a folder link inside: not walked twice
    out = ingest.read_source("s", str(root), "coco")
    assert out.rejects == []
    assert sorted(r["raw_label"] for r in _rows(out)) == ["linked", "mine"]


def test_an_image_reached_through_a_link_out_is_a_box_escape(linked):
    root, outside = linked
    (outside / "a.jpg").write_bytes(JPEG.read_bytes())
    os.symlink(outside, root / "images")
    out = ingest.read_source("s", str(root / "instances.json"), "coco")
    assert _rows(out) == []
    reasons = sorted(_ledger(out))
    assert reasons == [(Reason.PARSE_PATH_ESCAPE, False), (Reason.PARSE_PATH_ESCAPE, True)]
    box = next(r for r in out.rejects if r["instance_id"] is not None)
    assert "leads through the link images to" in box["detail"]


def test_an_image_link_that_stays_inside_is_found(linked):
    root, _ = linked
    (root / "store").mkdir()
    (root / "store" / "a.jpg").write_bytes(JPEG.read_bytes())
    (root / "images").mkdir()
    os.symlink("../store/a.jpg", root / "images" / "a.jpg")
    out = ingest.read_source("s", str(root), "coco")
    assert out.rejects == []
    assert [r["image_uri"] for r in _rows(out)] == [f"file://{root}/images/a.jpg"]


def test_a_compressed_file_inside_a_zip_is_read(tmp_path):
    archive = tmp_path / "export.zip"
    gz = DATA / "coco_compressed" / "annotations" / "instances_val.json.gz"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(gz, "dataset/annotations/instances_val.json.gz")
    out = ingest.read_source("zgz", str(archive), "auto")
    assert out.stats["format"] == "coco"
    assert _boxes(out) == [("40", "a", 0.0, 0.0, 1.0, 2.0), ("40", "b", 0.0, 0.0, 1.0, 9.0)]


# --- the bench --------------------------------------------------------------------------------
def test_bench_reads_the_same_boxes_zipped_and_unzipped(tmp_path):
    from vprim.assets.sources.bench_archives import bench_zip_vs_folder

    figures = bench_zip_vs_folder(tmp_path, n_images=10)
    assert figures["images"] == 10 and figures["boxes"] == 30  # 3 boxes an image
    with zipfile.ZipFile(tmp_path / "archives-10" / "export.zip") as z:
        kinds = {i.filename.rsplit(".", 1)[-1]: i.compress_type for i in z.infolist()}
    assert kinds == {"json": zipfile.ZIP_DEFLATED, "jpg": zipfile.ZIP_STORED}
    assert figures["zip_seconds"] > 0 and figures["folder_seconds"] > 0
