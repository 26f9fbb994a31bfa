"""The spatial camp: scenes meet their placement rules, program execution agrees with a plain
per-object interpreter written here, refusals happen exactly when the referred object is
absent, targets ground every step, and everything is a function of the seed."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.camps.grid999 import grid_box
from vprim.assets.camps import primitives as prim
from vprim.assets.camps.spatial import (
    FAMILIES,
    Reject,
    SpatialConfig,
    generate_spatial,
    make_sample,
    verify,
)
from vprim.assets.camps.spatial_program import (
    MISSING,
    AmbiguousReference,
    ProgramError,
    execute,
    node,
)
from vprim.assets.camps.spatial_scene import COLOURS, SceneConfig, sample_scene

SEEDS = st.integers(0, 2**40)
FAST = settings(
    max_examples=int(os.environ.get("VPRIM_HYPOTHESIS_EXAMPLES", 60)),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# --- a plain reference interpreter over the scene's object rows ---------------------------


def reference(program: list[dict], objects: list[dict]):
    """Sets as Python sets of indices, objects as an index or "missing"."""
    n = len(objects)
    cx = [(o["box"][0] + o["box"][2]) / 2 for o in objects]
    cy = [(o["box"][1] + o["box"][3]) / 2 for o in objects]
    side = {
        "left": lambda i, j: cx[i] < cx[j],
        "right": lambda i, j: cx[i] > cx[j],
        "above": lambda i, j: cy[i] < cy[j],
        "below": lambda i, j: cy[i] > cy[j],
    }
    out: list = []
    for nd in program:
        fn, arg, a = nd["fn"], nd["arg"], [out[i] for i in nd["inputs"]]
        if any(x == "missing" for x in a):
            out.append("missing")
        elif fn == "scene":
            out.append(set(range(n)))
        elif fn.startswith("filter_"):
            out.append({i for i in a[0] if objects[i][fn[7:]] == arg})
        elif fn == "unique":
            assert len(a[0]) <= 1, "a unique reference met several objects"
            out.append(next(iter(a[0])) if a[0] else "missing")
        elif fn == "relate":
            out.append({i for i in range(n) if i != a[0] and side[arg](i, a[0])})
        elif fn.startswith("same_"):
            k = fn[5:]
            out.append({i for i in range(n) if i != a[0] and objects[i][k] == objects[a[0]][k]})
        elif fn in ("union", "intersect"):
            out.append(a[0] | a[1] if fn == "union" else a[0] & a[1])
        elif fn == "count":
            out.append(len(a[0]))
        elif fn == "exist":
            out.append(len(a[0]) > 0)
        elif fn.startswith("query_"):
            out.append(objects[a[0]][fn[6:]])
        elif fn in ("equal_integer", "less_than", "greater_than") or fn.startswith("equal_"):
            x, y = a
            out.append({"less_than": x < y, "greater_than": x > y}.get(fn, x == y))
        else:
            raise AssertionError(fn)
    return out


def _answer(value) -> str:
    if value == "missing":
        return "refuse"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _box999(o: dict, w: int, h: int) -> list[int]:
    """The object's box on the 0..999 grid by the tests' own reference."""
    return grid_box(o["box"], w, h)


# --- scenes -------------------------------------------------------------------------------


@FAST
@given(SEEDS)
def test_scene_meets_its_placement_rules(seed):
    config = SceneConfig()
    scene = sample_scene(seed, config)
    assert config.min_objects <= scene.n <= config.max_objects
    c = scene.centres
    d = np.abs(c[:, None] - c[None, :])
    off = ~np.eye(scene.n, dtype=bool)
    assert (d[off] >= config.min_gap).all()  # no relation ties on either axis
    assert (scene.visible >= config.min_visible).all()
    assert (scene.boxes[:, :2] >= 0).all()
    assert (scene.boxes[:, 2] <= config.width).all() and (scene.boxes[:, 3] <= config.height).all()


def test_scene_config_rejects_bad_values():
    with pytest.raises(ValueError, match="expected 1 <= min <= max"):
        SceneConfig(min_objects=5, max_objects=2)
    with pytest.raises(ValueError, match="too small"):
        SceneConfig(width=100, height=100)


# --- programs -----------------------------------------------------------------------------


@FAST
@given(SEEDS)
def test_sample_agrees_with_the_reference_interpreter(seed):
    try:
        scene, fields, _ = make_sample(seed)
    except Reject:
        return
    meta = fields["meta"]
    objects = meta["objects"]
    program = meta["program"]
    ref = reference(program, objects)
    trace = execute(program, scene)
    # the answer, in text and in meta, is the reference interpreter's
    assert fields["answer"] == meta["answer"] == _answer(ref[-1])
    # refusals exactly when a unique reference met no object
    uniques = [k for k, nd in enumerate(program) if nd["fn"] == "unique"]
    absent = any(ref[k] == "missing" and ref[program[k]["inputs"][0]] != "missing"
                 for k in uniques)  # fmt: skip
    assert (meta["answer_type"] == "refuse") == absent
    # count == size of the counted set, exist == count > 0, on the executed trace
    for k, nd in enumerate(program):
        if nd["fn"] in ("count", "exist") and ref[k] != "missing":
            size = int(np.count_nonzero(trace[nd["inputs"][0]]))
            assert size == len(ref[nd["inputs"][0]])
            assert trace[k] == (size if nd["fn"] == "count" else size > 0)
    # every grounded step boxes exactly its reference set, left to right
    parsed = prim.parse_primitives(fields["target"])
    assert not parsed.errors and parsed.answer == fields["answer"]
    for step, r in zip(meta["steps"], parsed.refs, strict=True):
        value = ref[step["node"]]
        members = set() if value == "missing" else ({value} if isinstance(value, int) else value)
        want = sorted(_box999(objects[i], scene.width, scene.height) for i in members)
        assert r.label == step["ref"]
        assert [list(b) for b in r.boxes] == want == step["boxes_999"]
    assert fields["difficulty"] == FAMILIES[meta["family"]][0]
    assert meta["question_kind"] == FAMILIES[meta["family"]][1]


def test_unique_of_several_objects_is_ambiguous_and_bad_programs_are_named():
    scene = sample_scene(3)
    with pytest.raises(AmbiguousReference):
        execute([node("scene"), node("unique", [0])], scene)
    with pytest.raises(ProgramError, match="unknown function"):
        execute([node("scene"), node("teleport", [0])], scene)
    with pytest.raises(ProgramError, match="not a known color"):
        execute([node("scene"), node("filter_color", [0], "plaid")], scene)


def test_missing_reference_propagates_to_the_answer():
    scene = sample_scene(5)
    colours = {o["color"] for o in scene.objects()}
    absent = next(c for c in COLOURS if c not in colours)
    program = [node("scene"), node("filter_color", [0], absent), node("unique", [1]),
               node("relate", [2], "left"), node("count", [3])]  # fmt: skip
    assert execute(program, scene)[-1] is MISSING


def test_verify_catches_a_tampered_target():
    scene, fields, _ = make_sample(11)
    target = fields["target"]
    with pytest.raises(Reject) as e:
        verify(scene, fields["meta"], target.rsplit("Answer:", 1)[0] + "Answer: 999")
    assert e.value.reason == "answer_mismatch"
    meta = json.loads(json.dumps(fields["meta"]))
    meta["steps"][0]["ref"] = "teapot"
    with pytest.raises(Reject) as e:
        verify(scene, meta, target)
    assert e.value.reason == "trace_mismatch"


# --- rows ---------------------------------------------------------------------------------


def test_rows_are_a_function_of_the_seed():
    a, ra = generate_spatial(range(100, 112))
    b, rb = generate_spatial(range(100, 112))
    assert a == b and ra == rb
    assert len({r["sample_id"] for r in a}) == len(a)
    c, _ = generate_spatial(range(200, 212))
    assert {r["image_png"] for r in a}.isdisjoint({r["image_png"] for r in c})


def test_kinds_restrict_the_families_and_refusals_occur():
    rows, _ = generate_spatial(range(300, 380), SpatialConfig(refuse_rate=0.5), kinds=("tf",))
    metas = [json.loads(r["meta"]) for r in rows]
    assert {m["question_kind"] for m in metas} == {"tf"}
    assert {r["answer"] for r in rows} <= {"yes", "no", "refuse"}
    assert any(m["answer_type"] == "refuse" for m in metas)
    assert all(r["camp"] == "spatial" and r["image_png"][:8] == b"\x89PNG\r\n\x1a\n" for r in rows)


def test_config_rejects_unknown_kinds():
    with pytest.raises(ValueError, match="expected some of"):
        SpatialConfig().families(("essay",))
