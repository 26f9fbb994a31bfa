"""The counting camp: every boxed instance satisfies the constraint, every instance that
satisfies it is boxed, the answer is the number of boxes (checked against a plain per-instance
predicate written here), ambiguous relations are refused, and samples are a function of the
seed and of the image pool."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.camps.grid999 import grid_box
from vprim.assets.camps import primitives as prim
from vprim.assets.camps.counting import (
    COLOURS,
    FAMILIES,
    POSES,
    CountingConfig,
    CountScene,
    Reject,
    constraint_mask,
    generate_counting,
    make_question,
    verify,
)

W, H = 64, 48
LABELS = ("car", "bus", "dog")
VOCAB = ("car", "bus", "dog", "zebra", "kite")
FAST = settings(
    max_examples=int(os.environ.get("VPRIM_HYPOTHESIS_EXAMPLES", 120)),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def scenes(draw) -> CountScene:
    """0..10 instances on a 64x48 image, attributes known or unknown per label."""
    n = draw(st.integers(0, 10))
    labels = [draw(st.sampled_from(LABELS)) for _ in range(n)]
    boxes, attrs = [], []
    known = {lab: draw(st.booleans()) for lab in LABELS}
    for lab in labels:
        x0 = draw(st.floats(0, W - 4))
        y0 = draw(st.floats(0, H - 4))
        x1 = draw(st.floats(x0 + 2, W))
        y1 = draw(st.floats(y0 + 2, H))
        boxes.append([x0, y0, x1, y1])
        a = {}
        if known[lab]:
            a = {"colour": draw(st.sampled_from(COLOURS[:4])), "pose": draw(st.sampled_from(POSES)),
                 "occluded": draw(st.sampled_from(["0", "1"]))}  # fmt: skip
        attrs.append(a)
    return CountScene.from_instances("k", f"synthetic://s/img?w={W}&h={H}", W, H, labels,
                                     np.asarray(boxes).reshape(-1, 4), attrs)  # fmt: skip


def satisfies(scene: CountScene, i: int, c: dict) -> bool:
    """The constraint on one instance, written plainly (no margins: ambiguity is separate)."""
    if scene.labels[i] != c["label"]:
        return False
    x0, y0, x1, y1 = scene.boxes[i]
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    if "attribute" in c:
        a = scene.attributes[i]
        key = c["attribute"]
        return a.get(key) == c["value"]
    if "region" in c:
        return {"top": cy < H / 2, "bottom": cy > H / 2, "left": cx < W / 2,
                "right": cx > W / 2}[c["region"]]  # fmt: skip
    if "relation" in c:
        j = c["ref"]
        if i == j:
            return False
        r0, s0, r1, s1 = scene.boxes[j]
        rx, ry = (r0 + r1) / 2, (s0 + s1) / 2
        area, ref_area = (x1 - x0) * (y1 - y0), (r1 - r0) * (s1 - s0)
        return {"left_of": cx < rx, "right_of": cx > rx, "above": cy < ry, "below": cy > ry,
                "larger": area > ref_area, "smaller": area < ref_area}[c["relation"]]  # fmt: skip
    return True


def _box999(b) -> list[int]:
    """The box on the 0..999 grid by the tests' own reference (not the camp's function)."""
    return grid_box(b, W, H)


@FAST
@given(scenes(), st.integers(0, 2**32), st.sampled_from(FAMILIES))
def test_trace_boxes_exactly_the_instances_that_satisfy_the_constraint(scene, seed, family):
    try:
        fields, _ = make_question(seed, scene, VOCAB, families=(family,))
    except Reject:
        assume(False)
    meta = fields["meta"]
    c = meta["constraint"]
    want = sorted(_box999(scene.boxes[i]) for i in range(scene.n) if satisfies(scene, i, c))
    parsed = prim.parse_primitives(fields["target"])
    assert not parsed.errors
    counted = [r for r in parsed.refs if r.label == meta["phrase"]]
    assert len(counted) == 1
    boxes = [list(b) for b in counted[0].boxes]
    # every boxed instance satisfies the constraint, and none that does is left out
    assert boxes == want == meta["boxes_999"]
    # the count is the number of boxes
    assert fields["answer"] == parsed.answer == str(len(boxes)) == str(meta["gt"])
    if family == "negative":
        assert meta["gt"] == 0
    if "relation" in c:  # the reference instance is grounded first
        assert [list(b) for b in parsed.refs[0].boxes] == [_box999(scene.boxes[c["ref"]])]
    assert fields["difficulty"] == family == meta["family"]


@FAST
@given(scenes(), st.integers(0, 2**32))
def test_ambiguous_relations_are_never_written(scene, seed):
    config = CountingConfig()
    try:
        fields, _ = make_question(seed, scene, VOCAB, config, families=("relation",))
    except Reject:
        return
    c = fields["meta"]["constraint"]
    _, ambiguous = constraint_mask(scene, c, config)
    assert not ambiguous.any()


def _scene(boxes, labels, attrs=None) -> CountScene:
    attrs = attrs or [{} for _ in labels]
    return CountScene.from_instances("k", f"synthetic://s/i?w={W}&h={H}", W, H, labels,
                                     np.asarray(boxes, float), attrs)  # fmt: skip


def test_attributes_are_normalised_from_source_spellings():
    s = _scene([[0, 0, 5, 5]] * 3, ["car"] * 3,
               [{"color": "Red", "pose": "Unspecified", "occluded": "1"},
                {"colour": "plaid", "pose": "Left"}, {"isoccluded": "0"}])  # fmt: skip
    assert s.colour.tolist() == ["red", "", ""]
    assert s.pose.tolist() == ["", "left", ""]
    assert s.occluded.tolist() == [1, -1, 0]


def test_verify_rejects_a_box_that_is_not_an_instance_and_a_wrong_count():
    s = _scene([[2, 2, 10, 10], [30, 20, 40, 30]], ["car", "car"])
    fields, _ = make_question(0, s, VOCAB, families=("coarse",))
    meta, target = fields["meta"], fields["target"]
    with pytest.raises(Reject) as e:
        verify(s, meta, target.replace("Answer: 2", "Answer: 3"))
    assert e.value.reason == "count_mismatch"
    fake = prim.format_boxes("car", [[1, 1, 2, 2], *meta["boxes_999"]]) + prim.format_answer("3")
    with pytest.raises(Reject) as e:
        verify(s, meta, fake)
    assert e.value.reason == "box_not_an_instance"
    short = prim.format_boxes("car", meta["boxes_999"][:1]) + prim.format_answer("1")
    with pytest.raises(Reject) as e:
        verify(s, meta, short)
    assert e.value.reason == "box_mismatch"


def test_a_centre_on_the_dividing_line_is_ambiguous():
    # one car centred on the vertical midline: "left half" is neither true nor false
    s = _scene([[W / 2 - 4, 2, W / 2 + 4, 10]], ["car"])
    _, amb = constraint_mask(s, {"label": "car", "region": "left"})
    assert amb.tolist() == [True]


def test_a_mostly_hidden_instance_is_not_counted():
    # the second car (drawn later) covers the first entirely: "how many cars" is not asked
    s = _scene([[10, 10, 20, 20], [5, 5, 30, 30]], ["car", "car"])
    with pytest.raises(Reject) as e:
        make_question(0, s, ["car"], CountingConfig(attempts=2), families=("coarse",))
    assert e.value.reason == "attempts_exhausted" and "instance_hidden" in str(e.value)


def test_rows_are_a_function_of_the_seed_and_pool():
    pool = [
        _scene([[2, 2, 10, 10], [30, 20, 40, 30], [12, 30, 20, 44]], ["car", "car", "bus"],
               [{"colour": "red"}, {"colour": "blue"}, {"colour": "red"}]),
        _scene([[5, 5, 25, 25]], ["dog"]),
    ]  # fmt: skip
    pool[1] = CountScene(**{**pool[1].__dict__, "image_key": "k2",
                            "image_uri": f"synthetic://s/j?w={W}&h={H}"})  # fmt: skip
    a, ra = generate_counting(range(20), pool, VOCAB)
    b, rb = generate_counting(range(20), pool, VOCAB)
    assert a == b and ra == rb
    assert len(a) > 10
    assert {r["image_uri"] for r in a} == {p.image_uri for p in pool}
    for r in a:
        meta = json.loads(r["meta"])
        assert r["camp"] == "counting" and r["answer"] == str(meta["gt"])
        assert r["image_png"][:8] == b"\x89PNG\r\n\x1a\n"


def test_an_unreadable_image_is_counted_not_written():
    s = CountScene.from_instances("k", "memory://nowhere/missing.png", W, H, ["car"],
                                  np.array([[1.0, 1, 9, 9]]), [{}])  # fmt: skip
    rows, rejects = generate_counting(range(3), [s], VOCAB)
    assert rows == [] and rejects["image_unreadable"] == 1
