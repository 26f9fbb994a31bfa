"""Rewards of every camp: pure functions ``(meta, prediction) -> dict`` of float components
and ``total`` (0..1), and :data:`REWARDS`, the function of each camp (what the scorer uses).

``meta`` is a sample's ``meta`` (the JSON its camp writes); ``prediction`` is a model's text in
the primitive format (:mod:`vprim.assets.camps.primitives`). A missing or unparsable answer
scores 0; nothing raises. Every total loses :data:`DUP_PENALTY` per duplicate box (clipped at 0).

- :func:`counting_reward`: ``count = 0.7 * exp(-3 * |pred - gt| / (|gt| + 1))``
  (docs/ARCHITECTURE.md, reference numbers) and ``exact`` (0/1); ``total = count + 0.3 *
  exact``, so a perfect answer is 1.0. ``gt`` is ``meta["gt"]``.
- :func:`spatial_reward`: normalised exact match of the answer with ``meta["answer"]``.
- :func:`maze_reward`: the five components of docs/CAMPS.md with :data:`MAZE_WEIGHTS`, on the
  grid-agnostic maze meta :mod:`vprim.assets.camps.maze` writes (cell centres, open passages).
- :func:`path_reward`: trajectory, endpoint, jump and answer with :data:`PATH_WEIGHTS`.
- :func:`format_reward`: 1 for text with an answer, -0.1 per parse error, -0.2 per duplicate
  box (reported beside each camp's reward).
"""

from __future__ import annotations

import math
import re

import numpy as np

from vprim.assets.camps.maze import bfs
from vprim.assets.camps.primitives import Parsed, parse_primitives

DUP_PENALTY = 0.1  # per duplicate box, off every total

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


def _norm(a: object) -> str:
    return normalise_answer(a) or ""


def _dup(p: Parsed) -> float:
    return DUP_PENALTY * p.duplicate_boxes


def _clip(v: float) -> float:
    return float(min(1.0, max(0.0, v)))


def counting_reward(meta: dict, prediction: str) -> dict:
    gt = int(meta["gt"])
    p = parse_primitives(prediction)
    pred = parse_count(p.answer)
    if pred is None:
        return {"parsed": 0.0, "count": 0.0, "exact": 0.0, "total": 0.0}
    count = 0.7 * math.exp(-3 * abs(pred - gt) / (abs(gt) + 1))
    exact = float(pred == gt)
    return {"parsed": 1.0, "count": count, "exact": exact,
            "total": _clip(count + 0.3 * exact - _dup(p))}  # fmt: skip


def spatial_reward(meta: dict, prediction: str) -> dict:
    p = parse_primitives(prediction)
    pred = normalise_answer(p.answer)
    gt = normalise_answer(meta["answer"])
    exact = float(pred is not None and pred == gt)
    return {"parsed": float(pred is not None), "exact": exact, "total": _clip(exact - _dup(p))}


#: Maze weights: ``progress`` on solvable mazes, ``completeness`` on unsolvable ones (the same
#: weight), so each maze's weights sum to 1.
MAZE_WEIGHTS = {"progress": 0.3, "wall": 0.2, "valid": 0.2, "answer": 0.3}
PATH_WEIGHTS = {"trajectory": 0.4, "endpoint": 0.2, "no_jump": 0.1, "answer": 0.3}
PATH_SLACK = 3.0  # rounding allowance: mean distances below this count as 0
PATH_TAU = 30.0  # trajectory score exp(-(mean two-way distance - slack) / tau), 0..999 units
PATH_TOL = 40.0  # endpoint accuracy 1 - d / tol, 0 beyond tol
PATH_JUMP = 120.0  # a last step longer than this is a jump to the claimed endpoint


def format_reward(meta: dict, prediction: str) -> dict:
    """1 for parseable text with an answer; -0.1 per parse error, -0.2 per duplicate box."""
    p = parse_primitives(prediction)
    has = p.answer is not None
    total = _clip((1.0 if has else 0.0) - 0.1 * len(p.errors) - 0.2 * p.duplicate_boxes)
    return {"has_answer": float(has), "errors": float(len(p.errors)),
            "duplicates": float(p.duplicate_boxes), "total": total}  # fmt: skip


def maze_trace_cells(meta: dict, points: list[list[int]]) -> list[int]:
    """Each point snapped to the nearest cell centre (-1 when farther than ``snap``)."""
    if not points:
        return []
    c = np.asarray(meta["centers_999"], dtype=np.float64)
    pts = np.asarray(points, dtype=np.float64)
    d = np.linalg.norm(pts[:, None, :] - c[None, :, :], axis=2)
    idx = d.argmin(axis=1)
    ok = d[np.arange(len(pts)), idx] <= float(meta["snap"])
    return [int(i) if k else -1 for i, k in zip(idx, ok, strict=True)]


