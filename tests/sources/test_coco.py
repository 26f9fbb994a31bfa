"""COCO reader: real datumaro fixtures, generated edge cases, and a json.load reference."""

from __future__ import annotations

import json
import math
import posixpath
import random
from pathlib import Path

import pytest

from vprim.assets.contracts import schemas as S
from vprim.assets.contracts.reasons import Reason
from vprim.assets.sources.readers import coco as coco_module
from vprim.assets.sources.readers import jsonscan
from vprim.assets.sources.readers.base import ParseError, Source
from vprim.assets.sources.readers.coco import CocoReader

FIXTURES = Path(__file__).parents[2].parent / "shared" / "fixtures"
DATUMARO_COCO = FIXTURES / "datumaro" / "coco_dataset" / "coco_instances"


# --- helpers ---------------------------------------------------------------------------------
def _write(tmp_path: Path, doc: object, name: str = "instances_train.json", **dump) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc, **dump), encoding="utf-8")
    return path


def _read(path: Path, **kwargs):
    source = Source("src", str(path.parent))
    return CocoReader(**kwargs).read_file(source, None, str(path))


def _read_error(path: Path, **kwargs) -> ParseError:
    with pytest.raises(ParseError) as info:
        _read(path, **kwargs)
    assert "\n" not in info.value.detail
    return info.value


def _doc(annotations, images=None, categories=None, **extra) -> dict:
    doc = {
        "info": {"description": "test"},
        "images": images
        if images is not None
        else [
            {"id": 1, "file_name": "a.jpg", "width": 100, "height": 50},
            {"id": 7, "file_name": "b.jpg", "width": 30, "height": 40},
        ],
        "annotations": annotations,
        "categories": categories
        if categories is not None
        else [{"id": 1, "name": "cat"}, {"id": 3, "name": "dog"}],
    }
    doc.update(extra)
    return doc


def _ann(image_id=1, category_id=1, bbox=(1.0, 2.0, 3.0, 4.0), **extra) -> dict:
    ann = {"image_id": image_id, "category_id": category_id, "iscrowd": 0}
    if bbox is not None:
        ann["bbox"] = list(bbox)
    ann.update(extra)
    return ann


