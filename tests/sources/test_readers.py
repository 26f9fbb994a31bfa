"""Format readers (VOC, YOLO), the registry, format detection, hostile bytes of every format.

Two kinds of input: the real datumaro sample datasets beside the repo (skipped when absent),
whose coordinates are asserted exactly, and small files generated in ``tmp_path`` for every
variant and every parse reject reason a format can produce (docs/FORMATS.md is the contract).
Open Images is in test_openimages.py, ODVG and LabelMe in test_readers_json.py, COCO in
test_coco.py.
"""

from __future__ import annotations

import math
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sources.reading import (
    OI_HEADER,
    check_result,
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
from vprim.assets.contracts import reasons as R
from vprim.assets.contracts import schemas as S
from vprim.assets.contracts.reasons import Reason
from vprim.assets.sources.readers import DETECT_ORDER, READERS, detect_format, get_reader
from vprim.assets.sources.readers.base import ParseError, Source

DATUMARO = Path(__file__).parents[2].parent / "shared" / "fixtures" / "datumaro"
needs_datumaro = pytest.mark.skipif(
    not DATUMARO.is_dir(), reason="../shared/fixtures/datumaro is not present"
)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">]>
<annotation><filename>&lol2;</filename></annotation>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<annotation><filename>&xxe;</filename></annotation>"""


# --- the real datumaro samples ---------------------------------------------------------------
@needs_datumaro
def test_datumaro_voc_exact_boxes():
    out = read("voc", DATUMARO / "voc_dataset" / "voc_dataset1")
    assert out.file_errors == {} and out.rejects == [] and out.images == 1
    rows = out.rows
    assert [r["raw_label"] for r in rows] == ["cat", "person"]
    assert [r["image_id"] for r in rows] == ["2007_000001", "2007_000001"]
    assert [r["box_index"] for r in rows] == [0, 1]
    # VOC is 1-based inclusive: xmin 1 -> x0 0, xmax 3 -> x1 3 (the <part> is not a box)
    assert out.xyxy() == [(0.0, 1.0, 3.0, 4.0), (3.0, 4.0, 6.0, 7.0)]
    assert {(r["image_width"], r["image_height"]) for r in rows} == {(20, 10)}
    assert rows[0]["image_uri"].endswith("voc_dataset1/JPEGImages/2007_000001.jpg")
    assert dict(rows[0]["attributes"]) == {
        "pose": "Unspecified",
        "truncated": "1",
        "difficult": "0",
    }
    assert rows[1]["attributes"] == []


@needs_datumaro
def test_datumaro_yolo_exact_boxes():
    out = read("yolo", DATUMARO / "yolo_dataset" / "strict")
    assert out.file_errors == {} and out.rejects == [] and out.images == 1
    rows = out.rows
    assert [r["raw_label"] for r in rows] == ["label_2", "label_4"]
    assert [r["image_id"] for r in rows] == ["obj_train_data/1", "obj_train_data/1"]
    # train.txt says data/obj_train_data/1.jpg: the darknet 'data/' prefix is dropped
    assert rows[0]["image_uri"].endswith("strict/obj_train_data/1.jpg")
    # the size comes from the real JPEG header: 15 x 10
    assert {(r["image_width"], r["image_height"]) for r in rows} == {(15, 10)}
    # "2 0.133333 0.300000 0.266667 0.200000": centre/size normalised -> pixels
    assert out.xyxy()[0] == pytest.approx((0.0, 2.0, 4.0, 4.0), abs=1e-4)
    assert out.xyxy()[1] == pytest.approx((3.0, 3.0, 5.0, 6.0), abs=1e-4)
    assert rows[0]["x0"] == pytest.approx((0.133333 - 0.266667 / 2) * 15)


@needs_datumaro
def test_datumaro_openimages_exact_boxes():
    root = DATUMARO / "open_images_dataset" / "v6"
    source = Source("src", str(root))
    reader = get_reader("openimages")
    files = [source.relpath(p) for p in reader.files(source, reader.prepare(source))]
    # only CSVs with XMin/XMax/YMin/YMax: not the image labels nor the segmentation CSV
    assert files == [
        "annotations/oidv6-train-annotations-bbox.csv",
        "annotations/test-annotations-bbox.csv",
    ]
    out = read("openimages", root)
    assert out.file_errors == {} and out.rejects == [] and out.images == 2
    b, c = sorted(out.rows, key=lambda r: r["image_id"])
    # b: /m/0 -> its display name; size from images.meta ("b 2 8" = height 2, width 8)
    assert b["raw_label"] == "Generic label #0"
    assert (b["image_width"], b["image_height"]) == (8, 2)
    assert (b["x0"], b["y0"], b["x1"], b["y1"]) == pytest.approx(
        (0.2 * 8, 0.3 * 2, 1.0 * 8, 0.5 * 2)
    )
    assert b["is_crowd"] is False and b["attributes"] == []  # -1 flags are left out
    assert b["image_uri"].endswith("v6/images/train/b.jpg")
    # c: not in images.meta -> falls back to the image header of images/test/c.jpg (5 x 10)
    assert c["raw_label"] == "Generic label #3"
    assert (c["image_width"], c["image_height"]) == (5, 10)
    assert (c["x0"], c["y0"], c["x1"], c["y1"]) == pytest.approx((0.7 * 5, 0.0, 0.8 * 5, 0.5 * 10))
    assert c["is_crowd"] is True
    assert dict(c["attributes"]) == {
        "occluded": "1",
        "truncated": "0",
        "depiction": "0",
        "inside": "0",
    }
    assert c["image_uri"].endswith("v6/images/test/c.jpg")


@needs_datumaro
@pytest.mark.parametrize(
    "folder, expected",
    [
        ("voc_dataset/voc_dataset1", "voc"),
        ("yolo_dataset/strict", "yolo"),
        ("open_images_dataset/v6", "openimages"),
    ],
)
def test_datumaro_detection(folder, expected):
    assert detect_format(Source("src", str(DATUMARO / folder))) == expected


# --- file-level rejects of every format ------------------------------------------------------

FILE_REJECTS = [
    # zero bytes
    pytest.param("voc", "a.xml", b"", Reason.PARSE_EMPTY_FILE, id="voc-empty"),
    # only whitespace is empty too
    pytest.param("voc", "a.xml", b" \n\t\n", Reason.PARSE_EMPTY_FILE, id="voc-whitespace"),
    # latin-1 bytes and no encoding declaration
    pytest.param(
        "voc",
        "a.xml",
        "<annotation><filename>caf\u00e9.jpg</filename></annotation>".encode("latin-1"),
        Reason.PARSE_BAD_ENCODING,
        id="voc-latin1",
    ),
    # XML cut off mid-element
    pytest.param(
        "voc", "a.xml", b"<annotation><object><name>dog", Reason.PARSE_INVALID_XML, id="voc-cut"
    ),
    # well-formed XML that is not a VOC annotation (CVAT's <annotations> root)
    pytest.param(
        "voc",
        "a.xml",
        b"<annotations><image/></annotations>",
        Reason.PARSE_INVALID_XML,
        id="voc-root",
    ),
    # entity expansion (billion laughs) is refused, not expanded
    pytest.param("voc", "a.xml", BILLION_LAUGHS, Reason.PARSE_INVALID_XML, id="voc-entities"),
    # an external entity (XXE) is refused, the file it names is never read
    pytest.param("voc", "a.xml", EXTERNAL_ENTITY, Reason.PARSE_INVALID_XML, id="voc-xxe"),
    # a YOLO label file with a byte that is not UTF-8
    pytest.param(
        "yolo",
        "a.txt",
        b"0 0.5 0.5 0.1 0.1\n0 0.5 \xff 0.1 0.1\n",
        Reason.PARSE_BAD_ENCODING,
        id="yolo-encoding",
    ),
    # an Open Images box CSV of zero bytes
    pytest.param("openimages", "x-bbox.csv", b"", Reason.PARSE_EMPTY_FILE, id="oi-empty"),
    # a field that is not UTF-8
    pytest.param(
        "openimages",
        "x-bbox.csv",
        OI_HEADER.encode() + b"a,x,/m/0,1,0.1,\xff,0.1,0.2,0\n",
        Reason.PARSE_BAD_ENCODING,
        id="oi-encoding",
    ),
    # a box CSV without the XMax column
    pytest.param(
        "openimages",
        "x-bbox.csv",
        b"ImageID,LabelName,XMin,YMin,YMax\na,/m/0,0.1,0.1,0.2\n",
        Reason.PARSE_INVALID_CSV,
        id="oi-columns",
    ),
    # not a CSV at all: thousands of rows with the wrong number of fields
    pytest.param(
        "openimages",
        "x-bbox.csv",
        OI_HEADER.encode() + b"junk;junk\n" * 1200,
        Reason.PARSE_INVALID_CSV,
        id="oi-not-csv",
    ),
    # an ODVG file of zero bytes, and one of blank lines
    pytest.param("odvg", "a.jsonl", b"", Reason.PARSE_EMPTY_FILE, id="odvg-empty"),
    pytest.param("odvg", "a.jsonl", b"\n  \n\n", Reason.PARSE_EMPTY_FILE, id="odvg-blank"),
    # its only line is not UTF-8
    pytest.param(
        "odvg",
        "a.jsonl",
        b'{"filename": "caf\xe9.jpg"}\n',
        Reason.PARSE_BAD_ENCODING,
        id="odvg-encoding",
    ),
    # its only line is truncated JSON
    pytest.param(
        "odvg",
        "a.jsonl",
        b'{"filename": "a.jpg", "detection": {',
        Reason.PARSE_INVALID_JSON,
        id="odvg-cut",
    ),
    # valid JSON that is no ODVG record (not an object; no filename)
    pytest.param(
        "odvg",
        "a.jsonl",
        b"[1, 2]\n" + b'{"width": 3}\n',
        Reason.PARSE_INVALID_JSON,
        id="odvg-record",
    ),
    # nesting deep enough to exhaust the recursion limit is invalid JSON, not a crash
    pytest.param("odvg", "a.jsonl", b"[" * 100_000, Reason.PARSE_INVALID_JSON, id="odvg-deep"),
    # LabelMe: empty, not UTF-8, truncated, shapes not a list, absurdly deep
    pytest.param("labelme", "a.json", b"", Reason.PARSE_EMPTY_FILE, id="labelme-empty"),
    pytest.param(
        "labelme",
        "a.json",
        b'{"shapes": [], "imagePath": "\xe9.jpg"}',
        Reason.PARSE_BAD_ENCODING,
        id="labelme-encoding",
    ),
    pytest.param(
        "labelme",
        "a.json",
        b'{"shapes": [{"label": "dog"',
        Reason.PARSE_INVALID_JSON,
        id="labelme-cut",
    ),
    pytest.param(
        "labelme",
        "a.json",
        b'{"shapes": {"label": "dog"}}',
        Reason.PARSE_INVALID_JSON,
        id="labelme-shapes",
    ),
    pytest.param("labelme", "a.json", b"[" * 100_000, Reason.PARSE_INVALID_JSON, id="labelme-deep"),
]


@pytest.mark.parametrize("fmt, rel, data, reason", FILE_REJECTS)
def test_file_level_reject(tmp_path, fmt, rel, data, reason):
    files = {rel: data}
    if fmt == "yolo":
        files["obj.names"] = "cat\n"
    out = read(fmt, write(tmp_path / "src", files))
    assert out.file_errors == {rel: reason}
    assert out.boxes.num_rows == 0 and out.rejects == []


# --- VOC -------------------------------------------------------------------------------------
def voc_object(name: str | None = "dog", box=(1, 2, 3, 4), extra: str = "") -> str:
    coords = "".join(f"<{t}>{v}</{t}>" for t, v in zip(("xmin", "ymin", "xmax", "ymax"), box))
    name_xml = "" if name is None else f"<name> {name} </name>"
    return f"<object>{name_xml}{extra}<bndbox>{coords}</bndbox></object>"


def voc_file(objects: str, filename: str | None = "a.jpg", size=(100, 50)) -> str:
    size_xml = f"<size><width>{size[0]}</width><height>{size[1]}</height></size>" if size else ""
    name_xml = "" if filename is None else f"<filename>{xml_escape(filename)}</filename>"
    body = f"<annotation>{name_xml}{size_xml}{objects}</annotation>"
    return f'<?xml version="1.0" encoding="UTF-8"?>{body}'


def test_voc_boxes_attributes_and_nonfinite(tmp_path):
    cvat = (
        "<occluded>1</occluded><attributes><attribute><name>color</name><value>red</value>"
        "</attribute></attributes>"
    )
    objects = (
        voc_object("dog", (11, 21, 30, 40), extra=cvat)
        + voc_object("cat", (50, 40, 10, 5))  # inverted: kept as read, not reordered
        + voc_object("bird", ("nan", "inf", "-inf", "12.5"))  # non-finite: floats, not rejects
    )
    out = read("voc", write(tmp_path / "src", {"Annotations/img7.xml": voc_file(objects)}))
    assert out.rejects == [] and out.images == 1
    assert [r["raw_label"] for r in out.rows] == ["dog", "cat", "bird"]  # names are stripped
    assert [r["image_id"] for r in out.rows] == ["img7"] * 3  # the XML file's stem
    assert out.rows[0]["image_uri"].endswith("src/JPEGImages/a.jpg")
    assert out.xyxy()[:2] == [(10.0, 20.0, 30.0, 40.0), (49.0, 39.0, 10.0, 5.0)]
    x0, y0, x1, y1 = out.xyxy()[2]
    assert x0 != x0 and y0 == float("inf") and x1 == float("-inf") and y1 == 12.5
    assert dict(out.rows[0]["attributes"]) == {"occluded": "1", "color": "red"}
    assert (out.rows[0]["image_width"], out.rows[0]["image_height"]) == (100, 50)


def test_voc_size_from_header_and_synthetic_uri(tmp_path):
    root = tmp_path / "src"
    image(root / "JPEGImages" / "real.png", 31, 17)
    image(root / "JPEGImages" / "c.jpg", 8, 8)
    write(
        root,
        {
            # <size> of 0: read the image header instead
            "a.xml": voc_file(voc_object(), filename="real.png", size=(0, 0)),
            # no <size>, a synthetic:// image carries its size in the URI
            "b.xml": voc_file(voc_object(), filename=synthetic("b", 640, 480), size=None),
            # no <filename>: <stem>.jpg under JPEGImages (size given, so no header needed)
            "c.xml": voc_file(voc_object(), filename=None),
            # no <filename> and no d.jpg among the source's files: image_missing
            "d.xml": voc_file(voc_object(), filename=None),
        },
    )
    out = read("voc", root)
    rows = {r["image_id"]: r for r in out.rows}
    assert (rows["a"]["image_width"], rows["a"]["image_height"]) == (31, 17)
    assert (rows["b"]["image_width"], rows["b"]["image_height"]) == (640, 480)
    assert rows["b"]["image_uri"] == synthetic("b", 640, 480)
    assert rows["c"]["image_uri"].endswith("src/JPEGImages/c.jpg")
    assert [(r.image_id, r.reason) for r in out.rejects] == [("d", "image_missing")]


def test_voc_box_rejects_keep_their_index(tmp_path):
    objects = (
        voc_object("ok")
        # no <bndbox> at all
        + "<object><name>x</name></object>"
        # <xmax> missing
        + "<object><name>x</name><bndbox><xmin>1</xmin><ymin>1</ymin><ymax>2</ymax></bndbox>"
        + "</object>"
        # a coordinate that is not a number
        + voc_object("x", (1, "one", 3, 4))
        # no <name>
        + voc_object(None)
        + voc_object("last")
    )
    out = read("voc", write(tmp_path / "src", {"a.xml": voc_file(objects)}))
    assert out.reasons == [Reason.PARSE_MALFORMED_BOX] * 4
    assert sorted(r.box_index for r in out.rejects) == [1, 2, 3, 4]
    assert [(r["raw_label"], r["box_index"]) for r in out.rows] == [("ok", 0), ("last", 5)]


def test_voc_missing_image_size(tmp_path):
    # no <size> and the image does not exist: every box is rejected, the image still counted
    xml = voc_file(voc_object() + voc_object("cat"), filename="missing.jpg", size=None)
    out = read("voc", write(tmp_path / "src", {"a.xml": xml}))
    assert out.reasons == [Reason.PARSE_MISSING_IMAGE_SIZE] * 2 and out.boxes.num_rows == 0
    assert out.images == 1


@pytest.mark.parametrize(
    "filename",
    [
        "../../../etc/passwd.jpg",  # .. that leaves the root
        "/etc/passwd",  # an absolute path
        "file:///etc/passwd",  # a file:// URL
        "C:\\Windows\\win.ini",  # a drive-letter path
        "ftp://host/a.jpg",  # a URL scheme that is not allowed
    ],
)
def test_voc_path_escape(tmp_path, filename):
    out = read("voc", write(tmp_path / "src", {"a.xml": voc_file(voc_object(), filename)}))
    assert out.reasons == [Reason.PARSE_PATH_ESCAPE]
    # without objects the refused path is still reported (one record error)
    out = read("voc", write(tmp_path / "src2", {"a.xml": voc_file("", filename)}))
    assert [e.reason for e in out.record_errors] == [Reason.PARSE_PATH_ESCAPE]


def test_voc_declared_encodings_and_bom(tmp_path):
    latin = '<?xml version="1.0" encoding="ISO-8859-1"?><annotation><object><name>caf\u00e9</name>'
    latin += "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox>"
    latin += "</object><size><width>4</width><height>4</height></size></annotation>"
    files = {
        # latin-1 declared in the XML prolog is honoured
        "a.xml": latin.encode("latin-1"),
        # UTF-16 with a BOM (its declaration says UTF-16 too)
        "b.xml": voc_file(voc_object("b")).replace("UTF-8", "UTF-16").encode("utf-16"),
    }
    out = read("voc", write(tmp_path / "src", files))
    assert out.file_errors == {}
    assert sorted(r["raw_label"] for r in out.rows) == ["b", "caf\u00e9"]


def test_voc_image_without_objects_is_counted(tmp_path):
    out = read("voc", write(tmp_path / "src", {"a.xml": voc_file("", size=None)}))
    assert out.images == 1 and out.boxes.num_rows == 0 and out.rejects == []


def test_voc_single_file_source(tmp_path):
    root = write(tmp_path / "src", {"a.xml": voc_file(voc_object()), "b.xml": voc_file("")})
    out = read("voc", root / "a.xml")  # a catalog uri can name one annotation file
    assert out.boxes.num_rows == 1 and out.images == 1


def test_voc_quirky_files_through_ingest(tmp_path):
    """Plain files (read by the regular expressions), the other layouts (the tree), DOCTYPE
    (defusedxml) and broken files in one source: the rows, the ledger and the counts."""

    def doc(objects: str, size: str = "<size><width>640</width><height>480</height></size>"):
        head = '<?xml version="1.0"?>\n<annotation><filename>synthetic://src/x?w=64&amp;h=48'
        return f"{head}</filename>{size}{objects}</annotation>"

    good = (
        "<object><name>cat</name><pose>Left</pose><truncated>1</truncated>"
        "<bndbox><xmin>1</xmin><ymin>2</ymin><xmax>30</xmax><ymax>40</ymax></bndbox>"
        "<attributes><attribute><name>colour</name><value>red</value></attribute></attributes>"
        "</object>"
    )
    files = {
        "a.xml": doc(good + good.replace(">cat<", ">dog<")),  # the plain layout
        "b.xml": doc(good, size=""),  # no <size>: the synthetic URI's 64 x 48
        "c.xml": doc(good.replace("<xmin>1</xmin>", "<xmin>one</xmin>")),  # malformed
        "d.xml": doc(good.replace("<name>cat</name>", "")),  # no <name>: malformed
        "e.xml": doc(""),  # no objects: an image, no box
        "f.xml": "<annotation><object>",  # not XML: the file's row
        "g.xml": "<!DOCTYPE annotation>\n<annotation><filename>y.jpg</filename>"
        "<size><width>10</width><height>10</height></size>" + good + "</annotation>",
        "h.xml": doc(good.replace("<name>cat</name>", "<name>cat</name><name>x</name>")),
    }
    root = write(tmp_path / "src", {f"Annotations/{k}": v for k, v in files.items()})
    rows, ledger, stats = ingested("voc", root)
    colour = {"pose": "Left", "truncated": "1", "colour": "red"}
    got = [
        (r["image_id"], r["box_index"], r["raw_label"], r["image_width"], r["image_height"])
        for r in rows
    ]
    assert got == [
        ("a", 0, "cat", 640, 480),
        ("a", 1, "dog", 640, 480),
        ("b", 0, "cat", 64, 48),
        ("g", 0, "cat", 10, 10),
        ("h", 0, "cat", 640, 480),  # the first <name> of an object
    ]
    assert all((r["x0"], r["y0"], r["x1"], r["y1"]) == (0.0, 1.0, 30.0, 40.0) for r in rows)
    assert [dict(r["attributes"]) for r in rows] == [colour] * 5
    assert rows[0]["image_uri"] == "synthetic://src/x?w=64&h=48"  # &amp; read as &
    assert rows[3]["image_uri"].endswith("src/JPEGImages/y.jpg")
    assert ledger == [
        ("c.xml", Reason.PARSE_MALFORMED_BOX, True),
        ("d.xml", Reason.PARSE_MALFORMED_BOX, True),
        ("f.xml", Reason.PARSE_INVALID_XML, False),
    ]
    assert stats == counts(files=8, files_rejected=1, images=7, seen=7, kept=5)


# --- YOLO ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "names_file, content",
    [
        ("obj.names", "cat\ndog\n\n"),  # darknet names, trailing blank line ignored
        ("classes.txt", "cat\ndog\n"),
        ("custom.names", "cat\ndog\n"),
        ("data.yaml", "names: [cat, dog]\nnc: 2\n"),  # ultralytics list
        ("dataset.yaml", "names:\n  0: cat\n  1: dog\n"),  # ultralytics mapping
    ],
)
def test_yolo_class_name_files(tmp_path, names_file, content):
    root = write(tmp_path / "src", {names_file: content, "a.txt": "1 0.5 0.5 0.5 0.5\n"})
    image(root / "a.png", 40, 20)
    out = read("yolo", root)
    assert [r["raw_label"] for r in out.rows] == ["dog"]
    assert out.xyxy() == [(10.0, 5.0, 30.0, 15.0)]
    assert (out.rows[0]["image_width"], out.rows[0]["image_height"]) == (40, 20)


def test_yolo_names_priority(tmp_path):
    # obj.names wins over classes.txt and data.yaml; classes.txt is never a label file
    files = {
        "obj.names": "first\n",
        "classes.txt": "second\n",
        "data.yaml": "names: [third]\n",
        "a.txt": "0 0.5 0.5 1 1\n",
    }
    root = write(tmp_path / "src", files)
    image(root / "a.png", 2, 2)
    out = read("yolo", root)
    assert [r["raw_label"] for r in out.rows] == ["first"] and out.images == 1


@pytest.mark.parametrize(
    "files, reason",
    [
        # no class names anywhere: the whole source is a missing file
        ({"a.txt": "0 0.5 0.5 1 1\n"}, Reason.PARSE_MISSING_FILE),
        # an empty obj.names
        ({"obj.names": "", "a.txt": "0 0.5 0.5 1 1\n"}, Reason.PARSE_EMPTY_FILE),
        # data.yaml that is not YAML
        ({"data.yaml": "names: [a, b\n", "a.txt": "0 0.5 0.5 1 1\n"}, Reason.PARSE_MISSING_FILE),
        # data.yaml with a Python tag: safe_load refuses it, nothing runs
        (
            {
                "data.yaml": "names: !!python/object/apply:os.system ['true']\n",
                "a.txt": "0 1 1 1 1",
            },
            Reason.PARSE_MISSING_FILE,
        ),
        # data.yaml without names
        ({"data.yaml": "nc: 3\n", "a.txt": "0 0.5 0.5 1 1\n"}, Reason.PARSE_MISSING_FILE),
        # class names that are not UTF-8
        ({"obj.names": b"caf\xe9\n", "a.txt": "0 0.5 0.5 1 1\n"}, Reason.PARSE_BAD_ENCODING),
        # obj.data pointing outside the source
        ({"obj.names": "a\n", "obj.data": "train = ../../x.txt\n"}, Reason.PARSE_PATH_ESCAPE),
    ],
)
def test_yolo_source_level_rejects(tmp_path, files, reason):
    source = Source("src", str(write(tmp_path / "src", files)))
    with pytest.raises(ParseError) as err:
        get_reader("yolo").prepare(source)
    assert err.value.reason == reason


def test_yolo_ultralytics_layout_and_segments(tmp_path):
    root = write(
        tmp_path / "src",
        {
            "data.yaml": "names: {0: cat, 1: dog}\n",
            "labels/train/a.txt": (
                "0 0.5 0.5 0.5 0.5\n"
                "\n"  # a blank line is not a box and does not take an index
                "1 0.1 0.1 0.9 0.1 0.5 0.9\n"  # YOLO-seg: three points
                "0 nan inf 0.1 0.1\n"  # non-finite numbers are read as floats
            ),
        },
    )
    image(root / "images" / "train" / "a.jpg", 100, 50)  # the mirrored images/ folder
    out = read("yolo", root)
    assert out.rejects == [] and out.images == 1
    rows = out.rows
    assert [r["image_id"] for r in rows] == ["labels/train/a"] * 3
    assert [r["box_index"] for r in rows] == [0, 1, 2]
    assert rows[0]["image_uri"].endswith("src/images/train/a.jpg")
    assert out.xyxy()[0] == (25.0, 12.5, 75.0, 37.5)
    assert rows[1]["polygon"] == [pytest.approx([10.0, 5.0, 90.0, 5.0, 50.0, 45.0])]
    assert out.xyxy()[1] == pytest.approx((10.0, 5.0, 90.0, 45.0))
    x0, y0, _, _ = out.xyxy()[2]
    assert x0 != x0 and y0 == float("inf")


def test_yolo_image_list_with_synthetic_urls(tmp_path):
    files = {
        "obj.names": "cat\n",
        "train.txt": synthetic("a", 200, 100) + "\n" + "data/imgs/b.jpg\n",
        "labels/a.txt": "0 0.5 0.5 0.1 0.2\n",
        "labels/b.txt": "0 0.5 0.5 0.1 0.2\n",
    }
    root = write(tmp_path / "src", files)
    image(root / "imgs" / "b.jpg", 10, 10)  # listed as data/imgs/b.jpg (darknet convention)
    out = read("yolo", root)
    rows = {r["image_id"]: r for r in out.rows}
    assert set(rows) == {"labels/a", "labels/b"}  # train.txt is an image list, not labels
    assert rows["labels/a"]["image_uri"] == synthetic("a", 200, 100)
    assert (rows["labels/a"]["image_width"], rows["labels/a"]["image_height"]) == (200, 100)
    assert (rows["labels/a"]["x0"], rows["labels/a"]["y1"]) == pytest.approx((90.0, 60.0))
    assert rows["labels/b"]["image_uri"].endswith("src/imgs/b.jpg")


def test_yolo_box_rejects(tmp_path):
    lines = [
        "0 0.5 0.5 0.2 0.2",  # 0: fine
        "0 0.5 0.5 0.2",  # 1: four values: malformed
        "0 0.1 0.1 0.2 0.2 0.3",  # 2: six values (neither box nor polygon): malformed
        "0 0.5 x 0.2 0.2",  # 3: a coordinate that is not a number: malformed
        "cat 0.5 0.5 0.2 0.2",  # 4: a class that is not an index: malformed
        "7 0.5 0.5 0.2 0.2",  # 5: class 7 of 2 names: unknown category
        "-1 0.5 0.5 0.2 0.2",  # 6: a negative class: unknown category
        "1.0 0.5 0.5 0.2 0.2",  # 7: "1.0" as some exporters write: class 1
    ]
    root = write(tmp_path / "src", {"obj.names": "a\nb\n", "x.txt": "\n".join(lines)})
    image(root / "x.png", 10, 10)
    out = read("yolo", root)
    assert {r.box_index: r.reason for r in out.rejects} == {
        1: Reason.PARSE_MALFORMED_BOX,
        2: Reason.PARSE_MALFORMED_BOX,
        3: Reason.PARSE_MALFORMED_BOX,
        4: Reason.PARSE_MALFORMED_BOX,
        5: Reason.PARSE_UNKNOWN_CATEGORY,
        6: Reason.PARSE_UNKNOWN_CATEGORY,
    }
    assert [(r["box_index"], r["raw_label"]) for r in out.rows] == [(0, "a"), (7, "b")]


def test_yolo_missing_image_and_empty_label_file(tmp_path):
    files = {
        "obj.names": "a\n",
        "x.txt": "0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n",  # no image anywhere: no size
        "y.txt": "",  # an empty label file: an image without objects, not a reject
    }
    out = read("yolo", write(tmp_path / "src", files))
    assert out.reasons == [Reason.PARSE_MISSING_IMAGE_SIZE] * 2
    assert out.images == 2 and out.file_errors == {}


def test_yolo_image_list_path_escape(tmp_path):
    # the image list names an image outside the source for this label file
    files = {"obj.names": "a\n", "train.txt": "../outside/x.jpg\n", "x.txt": "0 0.5 0.5 1 1\n"}
    out = read("yolo", write(tmp_path / "src", files))
    assert out.reasons == [Reason.PARSE_PATH_ESCAPE]


def test_yolo_quirky_files_through_ingest(tmp_path):
    """Boxes, polygons, non-finite numbers, a BOM and broken lines in one source."""
    lines = {
        "a.txt": "0 0.5 0.5 0.2 0.2\n1 0.1 0.1 0.3 0.1 0.3 0.3 0.1 0.3\n",  # box + polygon
        "b.txt": "1 nan 0.5 0.2 0.2\n\n0 0.5 0.5 inf 0.1\n",  # non-finite, a blank line
        "c.txt": "3.0 0.5 0.5 0.2 0.2\n",  # class 3 (written 3.0) of 2 names
        "d.txt": "7 0.5 0.5 0.2 0.2\n",  # class 7 of 2 names
        "e.txt": "0 0.5 x 0.2 0.2\n",  # not a number
        "f.txt": "",  # an image without objects
        "g.txt": b"\xef\xbb\xbf0 0.5 0.5 0.2 0.2\n",  # a UTF-8 BOM
        "h.txt": "0 0.5 0.5 0.2\n",  # too few values
        "i.txt": "0 0.5 0.5 0.2 0.2\n",  # no image listed, none beside it: no size
    }
    listed = "".join(synthetic(name[0], 640, 480) + "\n" for name in lines if name != "i.txt")
    files = {"obj.names": "cat\ndog\n", "train.txt": listed}
    files.update({f"obj_train_data/{k}": v for k, v in lines.items()})
    rows, ledger, stats = ingested("yolo", write(tmp_path / "src", files))
    got = [(r["image_id"][-1], r["box_index"], r["raw_label"]) for r in rows]
    assert got == [
        ("a", 0, "cat"),
        ("a", 1, "dog"),
        ("b", 0, "dog"),
        ("b", 1, "cat"),
        ("g", 0, "cat"),
    ]
    xyxy = [(r["x0"], r["y0"], r["x1"], r["y1"]) for r in rows]
    assert xyxy[0] == pytest.approx((256.0, 192.0, 384.0, 288.0))  # (0.5 -+ 0.1) * 640, 480
    assert xyxy[1] == pytest.approx((64.0, 48.0, 192.0, 144.0))  # the polygon's extent
    assert rows[1]["polygon"] == [pytest.approx([64, 48, 192, 48, 192, 144, 64, 144])]
    assert rows[0]["polygon"] is None
    x0, y0, x1, _ = xyxy[2]
    assert x0 != x0 and x1 != x1 and y0 == pytest.approx(192.0)  # nan stays nan
    assert xyxy[3][0] == -math.inf and xyxy[3][2] == math.inf  # so does an infinite width
    assert xyxy[4] == xyxy[0] and rows[4]["image_uri"] == synthetic("g", 640, 480)
    assert ledger == [
        ("c.txt", Reason.PARSE_UNKNOWN_CATEGORY, True),
        ("d.txt", Reason.PARSE_UNKNOWN_CATEGORY, True),
        ("e.txt", Reason.PARSE_MALFORMED_BOX, True),
        ("h.txt", Reason.PARSE_MALFORMED_BOX, True),
        ("i.txt", Reason.PARSE_MISSING_IMAGE_SIZE, True),
    ]
    assert stats == counts(files=9, files_rejected=0, images=9, seen=10, kept=5)


# --- registry and detection ------------------------------------------------------------------
def test_registry():
    assert set(READERS) == set(S.FORMATS)
    assert all(READERS[name].name == name for name in READERS)
    assert DETECT_ORDER == ("hf_parquet", "coco", "labelme", "odvg", "voc", "openimages", "yolo")
    assert get_reader("voc") is READERS["voc"]
    with pytest.raises(ValueError, match="known formats: coco, voc, yolo"):
        get_reader("pascal")
    with pytest.raises(ValueError, match="detect_format"):
        get_reader("auto")


DETECT_CASES = {
    "voc": {"Annotations/a.xml": voc_file(voc_object())},
    "yolo": {"obj.names": "a\n", "obj_train_data/1.txt": "0 0.5 0.5 1 1\n"},
    "openimages": {"a.csv": OI_HEADER},
    "odvg": {"a.jsonl": jsonl({"filename": "a.jpg", "detection": {"instances": []}})},
    "labelme": {"a.json": labelme([shape("rectangle", [[0, 0], [1, 1]])], imagePath="a.jpg")},
    # files that belong to no format: a text file, JSON/XML/CSV of something else, binary
    None: {
        "notes.txt": "hello\n",
        "config.json": '{"shapes_count": 3}',
        "page.xml": "<html><body/></html>",
        "cvat.xml": "<annotations><image/></annotations>",
        "table.csv": "a,b\n1,2\n",
        "log.jsonl": '{"event": "start"}\n',
        "blob.bin": b"\x00\xff\x10",
    },
}


@pytest.mark.parametrize("expected", list(DETECT_CASES), ids=str)
def test_detect_format(tmp_path, expected):
    root = write(tmp_path / "src", DETECT_CASES[expected])
    assert detect_format(Source("src", str(root))) == expected


def test_detect_format_empty_folder(tmp_path):
    (tmp_path / "src").mkdir()
    assert detect_format(Source("src", str(tmp_path / "src"))) is None


# --- hostile bytes never escape as anything but ParseError -----------------------------------
TEMPLATES = {
    ("voc", "a.xml"): voc_file(voc_object("dog", (1, 2, 3, 4)), filename=synthetic("a", 9, 9)),
    ("yolo", "a.txt"): "0 0.5 0.5 0.2 0.2\n1 0.1 0.1 0.9 0.1 0.5 0.9\n",
    ("openimages", "a-bbox.csv"): OI_HEADER + "img1,x,/m/dog,1,0.1,0.5,0.2,0.6,1\n",
    ("odvg", "a.jsonl"): jsonl(
        {"filename": synthetic("a", 9, 9), "detection": {"instances": [{"bbox": [1, 2, 3, 4]}]}},
        {"filename": "b.jpg", "grounding": {"regions": [{"bbox": [1, 2, 3, 4], "phrase": "x"}]}},
    ),
    ("labelme", "a.json"): labelme(
        [shape("polygon", [[0, 0], [4, 0], [2, 3]]), shape("circle", [[1, 1], [2, 2]])],
        imagePath=synthetic("a", 9, 9),
    ),
}


@st.composite
def mutated(draw, template: str) -> bytes:
    """A valid file cut short, with a few bytes overwritten: the usual hostile input."""
    data = bytearray(template.encode())
    data = data[: draw(st.integers(0, len(data)))]
    for _ in range(draw(st.integers(0, 4))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


@pytest.mark.parametrize("fmt, rel", list(TEMPLATES), ids=lambda v: str(v))
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mutated_files_only_raise_parse_errors(tmp_path, fmt, rel, data):
    payload = data.draw(mutated(TEMPLATES[(fmt, rel)]))
    root = write(tmp_path / "fuzz", {rel: payload, "obj.names": "dog\ncat\n"})
    source = Source("src", str(root))
    reader = get_reader(fmt)
    context = reader.prepare(source)
    try:
        result = reader.read_file(source, context, str(root / rel))
    except ParseError as exc:
        assert exc.reason in R.PARSE_REASONS
    else:
        check_result(result)
