"""Rewards: pure functions ``(meta, prediction) -> dict`` of float components and ``total``.

``meta`` is a sample's ``meta`` (the JSON the camp writes); ``prediction`` is a model's text in
the primitive format (:mod:`assets.camps.primitives`). A missing or unparsable answer scores 0,
never raises.

- :func:`counting_reward`: ``count = 0.7 * exp(-3 * |pred - gt| / (|gt| + 1))`` (DESIGN.md
  section 1) and ``exact`` (0/1); ``total = count + 0.3 * exact``, so a perfect answer is 1.0.
  ``gt`` is ``meta["gt"]``.
- :func:`spatial_reward`: normalised exact match of the answer with ``meta["answer"]``.
- :func:`format_penalty`: ``penalty = min(1, 0.1 * duplicate boxes + 0.05 * parse errors)``,
  ``total = -penalty`` (a term to add to a camp reward).
- :func:`maze_reward`: the five DESIGN.md components with :data:`MAZE_WEIGHTS` (sum 1).
"""

from __future__ import annotations

import math
import re
from collections import deque
from itertools import pairwise

from assets.camps.primitives import Parsed, parse_primitives

_WORD_NUMBERS = {
    w: i
    for i, w in enumerate(
        ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
         "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
         "seventeen", "eighteen", "nineteen", "twenty")
    )
}  # fmt: skip
_YES = {"yes", "true", "y", "correct", "solvable"}
_NO = {"no", "false", "n", "incorrect", "unsolvable"}
_REFUSE = (
    "refuse", "cannot answer", "can't answer", "cannot be answered", "unanswerable",
    "no such object", "does not exist", "doesn't exist", "not in the image",
    "not in the scene", "there is no", "n/a", "none exists",
)  # fmt: skip
_ARTICLES = {"a", "an", "the"}


def _parsed(prediction: object) -> Parsed:
    return parse_primitives(prediction)


def normalise_answer(answer: object) -> str | None:
    """A canonical answer: ``yes``/``no`` for booleans, digits for numbers (``three``,
    ``3.0`` -> ``3``), ``refuse`` for refusals, else lower-case words without articles and
    punctuation. ``None`` stays ``None``."""
    if answer is None:
        return None
    s = str(answer).strip().lower()
    if any(r in s for r in _REFUSE):
        return "refuse"
    s = re.sub(r"[^\w\s.\-]", " ", s).strip(" .")
    words = [w for w in s.split() if w not in _ARTICLES]
    s = " ".join(words)
    if s in _YES:
        return "yes"
    if s in _NO:
        return "no"
    if s in _WORD_NUMBERS:
        return str(_WORD_NUMBERS[s])
    try:
        f = float(s)
        if math.isfinite(f) and f == int(f):
            return str(int(f))
        return str(f)
    except (ValueError, OverflowError):
        return s


def parse_count(answer: str | None) -> int | None:
    """The integer an answer states (``4``, ``four``, ``4 cars``), else ``None``."""
    n = normalise_answer(answer)
    if n is None:
        return None
    m = re.match(r"^-?\d{1,9}\b", n)
    if m:
        return int(m.group(0))
    first = n.split(" ", 1)[0] if n else ""
    return _WORD_NUMBERS.get(first)


def counting_reward(meta: dict, prediction: str) -> dict:
    gt = int(meta["gt"])
    pred = parse_count(_parsed(prediction).answer)
    if pred is None:
        return {"parsed": 0.0, "count": 0.0, "exact": 0.0, "total": 0.0}
    count = 0.7 * math.exp(-3 * abs(pred - gt) / (abs(gt) + 1))
    exact = float(pred == gt)
    return {"parsed": 1.0, "count": count, "exact": exact, "total": count + 0.3 * exact}


def spatial_reward(meta: dict, prediction: str) -> dict:
    pred = normalise_answer(_parsed(prediction).answer)
    gt = normalise_answer(meta["answer"])
    exact = float(pred is not None and pred == gt)
    return {"parsed": float(pred is not None), "exact": exact, "total": exact}


def format_penalty(meta: dict, prediction: str) -> dict:
    p = _parsed(prediction)
    penalty = min(1.0, 0.1 * p.duplicate_boxes + 0.05 * len(p.errors))
    return {"duplicate_boxes": float(p.duplicate_boxes), "errors": float(len(p.errors)),
            "penalty": penalty, "total": -penalty}  # fmt: skip


# --- mazes --------------------------------------------------------------------------------

#: Maze weights. ``progress`` counts on solvable mazes, ``completeness`` on unsolvable ones
#: (the other is reported but weighs 0), so each maze's weights sum to 1.
MAZE_WEIGHTS = {"progress_or_completeness": 0.3, "walls": 0.2, "validity": 0.2, "answer": 0.3}


