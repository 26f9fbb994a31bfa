"""The maze camp: rectangular, circular (theta) and hexagonal (sigma) grids.

A grid is cells (centres in pixels) plus neighbour pairs, each pair with the wall drawn
between the two cells. A perfect maze opens a spanning tree of the neighbour pairs, made by
DFS (recursive backtracker, iterative), Prim or Kruskal. Start is a random cell and goal the
cell farthest from it. An unsolvable maze closes the passage in the middle of the solution,
which splits the tree in two (checked by BFS). Difficulty is the grid size; cells are never
smaller than ``min_cell_px``.

Target: solvable mazes walk the solution cell by cell as ``<|point|>`` centres, then
``Answer: yes``; unsolvable ones walk a depth-first exploration of every cell reachable from
the start (backtracking steps included) and answer ``no``.
"""

from __future__ import annotations

import io
import math
from collections import deque
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from vprim.assets.camps.primitives import format_answer, format_points
from vprim.assets.camps.schema import camp_row
from vprim.assets.contracts.coords import to_999_array

KINDS = ("rect", "theta", "hex")
ALGORITHMS = ("dfs", "prim", "kruskal")
# difficulty -> grid size per kind: rect side, theta rings, hex side
SIZES = {
    "easy": {"rect": 5, "theta": 4, "hex": 4},
    "medium": {"rect": 9, "theta": 6, "hex": 7},
    "hard": {"rect": 14, "theta": 9, "hex": 11},
}
DIFFICULTIES = tuple(SIZES)


@dataclass(frozen=True)
class MazeConfig:
    image_px: int = 448
    min_cell_px: int = 20
    margin_px: int = 12
    unsolvable_rate: float = 0.3


@dataclass
class Grid:
    """Cells and neighbour pairs of one maze grid.

    Attributes:
        kind: rect | theta | hex.
        centers: ``(n, 2)`` cell centres in pixels.
        edges: ``(m, 2)`` neighbour pairs ``a < b``.
        walls: per edge, the drawing of its wall: ``("line", x0, y0, x1, y1)`` or
            ``("arc", cx, cy, r, deg0, deg1)``.
        border: the outer boundary, drawn always.
    """

    kind: str
    centers: np.ndarray
    edges: np.ndarray
    walls: list[tuple]
    border: list[tuple]


def rect_grid(n: int, side: float, margin: float) -> Grid:
    cs = (side - 2 * margin) / n
    r, c = np.divmod(np.arange(n * n), n)
    centers = np.stack([margin + (c + 0.5) * cs, margin + (r + 0.5) * cs], 1)
    edges, walls = [], []
    for i in range(n):
        for j in range(n):
            a = i * n + j
            x0, y0 = margin + j * cs, margin + i * cs
            if j + 1 < n:
                edges.append((a, a + 1))
                walls.append(("line", x0 + cs, y0, x0 + cs, y0 + cs))
            if i + 1 < n:
                edges.append((a, a + n))
                walls.append(("line", x0, y0 + cs, x0 + cs, y0 + cs))
    e, m = margin, side - margin
    border = [
        ("line", e, e, m, e),
        ("line", m, e, m, m),
        ("line", m, m, e, m),
        ("line", e, m, e, e),
    ]
    return Grid("rect", centers, np.asarray(edges), walls, border)


def hex_grid(n: int, side: float, margin: float) -> Grid:
    """Pointy-top hexagons, odd rows shifted right; ``n`` rows of ``n`` cells."""
    # width: sqrt3*s*(n + 0.5); height: s*(1.5n + 0.5)
    s = min((side - 2 * margin) / (math.sqrt(3) * (n + 0.5)), (side - 2 * margin) / (1.5 * n + 0.5))
    w = math.sqrt(3) * s
    centers = []
    for r in range(n):
        for c in range(n):
            centers.append((margin + w * (c + 0.5 + 0.5 * (r & 1)), margin + s + 1.5 * s * r))
    centers = np.asarray(centers)
    ang = np.radians(30 + 60 * np.arange(6))
    verts = centers[:, None, :] + s * np.stack([np.cos(ang), np.sin(ang)], 1)[None]
    d = np.linalg.norm(centers[:, None] - centers[None], axis=2)
    edges, walls, border = [], [], []
    for a in range(len(centers)):
        for k in range(6):
            v0, v1 = verts[a, k], verts[a, (k + 1) % 6]
            across = 2 * (v0 + v1) / 2 - centers[a]
            b = int(np.argmin(np.linalg.norm(centers - across, axis=1)))
            if np.linalg.norm(centers[b] - across) > 0.1 * s:
                border.append(("line", *v0, *v1))
            elif a < b:
                edges.append((a, b))
                walls.append(("line", *v0, *v1))
    assert all(abs(d[a, b] - w) < 1e-6 * side for a, b in edges)
    return Grid("hex", centers, np.asarray(edges), walls, border)


