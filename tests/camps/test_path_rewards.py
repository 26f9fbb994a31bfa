"""Path tracing (points on the curve, adaptive density), rewards on hand-computed cases, and
the scorer with its two reference models."""

import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vprim.assets.camps import evalsets as E
from vprim.assets.camps import path_tracing as P
from vprim.assets.camps import rewards as R
from vprim.assets.camps import scorer as S
from vprim.assets.camps.primitives import parse_primitives
from vprim.assets.storage import Storage


def _distance_to_polyline(p, line) -> float:
    """The distance of point ``p`` to the polyline ``line``, segment by segment in plain
    Python (the reward has its own, vectorised)."""
    best = math.inf
    for (ax, ay), (bx, by) in itertools.pairwise(line):
        dx, dy = bx - ax, by - ay
        t = 0.0 if dx == dy == 0 else ((p[0] - ax) * dx + (p[1] - ay) * dy) / (dx * dx + dy * dy)
        t = min(1.0, max(0.0, t))
        best = min(best, math.hypot(p[0] - ax - t * dx, p[1] - ay - t * dy))
    return best


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**40 - 1), st.sampled_from(P.DIFFICULTIES), st.booleans())
def test_traced_points_lie_on_the_curve(seed, difficulty, mono):
    row = P.generate_path(seed, difficulty=difficulty, single_colour=mono)
    meta = json.loads(row["meta"])
    pts = parse_primitives(row["target"]).all_points
    d = [_distance_to_polyline(p, meta["curve_999"]) for p in pts]
    assert max(d) <= 2.0  # a sample of the curve, rounded to integers
    assert pts[0] == meta["curve_999"][0] and pts[-1] == meta["end_999"]
    assert row["answer"] == meta["answer"] and meta["answer"] in meta["candidates"]
    assert R.path_reward(meta, row["target"])["total"] == pytest.approx(1.0)


def test_points_denser_in_bends_and_near_crossings():
    cfg = P.PathConfig()
    t = np.linspace(0, 1, 400)
    straight = np.array([[0, 0], [100, 0], [200, 0], [300, 0]], float)
    pts, d1, d2 = P.bezier(straight, t)
    n_plain = len(P.adaptive_points(pts, d1, d2, P.nearest_other(pts, []), cfg))
    bent = np.array([[0, 0], [300, 300], [0, 300], [300, 0]], float)
    bp, b1, b2 = P.bezier(bent, t)
    assert (
        len(P.adaptive_points(bp, b1, b2, P.nearest_other(bp, []), cfg))
        / np.linalg.norm(np.diff(bp, axis=0), axis=1).sum()
        > n_plain / 300
    )
    cross = [P.bezier(np.array([[150, -50], [150, 0], [150, 0], [150, 50]], float), t)[0]]
    assert len(P.adaptive_points(pts, d1, d2, P.nearest_other(pts, cross), cfg)) > n_plain


def test_rewards_hand_computed():
    r = R.counting_reward({"gt": 4}, "<|ref|>a<|/ref|><|box|>[[1,1,2,2]]<|/box|>\nAnswer: 5")
    assert r["count"] == pytest.approx(0.7 * math.exp(-0.6)) and r["exact"] == 0.0
    dup = "<|ref|>a<|/ref|><|box|>[[1,1,2,2],[1,1,2,2]]<|/box|>\nAnswer: 4"
    assert R.format_reward({}, dup)["total"] == pytest.approx(0.8)
    assert R.format_reward({}, "junk")["total"] == 0.0
    # path: a straight true curve (0,500)->(400,500), endpoint (400,500), answer B
    meta = {"curve_999": [[x, 500] for x in range(0, 401, 50)], "end_999": [400, 500],
            "answer": "B"}  # fmt: skip
    pred = "<|point|>[[0,536],[400,536]]<|/point|>\nAnswer: B"  # 36 off all along
    r = R.path_reward(meta, pred)
    assert r["trajectory"] == pytest.approx(math.exp(-(36 - 3) / 30))
    assert r["endpoint"] == pytest.approx(1 - 36 / 40) and r["no_jump"] == 0.0  # 400 step
    # 0.4 trajectory + 0.2 endpoint + 0.1 no_jump (0) + 0.3 answer (right)
    assert r["total"] == pytest.approx(0.4 * math.exp(-33 / 30) + 0.2 * (1 - 36 / 40) + 0.3)


@pytest.fixture(scope="module")
def evals(tmp_path_factory):
    store = Storage(str(tmp_path_factory.mktemp("root")))
    return store, {n: E.build_eval(store, n, 30) for n in ("maze", "path_tracing")}


@pytest.mark.parametrize("name", ["maze", "path_tracing"])
def test_scorer_oracle_is_one_baseline_near_chance(evals, name):
    store, _ = evals
    table = S.read_eval(store, name)
    oracle = S.score(table, {p["sample_id"]: p["prediction"]
                             for p in S.reference_predictions(table, "oracle")})  # fmt: skip
    (c,) = oracle["camps"]
    assert c["reward"] == pytest.approx(1.0) and c["accuracy"] == 1.0 and c["missing"] == 0
    base = S.score(table, {p["sample_id"]: p["prediction"]
                           for p in S.reference_predictions(table, "baseline")})  # fmt: skip
    (b,) = base["camps"]
    assert b["reward"] < 0.5
    none = S.score(table, {})["camps"][0]
    assert none["missing"] == 30 and none["reward"] == 0.0 and none["accuracy"] == 0.0
    preds, bad = S.read_predictions(['{"sample_id": "x", "prediction": "Answer: A"}', "{oops"])
    assert bad == 1 and S.score(table, preds)["unknown_ids"] == 1
    assert "accuracy" in S.scorecard_text(name, base)


def test_eval_and_train_seeds_disjoint():
    bases = sorted(e.seed_base for e in E.EVAL_SETS.values())
    assert bases[0] >= 2**40  # training seeds stay below 2**40
    sizes = {e.name: e.size for e in E.EVAL_SETS.values()}
    assert sizes["maze"] == sizes["path_tracing"] == 2000
    for lo, hi in itertools.pairwise(bases):
        assert hi - lo > 10**6
