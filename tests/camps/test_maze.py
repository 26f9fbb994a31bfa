"""Mazes: spanning trees or provably unsolvable, solutions that never cross a wall, rewards."""

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vprim.assets.camps import maze as M
from vprim.assets.camps.primitives import parse_primitives
from vprim.assets.camps.rewards import maze_reward


def _bfs_distances(n: int, pairs, src: int) -> list[int]:
    """Steps from ``src`` to every cell over ``pairs`` (-1: unreachable), by plain BFS."""
    neighbours: dict[int, set[int]] = {i: set() for i in range(n)}
    for a, b in pairs:
        neighbours[a].add(b)
        neighbours[b].add(a)
    dist, frontier, step = {src: 0}, [src], 0
    while frontier:
        step += 1
        frontier = [v for u in frontier for v in sorted(neighbours[u]) if v not in dist]
        for v in frontier:
            dist.setdefault(v, step)
    return [dist.get(i, -1) for i in range(n)]


def _cells(meta: dict, points) -> list[int]:
    """The cell each traced point is the centre of (-1: none); the maze writes centres."""
    index = {tuple(c): i for i, c in enumerate(meta["centers_999"])}
    return [index.get(tuple(p), -1) for p in points]


def _components(n: int, pairs) -> int:
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in pairs:
        parent[find(a)] = find(b)
    return len({find(i) for i in range(n)})


@pytest.mark.parametrize("kind", M.KINDS)
@pytest.mark.parametrize("algorithm", M.ALGORITHMS)
def test_carve_is_a_spanning_tree(kind, algorithm):
    grid = M.make_grid(kind, M.SIZES["medium"][kind], 448, 12)
    open_ = M.carve(grid, algorithm, np.random.default_rng(1))
    n = len(grid.centers)
    assert open_.sum() == n - 1  # n - 1 passages ...
    assert _components(n, grid.edges[open_]) == 1  # ... connecting every cell: a tree


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**40 - 1), st.sampled_from(M.DIFFICULTIES), st.sampled_from(M.KINDS))
def test_generated_mazes_solvable_or_provably_not(seed, difficulty, kind):
    row = M.generate_maze(seed, difficulty=difficulty, kind=kind)
    meta = json.loads(row["meta"])
    n, edges = len(meta["centers_999"]), meta["open_edges"]
    dist = np.asarray(_bfs_distances(n, edges, meta["start"]))
    if meta["solvable"]:
        assert len(edges) == n - 1 and _components(n, edges) == 1  # spanning tree
        assert row["answer"] == "yes" and dist[meta["goal"]] == meta["path_len"]
    else:
        assert len(edges) == n - 2 and _components(n, edges) == 2  # one wall added mid-path
        assert row["answer"] == "no" and dist[meta["goal"]] < 0  # BFS: goal unreachable
    # the target never crosses a wall: every step is a passage, from the start
    cells = _cells(meta, parse_primitives(row["target"]).all_points)
    open_set = {tuple(sorted(e)) for e in edges}
    assert cells[0] == meta["start"] and -1 not in cells
    assert all(tuple(sorted(s)) in open_set for s in itertools.pairwise(cells))
    if meta["solvable"]:
        assert cells[-1] == meta["goal"]
    else:
        assert set(cells) == set(np.flatnonzero(dist >= 0).tolist())  # explored it all
    assert maze_reward(meta, row["target"])["total"] == pytest.approx(1.0)


def _toy_meta(solvable: bool = True) -> dict:
    """A 1x4 corridor 0-1-2-3 (centres 100 apart), start 0, goal 3."""
    edges = [[0, 1], [1, 2], [2, 3]] if solvable else [[0, 1], [2, 3]]
    centers = [[100, 500], [200, 500], [300, 500], [400, 500]]
    return {"centers_999": centers, "open_edges": edges, "start": 0, "goal": 3,
            "solvable": solvable, "snap": 45}  # fmt: skip


def _pts(*cells: int) -> str:
    return "<|point|>[" + ",".join(f"[{100 * (c + 1)},500]" for c in cells) + "]<|/point|>"


def test_maze_reward_hand_computed():
    m = _toy_meta()
    # half way, answer right: progress 1 - 1/3, no crossing, not valid (does not reach)
    r = maze_reward(m, _pts(0, 1, 2) + "\nAnswer: yes")
    assert r["progress"] == pytest.approx(2 / 3) and r["wall"] == 1.0 and r["valid"] == 0.0
    assert r["total"] == pytest.approx(0.3 * 2 / 3 + 0.2 + 0.3)
    # a jump 0 -> 2 is a wall crossing (not adjacent): the trace is cut at it
    r = maze_reward(m, _pts(0, 2, 3) + "\nAnswer: yes")
    assert r["progress"] == 0.0 and r["wall"] == 0.5  # explored only 0; 1 of 2 moves illegal
    assert r["valid"] == 0.0
    # unsolvable corridor (wall between 1 and 2): explores 0, 1 and says no -> 1.0
    u = _toy_meta(False)
    assert maze_reward(u, _pts(0, 1) + "\nAnswer: no")["total"] == pytest.approx(1.0)
    r = maze_reward(u, _pts(0) + "\nAnswer: no")  # half explored, no moves
    assert r["completeness"] == 0.5 and r["wall"] == 0.0
    assert r["total"] == pytest.approx(0.3 * 0.5 + 0.3)  # completeness 0.3, answer 0.3
    assert maze_reward(m, "garbage <|point|>[[1,")["total"] == 0.0


def test_min_cell_size_and_determinism():
    a, b = M.generate_maze(5), M.generate_maze(5)
    assert a == b
    for kind in M.KINDS:
        grid = M.make_grid(kind, M.SIZES["hard"][kind], 448, 12)
        d = np.linalg.norm(np.diff(grid.centers[grid.edges], axis=1)[:, 0], axis=1)
        assert d.min() >= 20  # px: cells are never smaller
