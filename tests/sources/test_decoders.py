"""The fast decoders inside the readers, each against an independent reference.

A reader has one implementation of its format's rules, but may decode a file two ways: VOC's
plain layout with regular expressions (the reference: the element tree), LabelMe's common
file with msgspec into typed Structs (the reference: the stdlib ``json``). Each fast decoder
must read exactly what its reference reads, or leave the file to it. The cheap URL rules,
sizes and text decoding the readers lean on are checked against the standard library.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vprim.assets.contracts.reasons import Reason
from vprim.assets.sources import ingest
from vprim.assets.sources.readers import labelme, voc
from vprim.assets.sources.readers.base import (
    REMOTE_SCHEMES,
    ParseError,
    Source,
    decode_text,
    image_dimension,
    remote_refs,
    url_path,
    url_scheme,
)

# --- the cheap URL rules ------------------------------------------------------------------------
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


# --- sizes and text -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, expected",
    [
        (640, 640),
        ("640", 640),
        ("0640", 640),  # leading zeros: a number all the same
        (" 640", 640),  # blanks around a number (float() allows them)
        ("640.0", 640),  # integral, written as a float
        (640.0, 640),
        (2**31 - 1, 2**31 - 1),  # the largest int32
        ("2147483647", 2**31 - 1),
        (2**31, None),  # beyond int32
        ("2147483648", None),
        ("99999999999999999999", None),
        (0, None),  # not positive
        ("0", None),
        (-3, None),
        (640.5, None),  # not integral
        ("", None),
        ("\u0663", 3),  # an Arabic-Indic digit: float() reads it, so the rule does
        (True, None),  # a boolean is no number
        (None, None),
        (float("nan"), None),
    ],
)
def test_image_dimension(value, expected):
    assert image_dimension(value) == expected


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"abc", "abc"),
        (b"\xef\xbb\xbfabc", "abc"),  # a UTF-8 BOM is dropped
        ("abc".encode("utf-16"), "abc"),  # UTF-16 with its BOM
        ("abc".encode("utf-32"), "abc"),
        (b"\x00abc", "\x00abc"),  # a NUL first that starts no BOM: plain UTF-8
        (b"\xfe", Reason.PARSE_BAD_ENCODING),  # a lone BOM byte
        (b"caf\xe9", Reason.PARSE_BAD_ENCODING),
        (b"", Reason.PARSE_EMPTY_FILE),
        (b" \t\r\n\x0b\x0c", Reason.PARSE_EMPTY_FILE),  # every ASCII blank
        (b" \xa0", Reason.PARSE_BAD_ENCODING),  # a non-ASCII byte is no blank
    ],
)
def test_decode_text(data, expected):
    if isinstance(expected, Reason):
        with pytest.raises(ParseError) as err:
            decode_text(data, "x")
        assert err.value.reason == expected
    else:
        assert decode_text(data, "x") == expected


# --- VOC: the plain layout, read without a tree ---------------------------------------------------
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
    """The regex decoder gives what the tree walk gives, or leaves the file to it."""
    text = _VOC_DOC.format(
        ws=ws, filename=filename, width=width, height=height, objects="".join(objects)
    )
    plain = voc._plain_voc(text)
    if plain is not None:
        assert plain == voc._tree_voc(text, "x")


def test_voc_plain_layout_takes_the_generator_files():
    text = _VOC_DOC.format(
        ws="\n", filename="synthetic://s/a?w=4&amp;h=3", width="4", height="3",
        objects=_VOC_OBJECT.format(ws="\n\t", name="dog", pose="", difficult="0", x="1",
                                   attributes=""),
    )  # fmt: skip
    assert voc._plain_voc(text) == (
        "synthetic://s/a?w=4&h=3", "4", "3", ["dog"], [(0.0, 1.0, 30.5, 40.0)],
        [{"truncated": "0", "difficult": "0"}], True, "VOC",
    )  # fmt: skip


# --- LabelMe: points, and the typed decode against json -----------------------------------------
def _points_one_by_one(value):
    """LabelMe's points rule written as a loop per point (the reference)."""
    if not isinstance(value, list) or not value:
        return "no points" if not value else "points is not a list"
    flat = []
    for i, point in enumerate(value):
        if type(point) is not list or len(point) != 2:
            return f"point {i} is not an [x, y] pair"
        for v in point:
            if isinstance(v, bool):
                return f"point {i} has a value that is not a number"
            if isinstance(v, int):
                flat.append(float(v) if abs(v) < 2**1000 else (1 if v > 0 else -1) * float("inf"))
            elif isinstance(v, float):
                flat.append(v)
            else:
                try:
                    flat.append(float(v))
                except (TypeError, ValueError):
                    return f"point {i} has a value that is not a number"
    return flat


_JSONISH = st.one_of(
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.sampled_from(["12.5", " 3", "nan", "-inf", "1e999"]),
)


@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(
        st.lists(st.lists(_JSONISH, min_size=1, max_size=3), max_size=4),
        st.lists(st.tuples(st.floats(), st.integers()).map(list), max_size=4),
        _JSONISH,
    )
)
def test_labelme_points_are_the_rule_per_point(value):
    got, expected = labelme._flat_points(value), _points_one_by_one(value)
    assert repr(got) == repr(expected)


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


def _outcome(root: Path) -> tuple:
    out = ingest.read_source("src", str(root), "labelme")
    rows = repr([t.to_pylist() for t in out.boxes])  # repr: NaN is data here, equal to NaN
    return rows, out.rejects, {k: v for k, v in out.stats.items() if k != "seconds"}


@settings(max_examples=int(os.environ.get("VPRIM_HYPOTHESIS_EXAMPLES", 200)), deadline=None)
@given(docs=st.lists(st.one_of(_PLAIN_DOC, _DOC), min_size=1, max_size=3))
def test_labelme_typed_decode_reads_as_json_does(docs):
    """Files msgspec decodes into the typed Structs read exactly as the ``json`` decode reads
    them; the rest (NaN tokens, 1e400, booleans as numbers, wrong types) goes the json way."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "labelme"
        root.mkdir()
        for i, doc in enumerate(docs):
            (root / f"{i}.json").write_text(json.dumps(doc))  # NaN/Infinity tokens included
        both = _outcome(root)
        with pytest.MonkeyPatch.context() as m:
            m.setattr(labelme, "_typed_doc", lambda data: None)
            json_only = _outcome(root)
    assert both == json_only


def test_labelme_typed_decode_takes_the_plain_file():
    data = json.dumps(
        {"shapes": [{"label": "a", "points": [[1, 2], [3, 4]]}], "imageWidth": 4}
    ).encode()
    doc = labelme._typed_doc(data)
    assert (
        doc is not None and doc.imageWidth == 4 and doc.shapes[0].points == [(1.0, 2.0), (3.0, 4.0)]
    )
    assert labelme._typed_doc(data.replace(b"4]]", b"NaN]]")) is None  # a token msgspec refuses
