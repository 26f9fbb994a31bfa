"""The hf_parquet reader (docs/FORMATS.md, section hf_parquet) on shards laid out as the
``datasets`` library writes them (tests/sources/data/hf_parquet/README.md says how they were
made), and on small shards written here for the defects a real shard rarely shows."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.sources.reading import image, read, write
from vprim.assets.contracts import hashing as H
from vprim.assets.contracts.reasons import Reason
from vprim.assets.sources import ingest
from vprim.assets.sources.readers import detect_format
from vprim.assets.sources.readers.base import Source
from vprim.assets.sources.readers.hfparquet import (
    is_embedded_image_uri,
    iter_embedded_images,
    read_embedded_image,
)

DATA = Path(__file__).parent / "data" / "hf_parquet"
CPPE5, LISTED = DATA / "cppe5", DATA / "listed"
TRAIN = "data/train-00000-of-00001"
TRAIN_URL = f"file://{CPPE5 / TRAIN}.parquet"
IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
#: objects as a struct of lists (``Sequence({...})`` in datasets 2.x)
STRUCT_OF_LISTS = pa.struct(
    [("bbox", pa.list_(pa.list_(pa.float64()))), ("category", pa.list_(pa.int64()))]
)


def _shard(path: Path, columns: dict[str, pa.Array], features: dict | None = None) -> Path:
    """A Parquet shard as ``datasets`` writes it (features in the ``huggingface`` key)."""
    table = pa.table(columns)
    if features is not None:
        table = table.replace_schema_metadata(
            {"huggingface": json.dumps({"info": {"features": features}})}
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def _class_label(names: list[str]) -> dict:
    """The features of ``objects`` with ``category`` a ClassLabel (datasets 2.x layout)."""
    bbox = {"feature": {"dtype": "float64", "_type": "Value"}, "_type": "Sequence"}
    category = {"names": names, "_type": "ClassLabel"}
    return {"objects": {"feature": {"bbox": bbox, "category": category}, "_type": "Sequence"}}


def _sized(objects: list[dict], features: dict | None, tmp_path: Path, **extra) -> Path:
    """A one-file source of rows of size 100x100, objects as a struct of lists."""
    n = len(objects)
    columns = {
        "image": pa.array([{"bytes": None, "path": f"{i}.png"} for i in range(n)], IMAGE_TYPE),
        "width": pa.array([100] * n, pa.int32()),
        "height": pa.array([100] * n, pa.int32()),
        "objects": pa.array(objects, STRUCT_OF_LISTS),
        **extra,
    }
    return _shard(tmp_path / "src" / "train.parquet", columns, features).parent


# --- the cppe-5 shards: datasets 2.x, struct of lists, ClassLabel, embedded PNGs ----------------
def test_cppe5_labels_come_from_the_classlabel_names():
    out = read("hf_parquet", CPPE5)
    assert out.file_errors == {}
    assert out.images == 5  # 4 train rows (one without objects) + 1 test row
    rows = [(r["image_id"], r["box_index"], r["raw_label"]) for r in out.rows]
    assert rows == [
        ("data/test-00000-of-00001:101", 0, "Gloves"),
        (f"{TRAIN}:101", 0, "Coverall"),
        (f"{TRAIN}:101", 1, "Mask"),
        (f"{TRAIN}:102", 0, "Face_Shield"),
        (f"{TRAIN}:102", 1, "Mask"),
        (f"{TRAIN}:103", 0, "Goggles"),
    ]
    # COCO [x, y, w, h]: [10, 20, 20, 10] -> (10, 20, 30, 30); float32 0.5/1.5/6 are exact
    assert out.xyxy()[1:3] == [(10.0, 20.0, 30.0, 30.0), (0.5, 1.5, 6.5, 7.5)]
    assert [r["is_crowd"] for r in out.rows] == [False] * 6
    assert all(r["attributes"] == [] and r["polygon"] is None for r in out.rows)


def test_category_ids_outside_the_classlabel_names_are_unknown():
    """Names 0..4: the ids 5 (one past the last) and -1 have no name."""
    out = read("hf_parquet", CPPE5)
    assert [(r.image_id, r.box_index, r.reason) for r in out.rejects] == [
        (f"{TRAIN}:102", 2, Reason.PARSE_UNKNOWN_CATEGORY),
        (f"{TRAIN}:102", 3, Reason.PARSE_UNKNOWN_CATEGORY),
    ]
    assert "category 5 is not among the 5 ClassLabel names" in out.rejects[0].detail
    assert "row 1 object 2" in out.rejects[0].detail


def test_sizes_come_from_the_columns_else_the_embedded_header():
    out = read("hf_parquet", CPPE5)
    sizes = {r["image_id"]: (r["image_width"], r["image_height"]) for r in out.rows}
    assert sizes[f"{TRAIN}:101"] == (40, 30)  # the columns
    assert sizes[f"{TRAIN}:103"] == (7, 5)  # null columns: the PNG header


def test_embedded_images_name_their_row_across_row_groups():
    out = read("hf_parquet", CPPE5)
    uris = {r["image_id"]: r["image_uri"] for r in out.rows}
    assert uris[f"{TRAIN}:101"] == f"{TRAIN_URL}?row=0"
    assert uris[f"{TRAIN}:103"] == f"{TRAIN_URL}?row=2"  # first row of the second row group


@pytest.mark.parametrize("row", [0, 1, 2, 3])  # rows 2 and 3 are in the second row group
def test_read_embedded_image_returns_the_exact_png_bytes(row):
    expected = (DATA / "pngs" / f"cppe5_train_row{row}.png").read_bytes()
    assert read_embedded_image(f"{TRAIN_URL}?row={row}") == expected


@pytest.mark.parametrize(
    "uri",
    [
        f"{TRAIN_URL}?row=4",  # one past the last row
        f"file://{LISTED / TRAIN}.parquet?row=0",  # a path-only image: no bytes
        f"file://{LISTED}/images/street.png",  # not an embedded-image URI
        f"file://{DATA}/missing.parquet?row=0",
    ],
)
def test_read_embedded_image_is_none_where_there_is_no_such_image(uri):
    assert read_embedded_image(uri) is None


def test_many_embedded_images_read_each_row_group_once(monkeypatch):
    groups: list[int] = []
    original = pq.ParquetFile.read_row_group

    def spy(self, i, columns=None, **kwargs):
        groups.append(i)
        return original(self, i, columns=columns, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", spy)
    uris = [f"{TRAIN_URL}?row={row}" for row in (3, 0, 9, 2, 1)] + ["file:///x.png"]
    got = dict(iter_embedded_images(uris))
    assert groups == [0, 1]  # rows 0-1 in group 0, rows 2-3 in group 1; row 9 is past the end
    for row in range(4):
        expected = (DATA / "pngs" / f"cppe5_train_row{row}.png").read_bytes()
        assert got[f"{TRAIN_URL}?row={row}"] == expected
    assert got[f"{TRAIN_URL}?row=9"] is None and got["file:///x.png"] is None
    assert len(got) == 6


def test_embedded_image_uri_predicate():
    assert is_embedded_image_uri(f"{TRAIN_URL}?row=12")
    assert is_embedded_image_uri("s3://bucket/x/0000.PARQUET?row=0")
    assert not is_embedded_image_uri(TRAIN_URL)
    assert not is_embedded_image_uri(f"{TRAIN_URL}?row=")
    assert not is_embedded_image_uri("file:///a/b.png?row=3")


def test_image_bytes_are_read_only_for_a_row_group_that_needs_a_size(monkeypatch):
    """Train rows 0-1 (group 0) have sizes, row 2 (group 1) has none: one bytes read."""
    calls: list[tuple[int, tuple[str, ...]]] = []
    original = pq.ParquetFile.read_row_group

    def spy(self, i, columns=None, **kwargs):
        calls.append((i, tuple(columns or ())))
        return original(self, i, columns=columns, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", spy)
    read("hf_parquet", CPPE5)
    assert [c for c in calls if "image.bytes" in c[1]] == [(1, ("image.bytes",))]
    assert all("image" not in c[1] for c in calls)  # never the whole image struct


def test_a_single_file_source_keeps_its_image_ids():
    out = read("hf_parquet", CPPE5 / f"{TRAIN}.parquet")
    assert [r["image_id"] for r in out.rows] == ["101", "101", "102", "102", "103"]


# --- the listed shard: datasets 4.x, list of structs, string categories, image paths ---------
def test_list_of_structs_with_string_categories_and_paths():
    out = read("hf_parquet", LISTED)
    listed = f"file://{LISTED}"
    assert [
        (r["image_id"], r["box_index"], r["raw_label"], r["image_uri"], r["is_crowd"])
        for r in out.rows
    ] == [
        (f"{TRAIN}:0", 0, "car", f"{listed}/images/street.png", False),
        (f"{TRAIN}:1", 3, "crowd of people", f"{listed}/{TRAIN}.parquet?row=1", True),
    ]
    # street.png is 50x25 (its header: no size column); the embedded frame.png 6x4
    assert [(r["image_width"], r["image_height"]) for r in out.rows] == [(50, 25), (6, 4)]
    assert out.xyxy() == [(0.0, 0.0, 5.0, 5.0), (0.25, 0.5, 4.25, 3.5)]
    assert out.images == 2


def test_list_of_structs_rejects_bad_bboxes_and_empty_categories():
    out = read("hf_parquet", LISTED)
    assert [(r.image_id, r.box_index, r.reason) for r in out.rejects] == [
        (f"{TRAIN}:1", 0, Reason.PARSE_MALFORMED_BOX),
        (f"{TRAIN}:1", 1, Reason.PARSE_MALFORMED_BOX),
        (f"{TRAIN}:1", 2, Reason.PARSE_UNKNOWN_CATEGORY),
    ]
    assert [r.detail.split(": ", 1)[1] for r in out.rejects] == [
        "bbox of 3 numbers, expected 4",
        "a bbox number is null",
        "empty category",
    ]


# --- defects written here -------------------------------------------------------------------
def test_the_last_classlabel_name_is_known_and_the_next_id_is_not(tmp_path):
    objects = [{"bbox": [[1, 1, 2, 2], [1, 1, 2, 2], [1, 1, 2, 2]], "category": [0, 2, 3]}]
    out = read("hf_parquet", _sized(objects, _class_label(["a", "b", "c"]), tmp_path))
    assert [r["raw_label"] for r in out.rows] == ["a", "c"]
    assert [(r.box_index, r.reason) for r in out.rejects] == [(2, Reason.PARSE_UNKNOWN_CATEGORY)]


def test_integer_categories_without_classlabel_names_are_unknown(tmp_path):
    out = read("hf_parquet", _sized([{"bbox": [[1, 1, 2, 2]], "category": [0]}], None, tmp_path))
    assert out.rows == []
    assert [r.reason for r in out.rejects] == [Reason.PARSE_UNKNOWN_CATEGORY]
    assert "no ClassLabel names" in out.rejects[0].detail


def test_lists_of_unequal_length_in_a_struct_of_lists(tmp_path):
    """Row 0: two bboxes, one category; row 1: one bbox, two categories."""
    objects = [
        {"bbox": [[1, 1, 2, 2], [3, 3, 2, 2]], "category": [1]},
        {"bbox": [[5, 5, 2, 2]], "category": [0, 1]},
    ]
    out = read("hf_parquet", _sized(objects, _class_label(["a", "b"]), tmp_path))
    assert [(r["image_id"], r["box_index"], r["raw_label"]) for r in out.rows] == [
        ("train:0", 0, "b"),
        ("train:1", 0, "a"),
    ]
    assert [(r.image_id, r.box_index, r.reason, r.detail.split(": ")[1]) for r in out.rejects] == [
        ("train:0", 1, Reason.PARSE_UNKNOWN_CATEGORY, "no category"),
        ("train:1", 1, Reason.PARSE_MALFORMED_BOX, "no bbox"),
    ]


def test_a_bbox_described_as_corners_is_read_as_corners(tmp_path):
    """datasets keeps no box convention; a features description that names the corners wins."""
    features = _class_label(["a"])
    features["objects"]["feature"]["bbox"]["description"] = "[x_min, y_min, x_max, y_max]"
    objects = [{"bbox": [[10, 20, 30, 40]], "category": [0]}]
    assert read("hf_parquet", _sized(objects, features, tmp_path)).xyxy() == [(10, 20, 30, 40)]


def test_a_row_without_size_or_readable_image_is_missing_its_size(tmp_path):
    objects = [{"bbox": [[1, 1, 2, 2]], "category": [0]}]
    columns = {
        "image": pa.array([{"bytes": b"not an image", "path": None}], IMAGE_TYPE),
        "objects": pa.array(objects, STRUCT_OF_LISTS),
    }
    root = _shard(tmp_path / "src" / "a.parquet", columns, _class_label(["a"])).parent
    out = read("hf_parquet", root)
    assert [(r.image_id, r.reason) for r in out.rejects] == [
        ("a:0", Reason.PARSE_MISSING_IMAGE_SIZE)
    ]


def test_image_path_strings_resolve_like_other_formats(tmp_path):
    """A string ``image`` column: relative paths in the root, remote URLs as they are,
    absolute paths rejected; sizes from each image's header."""
    image(tmp_path / "src" / "img" / "a.png", 20, 10)
    objects = [{"bbox": [[1, 1, 2, 2]], "category": [0]}] * 3
    paths = ["img/a.png", "synthetic://s/x?w=30&h=15", "/etc/passwd"]
    columns = {"image": pa.array(paths), "objects": pa.array(objects, STRUCT_OF_LISTS)}
    root = _shard(tmp_path / "src" / "a.parquet", columns, _class_label(["a"])).parent
    out = read("hf_parquet", root)
    assert [(r["image_uri"], r["image_width"], r["image_height"]) for r in out.rows] == [
        (f"file://{root}/img/a.png", 20, 10),
        ("synthetic://s/x?w=30&h=15", 30, 15),
    ]
    assert [(r.image_id, r.reason) for r in out.rejects] == [("a:2", Reason.PARSE_PATH_ESCAPE)]