def _norm(value):
    """Rows with NaN made comparable and maps as sorted pairs."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_norm(v) for v in value]
    return value


# --- a straightforward json.load reference of docs/FORMATS.md "coco" ---------------------------
def _reference(source: Source, path: Path):
    data = json.loads(path.read_bytes().decode("utf-8-sig"))

    def key(value):
        return value if isinstance(value, str | int | float) else object()

    images = {key(im.get("id")): im for im in data.get("images") or []}
    cats = {key(c.get("id")): c for c in data.get("categories") or []}
    base = posixpath.join(source.root, "images")
    rows, rejects, seen = [], [], {}
    for ann in data.get("annotations") or []:
        img = images.get(key(ann.get("image_id")))
        image_id = str(img["id"]) if img is not None else str(ann.get("image_id"))
        box_index = seen[image_id] = seen.get(image_id, -1) + 1
        if img is None:
            rejects.append((image_id, box_index, Reason.PARSE_UNKNOWN_IMAGE))
            continue
        try:
            uri = source.image_uri(img["file_name"], base)
        except ParseError as exc:
            rejects.append((image_id, box_index, exc.reason))
            continue
        cat = cats.get(key(ann.get("category_id")))
        if cat is None or not isinstance(cat.get("name"), str):
            rejects.append((image_id, box_index, Reason.PARSE_UNKNOWN_CATEGORY))
            continue
        bbox = ann.get("bbox")
        if not (
            isinstance(bbox, list)
            and len(bbox) == 4
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in bbox)
        ):
            rejects.append((image_id, box_index, Reason.PARSE_MALFORMED_BOX))
            continue
        x, y, w, h = (float(v) for v in bbox)
        seg = ann.get("segmentation")
        polygon = None
        if (
            isinstance(seg, list)
            and seg
            and all(
                isinstance(r, list)
                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in r)
                for r in seg
            )
        ):
            polygon = [[float(v) for v in r] for r in seg]
        attrs = ann.get("attributes")
        pairs = []
        if isinstance(attrs, dict):
            for k, v in attrs.items():
                text = v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
                pairs.append((k, text))
        rows.append(
            {
                "image_id": image_id,
                "image_uri": uri,
                "image_width": img["width"],
                "image_height": img["height"],
                "box_index": box_index,
                "raw_label": cat["name"],
                "x0": x,
                "y0": y,
                "x1": x + w,
                "y1": y + h,
                "is_crowd": ann.get("iscrowd", 0) == 1,
                "attributes": pairs,
                "polygon": polygon,
            }
        )
    return rows, rejects, len(data.get("images") or [])


_ODD_TEXT = [
    "plain",
    'quo"te',
    "back\\slash",
    "br[ack]{s}",
    'esc\\"q',
    "ünï ✓",
    "tab\tnl\n",
    "\\\\",
]


def _random_coco(
    rng: random.Random, n_images: int = 40, n_anns: int = 400, nan: bool = False, clean=False
):
    """A random COCO document; ``clean``: no defects, so every batch takes the fast path."""
    image_ids = rng.sample(range(1, 10 * n_images), n_images)
    images = [
        {
            "id": i,
            "file_name": f"{rng.choice(['', 'sub/'])}img_{k}_{rng.choice(_ODD_TEXT)}.jpg"
            if rng.random() < 0.5
            else f"synthetic://src/{i}?w=64&h=48",
            "width": rng.randint(10, 2000),
            "height": rng.randint(10, 2000),
            "coco_url": rng.choice(_ODD_TEXT),
        }
        for k, i in enumerate(image_ids)
    ]
    cat_ids = rng.sample(range(1, 200), 12)
    categories = [{"id": c, "name": f"c{c}{rng.choice(_ODD_TEXT)}", "x": [[1]]} for c in cat_ids]

    def number():
        kind = rng.random()
        if kind < 0.3:
            return round(rng.uniform(-50, 2000), 2)
        if kind < 0.6:
            return rng.uniform(-1e4, 1e4)  # 17 significant digits
        if kind < 0.7:
            return rng.randint(-5, 3000)
        if kind < 0.75:
            return rng.uniform(0, 1) * 10.0 ** rng.randint(-30, 30)
        if nan and kind < 0.8:
            return rng.choice([math.nan, math.inf, -math.inf])
        return round(rng.uniform(0, 500), 1)

    annotations = []
    for k in range(n_anns):
        r = rng.random()
        image_id = rng.choice(image_ids) if r > 0.03 or clean else rng.choice([99999, -1])
        category_id = rng.choice(cat_ids) if rng.random() > 0.03 or clean else 1000
        bbox: object = [number() for _ in range(4)]
        r = 1.0 if clean else rng.random()
        if r < 0.02:
            bbox = bbox[:3]
        elif r < 0.03:
            bbox = ["1", 2, 3, 4]
        elif r < 0.04:
            bbox = None
        ann = {"id": k, "image_id": image_id, "category_id": category_id, "area": number()}
        if bbox is not None:
            ann["bbox"] = bbox
        r = rng.random()
        if r < 0.1:
            ann["iscrowd"] = 1
            ann["segmentation"] = rng.choice(
                [{"counts": 'ab\\"[{c', "size": [4, 5]}, {"counts": [0, 5, 3], "size": [2, 4]}]
            )
        else:
            ann["iscrowd"] = 0
            seg = [
                [number() for _ in range(2 * rng.randint(3, 8))] for _ in range(rng.randint(1, 3))
            ]
            odd = [[]] if clean else [[[]], [1, 2, 3, 4]]
            ann["segmentation"] = rng.choice([seg, seg, seg, [], *odd])
        if rng.random() < 0.3:
            ann["attributes"] = {
                rng.choice(_ODD_TEXT): rng.choice(["s", 1, 2.5, True, None, [1, "a"], {"k": 1}]),
                "occluded": rng.random() < 0.5,
            }
        annotations.append(ann)
    doc = {"images": images, "annotations": annotations, "categories": categories}
    keys = list(doc)
    rng.shuffle(keys)
    out = {"info": {"note": rng.choice(_ODD_TEXT) + '"annotations": ['}}
    out.update({k: doc[k] for k in keys})
    out["licenses"] = [{"id": 1, "name": '"images": ['}]
    return out


def _check_against_reference(path: Path, **kwargs) -> None:
    source = Source("src", str(path.parent))
    result = CocoReader(**kwargs).read_file(source, None, str(path))
    rows, rejects, n_images = _reference(source, path)
    assert result.images == n_images
    got = result.boxes.to_pylist()
    assert len(got) == len(rows)
    for a, b in zip(got, rows):
        assert _norm(a) == _norm(b)
    assert [(r.image_id, r.box_index, r.reason) for r in result.rejects] == rejects
    assert result.boxes.schema.equals(S.READER_SCHEMA)


# --- the real datumaro fixtures ----------------------------------------------------------------
@pytest.fixture
def datumaro_coco() -> Path:
    if not DATUMARO_COCO.is_dir():
        pytest.skip("../shared/fixtures is not present")
    return DATUMARO_COCO


def test_datumaro_detect_and_files(datumaro_coco: Path) -> None:
    source = Source("d", str(datumaro_coco))
    reader = CocoReader()
    assert reader.detect(source)
    names = [Path(p).name for p in reader.files(source, None)]
    assert names == ["instances_train.json", "instances_val.json"]


def test_datumaro_train_exact(datumaro_coco: Path) -> None:
    source = Source("d", str(datumaro_coco))
    path = str(datumaro_coco / "annotations" / "instances_train.json")
    result = CocoReader().read_file(source, None, path)
    assert result.images == 1 and result.rejects == []
    # category id 2 is "b": ids 1, 2, 4 skip 3; empty segmentation -> no polygon
    assert result.boxes.to_pylist() == [
        {
            "image_id": "5",
            "image_uri": (datumaro_coco / "images" / "train" / "a.jpg").as_uri(),
            "image_width": 10,
            "image_height": 5,
            "box_index": 0,
            "raw_label": "b",
            "x0": 2.0,
            "y0": 2.0,
            "x1": 5.0,
            "y1": 3.0,
            "is_crowd": False,
            "attributes": [],
            "polygon": None,
        }
    ]


def test_datumaro_val_crowd_rle_and_attributes(datumaro_coco: Path) -> None:
    source = Source("d", str(datumaro_coco))
    path = str(datumaro_coco / "annotations" / "instances_val.json")
    result = CocoReader().read_file(source, None, path)
    rows = result.boxes.to_pylist()
    assert result.images == 1 and result.rejects == [] and len(rows) == 2
    uri = (datumaro_coco / "images" / "val" / "b.jpg").as_uri()
    first, crowd = rows
    assert (first["image_id"], first["image_uri"], first["box_index"]) == ("40", uri, 0)
    assert (first["image_width"], first["image_height"]) == (5, 10)
    assert first["raw_label"] == "a"
    assert (first["x0"], first["y0"], first["x1"], first["y1"]) == (0.0, 0.0, 1.0, 2.0)
    assert first["polygon"] == [[0.0, 0.0, 1.0, 0.0, 1.0, 2.0, 0.0, 2.0]]
    assert dict(first["attributes"]) == {"x": "1", "y": "hello"}
    assert not first["is_crowd"]
    # the crowd box: uncompressed RLE -> no polygon
    assert crowd["is_crowd"] and crowd["polygon"] is None and crowd["raw_label"] == "b"
    assert (crowd["x0"], crowd["y0"], crowd["x1"], crowd["y1"]) == (0.0, 0.0, 1.0, 9.0)
    assert crowd["box_index"] == 1


@pytest.mark.parametrize("block_size", [1, 2, 3, 7, 64])
def test_datumaro_tiny_blocks(datumaro_coco: Path, block_size: int) -> None:
    source = Source("d", str(datumaro_coco))
    for path in CocoReader().files(source, None):
        whole = CocoReader().read_file(source, None, path)
        small = CocoReader(block_size=block_size, batch_size=1).read_file(source, None, path)
        assert small.boxes.equals(whole.boxes)


# --- generated files ----------------------------------------------------------------------------
def test_multi_block_cuts_strings_escapes_numbers(tmp_path: Path) -> None:
    rng = random.Random(3)
    path = _write(tmp_path, _random_coco(rng, 30, 300), indent=rng.choice([None, 1]))
    whole = _read(path)
    assert whole.boxes.num_rows > 200
    for block_size in (1, 2, 3, 5, 13, 64, 1000):
        small = _read(path, block_size=block_size, batch_size=7)
        assert small.boxes.equals(whole.boxes)
        assert small.rejects == whole.rejects
    _check_against_reference(path, block_size=5, batch_size=3)


@pytest.mark.parametrize("seed", range(8))
def test_equivalent_to_json_load_reference(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    doc = _random_coco(rng, nan=seed % 4 == 1, clean=seed % 2 == 0)
    path = _write(tmp_path, doc, indent=rng.choice([None, 2]))
    _check_against_reference(path)
    _check_against_reference(path, block_size=rng.randint(1, 300), batch_size=rng.randint(1, 50))


def test_escaped_quotes_and_brackets_in_strings(tmp_path: Path) -> None:
    images = [{"id": 1, "file_name": 'we"ird [x] {y}\\.jpg', "width": 10, "height": 10}]
    categories = [{"id": 1, "name": 'a\\"b]}'}, {"id": 2, "name": "\\\\"}]
    doc = _doc(
        [_ann(1, 1), _ann(1, 2, attributes={'k"]': '{"v": [1]}\\'})],
        images=images,
        categories=categories,
        notes='"annotations": [{"image_id": 5}], "images": [',
    )
    doc = {'"annotations"': [1], **doc, "trailing\\": "\\"}
    path = _write(tmp_path, doc)
    for block_size in (1, 2, 4, 1 << 20):
        result = _read(path, block_size=block_size)
        rows = result.boxes.to_pylist()
        assert [r["raw_label"] for r in rows] == ['a\\"b]}', "\\\\"]
        assert dict(rows[1]["attributes"]) == {'k"]': '{"v": [1]}\\'}
        # a backslash in a relative path is a separator: "we\"ird [x] {y}/.jpg" in images/
        assert rows[0]["image_uri"].endswith('/images/we"ird [x] {y}/.jpg')
        assert result.images == 1


def test_categories_after_annotations(tmp_path: Path) -> None:
    doc = {
        "annotations": [_ann(7, 3), _ann(1, 1)],
        "categories": [{"id": 3, "name": "dog"}, {"id": 1, "name": "cat"}],
        "images": [
            {"id": 7, "file_name": "b.jpg", "width": 30, "height": 40},
            {"id": 1, "file_name": "a.jpg", "width": 100, "height": 50},
        ],
    }
    result = _read(_write(tmp_path, doc))
    rows = result.boxes.to_pylist()
    assert [(r["image_id"], r["raw_label"], r["image_width"]) for r in rows] == [
        ("7", "dog", 30),
        ("1", "cat", 100),
    ]


def test_nan_and_infinity_tokens(tmp_path: Path) -> None:
    anns = [
        _ann(1, 1, bbox=(math.nan, 1.0, 2.0, math.inf)),
        _ann(1, 1, segmentation=[[0, 0, math.nan, 1, -math.inf, 2]]),
        _ann(7, 3),
    ]
    path = _write(tmp_path, _doc(anns))
    assert b"NaN" in path.read_bytes() and b"Infinity" in path.read_bytes()
    result = _read(path)
    rows = result.boxes.to_pylist()
    assert len(rows) == 3 and result.rejects == []
    assert math.isnan(rows[0]["x0"]) and rows[0]["y0"] == 1.0 and rows[0]["y1"] == math.inf
    assert rows[0]["x1"] != rows[0]["x1"]  # nan + 2
    ring = rows[1]["polygon"][0]
    assert math.isnan(ring[2]) and ring[4] == -math.inf and ring[5] == 2.0
    assert rows[2]["x1"] == 4.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nonfinite_tokens_split_the_batch_and_read_as_slow_alone(
    tmp_path: Path, monkeypatch, seed: int
) -> None:
    """A batch with a few NaN/Infinity tokens goes slow only around them: same rows, ledger
    and order as the whole batch read the slow way (also with misfits and adjacent tokens)."""
    rng = random.Random(seed)
    anns = []
    for i in range(400):
        ann = _ann(rng.choice([1, 7]), rng.choice([1, 3]), bbox=(i, 1.0, 2.0, 3.0))
        roll = rng.random()
        if roll < 0.03:
            ann["bbox"] = [math.nan, 1.0, 2.0, math.inf]
        elif roll < 0.05:
            ann["segmentation"] = [[0, 0, math.nan, 1, -math.inf, 2]]
        elif roll < 0.06:
            ann["bbox"] = [1, 2, "x", 4]  # a misfit msgspec names, inside a fast run
        elif roll < 0.07:
            ann["category_id"] = 99
        anns.append(ann)
    anns[10]["bbox"] = anns[11]["bbox"] = [math.nan, 0, 0, 0]  # adjacent
    anns[-1]["bbox"] = [math.inf, 0, 0, 0]  # the last element
    path = _write(tmp_path, _doc(anns, attributes={"NaN": 1}))
    split = _read(path, batch_size=128)
    with monkeypatch.context() as m:
        m.setattr(jsonscan, "_around_nonfinite", lambda *args: None)
        slow = _read(path, batch_size=128)
    assert repr(split.boxes.to_pylist()) == repr(slow.boxes.to_pylist())
    assert split.rejects == slow.rejects and len(split.rejects) > 0
    assert split.boxes.num_rows + len(split.rejects) == 400


@pytest.mark.parametrize("cut", [1, 10, 0.3, 0.5, 0.8, -2, -1])
def test_truncated_file(tmp_path: Path, cut: float) -> None:
    full = json.dumps(_doc([_ann(1, 1), _ann(7, 3, segmentation=[[1, 2, 3, 4, 5, 6]])]))
    end = int(len(full) * cut) if isinstance(cut, float) else cut % len(full)
    path = tmp_path / "instances_x.json"
    path.write_text(full[:end])
    for block_size in (7, 1 << 20):
        error = _read_error(path, block_size=block_size)
        assert error.reason == Reason.PARSE_INVALID_JSON, error.detail
        assert "instances_x.json" in error.detail


@pytest.mark.parametrize("content", [b"", b"   \n\t  "])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "instances_e.json"
    path.write_bytes(content)
    assert _read_error(path).reason == Reason.PARSE_EMPTY_FILE


@pytest.mark.parametrize("where", ["file_name", "info"])
def test_latin1_bytes_are_bad_encoding(tmp_path: Path, where: str) -> None:
    doc = _doc([_ann(1, 1)])
    if where == "info":
        doc["info"]["description"] = "caf\u00e9"
    else:
        doc["images"][0]["file_name"] = "caf\u00e9.jpg"
    path = tmp_path / "instances_l.json"
    path.write_bytes(json.dumps(doc, ensure_ascii=False).encode("latin-1"))
    for block_size in (3, 1 << 20):
        error = _read_error(path, block_size=block_size)
        assert error.reason == Reason.PARSE_BAD_ENCODING
        assert "not UTF-8" in error.detail


def test_utf8_bom_and_utf16(tmp_path: Path) -> None:
    doc = _doc(
        [_ann(1, 1), _ann(7, 3)], categories=[{"id": 1, "name": "ünï"}, {"id": 3, "name": "d"}]
    )
    text = json.dumps(doc, ensure_ascii=False)
    bom = tmp_path / "instances_bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    utf16 = tmp_path / "instances_u16.json"
    utf16.write_bytes(text.encode("utf-16"))
    for path in (bom, utf16):
        for block_size in (2, 1 << 20):
            rows = _read(path, block_size=block_size).boxes.to_pylist()
            assert [r["raw_label"] for r in rows] == ["ünï", "d"]


def test_unknown_image_and_category(tmp_path: Path) -> None:
    anns = [_ann(1, 1), _ann(42, 1), _ann(1, 2), _ann(42, 3), _ann(1, 3)]
    result = _read(_write(tmp_path, _doc(anns)))
    assert result.boxes_seen == 5
    assert [(r["image_id"], r["box_index"]) for r in result.boxes.to_pylist()] == [
        ("1", 0),
        ("1", 2),
    ]
    got = [(r.image_id, r.box_index, r.reason) for r in result.rejects]
    assert got == [
        ("42", 0, Reason.PARSE_UNKNOWN_IMAGE),
        ("1", 1, Reason.PARSE_UNKNOWN_CATEGORY),
        ("42", 1, Reason.PARSE_UNKNOWN_IMAGE),
    ]
    assert "category_id 2" in result.rejects[1].detail


@pytest.mark.parametrize(
    ("bbox", "why"),
    [
        (None, "missing"),
        ([1, 2, 3], "3 values"),
        ([1, 2, 3, 4, 5], "5 values"),
        (["1", 2, 3, 4], "non-numeric"),
        ([1, None, 3, 4], "non-numeric"),
        ([True, 2, 3, 4], "non-numeric"),
        ("1,2,3,4", "not a list"),
    ],
)
def test_malformed_bbox(tmp_path: Path, bbox, why: str) -> None:
    bad = _ann(1, 1, bbox=None)
    if bbox is not None:
        bad["bbox"] = bbox
    result = _read(_write(tmp_path, _doc([_ann(1, 1), bad, _ann(1, 3)])))
    assert [r["box_index"] for r in result.boxes.to_pylist()] == [0, 2]
    (reject,) = result.rejects
    assert (reject.image_id, reject.box_index, reject.reason) == (
        "1",
        1,
        Reason.PARSE_MALFORMED_BOX,
    )
    assert why in reject.detail


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "/abs/x.jpg", "file:///etc/x.jpg", "C:\\x.jpg"]
)
def test_path_escape_rejects_that_images_boxes(tmp_path: Path, name: str) -> None:
    images = [
        {"id": 1, "file_name": name, "width": 10, "height": 10},
        {"id": 2, "file_name": "ok.jpg", "width": 10, "height": 10},
    ]
    result = _read(_write(tmp_path, _doc([_ann(1, 1), _ann(2, 1), _ann(1, 3)], images=images)))
    assert [r["image_id"] for r in result.boxes.to_pylist()] == ["2"]
    assert [(r.image_id, r.box_index, r.reason) for r in result.rejects] == [
        ("1", 0, Reason.PARSE_PATH_ESCAPE),
        ("1", 1, Reason.PARSE_PATH_ESCAPE),
    ]


def test_synthetic_uri_and_image_folders(tmp_path: Path) -> None:
    (tmp_path / "images" / "train").mkdir(parents=True)
    (tmp_path / "images" / "train" / "b.jpg").write_bytes(b"x")
    uri = "synthetic://src/1?w=100&h=50"
    images = [
        {"id": 1, "file_name": uri, "width": 100, "height": 50},
        {"id": 7, "file_name": "b.jpg", "width": 30, "height": 40},
    ]
    rows = _read(_write(tmp_path, _doc([_ann(1, 1), _ann(7, 3)], images=images))).boxes
    assert rows.column("image_uri").to_pylist() == [
        uri,
        (tmp_path / "images" / "train" / "b.jpg").as_uri(),
    ]


def test_missing_image_size(tmp_path: Path) -> None:
    images = [
        {"id": 1, "file_name": "synthetic://src/1?w=64&h=48"},  # size from the URI
        {"id": 2, "file_name": "gone.jpg", "width": 0, "height": 5},  # unreadable image
        {"id": 3, "file_name": "gone.jpg"},  # no boxes: not probed, still counted
    ]
    result = _read(_write(tmp_path, _doc([_ann(1, 1), _ann(2, 1)], images=images)))
    rows = result.boxes.to_pylist()
    assert [(r["image_width"], r["image_height"]) for r in rows] == [(64, 48)]
    assert [(r.image_id, r.reason) for r in result.rejects] == [
        ("2", Reason.PARSE_MISSING_IMAGE_SIZE)
    ]
    assert result.images == 3


def test_string_ids_and_interleaved_box_index(tmp_path: Path) -> None:
    images = [
        {"id": "a", "file_name": "a.jpg", "width": 1, "height": 1},
        {"id": "b", "file_name": "b.jpg", "width": 1, "height": 1},
    ]
    categories = [{"id": "x", "name": "X"}]
    anns = [_ann("a", "x"), _ann("b", "x"), _ann("a", "x"), _ann(1, "x"), _ann("b", "y")]
    result = _read(_write(tmp_path, _doc(anns, images=images, categories=categories)))
    rows = result.boxes.to_pylist()
    assert [(r["image_id"], r["box_index"]) for r in rows] == [("a", 0), ("b", 0), ("a", 1)]
    assert [(r.image_id, r.box_index, r.reason) for r in result.rejects] == [
        ("1", 0, Reason.PARSE_UNKNOWN_IMAGE),
        ("b", 1, Reason.PARSE_UNKNOWN_CATEGORY),
    ]


def test_images_without_annotations_are_counted(tmp_path: Path) -> None:
    result = _read(_write(tmp_path, _doc([])))
    assert result.images == 2 and result.boxes.num_rows == 0
    result = _read(_write(tmp_path, {"images": [{"id": 1}], "categories": []}))
    assert result.images == 1 and result.boxes.num_rows == 0


@pytest.mark.parametrize(
    "text",
    [
        "[1, 2]",
        '"just a string"',
        '{"info": {}}',
        '{"images": [], "annotations": {}}',
        '{"images": [], "annotations": [{"image_id": 1}, 5]}',
        '{"images": [], "annotations": [{"image_id": 1},]}',
        '{"images": [], "annotations": [{"image_id": 1} {"image_id": 2}]}',
        '{"images": [] "annotations": []}',
        '{"images": [], "annotations": []} x',
        '{"images": [}, "annotations": []}',
        '{"info": {"a": "bad \\q escape"}, "images": [], "annotations": []}',
        '{"licenses": [{"id": 1,}], "images": [], "annotations": []}',
        '{"images": [], "annotations": [{"image_id": 1, "bbox": [1, 2, 3, 4}]}',
    ],
)
def test_malformed_json(tmp_path: Path, text: str) -> None:
    path = tmp_path / "instances_m.json"
    path.write_text(text)
    for block_size in (3, 1 << 20):
        assert _read_error(path, block_size=block_size).reason == Reason.PARSE_INVALID_JSON


def test_detect(tmp_path: Path) -> None:
    (tmp_path / "labelme").mkdir()
    (tmp_path / "labelme" / "x.json").write_text('{"shapes": [], "imagePath": "x.jpg"}')
    assert not CocoReader().detect(Source("l", str(tmp_path / "labelme")))
    # a big images list first: "annotations" lies beyond the first 64 KB, seen in the tail
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 1, "height": 1} for i in range(5000)]
    (tmp_path / "coco").mkdir()
    _write(tmp_path / "coco", _doc([_ann(1, 1)] * 3000, images=images), name="big.json")
    assert (tmp_path / "coco" / "big.json").stat().st_size > 3 * coco_module.PEEK_BYTES
    assert CocoReader().detect(Source("c", str(tmp_path / "coco")))


def test_reader_table_is_columnar_output(tmp_path: Path) -> None:
    """Many boxes in several batches: one table, file order, no per-box objects kept."""
    anns = [_ann(1 if k % 3 else 7, 1 if k % 2 else 3) for k in range(1000)]
    result = _read(_write(tmp_path, _doc(anns)), block_size=512, batch_size=37)
    assert result.boxes.num_rows == 1000
    image_ids = result.boxes.column("image_id").to_pylist()
    assert image_ids[:4] == ["7", "1", "1", "7"]  # file order
    seen: dict[str, int] = {}
    expected = [seen.__setitem__(i, seen.get(i, -1) + 1) or seen[i] for i in image_ids]
    assert result.boxes.column("box_index").to_pylist() == expected
    assert expected[:4] == [0, 0, 1, 1] and seen == {"7": 333, "1": 665}


def test_bench_file_matches_reference(tmp_path: Path) -> None:
    from vprim.assets.sources.bench_coco import category_ids, write_coco

    path = write_coco(tmp_path / "instances_bench.json", n_boxes=3000, seed=1)
    _check_against_reference(path, block_size=4096, batch_size=500)
    result = _read(path)
    assert result.images == 300 and result.boxes.num_rows == 3000
    labels = set(result.boxes.column("raw_label").to_pylist())
    assert labels <= {f"class_{c}" for c in category_ids()} and len(labels) > 40


def test_bench_main_small(tmp_path: Path) -> None:
    pytest.importorskip("pycocotools")
    from vprim.assets.sources import bench_coco

    figures = bench_coco.main(["--boxes", "500", "--out", str(tmp_path)])
    assert figures["boxes"] == 500
    keys = ("vprim_seconds", "pycocotools_seconds", "vprim_peak_rss_mb", "speedup")
    for key in (*keys, "ingest_seconds", "ingest_peak_rss_mb"):
        assert figures[key] > 0
