"""The bulk paths of the one-file-per-image readers (YOLO, VOC, LabelMe) against ``read_file``.

A bulk path may only take a file it reads exactly as ``read_file`` does; everything else is
declined and read the per-file way. So every test here reads a source twice, with and without
the bulk path, and asserts the same rows, the same ledger and the same counts; the quirky
sources also assert that the bulk path declined what it must not read itself.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vprim.assets.sources import ingest
from vprim.assets.sources.synthetic import corpus as G
from vprim.assets.sources.readers import READERS
from vprim.assets.sources.readers.base import (
    REMOTE_SCHEMES,
    BulkReader,
    Source,
    remote_refs,
    url_path,
    url_scheme,
)

BULK_FORMATS = ("yolo", "voc", "labelme")


def read_both(monkeypatch, source_id: str, uri: str, fmt: str):
    """``read_source`` with the bulk paths, then without; returns both outcomes."""
    with_bulk = ingest.read_source(source_id, uri, fmt)
    with monkeypatch.context() as m:
        for name in BULK_FORMATS:
            m.setattr(READERS[name], "bulk", lambda source, context: None)
        per_file = ingest.read_source(source_id, uri, fmt)
    return with_bulk, per_file


def assert_same(a: ingest.SourceOutcome, b: ingest.SourceOutcome) -> None:
    # repr: NaN coordinates are data here and must compare equal
    assert repr([t.to_pylist() for t in a.boxes]) == repr([t.to_pylist() for t in b.boxes])
    assert all(t.schema.equals(b.boxes[0].schema) for t in a.boxes)
    assert a.rejects == b.rejects
    drop = {"seconds"}
    assert {k: v for k, v in a.stats.items() if k not in drop} == {
        k: v for k, v in b.stats.items() if k not in drop
    }


def taken(fmt: str, uri: str) -> list[int]:
    """What the bulk path makes of each annotation file of a source (-1: declined)."""
    source = Source("src", uri)
    reader = READERS[fmt]
    context = reader.prepare(source)
    bulk = reader.bulk(source, context)
    assert isinstance(bulk, BulkReader)
    return [bulk.add(path) for path in reader.files(source, context)]


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory) -> G.Corpus:
    return G.generate_corpus(str(tmp_path_factory.mktemp("bulk") / "corpus"), "tiny", seed=0)


def test_every_tiny_source_reads_the_same_with_and_without_bulk(tiny_corpus, monkeypatch):
    catalog = pq.read_table(tiny_corpus.catalog_path).to_pylist()
    seen = 0
    for row in catalog:
        a, b = read_both(monkeypatch, row["source_id"], row["uri"], row["format"])
        assert_same(a, b)
        seen += a.stats["format"] in BULK_FORMATS
    assert seen >= 10  # the tiny corpus has sources of every bulk format, defects included


def _yolo_source(root: Path) -> Path:
    lines = {
        "a.txt": "0 0.5 0.5 0.2 0.2\n1 0.1 0.1 0.3 0.1 0.3 0.3 0.1 0.3\n",  # box + polygon
        "b.txt": "1 nan 0.5 0.2 0.2\n\n0 0.5 0.5 inf 0.1\n",  # non-finite, blank line
        "c.txt": "3.0 0.5 0.5 0.2 0.2\n",  # a float class index: declined, read per file
        "d.txt": "7 0.5 0.5 0.2 0.2\n",  # unknown class: declined, rejected per file
        "e.txt": "0 0.5 x 0.2 0.2\n",  # not a number
        "f.txt": "",  # an image without objects
        "g.txt": b"\xef\xbb\xbf0 0.5 0.5 0.2 0.2\n",  # BOM
        "h.txt": "0 0.5 0.5 0.2\n",  # too few values
        "i.txt": "0 0.5 0.5 0.2 0.2\n",  # no image listed: no size
    }
    root.mkdir(parents=True)
    (root / "obj.names").write_text("cat\ndog\n")
    listed = [f"synthetic://src/{name[0]}?w=640&h=480" for name in lines if name != "i.txt"]
    (root / "train.txt").write_text("\n".join(listed) + "\n")
    labels = root / "obj_train_data"
    labels.mkdir()
    for name, text in lines.items():
        (labels / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    return root


def _voc_source(root: Path) -> Path:
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
        "a.xml": doc(good + good.replace("cat", "dog")),
        "b.xml": doc(good, size=""),  # no size: the image header (the synthetic URI)
        "c.xml": doc(good.replace("<xmin>1</xmin>", "<xmin>one</xmin>")),
        "d.xml": doc(good.replace("<name>cat</name>", "")),
        "e.xml": doc(""),  # no objects
        "f.xml": "<annotation><object>",  # not XML
        "g.xml": "<!DOCTYPE annotation>\n<annotation><filename>y.jpg</filename></annotation>",
        "h.xml": doc(good.replace("<name>cat</name>", "<name>cat</name><name>x</name>")),
    }
    (root / "Annotations").mkdir(parents=True)
    for name, text in files.items():
        (root / "Annotations" / name).write_text(text)
    return root


def _labelme_source(root: Path) -> Path:
    def doc(shapes: list, **extra) -> str:
        body = {
            "shapes": shapes,
            "imagePath": "synthetic://src/x?w=640&h=480",
            "imageWidth": 640,
            "imageHeight": 480,
        }
        return json.dumps({**body, **extra})

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
        "b.json": doc([{**rect, "points": [["10", 20], [30, 40]]}]),  # numeric string
        "c.json": doc([{**rect, "shape_type": "mask"}]),  # unsupported type
        "d.json": doc([rect], imageWidth=None),  # no size: the image header
        "e.json": doc([{**rect, "points": [[1, 2]]}]),  # a one-point rectangle
        "f.json": doc([]),  # an image without boxes
        "g.json": json.dumps({"classes": ["cat"]}),  # not an annotation
        "h.json": doc([{**rect, "label": True}]),
        "i.json": "{not json",
    }
    root.mkdir(parents=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


QUIRKY = {"yolo": _yolo_source, "voc": _voc_source, "labelme": _labelme_source}


@pytest.mark.parametrize("fmt", BULK_FORMATS)
def test_quirky_files_read_the_same_and_only_plain_ones_go_bulk(fmt, tmp_path, monkeypatch):
    uri = str(QUIRKY[fmt](tmp_path / fmt))
    a, b = read_both(monkeypatch, "src", uri, fmt)
    assert_same(a, b)
    assert a.rejects, "the quirky source has files the per-file path rejects"
    counts = taken(fmt, uri)
    expected = {
        "yolo": [2, 2, -1, -1, -1, -1, -1, -1, -1],
        "voc": [2, -1, -1, -1, 0, -1, -1, 1],
        "labelme": [4, -1, -1, -1, -1, 0, -1, -1, -1],
    }[fmt]
    assert counts == expected


def test_a_failing_bulk_path_falls_back_to_the_per_file_path(tmp_path, monkeypatch):
    uri = str(_yolo_source(tmp_path / "yolo"))

    class Broken(BulkReader):
        def __init__(self, inner: BulkReader):
            self.inner = inner

        def add(self, path: str) -> int:
            return self.inner.add(path)

        def table(self):
            raise ZeroDivisionError("a bug in a bulk path")

    reader = READERS["yolo"]
    real = type(reader).bulk
    with monkeypatch.context() as m:
        m.setattr(reader, "bulk", lambda source, context: Broken(real(reader, source, context)))
        broken = ingest.read_source("src", uri, "yolo")
    _, per_file = read_both(monkeypatch, "src", uri, "yolo")
    assert_same(broken, per_file)


# --- the cheap URL rules the bulk paths lean on ----------------------------------------------
_URLISH = st.text(alphabet=st.sampled_from(list("ab:/?#&=hw0129[] \t\nSyntheic.+-%")), max_size=40)


@settings(max_examples=200, deadline=None)
@given(ref=st.one_of(_URLISH, st.text(max_size=30)))
def test_url_scheme_is_what_urlsplit_says(ref):
    try:
        expected = urlsplit(ref).scheme.lower()
    except ValueError:
        return
    assert url_scheme(ref) == expected


@settings(max_examples=300, deadline=None)
@given(ref=st.one_of(_URLISH, st.text(max_size=30)), prefix=st.sampled_from(["", "synthetic://"]))
def test_url_path_is_what_urlsplit_says(ref, prefix):
    try:
        expected = urlsplit(prefix + ref).path
    except ValueError:
        return
    assert url_path(prefix + ref) == expected


@pytest.mark.parametrize(
    "ref", ["synthetic://[::1]/a/b?x", "s3://b/k#f?g", "http://h", "gs://b?/x", "a://h/p]q"]
)
def test_url_path_on_bracketed_and_bare_netlocs(ref):
    assert url_path(ref) == urlsplit(ref).path


_REMOTE_PREFIXES = st.sampled_from(
    ["synthetic://", "HTTPS://", "s3:", "gs://b/", "ab:", " http://", ""]
)


@settings(max_examples=200, deadline=None)
@given(refs=st.lists(st.builds(lambda a, b: a + b, _REMOTE_PREFIXES, _URLISH), max_size=8))
def test_remote_refs_only_claims_what_url_scheme_calls_remote(refs):
    """The vectorised test COCO uses: True only where url_scheme agrees, and for every plain
    remote URL (a scheme at the start, no tab or newline)."""
    found = remote_refs(pa.array([*refs, None], pa.string()))
    assert not found[-1]
    for ref, claimed in zip(refs, found[:-1]):
        try:
            remote = url_scheme(ref) in REMOTE_SCHEMES
        except ValueError:  # urlsplit's own rejects ("synthetic://\n]"): the general way
            assert not claimed, ref
            continue
        assert not claimed or remote, ref
        plain = ref[:1].isalpha() and not set(ref) & set("\t\r\n")
        assert claimed == (remote and plain), ref


@settings(max_examples=150, deadline=None)
@given(
    path=st.text(alphabet=st.sampled_from(list("ab/._-[]:@ %?#é")), max_size=20),
    width=st.integers(0, 10**9),
    height=st.integers(0, 10**9),
)
def test_synthetic_image_size_fast_path_matches_the_general_rule(path, width, height):
    uri = f"synthetic://src/{path}?w={width}&h={height}"
    try:
        parts = urlsplit(uri)
    except ValueError:
        return
    q = parse_qs(parts.query)
    try:
        expected = (int(q["w"][0]), int(q["h"][0]))
    except (KeyError, ValueError, IndexError):
        expected = None
    assert Source.image_size(None, uri) == expected  # type: ignore[arg-type]


# --- VOC's plain layout, read without a tree ---------------------------------------------------
_VOC_DOC = (
    "{ws}<annotation>{ws}<folder>VOC</folder>\n\t<filename>{filename}</filename>{ws}"
    "<source><database>d</database></source>\n<size>{ws}<width>{width}</width>"
    "<height>{height}</height><depth>3</depth></size>{ws}<segmented>0</segmented>\n"
    "{objects}</annotation>{ws}"
)
_VOC_OBJECT = (
    "<object>{ws}<name>{name}</name>{ws}{pose}<truncated>0</truncated>{ws}"
    "<difficult>{difficult}</difficult>{ws}<bndbox><xmin>{x}</xmin>{ws}<ymin>2</ymin>"
    "<xmax>30.5</xmax><ymax> 40 </ymax></bndbox>{ws}{attributes}</object>{ws}"
)
# plain texts, tricky ones, and any code point (markup, entities, controls, CR, ...)
_ANY_TEXT = st.one_of(
    st.sampled_from(["dog", " a b ", "", "0", "\u00fc\u2003", "x]]>y", "\x85n\xa0", "t\tu\nv"]),
    st.text(max_size=8),
)
_WS = st.sampled_from(["", "\n\t", " \r\n ", "\u3000", "x"])


@st.composite
def _voc_objects(draw) -> str:
    attributes = draw(
        st.sampled_from(
            [
                "",
                "<attributes><attribute><name>colour</name><value>red</value></attribute>"
                "</attributes>",
                "<attributes>\n<attribute><name> pose </name><value>v</value></attribute>"
                "<attribute><name></name><value>w</value></attribute></attributes>",
            ]
        )
    )
    return _VOC_OBJECT.format(
        ws=draw(_WS),
        name=draw(_ANY_TEXT),
        pose=draw(st.sampled_from(["", "<pose>Left</pose>", "<pose> a&amp;b </pose>"])),
        difficult=draw(_ANY_TEXT),
        x=draw(st.sampled_from(["1", " 7.25\n", "-3", "12", "1e3", "x", ""])),
        attributes=attributes,
    )


@settings(max_examples=500, deadline=None)
@given(
    ws=_WS,
    filename=st.one_of(_ANY_TEXT, st.sampled_from(["synthetic://s/a?w=4&amp;h=3", " a.jpg "])),
    width=st.sampled_from(["640", " 480 ", "", "0"]),
    height=st.sampled_from(["480", "x"]),
    objects=st.lists(_voc_objects(), max_size=3),
)
def test_voc_plain_layout_reads_as_the_tree_does(ws, filename, width, height, objects):
    """The regex reader gives what the tree walk gives, or leaves the file to it."""
    from vprim.assets.sources.readers import voc

    text = _VOC_DOC.format(
        ws=ws, filename=filename, width=width, height=height, objects="".join(objects)
    )
    plain = voc._plain_voc(text)
    if plain is not None:
        assert plain == voc._VocBulk._from_tree(text)


def test_voc_plain_layout_takes_the_generator_files():
    from vprim.assets.sources.readers import voc

    text = _VOC_DOC.format(
        ws="\n", filename="synthetic://s/a?w=4&amp;h=3", width="4", height="3",
        objects=_VOC_OBJECT.format(ws="\n\t", name="dog", pose="", difficult="0", x="1",
                                   attributes=""),
    )  # fmt: skip
    assert voc._plain_voc(text) == (
        "synthetic://s/a?w=4&h=3", "4", "3", ["dog"], [(0.0, 1.0, 30.5, 40.0)],
        [{"truncated": "0", "difficult": "0"}],
    )  # fmt: skip


def _points_one_by_one(value):
    """LabelMe's plain-points rule written as a loop per point (the reference)."""
    if not isinstance(value, list) or not value:
        return None
    flat = []
    for point in value:
        if type(point) is not list or len(point) != 2:
            return None
        for v in point:
            if type(v) not in (int, float):
                return None
            try:
                flat.append(float(v))
            except OverflowError:
                return None
    return flat


