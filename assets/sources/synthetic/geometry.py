"""Clean geometry: image sizes, clean boxes (their bounds are listed in the package
docstring) and the close pairs among boxes of one label.
"""

from __future__ import annotations

import numpy as np

from vprim.assets.boxes import iou

COMMON_SIZES = (
    (640, 480), (480, 640), (1280, 720), (1920, 1080), (800, 600), (1024, 768), (500, 375),
    (375, 500), (640, 640), (416, 416), (1024, 1024), (720, 1280), (1280, 960), (960, 540),
    (1333, 800), (512, 512),
)  # fmt: skip


def image_sizes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Image widths and heights: min side >= 320, aspect within [1/2, 2]."""
    mode = rng.random()
    sizes = np.array(COMMON_SIZES, dtype=np.int64)
    if mode < 0.55:
        pick = np.full(n, int(rng.integers(0, len(sizes))))
    elif mode < 0.8:
        choices = rng.choice(len(sizes), int(rng.integers(2, 4)), replace=False)
        pick = choices[rng.integers(0, len(choices), n)]
    else:
        w = rng.integers(320, 1601, n)
        h = np.round(w / rng.uniform(0.55, 1.8, n)).astype(np.int64)
        h = np.clip(h, np.maximum(320, (w + 1) // 2), np.minimum(1600, 2 * w))
        return w.astype(np.int64), h
    return sizes[pick, 0].copy(), sizes[pick, 1].copy()


#: sizes of the small image files of real-image sources (a Roboflow export resizes to one)
SMALL_SIZES = ((160, 120), (120, 160), (128, 128), (192, 144), (144, 192), (200, 150), (96, 96),
               (160, 160), (64, 64))  # fmt: skip


def small_image_sizes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Widths and heights of real image files: 64-200 px a side, aspect within [3/4, 4/3] (an
    EXIF-rotated file read without its rotation still holds its boxes' aspect under 15)."""
    if rng.random() < 0.5:
        w, h = SMALL_SIZES[int(rng.integers(0, len(SMALL_SIZES)))]
        return np.full(n, w, dtype=np.int64), np.full(n, h, dtype=np.int64)
    w = rng.integers(80, 201, n)
    h = np.round(w * rng.uniform(0.75, 4 / 3, n)).astype(np.int64)
    h = np.clip(h, np.maximum(64, np.ceil(w * 0.75)), np.minimum(200, np.floor(w * 4 / 3)))
    return w.astype(np.int64), h.astype(np.int64)


def clean_boxes(rng: np.random.Generator, W: np.ndarray, H: np.ndarray) -> tuple[np.ndarray, ...]:
    """One integer-valued clean box in each image ``(W, H)`` (arrays ``(n,)``): ``(x0, y0,
    x1, y1)``, float arrays ``(n,)``."""
    n = len(W)
    Wf, Hf = W.astype(np.float64), H.astype(np.float64)
    lo_w, hi_w = np.maximum(20.0, 0.05 * Wf), 0.7 * Wf
    lo_h, hi_h = np.maximum(20.0, 0.05 * Hf), 0.7 * Hf
    w = np.exp(rng.uniform(np.log(lo_w), np.log(hi_w)))
    h = np.clip(w * np.exp(rng.uniform(-np.log(3.5), np.log(3.5), n)), lo_h, hi_h)
    w, h = np.floor(w), np.floor(h)
    mx, my = np.ceil(0.04 * Wf), np.ceil(0.04 * Hf)
    x0 = mx + np.floor(rng.random(n) * (Wf - 2 * mx - w + 1))
    y0 = my + np.floor(rng.random(n) * (Hf - 2 * my - h + 1))
    return x0, y0, x0 + w, y0 + h


def overlap_pairs(
    img: np.ndarray, key: np.ndarray, xyxy: tuple[np.ndarray, ...], thr: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i < j) of boxes in the same image with the same key and IoU >= ``thr``."""
    n = len(img)
    empty = np.empty(0, dtype=np.int64)
    if n < 2:
        return empty, empty
    order = np.lexsort((key, img))
    gi, gk = img[order], key[order]
    brk = np.ones(n, dtype=bool)
    brk[1:] = (gi[1:] != gi[:-1]) | (gk[1:] != gk[:-1])
    starts = np.flatnonzero(brk)
    sizes = np.diff(np.append(starts, n))
    parts_i, parts_j = [], []
    for g in np.unique(sizes[sizes > 1]).tolist():
        st = starts[sizes == g]
        a, b = np.triu_indices(g, 1)
        parts_i.append(order[(st[:, None] + a[None, :]).ravel()])
        parts_j.append(order[(st[:, None] + b[None, :]).ravel()])
    if not parts_i:
        return empty, empty
    ii, jj = np.concatenate(parts_i), np.concatenate(parts_j)
    lo, hi = np.minimum(ii, jj), np.maximum(ii, jj)
    m = iou(tuple(c[lo] for c in xyxy), tuple(c[hi] for c in xyxy)) >= thr
    return lo[m], hi[m]
