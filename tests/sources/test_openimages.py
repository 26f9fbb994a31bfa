"""Open Images reader: box CSVs with normalised coordinates, descriptions, images.meta.

The real datumaro sample is read in test_readers.py, with the other formats' samples.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sources.reading import OI_HEADER, image, read, synthetic, write
from vprim.assets.contracts.reasons import Reason
from vprim.assets.sources.readers import get_reader
from vprim.assets.sources.readers.base import ParseError, Source


def oi_source(root: Path, rows: list[str], **extra: str | bytes) -> Path:
    files: dict[str, str | bytes] = {
        # no header line: the header is optional
        "class-descriptions-boxable.csv": "/m/dog,Dog\n/m/cat,Cat\n",
        "images.meta": "# id height width\nimg1 100 200\nimg2 50 40\n",
        "train-annotations-bbox.csv": OI_HEADER + "".join(r + "\n" for r in rows),
    }
    files.update(extra)
    return write(root, files)


def test_openimages_columns_box_index_and_attributes(tmp_path):
    header = "ImageID,LabelName,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,IsInside\n"
    rows = [
        "img1,/m/dog,0.1,0.5,0.2,0.6,1,0,0,-1",  # img1 box 0
        "img2,/m/cat,0,1,0,1,-1,-1,1,0",  # img2 box 0 (group of -> crowd)
        "img1,/m/cat, 0.25 ,0.75,nan,inf,0,1,0,0",  # img1 box 1; padded, non-finite
        "img1,Person,0.5,0.5,0.5,0.5,,,,",  # img1 box 2: a plain name is kept as is
    ]
    root = oi_source(tmp_path / "src", [])
    write(root, {"train-annotations-bbox.csv": header + "\n".join(rows) + "\n"})
    out = read("openimages", root)
    assert out.rejects == [] and out.images == 2
    got = [(r["image_id"], r["box_index"], r["raw_label"]) for r in out.rows]
    assert got == [
        ("img1", 0, "Dog"),
        ("img2", 0, "Cat"),
        ("img1", 1, "Cat"),
        ("img1", 2, "Person"),
    ]
    first, second, third, _ = out.rows
    assert (first["image_width"], first["image_height"]) == (200, 100)
    assert (first["x0"], first["x1"], first["y0"], first["y1"]) == pytest.approx(
        (20.0, 100.0, 20.0, 60.0)
    )
    assert dict(first["attributes"]) == {"occluded": "1", "truncated": "0"}
    assert second["is_crowd"] is True and dict(second["attributes"]) == {"inside": "0"}
    assert (third["x0"], third["x1"]) == pytest.approx((50.0, 150.0))
    assert third["y0"] != third["y0"] and third["y1"] == float("inf")


def test_openimages_image_urls_and_header_fallback(tmp_path):
    ids = "ImageID,Subset,OriginalURL,Rotation\n"
    ids += f"img3,train,{synthetic('img3', 64, 32)},0\n"  # a synthetic URL carries its size
    ids += "img4,train,,0\n"  # no URL: the local file images/<subset>/img4.png
    ids += "img5,train\n"  # a row with too few fields is skipped, the others still count
    root = oi_source(
        tmp_path / "src",
        ["img3,x,/m/dog,1,0,0.5,0,0.5,0", "img4,x,/m/cat,1,0,1,0,1,0"],
        **{"image_ids_and_rotation.csv": ids},
    )
    image(root / "images" / "validation" / "img4.png", 12, 6)
    rows = {r["image_id"]: r for r in read("openimages", root).rows}
    assert rows["img3"]["image_uri"] == synthetic("img3", 64, 32)
    assert (rows["img3"]["image_width"], rows["img3"]["x1"]) == (64, 32.0)
    assert rows["img4"]["image_uri"].endswith("src/images/validation/img4.png")
    assert (rows["img4"]["image_width"], rows["img4"]["image_height"]) == (12, 6)


def test_openimages_box_rejects(tmp_path):
    ids = "ImageID,OriginalURL\nesc,../../outside.jpg\nabs,/etc/passwd\n"
    rows = [
        "img1,x,/m/dog,1,0.1,0.2,0.1,0.2,0",  # fine
        "img1,x,/m/unknown,1,0.1,0.2,0.1,0.2,0",  # a /m/ id without a description
        "img1,x,/m/dog,1,abc,0.2,0.1,0.2,0",  # a coordinate that is not a number
        "img1,x,/m/dog,1,0.1,,0.1,0.2,0",  # an empty coordinate
        "nosize,x,/m/dog,1,0.1,0.2,0.1,0.2,0",  # not in images.meta, no image, no URL
        "esc,x,/m/dog,1,0.1,0.2,0.1,0.2,0",  # its URL leaves the source folder
        "abs,x,/m/dog,1,0.1,0.2,0.1,0.2,0",  # an absolute path as its URL
        "img1,x,/m/cat,1,0.1,0.2,0.1,0.2,0",  # fine again: box_index 4 of img1
        ",x,/m/dog,1,0.1,0.2,0.1,0.2,0",  # an empty ImageID: malformed
    ]
    out = read("openimages", oi_source(tmp_path / "src", rows, **{"img_image_ids.csv": ids}))
    got = sorted((r.image_id, r.box_index, r.reason) for r in out.rejects)
    assert got == [
        ("", 0, Reason.PARSE_MALFORMED_BOX),
        ("abs", 0, Reason.PARSE_PATH_ESCAPE),
        ("esc", 0, Reason.PARSE_PATH_ESCAPE),
        ("img1", 1, Reason.PARSE_UNKNOWN_CATEGORY),
        ("img1", 2, Reason.PARSE_MALFORMED_BOX),
        ("img1", 3, Reason.PARSE_MALFORMED_BOX),
        ("nosize", 0, Reason.PARSE_MISSING_IMAGE_SIZE),
    ]
    assert [(r["image_id"], r["box_index"]) for r in out.rows] == [("img1", 0), ("img1", 4)]
    assert out.images == 5


def test_openimages_bad_row_in_the_middle(tmp_path):
    # a row with the wrong number of fields is one record error (with its line); others go on
    rows = ["img1,x,/m/dog,1,0,1,0,1,0", "img1,x,/m/dog", "img2,x,/m/cat,1,0,1,0,1,0"]
    out = read("openimages", oi_source(tmp_path / "src", rows))
    assert [r["image_id"] for r in out.rows] == ["img1", "img2"]
    assert [e.reason for e in out.record_errors] == [Reason.PARSE_INVALID_CSV]
    assert "line 3" in out.record_errors[0].detail


def test_openimages_utf16_and_header_only(tmp_path):
    root = oi_source(tmp_path / "src", [])
    data = (OI_HEADER + "img2,x,/m/cat,1,0,1,0,1,0\n").encode("utf-16")
    write(root, {"a-bbox.csv": data})  # UTF-16 with a BOM is fine
    out = read("openimages", root)
    assert [r["raw_label"] for r in out.rows] == ["Cat"]
    assert out.file_errors == {}  # the header-only box CSV is simply empty


def test_openimages_broken_descriptions_reject_the_source(tmp_path):
    root = oi_source(tmp_path / "src", [], **{"class-descriptions.csv": b"/m/a,\xff\n"})
    with pytest.raises(ParseError) as err:
        get_reader("openimages").prepare(Source("src", str(root)))
    assert err.value.reason == Reason.PARSE_BAD_ENCODING
