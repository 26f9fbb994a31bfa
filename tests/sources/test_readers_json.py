"""The JSON readers besides COCO (test_coco.py): ODVG (JSON Lines) and LabelMe."""

from __future__ import annotations

import json

import pytest

from tests.sources.reading import (
    counts,
    image,
    ingested,
    jsonl,
    labelme,
    read,
    shape,
    synthetic,
    write,
)
from vprim.assets.contracts.reasons import Reason
from vprim.assets.sources.readers import get_reader
from vprim.assets.sources.readers.base import ParseError, Source


# --- ODVG ------------------------------------------------------------------------------------
def test_odvg_detection_grounding_and_label_map(tmp_path):
    detection = {
        "filename": "a.jpg",
        "height": 50,
        "width": 100,
        "detection": {
            "instances": [
                {"bbox": [1, 2, 30, 40], "label": 0, "category": "dog"},  # category wins
                {"bbox": [5, 5, 1, 1], "label": 1},  # label via label_map.json; inverted kept
            ]
        },
    }
    grounding = {
        "filename": synthetic("g", 320, 240),  # no width/height: the URI carries them
        "grounding": {
            "caption": "a red ball",
            "regions": [{"bbox": [10, 10, 20, 20], "phrase": "red ball"}],
        },
    }
    root = write(
        tmp_path / "src",
        {"label_map.json": '{"0": "dog", "1": "cat"}', "train.jsonl": jsonl(detection, grounding)},
    )
    out = read("odvg", root)
    assert out.rejects == [] and out.record_errors == [] and out.images == 2
    got = [(r["image_id"], r["box_index"], r["raw_label"]) for r in out.rows]
    g = synthetic("g", 320, 240)
    assert got == [("a.jpg", 0, "dog"), ("a.jpg", 1, "cat"), (g, 0, "red ball")]
    assert out.xyxy() == [(1.0, 2.0, 30.0, 40.0), (5.0, 5.0, 1.0, 1.0), (10.0, 10.0, 20.0, 20.0)]
    assert out.rows[0]["image_uri"].endswith("src/a.jpg")
    assert (out.rows[0]["image_width"], out.rows[0]["image_height"]) == (100, 50)
    assert (out.rows[2]["image_width"], out.rows[2]["image_height"]) == (320, 240)


def test_odvg_bad_line_in_the_middle(tmp_path):
    good = {"filename": "a.jpg", "height": 10, "width": 10, "detection": {"instances": []}}
    box = {"bbox": [1, 1, 2, 2], "category": "x"}
    lines = jsonl(
        {**good, "detection": {"instances": [box]}},
        '{"filename": "b.jpg", "detection": ',  # line 2: truncated JSON
        "",  # line 3: blank, skipped
        '"just a string"',  # line 4: valid JSON, not a record
        {**good, "filename": "c.jpg", "detection": {"instances": [box, box]}},
    )
    out = read("odvg", write(tmp_path / "src", {"a.jsonl": lines}))
    assert [(e.reason, e.detail.split(":")[0]) for e in out.record_errors] == [
        (Reason.PARSE_INVALID_JSON, "a.jsonl line 2"),
        (Reason.PARSE_INVALID_JSON, "a.jsonl line 4"),
    ]
    assert [(r["image_id"], r["box_index"]) for r in out.rows] == [
        ("a.jpg", 0),
        ("c.jpg", 0),
        ("c.jpg", 1),
    ]
    assert out.images == 2


def test_odvg_same_image_on_two_lines_continues_box_index(tmp_path):
    rec = {"filename": "a.jpg", "height": 5, "width": 5}
    rec["detection"] = {"instances": [{"bbox": [0, 0, 1, 1], "category": "x"}]}
    out = read("odvg", write(tmp_path / "src", {"a.jsonl": jsonl(rec, rec)}))
    assert [r["box_index"] for r in out.rows] == [0, 1] and out.images == 1


