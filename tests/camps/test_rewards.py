"""Reward values on hand-computed cases."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assets.camps.primitives import format_answer, format_boxes, format_points
from assets.camps.rewards import (
    MAZE_WEIGHTS,
    counting_reward,
    format_penalty,
    maze_reward,
    normalise_answer,
    spatial_reward,
)


def test_counting_hand_computed():
    r = counting_reward({"gt": 4}, "<|ref|>cars<|/ref|><|box|>[[1,1,2,2]]<|/box|>\nAnswer: 5")
    assert r["count"] == pytest.approx(0.7 * math.exp(-0.6)) and r["exact"] == 0
    assert r["total"] == pytest.approx(0.7 * math.exp(-0.6))
    assert counting_reward({"gt": 4}, "Answer: 4")["total"] == pytest.approx(1.0)
    assert counting_reward({"gt": 0}, "Answer: zero")["total"] == pytest.approx(1.0)
    assert counting_reward({"gt": 0}, "Answer: 2")["total"] == pytest.approx(0.7 * math.exp(-6))
    assert counting_reward({"gt": 3}, "no answer")["total"] == 0
    assert counting_reward({"gt": 3}, None)["total"] == 0


def test_spatial_normalisation():
    assert normalise_answer("True.") == "yes" and normalise_answer(" NO ") == "no"
    assert normalise_answer("three") == "3" and normalise_answer("3.0") == "3"
    assert normalise_answer("The Cylinder") == "cylinder"
    assert normalise_answer("There is no such object") == "refuse"
    meta = {"answer": "yes"}
    assert spatial_reward(meta, "Answer: true")["total"] == 1
    assert spatial_reward(meta, "Answer: no")["total"] == 0
    assert spatial_reward({"answer": "refuse"}, "Answer: cannot answer")["total"] == 1
    assert spatial_reward({"answer": "red"}, "Answer: Red")["total"] == 1
    assert spatial_reward({"answer": "2"}, "garbage")["total"] == 0


def test_format_penalty_duplicates():
    t = format_boxes("dog", [[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4]]) + format_answer(3)
    r = format_penalty({}, t)
    assert r["duplicate_boxes"] == 2 and r["total"] == pytest.approx(-0.2)
    assert format_penalty({}, format_boxes("dog", [[1, 2, 3, 4]]))["total"] == 0


# 2x2 maze: (0,0)-(0,1), (0,1)-(1,1), (0,0)-(1,0) open; cell centres at 250/750.
MAZE = {"rows": 2, "cols": 2, "start": [0, 0], "goal": [1, 1], "solvable": True, "answer": "yes",
        "open": [[[0, 0], [0, 1]], [[0, 1], [1, 1]], [[0, 0], [1, 0]]]}  # fmt: skip
UNSOLVABLE = dict(MAZE, solvable=False, answer="no", open=[MAZE["open"][0], MAZE["open"][2]])


def _trace(points, answer):
    return format_points(points) + format_answer(answer)


def test_maze_hand_computed():
    assert sum(MAZE_WEIGHTS.values()) == pytest.approx(1.0)
    r = maze_reward(MAZE, _trace([[250, 250], [750, 250], [750, 750]], "yes"))
    assert (r["progress"], r["walls"], r["validity"], r["answer"]) == (1, 1, 1, 1)
    assert r["total"] == pytest.approx(1.0)
    # through the wall (1,0)|(1,1): cut after (1,0), 3 moves from the goal, path length 2
    r = maze_reward(MAZE, _trace([[250, 250], [250, 750], [750, 750]], "yes"))
    assert (r["progress"], r["walls"], r["validity"], r["crossings"]) == (0, 0, 0, 1)
    assert r["total"] == pytest.approx(0.3)
    # a jump (0,1)->(1,0): cut at (0,1), 1 from the goal -> progress 0.5
    r = maze_reward(MAZE, _trace([[250, 250], [750, 250], [250, 750]], "no"))
    assert r["progress"] == pytest.approx(0.5) and r["walls"] == 0 and r["answer"] == 0
    assert r["total"] == pytest.approx(0.15)
    # a trace that does not start at the start explores nothing
    assert maze_reward(MAZE, _trace([[750, 250], [750, 750]], "yes"))["progress"] == 0
    assert maze_reward(MAZE, "garbage")["total"] == 0


def test_maze_unsolvable():
    r = maze_reward(UNSOLVABLE, _trace([[250, 250], [750, 250]], "no"))
    assert r["completeness"] == pytest.approx(2 / 3) and "progress" not in r
    assert r["total"] == pytest.approx(0.3 * 2 / 3 + 0.2 + 0.2 + 0.3)
    r = maze_reward(UNSOLVABLE, _trace([[250, 250], [750, 250], [250, 250], [250, 750]], "no"))
    assert r["completeness"] == pytest.approx(1.0) and r["total"] == pytest.approx(1.0)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200), st.lists(st.lists(st.integers(0, 999), min_size=2, max_size=2)))
def test_rewards_bounded(text, points):
    for meta, fn in (({"gt": 3}, counting_reward), ({"answer": "yes"}, spatial_reward),
                     (MAZE, maze_reward), (UNSOLVABLE, maze_reward)):  # fmt: skip
        for pred in (text, _trace(points, text)):
            r = fn(meta, pred)
            assert 0 <= r["total"] <= 1 + 1e-9
            assert all(isinstance(v, float) for v in r.values()), r