def test_a_shard_without_an_image_column_has_its_images_missing(tmp_path):
    objects = [{"bbox": [[1, 1, 2, 2]], "category": [0]}]
    columns = {"objects": pa.array(objects, STRUCT_OF_LISTS)}
    root = _shard(tmp_path / "src" / "a.parquet", columns, _class_label(["a"])).parent
    reader_source = Source("s", str(root))
    from vprim.assets.sources.readers import READERS

    reader = READERS["hf_parquet"]
    context = reader.prepare(reader_source)
    result = reader.read_file(reader_source, context, f"{root}/a.parquet")
    assert result.num_boxes == 0
    assert [(r.box_index, r.reason) for r in result.rejects] == [(0, Reason.IMAGE_MISSING)]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", Reason.PARSE_EMPTY_FILE),
        (b"PAR1 this is not a parquet file", Reason.PARSE_INVALID_CSV),
        ("table_without_objects", Reason.PARSE_INVALID_CSV),
        ("zero_rows", Reason.PARSE_EMPTY_FILE),
    ],
)
def test_files_that_cannot_be_read(tmp_path, content, reason):
    path = tmp_path / "src" / "bad.parquet"
    if content == "table_without_objects":
        _shard(path, {"text": pa.array(["a caption"])})
    elif content == "zero_rows":
        _shard(path, {"objects": pa.array([], STRUCT_OF_LISTS)}, _class_label(["a"]))
    else:
        write(tmp_path / "src", {"bad.parquet": content})
    out = read("hf_parquet", tmp_path / "src")
    assert out.file_errors == {"bad.parquet": reason}