def test_odvg_box_rejects_and_nonfinite(tmp_path):
    instances = [
        {"bbox": [0, 0, 1, 1], "category": "ok"},  # 0
        {"bbox": [0, 0, 1], "category": "x"},  # 1: three values: malformed
        {"bbox": [0, "a", 1, 1], "category": "x"},  # 2: not a number: malformed
        {"category": "x"},  # 3: no bbox: malformed
        {"bbox": [0, 0, 1, 1], "label": 9},  # 4: label 9 not in label_map: unknown category
        {"bbox": [0, 0, 1, 1]},  # 5: neither category nor label: malformed
        "not an object",  # 6: malformed
        {"bbox": ["nan", "inf", 1, 1], "category": "strings"},  # 7: "nan"/"inf" are floats
        {"bbox": [True, 0, 1, 1], "category": "x"},  # 8: a boolean is no number: malformed
        {"bbox": [10**400, 0, 1, 1], "category": "huge"},  # 9: beyond float range: +inf
    ]
    line = json.dumps(
        {"filename": "a.jpg", "width": 4, "height": 4, "detection": {"instances": instances}}
    )
    line2 = '{"filename": "b.jpg", "width": 4, "height": 4, "detection": {"instances": '
    line2 += '[{"bbox": [NaN, Infinity, -Infinity, 1], "category": "tokens"}]}}'  # JSON NaN tokens
    out = read("odvg", write(tmp_path / "src", {"a.jsonl": line + "\n" + line2 + "\n"}))
    assert {r.box_index: r.reason for r in out.rejects} == {
        1: Reason.PARSE_MALFORMED_BOX,
        2: Reason.PARSE_MALFORMED_BOX,
        3: Reason.PARSE_MALFORMED_BOX,
        4: Reason.PARSE_UNKNOWN_CATEGORY,
        5: Reason.PARSE_MALFORMED_BOX,
        6: Reason.PARSE_MALFORMED_BOX,
        8: Reason.PARSE_MALFORMED_BOX,
    }
    rows = {r["raw_label"]: r for r in out.rows}
    assert set(rows) == {"ok", "strings", "tokens", "huge"}
    assert rows["huge"]["x0"] == float("inf") and rows["huge"]["box_index"] == 9
    assert rows["strings"]["x0"] != rows["strings"]["x0"] and rows["strings"]["y0"] == float("inf")
    assert rows["tokens"]["x1"] == float("-inf")


def test_odvg_missing_size_and_path_escape(tmp_path):
    box = {"bbox": [0, 0, 1, 1], "category": "x"}
    records = jsonl(
        {"filename": "missing.jpg", "detection": {"instances": [box, box]}},  # no size, no image
        {"filename": "../../etc/passwd", "detection": {"instances": [box]}},  # leaves the root
        {"filename": "/abs.jpg", "grounding": {"regions": []}},  # refused, no boxes: record error
    )
    out = read("odvg", write(tmp_path / "src", {"a.jsonl": records}))
    assert out.reasons == [Reason.PARSE_MISSING_IMAGE_SIZE] * 2 + [Reason.PARSE_PATH_ESCAPE]
    assert [e.reason for e in out.record_errors] == [Reason.PARSE_PATH_ESCAPE]


def test_odvg_broken_label_map_rejects_the_source(tmp_path):
    root = write(tmp_path / "src", {"label_map.json": "{1: ", "a.jsonl": "{}\n"})
    with pytest.raises(ParseError) as err:
        get_reader("odvg").prepare(Source("src", str(root)))
    assert err.value.reason == Reason.PARSE_INVALID_JSON