def maze_graph(meta: dict) -> dict[tuple[int, int], set[tuple[int, int]]]:
    """Adjacency of the maze: ``meta["rows"]``, ``meta["cols"]`` and ``meta["open"]`` (a list
    of open edges ``[[r, c], [r2, c2]]`` between 4-neighbouring cells)."""
    adj = {(r, c): set() for r in range(int(meta["rows"])) for c in range(int(meta["cols"]))}
    for a, b in meta["open"]:
        a, b = tuple(a), tuple(b)
        adj[a].add(b)
        adj[b].add(a)
    return adj


def bfs(adj: dict, start: tuple[int, int]) -> dict[tuple[int, int], int]:
    """Distance in moves from ``start`` to every cell reachable from it."""
    dist = {start: 0}
    q = deque([start])
    while q:
        u = q.popleft()
        for v in adj[u]:
            if v not in dist:
                dist[v] = dist[u] + 1
                q.append(v)
    return dist


def point_cell(meta: dict, point) -> tuple[int, int] | None:
    """The cell ``(row, col)`` a 0..999 point lies in (the maze spans ``meta["bbox_999"]``,
    default the whole image), or ``None`` outside the grid."""
    x0, y0, x1, y1 = meta.get("bbox_999", (0, 0, 999, 999))
    rows, cols = int(meta["rows"]), int(meta["cols"])
    x, y = point
    if not (x0 <= x <= x1 and y0 <= y <= y1):
        return None
    c = min(cols - 1, int((x - x0) / max(x1 - x0, 1e-9) * cols))
    r = min(rows - 1, int((y - y0) / max(y1 - y0, 1e-9) * rows))
    return r, c


def maze_reward(meta: dict, prediction: str) -> dict:
    """The five maze components (each in 0..1) and their weighted ``total``.

    The predicted points (all ``<|point|>`` groups, in order) map to cells; repeated cells
    collapse. A move is legal when it joins two cells through an open edge; anything else
    (through a wall, a jump, a point off the grid) is a crossing.

    - ``progress`` (solvable): the trace is cut at its first crossing (and is empty unless it
      starts at ``meta["start"]``); ``1 - dist(end of cut trace, goal) / len(true path)``,
      clipped to 0..1, with ``dist`` the maze distance.
    - ``completeness`` (unsolvable): distinct reachable cells in the cut trace / all cells
      reachable from the start.
    - ``walls``: ``1 - crossings / legal moves``, clipped to 0..1 (0 for a trace with no move).
    - ``validity``: 1 when the whole trace is legal, starts at the start and (solvable) ends at
      the goal; (unsolvable) a legal trace that starts at the start.
    - ``answer``: the normalised answer equals ``meta["answer"]`` (``yes``/``no``).
    """
    p = _parsed(prediction)
    adj = maze_graph(meta)
    start, goal = tuple(meta["start"]), tuple(meta["goal"])
    solvable = bool(meta["solvable"])
    cells: list = []
    for pt in p.all_points:
        cell = point_cell(meta, pt)
        if not cells or cell != cells[-1]:
            cells.append(cell)
    legal = crossings = 0
    cut = len(cells) if cells and cells[0] == start else 0
    for i, (a, b) in enumerate(pairwise(cells)):
        if a is not None and b is not None and b in adj.get(a, ()):
            legal += 1
        else:
            crossings += 1
            cut = min(cut, i + 1)
    explored = cells[:cut]
    from_start = bfs(adj, start)
    if solvable:
        true_len = from_start[goal]
        to_goal = bfs(adj, goal)
        end = explored[-1] if explored else None
        progress = (max(0.0, 1 - to_goal[end] / max(true_len, 1))
                    if end in to_goal else 0.0)  # fmt: skip
        completeness = None
    else:
        progress = None
        completeness = len(set(explored) & set(from_start)) / len(from_start)
    moves = legal + crossings
    walls = max(0.0, 1 - crossings / max(legal, 1)) if moves else 0.0
    ok = bool(cells) and crossings == 0 and cells[0] == start
    validity = float(ok and (cells[-1] == goal if solvable else True))
    answer = float(normalise_answer(p.answer) == normalise_answer(meta["answer"]))
    w = MAZE_WEIGHTS
    total = (w["progress_or_completeness"] * (progress if solvable else completeness)
             + w["walls"] * walls + w["validity"] * validity + w["answer"] * answer)  # fmt: skip
    out = {"walls": walls, "validity": validity, "answer": answer,
           "crossings": float(crossings), "legal_moves": float(legal),
           "exact": float(validity == 1 and answer == 1), "total": total}  # fmt: skip
    # progress counts on solvable mazes, completeness on unsolvable ones: only that one is set
    out["progress" if solvable else "completeness"] = progress if solvable else completeness
    return out


#: The reward of each camp, by the ``camp`` column of a sample row.
REWARDS = {"counting": counting_reward, "spatial": spatial_reward, "maze": maze_reward}

__all__ = [
    "MAZE_WEIGHTS",
    "REWARDS",
    "bfs",
    "counting_reward",
    "format_penalty",
    "maze_graph",
    "maze_reward",
    "normalise_answer",
    "parse_count",
    "point_cell",
    "spatial_reward",
]
