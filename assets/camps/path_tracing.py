"""The path-tracing camp: tangled cubic Bezier curves with crossings and distractors.

Every curve runs from a start on the left to an endpoint on the right; endpoints are shuffled
so curves cross. One start carries the ring marker; every endpoint carries a letter (the
candidates); distractor curves run between without a start or a letter. In single-colour mode
(a share of samples) every curve is drawn black, which removes colour as a shortcut.

The target walks the marked curve as points: the spacing (arc length) between points is
``base / (1 + gain * curvature * base)``, and a third of that within ``near_px`` of another
curve, so points are dense in bends and at crossings. Every point is on the curve (a sample of
it, rounded to 0..999).
"""

from __future__ import annotations

import io
import string
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from vprim.assets.camps.primitives import format_answer, format_points
from vprim.assets.camps.schema import camp_row
from vprim.assets.contracts.coords import to_999_array

DIFFICULTIES = ("easy", "medium", "hard")
CURVES = {"easy": (2, 3), "medium": (3, 4), "hard": (5, 6)}  # labelled curves, min..max
DISTRACTORS = {"easy": 0, "medium": 1, "hard": 2}
PALETTE = [(220, 40, 40), (30, 110, 220), (20, 150, 60), (200, 120, 0), (140, 50, 180),
           (0, 150, 160), (120, 120, 120), (200, 60, 140)]  # fmt: skip


@dataclass(frozen=True)
class PathConfig:
    image_px: int = 448
    single_colour_rate: float = 0.5
    base_step_px: float = 36.0
    curvature_gain: float = 3.0
    near_px: float = 14.0
    dense: int = 400
    curve_points_999: int = 96