# --- LabelMe ---------------------------------------------------------------------------------
def test_labelme_shapes(tmp_path):
    shapes = [
        shape("rectangle", [[30, 40], [10, 20]]),  # corners in any order: min/max
        shape("point", [[1, 1]]),  # not a box, not counted
        shape("polygon", [[0, 0], [10, 0], [5, 8]], label="tri"),  # bbox + polygon kept
        shape("line", [[0, 0], [3, 3]]),  # not a box
        shape("circle", [[50, 50], [53, 54]], label="ball"),  # centre and rim: radius 5
        shape(None, [[1, 2], [3, 4], [2, 9]], label="default"),  # no shape_type: polygon
        shape("linestrip", [[0, 0], [1, 1], [2, 2]]),  # not a box
        shape(
            "rectangle",
            [[1, 1], [2, 2]],
            flags={"occluded": True, "truncated": False},
            attributes={"color": "red", "count": 3},
            group_id=7,
        ),
    ]
    root = write(
        tmp_path / "src",
        {"ann/x.json": labelme(shapes, imagePath="x.jpg", imageWidth=100, imageHeight=80)},
    )
    out = read("labelme", root)
    assert out.rejects == [] and out.images == 1
    rows = out.rows
    assert [r["box_index"] for r in rows] == [0, 1, 2, 3, 4]
    assert [r["image_id"] for r in rows] == ["ann/x"] * 5
    assert rows[0]["image_uri"].endswith("src/ann/x.jpg")  # imagePath from the JSON's folder
    assert out.xyxy()[:3] == [
        (10.0, 20.0, 30.0, 40.0),
        (0.0, 0.0, 10.0, 8.0),
        (45.0, 45.0, 55.0, 55.0),
    ]
    assert rows[1]["polygon"] == [[0.0, 0.0, 10.0, 0.0, 5.0, 8.0]]
    assert rows[0]["polygon"] is None and rows[2]["polygon"] is None
    assert (rows[3]["raw_label"], out.xyxy()[3]) == ("default", (1.0, 2.0, 3.0, 9.0))
    assert dict(rows[4]["attributes"]) == {
        "flag:occluded": "true",
        "color": "red",
        "count": "3",
        "group_id": "7",
    }
    assert (rows[0]["image_width"], rows[0]["image_height"]) == (100, 80)


def test_labelme_size_from_image_and_synthetic(tmp_path):
    root = tmp_path / "src"
    image(root / "images" / "a.png", 33, 22)
    write(
        root,
        {
            # no imageWidth/imageHeight: the header of ../images/a.png (inside the root)
            "ann/a.json": labelme(
                [shape("rectangle", [[0, 0], [1, 1]])], imagePath="..\\images\\a.png"
            ),
            "b.json": labelme(
                [shape("rectangle", [[0, 0], [1, 1]])], imagePath=synthetic("b", 7, 9)
            ),
        },
    )
    rows = {r["image_id"]: r for r in read("labelme", root).rows}
    assert (rows["ann/a"]["image_width"], rows["ann/a"]["image_height"]) == (33, 22)
    assert rows["ann/a"]["image_uri"].endswith("src/images/a.png")
    assert (rows["b"]["image_width"], rows["b"]["image_height"]) == (7, 9)


def test_labelme_box_rejects(tmp_path):
    shapes = [
        shape("rectangle", [[0, 0], [1, 1]]),  # 0: fine
        shape("rectangle", [[0, 0], [1, 1], [2, 2]]),  # 1: three corners: malformed
        shape("polygon", [[0, "a"], [1, 1], [2, 2]]),  # 2: not a number: malformed
        shape("polygon", []),  # 3: no points: malformed
        shape("ellipse", [[0, 0], [1, 1]]),  # 4: a shape type we do not know: malformed
        shape("rectangle", [[0, 0], [1, 1]], label=None),  # 5: no label: malformed
        "not a shape",  # 6: malformed
        shape("circle", [[0, 0]]),  # 7: a circle without a rim point: malformed
        shape("polygon", [["nan", 1], [2, "inf"], [3, 3]]),  # 8: non-finite: read as floats
    ]
    root = write(tmp_path / "src", {"a.json": labelme(shapes, imageWidth=5, imageHeight=5)})
    out = read("labelme", root)
    assert {r.box_index: r.reason for r in out.rejects} == {
        i: Reason.PARSE_MALFORMED_BOX for i in (1, 2, 3, 4, 5, 6, 7)
    }
    assert [r["box_index"] for r in out.rows] == [0, 8]
    x0, _, _, y1 = out.xyxy()[1]
    assert x0 != x0 and y1 == float("inf")  # NaN propagates through min, never dropped


