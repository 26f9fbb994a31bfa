"""Reward values on hand-computed cases."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vprim.assets.camps.primitives import format_answer, format_boxes, format_points
from vprim.assets.camps.rewards import (
    MAZE_WEIGHTS,
    counting_reward,
    format_reward,
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


def test_duplicate_boxes_are_penalised():
    t = format_boxes("dog", [[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4]]) + format_answer(3)
    r = format_reward({}, t)
    assert r["duplicates"] == 2 and r["total"] == pytest.approx(1 - 0.4)
    assert format_reward({}, format_boxes("dog", [[1, 2, 3, 4]]))["total"] == 0  # no answer
    assert format_reward({}, format_boxes("dog", [[1, 2, 3, 4]]) + "\nAnswer: 1")["total"] == 1
    # every camp's total loses 0.1 per duplicate box
    assert counting_reward({"gt": 3}, t)["total"] == pytest.approx(1 - 0.2)
    assert spatial_reward({"answer": "3"}, t)["total"] == pytest.approx(1 - 0.2)


# A 2x2 maze as the maze camp writes it: cells 0 (top left), 1 (top right), 2 (bottom left),
# 3 (bottom right) at centres 250/750; passages 0-1, 1-3, 0-2 (a wall between 2 and 3).
MAZE = {"centers_999": [[250, 250], [750, 250], [250, 750], [750, 750]], "snap": 225,
        "open_edges": [[0, 1], [1, 3], [0, 2]], "start": 0, "goal": 3,
        "solvable": True}  # fmt: skip
UNSOLVABLE = dict(MAZE, solvable=False, open_edges=[[0, 1], [0, 2]])
TOP_LEFT, TOP_RIGHT, BOTTOM_LEFT, BOTTOM_RIGHT = [250, 250], [750, 250], [250, 750], [750, 750]


def _trace(points, answer):
    return format_points(points) + format_answer(answer)


def test_maze_hand_computed():
    assert sum(MAZE_WEIGHTS.values()) == pytest.approx(1.0)
    r = maze_reward(MAZE, _trace([TOP_LEFT, TOP_RIGHT, BOTTOM_RIGHT], "yes"))
    assert (r["progress"], r["wall"], r["valid"], r["answer"]) == (1, 1, 1, 1)
    assert r["total"] == pytest.approx(1.0)
    # through the wall 2|3: cut after cell 2, whose distance to the goal (3) is the whole
    # path (2): progress 0; 1 of 2 moves crosses a wall: wall 0.5; answer right
    r = maze_reward(MAZE, _trace([TOP_LEFT, BOTTOM_LEFT, BOTTOM_RIGHT], "yes"))
    assert (r["progress"], r["wall"], r["valid"], r["answer"]) == (0, 0.5, 0, 1)
    assert r["total"] == pytest.approx(0.2 * 0.5 + 0.3)
    # a diagonal jump 1 -> 2: cut at cell 1, 1 move from the goal -> progress 1 - 1/2
    r = maze_reward(MAZE, _trace([TOP_LEFT, TOP_RIGHT, BOTTOM_LEFT], "no"))
    assert r["progress"] == pytest.approx(0.5) and r["wall"] == 0.5 and r["answer"] == 0
    assert r["total"] == pytest.approx(0.3 * 0.5 + 0.2 * 0.5)
    # a trace that does not start at the start explores nothing (its one move is legal)
    r = maze_reward(MAZE, _trace([TOP_RIGHT, BOTTOM_RIGHT], "yes"))
    assert r["progress"] == 0 and r["wall"] == 1 and r["total"] == pytest.approx(0.2 + 0.3)
    # a point off every cell (farther than snap from each centre) is a crossing
    assert maze_reward(MAZE, _trace([TOP_LEFT, [500, 500]], "yes"))["wall"] == 0
    assert maze_reward(MAZE, "garbage")["total"] == 0


def test_maze_unsolvable():
    # 3 reachable cells (0, 1, 2); visiting 2 of them is not a valid exploration
    r = maze_reward(UNSOLVABLE, _trace([TOP_LEFT, TOP_RIGHT], "no"))
    assert r["completeness"] == pytest.approx(2 / 3) and "progress" not in r
    assert r["valid"] == 0 and r["total"] == pytest.approx(0.3 * 2 / 3 + 0.2 + 0.3)
    r = maze_reward(UNSOLVABLE, _trace([TOP_LEFT, TOP_RIGHT, TOP_LEFT, BOTTOM_LEFT], "no"))
    assert r["completeness"] == pytest.approx(1.0) and r["valid"] == 1
    assert r["total"] == pytest.approx(1.0)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200), st.lists(st.lists(st.integers(0, 999), min_size=2, max_size=2)))
def test_rewards_bounded(text, points):
    for meta, fn in (({"gt": 3}, counting_reward), ({"answer": "yes"}, spatial_reward),
                     (MAZE, maze_reward), (UNSOLVABLE, maze_reward)):  # fmt: skip
        for pred in (text, _trace(points, text)):
            r = fn(meta, pred)
            assert 0 <= r["total"] <= 1 + 1e-9
            assert all(isinstance(v, float) for v in r.values()), r