def theta_grid(rings: int, side: float, margin: float) -> Grid:
    """A centre cell and ``rings - 1`` rings; a ring doubles its cells when they grow wide."""
    w = (side - 2 * margin) / 2 / rings
    cx = cy = side / 2
    counts = [1]
    for i in range(1, rings):
        prev = counts[-1]
        counts.append(6 if i == 1 else (prev * 2 if 2 * math.pi * i * w / prev > 1.8 * w else prev))
    first = np.cumsum([0, *counts])
    centers = [(cx, cy)]
    for i in range(1, rings):
        for j in range(counts[i]):
            t = (j + 0.5) * 2 * math.pi / counts[i]
            centers.append((cx + (i + 0.5) * w * math.cos(t), cy + (i + 0.5) * w * math.sin(t)))
    edges, walls = [], []
    for i in range(1, rings):
        n = counts[i]
        for j in range(n):
            a = int(first[i] + j)
            t1 = (j + 1) * 2 * math.pi / n
            b = int(first[i] + (j + 1) % n)
            edges.append((min(a, b), max(a, b)))
            walls.append(
                ("line", cx + i * w * math.cos(t1), cy + i * w * math.sin(t1),
                 cx + (i + 1) * w * math.cos(t1), cy + (i + 1) * w * math.sin(t1))
            )  # fmt: skip
            k = int(first[i - 1] + j * counts[i - 1] // n)
            edges.append((k, a))
            walls.append(("arc", cx, cy, i * w, 360 * j / n, 360 * (j + 1) / n))
    border = [("arc", cx, cy, rings * w, 0.0, 360.0)]
    return Grid("theta", np.asarray(centers), np.asarray(edges), walls, border)


def make_grid(kind: str, n: int, side: float, margin: float) -> Grid:
    return {"rect": rect_grid, "hex": hex_grid, "theta": theta_grid}[kind](n, side, margin)


def _adjacency(n: int, pairs) -> list[list[int]]:
    adj: list[list[int]] = [[] for _ in range(n)]
    for a, b in pairs:
        adj[int(a)].append(int(b))
        adj[int(b)].append(int(a))
    return adj


def carve(grid: Grid, algorithm: str, rng: np.random.Generator) -> np.ndarray:
    """A spanning tree of the grid's neighbour pairs: a boolean ``(m,)`` open mask."""
    n, m = len(grid.centers), len(grid.edges)
    inc: list[list[tuple[int, int]]] = [[] for _ in range(n)]  # cell -> (neighbour, edge)
    for e, (a, b) in enumerate(grid.edges):
        inc[a].append((int(b), e))
        inc[b].append((int(a), e))
    open_ = np.zeros(m, dtype=bool)
    seen = np.zeros(n, dtype=bool)
    if algorithm == "dfs":
        s = int(rng.integers(n))
        seen[s] = True
        stack = [s]
        while stack:
            u = stack[-1]
            nxt = [(v, e) for v, e in inc[u] if not seen[v]]
            if not nxt:
                stack.pop()
                continue
            v, e = nxt[int(rng.integers(len(nxt)))]
            open_[e] = seen[v] = True
            stack.append(v)
    elif algorithm == "prim":
        s = int(rng.integers(n))
        seen[s] = True
        frontier = list(inc[s])
        while frontier:
            v, e = frontier.pop(int(rng.integers(len(frontier))))
            if seen[v]:
                continue
            open_[e] = seen[v] = True
            frontier.extend(x for x in inc[v] if not seen[x[0]])
    elif algorithm == "kruskal":
        parent = np.arange(n)

        def find(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = int(parent[x])
            return x

        for e in rng.permutation(m):
            ra, rb = find(int(grid.edges[e, 0])), find(int(grid.edges[e, 1]))
            if ra != rb:
                parent[ra] = rb
                open_[e] = True
    else:
        raise ValueError(f"unknown maze algorithm {algorithm!r}; expected one of {ALGORITHMS}")
    return open_


def bfs(adj: list[list[int]], src: int) -> tuple[np.ndarray, np.ndarray]:
    """BFS distances (-1 unreachable) and parents from ``src``."""
    dist = np.full(len(adj), -1, dtype=np.int64)
    par = np.full(len(adj), -1, dtype=np.int64)
    dist[src] = 0
    q = deque([src])
    while q:
        u = q.popleft()
        for v in adj[u]:
            if dist[v] < 0:
                dist[v], par[v] = dist[u] + 1, u
                q.append(v)
    return dist, par


def explore(adj: list[list[int]], src: int) -> list[int]:
    """A depth-first walk over the cells reachable from ``src``, backtracking steps included."""
    walk, seen, stack = [src], {src}, [src]
    while stack:
        u = stack[-1]
        nxt = [v for v in sorted(adj[u]) if v not in seen]
        if nxt:
            seen.add(nxt[0])
            stack.append(nxt[0])
            walk.append(nxt[0])
        else:
            stack.pop()
            if stack:
                walk.append(stack[-1])
    return walk


def render(grid: Grid, open_: np.ndarray, start: int, goal: int, side: int) -> Image.Image:
    img = Image.new("RGB", (side, side), "white")
    d = ImageDraw.Draw(img)
    wpx = max(2, side // 200)
    for shape in [g for g, o in zip(grid.walls, open_, strict=True) if not o] + grid.border:
        if shape[0] == "line":
            d.line(shape[1:], fill="black", width=wpx)
        else:
            _, cx, cy, r, a0, a1 = shape
            d.arc((cx - r, cy - r, cx + r, cy + r), a0, a1, fill="black", width=wpx)
    spacing = float(np.min(np.linalg.norm(np.diff(grid.centers[grid.edges], axis=1)[:, 0], axis=1)))
    rad = max(3.0, 0.28 * spacing)
    for cell, colour in ((start, (0, 170, 0)), (goal, (220, 0, 0))):
        x, y = grid.centers[cell]
        d.ellipse((x - rad, y - rad, x + rad, y + rad), fill=colour)
    return img


def generate_maze(seed: int, config: MazeConfig = MazeConfig(), difficulty: str | None = None,
                  kind: str | None = None, algorithm: str | None = None) -> dict:  # fmt: skip
    """One maze sample (a camp row without split/eval_set), fully determined by ``seed``."""
    rng = np.random.default_rng([seed, 5_0001])
    difficulty = difficulty or DIFFICULTIES[int(rng.integers(3))]
    kind = kind or KINDS[int(rng.integers(3))]
    algorithm = algorithm or ALGORITHMS[int(rng.integers(3))]
    n = SIZES[difficulty][kind]
    side = config.image_px
    grid = make_grid(kind, n, side, config.margin_px)
    open_ = carve(grid, algorithm, rng)
    ncell = len(grid.centers)
    start = int(rng.integers(ncell))
    dist, _ = bfs(_adjacency(ncell, grid.edges[open_]), start)
    goal = int(np.argmax(dist))
    solvable = bool(rng.random() >= config.unsolvable_rate)
    adj = _adjacency(ncell, grid.edges[open_])
    _, par = bfs(adj, start)
    path = [goal]
    while path[-1] != start:
        path.append(int(par[path[-1]]))
    path.reverse()
    if not solvable:  # close the passage in the middle of the solution
        a, b = sorted((path[(len(path) - 1) // 2], path[(len(path) - 1) // 2 + 1]))
        e = int(np.flatnonzero((grid.edges[:, 0] == a) & (grid.edges[:, 1] == b))[0])
        open_[e] = False
        adj = _adjacency(ncell, grid.edges[open_])
        assert bfs(adj, start)[0][goal] < 0
    walk = path if solvable else explore(adj, start)
    c999 = to_999_array(grid.centers, side).tolist()
    spacing = np.linalg.norm(np.diff(np.asarray(c999)[grid.edges], axis=1)[:, 0], axis=1)
    img = render(grid, open_, start, goal, side)
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=False, compress_level=6)
    answer = "yes" if solvable else "no"
    meta = {
        "kind": kind, "algorithm": algorithm, "size": n, "centers_999": c999,
        "open_edges": grid.edges[open_].tolist(), "start": start, "goal": goal,
        "solvable": solvable, "snap": round(0.45 * float(spacing.min()), 2),
        "path_len": len(path) - 1,
    }  # fmt: skip
    noun = {"rect": "rectangular", "theta": "circular", "hex": "hexagonal"}[kind]
    return camp_row(
        "maze", f"maze-{seed}", seed, difficulty=difficulty, image_png=buf.getvalue(),
        image_width=side, image_height=side,
        prompt=(
            f"This {noun} maze has a green start and a red goal. Walk from the start through "
            "open passages one cell at a time, as points. Answer yes if the goal can be "
            "reached, no if it cannot."
        ),
        target=format_points([c999[c] for c in walk]) + format_answer(answer),
        answer=answer, meta=meta,
    )  # fmt: skip


__all__ = [
    "ALGORITHMS", "DIFFICULTIES", "KINDS", "Grid", "MazeConfig", "bfs", "carve", "explore",
    "generate_maze", "make_grid", "render",
]  # fmt: skip