def test_labelme_missing_size_and_path_escape(tmp_path):
    rect = shape("rectangle", [[0, 0], [1, 1]])
    files = {
        "nosize.json": labelme([rect, rect], imagePath="missing.jpg"),  # no size, no image
        "escape.json": labelme([rect], imagePath="../outside.jpg", imageWidth=4, imageHeight=4),
        "escape2.json": labelme([], imagePath="/etc/passwd"),  # no boxes: a record error
        "other.json": json.dumps({"categories": ["dog"]}),  # not LabelMe: ignored, not counted
    }
    out = read("labelme", write(tmp_path / "src", files))
    assert out.reasons == [Reason.PARSE_MISSING_IMAGE_SIZE] * 2 + [Reason.PARSE_PATH_ESCAPE]
    assert [e.reason for e in out.record_errors] == [Reason.PARSE_PATH_ESCAPE]
    assert out.images == 2 and out.file_errors == {}


def test_labelme_quirky_files_through_ingest(tmp_path):
    """Typed-decodable files and the others (numeric strings, booleans, not JSON) in one
    source: the rows, the ledger and the counts."""

    def doc(shapes: list, **extra: object) -> str:
        body = {"imagePath": synthetic("x", 640, 480), "imageWidth": 640, "imageHeight": 480}
        return json.dumps({"shapes": shapes, **body, **extra})

    rect = {"label": "cat", "points": [[30, 40], [10, 20]], "shape_type": "rectangle"}
    files = {
        "a.json": doc(
            [
                rect,
                {"label": 5, "points": [[1, 2], [3, 4], [2, 9]], "shape_type": "polygon"},
                {"label": "dot", "points": [[1, 2]], "shape_type": "point"},  # not a box
                {"label": "sun", "points": [[50, 50], [53, 54]], "shape_type": "circle"},
                {"label": "blob", "points": [[1, 2], [5, 6]], "group_id": 3, "flags": {"a": True}},
            ]
        ),
        "b.json": doc([{**rect, "points": [["10", 20], [30, 40]]}]),  # a numeric string
        "c.json": doc([{**rect, "shape_type": "mask"}]),  # a shape type we do not know
        "d.json": doc([rect], imageWidth=None),  # no width: the synthetic URI's size
        "e.json": doc([{**rect, "points": [[1, 2]]}]),  # a one-point rectangle
        "f.json": doc([]),  # an image without boxes
        "g.json": json.dumps({"classes": ["cat"]}),  # not an annotation: not counted
        "h.json": doc([{**rect, "label": True}]),  # a boolean is no label
        "i.json": "{not json",
    }
    rows, ledger, stats = ingested("labelme", write(tmp_path / "src", files))
    got = [(r["image_id"], r["box_index"], r["raw_label"]) for r in rows]
    assert got == [
        ("a", 0, "cat"),
        ("a", 1, "5"),  # an integer label, as its digits
        ("a", 2, "sun"),  # the point shape took no index
        ("a", 3, "blob"),
        ("b", 0, "cat"),
        ("d", 0, "cat"),
    ]
    assert [(r["x0"], r["y0"], r["x1"], r["y1"]) for r in rows] == [
        (10.0, 20.0, 30.0, 40.0),  # a rectangle's corners in any order
        (1.0, 2.0, 3.0, 9.0),
        (45.0, 45.0, 55.0, 55.0),  # a circle: centre +- radius 5
        (1.0, 2.0, 5.0, 6.0),  # no shape_type: a polygon
        (10.0, 20.0, 30.0, 40.0),
        (10.0, 20.0, 30.0, 40.0),
    ]
    assert [r["polygon"] for r in rows[:4]] == [None, [[1, 2, 3, 4, 2, 9]], None, [[1, 2, 5, 6]]]
    assert dict(rows[3]["attributes"]) == {"flag:a": "true", "group_id": "3"}
    assert all(r["attributes"] == [] for r in rows[:3])
    assert (rows[5]["image_width"], rows[5]["image_height"]) == (640, 480)
    assert ledger == [
        ("c.json", Reason.PARSE_MALFORMED_BOX, True),
        ("e.json", Reason.PARSE_MALFORMED_BOX, True),
        ("h.json", Reason.PARSE_MALFORMED_BOX, True),
        ("i.json", Reason.PARSE_INVALID_JSON, False),
    ]
    assert stats == counts(files=9, files_rejected=1, images=7, seen=9, kept=6)