def bezier(ctrl: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points, first and second derivatives of a cubic Bezier ``(4, 2)`` at ``t`` ``(n,)``."""
    p0, p1, p2, p3 = ctrl
    u = (1 - t)[:, None]
    t_ = t[:, None]
    pt = u**3 * p0 + 3 * u**2 * t_ * p1 + 3 * u * t_**2 * p2 + t_**3 * p3
    d1 = 3 * u**2 * (p1 - p0) + 6 * u * t_ * (p2 - p1) + 3 * t_**2 * (p3 - p2)
    d2 = 6 * u * (p2 - 2 * p1 + p0) + 6 * t_ * (p3 - 2 * p2 + p1)
    return pt, d1, d2


def nearest_other(pts: np.ndarray, others: list[np.ndarray]) -> np.ndarray:
    """Per curve in ``others`` the distance of each point ``(n, 2)`` to its nearest sample:
    ``(len(others), n)`` (dense samples stand in for the curve, within a pixel)."""
    if not others:
        return np.full((0, len(pts)), np.inf)
    o = np.stack(others)  # [k, m, 2]
    d2 = (
        (pts**2).sum(1)[None, :, None]
        + (o**2).sum(2)[:, None, :]
        - 2 * np.einsum("nc,kmc->knm", pts, o)
    )
    return np.sqrt(np.maximum(d2.min(axis=2), 0.0))


def adaptive_points(
    pts: np.ndarray, d1: np.ndarray, d2: np.ndarray, near_d: np.ndarray, cfg: PathConfig
) -> np.ndarray:
    """Indices into the dense samples ``pts`` ``(n, 2)``: the traced waypoints."""
    speed = np.linalg.norm(d1, axis=1)
    curv = np.abs(d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]) / np.maximum(speed**3, 1e-9)
    step = cfg.base_step_px / (1 + cfg.curvature_gain * curv * cfg.base_step_px)
    if len(near_d):
        step = np.where(near_d.min(axis=0) < cfg.near_px, step / 3, step)
    ds = np.r_[0.0, np.linalg.norm(np.diff(pts, axis=0), axis=1)]
    budget = np.cumsum(ds / step)  # waypoints "owed" up to each sample
    idx = np.flatnonzero(np.diff(np.floor(budget), prepend=0) > 0)
    return np.unique(np.r_[0, idx, len(pts) - 1])


def generate_path(seed: int, config: PathConfig = PathConfig(), difficulty: str | None = None,
                  single_colour: bool | None = None) -> dict:  # fmt: skip
    """One path-tracing sample (a camp row without split/eval_set), determined by ``seed``."""
    rng = np.random.default_rng([seed, 5_0002])
    difficulty = difficulty or DIFFICULTIES[int(rng.integers(3))]
    if single_colour is None:
        single_colour = bool(rng.random() < config.single_colour_rate)
    s = float(config.image_px)
    k = int(rng.integers(CURVES[difficulty][0], CURVES[difficulty][1] + 1))
    nd = DISTRACTORS[difficulty]
    ys0 = np.sort(rng.choice(np.linspace(0.1, 0.9, 9), k, replace=False)) * s
    ys1 = rng.permutation(np.sort(rng.choice(np.linspace(0.1, 0.9, 9), k, replace=False))) * s
    ctrls = []
    for i in range(k + nd):
        if i < k:
            a, b = (0.08 * s, ys0[i]), (0.86 * s, ys1[i])
        else:  # a distractor: starts and ends inside, no marker, no letter
            a = (rng.uniform(0.25, 0.4) * s, rng.uniform(0.1, 0.9) * s)
            b = (rng.uniform(0.6, 0.75) * s, rng.uniform(0.1, 0.9) * s)
        mid = rng.uniform([0.2 * s, 0.05 * s], [0.8 * s, 0.95 * s], size=(2, 2))
        ctrls.append(np.array([a, *mid, b], dtype=np.float64))
    t = np.linspace(0, 1, config.dense)
    dense = [bezier(c, t) for c in ctrls]
    q = int(rng.integers(k))
    labels = list(string.ascii_uppercase[:k])
    order = rng.permutation(k)  # curve i ends at letter labels[order[i]]
    pts, d1, d2 = dense[q]
    others = [dense[i][0] for i in range(k + nd) if i != q]
    near_d = nearest_other(pts, others)
    way = pts[adaptive_points(pts, d1, d2, near_d, config)]
    near_cross = int((near_d.min(axis=1) < 2.0).sum())  # curves the marked one crosses

    img = Image.new("RGB", (int(s), int(s)), "white")
    d = ImageDraw.Draw(img)
    colours = rng.permutation(len(PALETTE))
    for i, (p, _, _) in enumerate(dense):
        fill = (0, 0, 0) if single_colour else PALETTE[int(colours[i % len(PALETTE)])]
        d.line([tuple(x) for x in p], fill=fill, width=3, joint="curve")
    for i in range(k):
        x, y = dense[i][0][-1]
        d.rectangle((x + 4, y - 9, x + 22, y + 9), outline="black", fill="white")
        d.text((x + 9, y - 6), labels[order[i]], fill="black")
    x, y = dense[q][0][0]
    d.ellipse((x - 9, y - 9, x + 9, y + 9), outline="black", width=3)
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=6)

    def to999(a: np.ndarray) -> list[list[int]]:
        return to_999_array(a, s).tolist()

    sub = np.linspace(0, len(pts) - 1, config.curve_points_999).round().astype(int)
    answer = labels[order[q]]
    meta = {
        "curve_999": to999(pts[sub]), "end_999": to999(pts[-1:])[0], "answer": answer,
        "candidates": {labels[order[i]]: to999(dense[i][0][-1:])[0] for i in range(k)},
        "n_curves": k, "distractors": nd, "single_colour": single_colour,
        "crossed_curves": near_cross, "n_points": len(way),
    }  # fmt: skip
    colour = "" if single_colour else " (curves differ in colour, but do not rely on it)"
    return camp_row(
        "path_tracing", f"path_tracing-{seed}", seed, difficulty=difficulty,
        image_png=buf.getvalue(), image_width=int(s), image_height=int(s),
        prompt=(
            "Follow the curve that starts at the ring marker to its end, tracing it with "
            f"points{colour}. Which lettered endpoint does it reach?"
        ),
        target=format_points(to999(way)) + format_answer(answer), answer=answer, meta=meta,
    )  # fmt: skip


__all__ = [
    "DIFFICULTIES",
    "PathConfig",
    "adaptive_points",
    "bezier",
    "generate_path",
    "nearest_other",
]
