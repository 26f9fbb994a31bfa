"""The primitive-format parser: round trips, malformed text, and never raising (hypothesis)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from vprim.assets.camps.primitives import (
    format_answer,
    format_boxes,
    format_points,
    parse_primitives,
)


def test_round_trip():
    t = (
        format_boxes("red cube", [[50, 60, 70, 80], [1, 2, 3, 4]])
        + format_points([[10, 20], [30, 40]])
        + format_answer(2)
    )
    p = parse_primitives(t)
    assert p.errors == [] and p.duplicate_boxes == 0
    assert p.refs == [("red cube", [[1, 2, 3, 4], [50, 60, 70, 80]])]
    assert p.refs[0].label == "red cube"
    assert p.points == [[[10, 20], [30, 40]]] and p.answer == "2"


def test_malformed():
    p = parse_primitives(
        "<|ref|>a<|/ref|><|box|>[[1,2,3,1000],[1.5,2,3,4],[1,2,3],[-1,0,5,5],[0,0,9,9],[0,0,9,9]]"
        "<|/box|><|point|>[[1,2] junk <|/ref|>\nAnswer: 4\nAnswer:  yes "
    )
    assert p.refs == [("a", [[0, 0, 9, 9], [0, 0, 9, 9]])]
    assert p.duplicate_boxes == 1
    assert p.answer == "yes"  # the last Answer line
    assert len(p.errors) == 6  # >999, float, arity, negative, 2 unmatched tags
    assert parse_primitives(None).errors and parse_primitives(b"x").answer is None
    assert parse_primitives("").errors == [] and parse_primitives("").answer is None
    huge = parse_primitives("<|point|>[[" + "9" * 5000 + ",1]]<|/point|>")
    assert huge.points == [[]] and huge.errors


_pieces = st.sampled_from(
    ["<|ref|>", "<|/ref|>", "<|box|>", "<|/box|>", "<|point|>", "<|/point|>", "[", "]", ",",
     "[[", "]]", "\nAnswer: ", "Answer:", "-", "999", "1000", "1.5", "dog", " ", "\n", "99999999"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.lists(st.one_of(_pieces, st.text(max_size=3))).map("".join)))
def test_never_raises(text):
    p = parse_primitives(text)
    for label, boxes in p.refs:
        assert isinstance(label, str)
        assert all(len(b) == 4 and all(0 <= v <= 999 for v in b) for b in boxes)
    assert all(len(q) == 2 and all(0 <= v <= 999 for v in q) for g in p.points for q in g)
    assert p.duplicate_boxes >= 0
    assert not any(e.startswith("parser error") for e in p.errors)  # no safety-net catch