# --- detection and ingest ---------------------------------------------------------------------
def test_format_auto_detects_a_detection_shard_and_nothing_else(tmp_path):
    assert detect_format(Source("s", str(CPPE5))) == "hf_parquet"
    assert detect_format(Source("s", str(LISTED))) == "hf_parquet"
    # a Parquet table with no objects.bbox (a captions dataset), and junk named .parquet
    _shard(tmp_path / "captions" / "train.parquet", {"text": pa.array(["a dog"])})
    write(tmp_path / "captions", {"junk.parquet": b"\x00" * 64})
    assert detect_format(Source("s", str(tmp_path / "captions"))) is None


def test_read_source_counts_every_box_once():
    out = ingest.read_source("cppe5", str(CPPE5), "auto")
    table = pa.concat_tables(out.boxes)
    assert table.num_rows == 6
    assert set(table["format"].to_pylist()) == {"hf_parquet"}
    assert sorted(r["reason"] for r in out.rejects) == ["parse_unknown_category"] * 2
    stats = out.stats
    assert stats["format"] == "hf_parquet"
    assert (stats["files"], stats["images"], stats["boxes_seen"]) == (2, 5, 8)
    assert stats["boxes_seen"] == stats["boxes_kept"] + stats["boxes_rejected"]
    assert (stats["boxes_kept"], stats["boxes_rejected"]) == (6, 2)
    first = H.instance_ids("cppe5", ["data/test-00000-of-00001:101"], [0]).tolist()
    assert table["instance_id"].to_pylist()[:1] == first