def maze_reward(meta: dict, prediction: str) -> dict:
    """Five components and a weighted total.

    Points snap to cells; a move between two cells is legal when the maze has a passage
    between them (staying on a cell is no move).

    - ``progress`` (solvable): trace cut at the first illegal move;
      ``1 - min BFS dist(explored cell, goal) / len(true path)``.
    - ``completeness`` (unsolvable): reachable cells the cut trace visits / all reachable
      cells. Either fills the ``progress`` weight.
    - ``wall``: ``1 - crossings / moves`` (0 without moves).
    - ``valid`` (0/1): starts on the start, no crossing, ends on the goal (solvable) or
      covers every reachable cell (unsolvable).
    - ``answer`` (0/1): yes/no matches ``meta["solvable"]``.

    ``total = 0.3 progress|completeness + 0.2 wall + 0.2 valid + 0.3 answer - dup penalty``.
    """
    p = parse_primitives(prediction)
    n = len(meta["centers_999"])
    adj: list[list[int]] = [[] for _ in range(n)]
    for a, b in meta["open_edges"]:
        adj[a].append(b)
        adj[b].append(a)
    open_set = {(min(a, b), max(a, b)) for a, b in meta["open_edges"]}
    start, goal, solvable = int(meta["start"]), int(meta["goal"]), bool(meta["solvable"])
    cells = maze_trace_cells(meta, p.all_points)
    moves = crossings = 0
    cut = len(cells)
    for i in range(1, len(cells)):
        a, b = cells[i - 1], cells[i]
        if a == b and a >= 0:
            continue
        moves += 1
        if a < 0 or b < 0 or (min(a, b), max(a, b)) not in open_set:
            crossings += 1
            cut = min(cut, i)
    starts = bool(cells) and cells[0] == start
    explored = {c for c in cells[:cut] if c >= 0} if starts else set()
    wall = 1.0 - crossings / moves if moves else 0.0
    if solvable:
        dg = bfs(adj, goal)[0]
        true_len = max(1, int(dg[start]))
        best = min((int(dg[c]) for c in explored if dg[c] >= 0), default=true_len)
        progress = _clip(1.0 - best / true_len) if explored else 0.0
        valid = float(starts and crossings == 0 and cells[-1] == goal)
        out = {"progress": progress}
    else:
        ds = bfs(adj, start)[0]
        reach = {int(i) for i in np.flatnonzero(ds >= 0)}
        progress = len(explored & reach) / len(reach)
        valid = float(starts and crossings == 0 and reach <= explored)
        out = {"completeness": progress}
    answer = float(_norm(p.answer) == ("yes" if solvable else "no"))
    w = MAZE_WEIGHTS
    total = w["progress"] * progress + w["wall"] * wall + w["valid"] * valid
    out.update({"wall": wall, "valid": valid, "answer": answer,
                "total": _clip(total + w["answer"] * answer - _dup(p))})  # fmt: skip
    return out


def point_to_polyline(pts: np.ndarray, line: np.ndarray) -> np.ndarray:
    """Distance of each point ``(n, 2)`` to the polyline ``(m, 2)``; returns ``(n,)``."""
    if len(line) == 1:
        return np.linalg.norm(pts - line[0], axis=1)
    a, b = line[:-1], line[1:]
    ab = b - a
    den = np.maximum((ab * ab).sum(1), 1e-12)
    t = np.clip(((pts[:, None, :] - a[None]) * ab[None]).sum(2) / den[None], 0.0, 1.0)
    proj = a[None] + t[..., None] * ab[None]
    return np.linalg.norm(pts[:, None, :] - proj, axis=2).min(axis=1)


def path_reward(meta: dict, prediction: str) -> dict:
    """Two-way trajectory distance, endpoint accuracy, jump penalty and answer.

    - ``trajectory = exp(-max(0, (mean d(pred -> true) + mean d(true -> pred)) / 2 - 3) / 30)``
      (3 units allow for rounding to integers).
    - ``endpoint = max(0, 1 - d(last point, true endpoint) / 40)``.
    - ``no_jump``: 0 when the last step is longer than 120 (a leap to the claimed end), else 1.
    - ``answer``: the endpoint letter matches.

    ``total = 0.4 trajectory + 0.2 endpoint + 0.1 no_jump + 0.3 answer - dup penalty``.
    """
    p = parse_primitives(prediction)
    answer = float(p.answer is not None and _norm(p.answer) == _norm(meta["answer"]))
    pts = np.asarray(p.all_points, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0:
        out = {"trajectory": 0.0, "endpoint": 0.0, "no_jump": 0.0, "answer": answer}
    else:
        true = np.asarray(meta["curve_999"], dtype=np.float64)
        d1 = point_to_polyline(pts, true).mean()
        d2 = point_to_polyline(true, pts).mean()
        traj = math.exp(-max(0.0, (d1 + d2) / 2 - PATH_SLACK) / PATH_TAU)
        end = np.asarray(meta["end_999"], dtype=np.float64)
        endpoint = _clip(1.0 - float(np.linalg.norm(pts[-1] - end)) / PATH_TOL)
        jump = len(pts) > 1 and float(np.linalg.norm(pts[-1] - pts[-2])) > PATH_JUMP
        out = {"trajectory": traj, "endpoint": endpoint, "no_jump": float(not jump),
               "answer": answer}  # fmt: skip
    total = sum(PATH_WEIGHTS[k] * out[k] for k in PATH_WEIGHTS)
    out["total"] = _clip(total - _dup(p))
    return out


REWARDS = {
    "counting": counting_reward,
    "spatial": spatial_reward,
    "maze": maze_reward,
    "path_tracing": path_reward,
}
"""Camp name -> reward function (what the scorer uses)."""

__all__ = [
    "DUP_PENALTY", "MAZE_WEIGHTS", "PATH_WEIGHTS", "REWARDS", "counting_reward",
    "format_reward", "maze_reward", "maze_trace_cells", "normalise_answer", "parse_count",
    "path_reward", "point_to_polyline", "spatial_reward",
]  # fmt: skip