_JSONISH = st.one_of(
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(
        st.lists(st.lists(_JSONISH, min_size=1, max_size=3), max_size=4),
        st.lists(st.tuples(st.floats(), st.integers()).map(list), max_size=4),
        _JSONISH,
    )
)
def test_labelme_plain_points_is_the_rule_per_point(value):
    from vprim.assets.sources.readers.labelme import _plain_points

    got, expected = _plain_points(value), _points_one_by_one(value)
    assert repr(got) == repr(expected)


# --- LabelMe: the typed (msgspec) decode against the per-file path ----------------------------
_NUMBER = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20),
    st.integers(min_value=10**300, max_value=10**400),
    st.floats(),
)
_POINTS = st.one_of(
    st.lists(st.lists(_NUMBER, min_size=2, max_size=2), max_size=4),
    st.lists(st.lists(st.one_of(_NUMBER, st.booleans(), st.text(max_size=2)), max_size=3)),
    _JSONISH,
)
_SHAPE = st.fixed_dictionaries(
    {},
    optional={
        "label": st.one_of(st.text(max_size=4), st.integers(), st.booleans(), st.none()),
        "points": _POINTS,
        "shape_type": st.sampled_from(
            ["rectangle", "polygon", "circle", "point", "linestrip", "mask", None, 3]
        ),
        "flags": st.one_of(st.none(), st.dictionaries(st.text(max_size=2), _JSONISH, max_size=2)),
        "attributes": st.one_of(
            st.none(), _JSONISH, st.dictionaries(st.text(max_size=2), _JSONISH, max_size=2)
        ),
        "group_id": _JSONISH,
    },
)
_PLAIN_NUMBER = st.one_of(st.integers(-(10**6), 10**6), st.floats(-1e6, 1e6))
_PLAIN_SHAPE = st.fixed_dictionaries(  # what real files hold: most of them go the typed way
    {
        "label": st.one_of(st.text(max_size=4), st.integers(0, 99)),
        "points": st.lists(st.lists(_PLAIN_NUMBER, min_size=2, max_size=2), max_size=4),
    },
    optional={
        "shape_type": st.sampled_from(["rectangle", "polygon", "circle", "point", None]),
        "flags": st.dictionaries(st.text(max_size=2), st.booleans(), max_size=2),
        "attributes": st.dictionaries(st.text(max_size=2), _JSONISH, max_size=2),
        "group_id": st.one_of(st.none(), st.integers(0, 9), st.text(max_size=2)),
    },
)
_DOC = st.fixed_dictionaries(
    {
        "shapes": st.one_of(
            st.lists(st.one_of(_PLAIN_SHAPE, _SHAPE, _JSONISH), max_size=4),
            st.lists(_PLAIN_SHAPE, max_size=4),
            _JSONISH,
        )
    },
    optional={
        "imagePath": st.sampled_from(["synthetic://src/x?w=64&h=48", "x.jpg", "", 7, None]),
        "imageWidth": st.one_of(
            st.sampled_from([640, 640]), st.integers(-1, 10**20), st.floats(), st.text(max_size=3)
        ),
        "imageHeight": st.sampled_from([480, 480, 0, "480", None, 480.0, 480.5]),
    },
)


_PLAIN_DOC = st.fixed_dictionaries(
    {
        "shapes": st.lists(_PLAIN_SHAPE, max_size=4),
        "imagePath": st.just("synthetic://src/x?w=64&h=48"),
        "imageWidth": st.just(640),
        "imageHeight": st.sampled_from([480, 480.0]),
    }
)


@settings(max_examples=int(os.environ.get("VPRIM_HYPOTHESIS_EXAMPLES", 200)), deadline=None)
@given(docs=st.lists(st.one_of(_PLAIN_DOC, _DOC), min_size=1, max_size=3))
def test_labelme_typed_decode_reads_as_the_per_file_path(docs):
    """Files msgspec decodes into the typed Structs must read exactly as ``read_file`` reads
    them; the rest (NaN tokens, 1e400, booleans as numbers, wrong types) falls back."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "labelme"
        root.mkdir()
        for i, doc in enumerate(docs):
            (root / f"{i}.json").write_text(json.dumps(doc))  # NaN/Infinity tokens included
        a, b = read_both(pytest.MonkeyPatch(), "src", str(root), "labelme")
        assert_same(a, b)
