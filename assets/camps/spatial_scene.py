"""CLEVR-style 2D scenes: sampled from a seed as columns, drawn with Pillow.

A scene is a handful of objects, each with a shape, a colour, a size and a material (rubber is
flat, metal is shaded with a highlight), placed on a floor with soft shadows. Objects lower in
the image are nearer and are drawn later, so they may partly hide the ones behind them.

Placement keeps every pair of object centres at least ``min_gap`` pixels apart on both axes,
so "left of", "right of", "above" and "below" are never ties, and every object keeps at least
``min_visible`` of its pixels visible after occlusion (measured on the drawn id map).

Same seed, same scene and identical pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle", "star")
COLOURS = ("gray", "red", "blue", "green", "brown", "purple", "cyan", "yellow")
SIZES = ("small", "large")
MATERIALS = ("rubber", "metal")
ATTRIBUTES = {"shape": SHAPES, "color": COLOURS, "size": SIZES, "material": MATERIALS}

RGB = {
    "gray": (128, 128, 128),
    "red": (190, 40, 40),
    "blue": (40, 70, 200),
    "green": (40, 150, 60),
    "brown": (130, 85, 40),
    "purple": (120, 50, 160),
    "cyan": (40, 190, 200),
    "yellow": (230, 200, 40),
}


@dataclass(frozen=True)
class SceneConfig:
    """How scenes are sampled.

    Attributes:
        width, height: canvas in pixels.
        min_objects, max_objects: objects per scene (inclusive).
        small_radius, large_radius: half-size in pixels of small and large objects.
        min_gap: minimum distance of two centres on each axis (no relation ties).
        min_visible: minimum visible share of every object's pixels.
        max_overlap: maximum share of an object's box covered by another's box.
    """

    width: int = 480
    height: int = 320
    min_objects: int = 3
    max_objects: int = 10
    small_radius: int = 18
    large_radius: int = 34
    min_gap: float = 6.0
    min_visible: float = 0.5
    max_overlap: float = 0.45

    @property
    def radius(self) -> tuple[int, int]:
        """(small, large) half-sizes in pixels."""
        return self.small_radius, self.large_radius

    def __post_init__(self):
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError(
                f"objects {self.min_objects}..{self.max_objects}: expected 1 <= min <= max"
            )
        if self.width < 8 * self.radius[1] or self.height < 4 * self.radius[1]:
            raise ValueError(
                f"canvas {self.width}x{self.height} is too small for radius {self.radius}"
            )


@dataclass(frozen=True)
class Scene:
    """Objects as columns: attribute indices ``(n,)`` int8 into the vocabularies above,
    ``boxes`` ``(n, 4)`` float64 absolute ``x0, y0, x1, y1``, ``visible`` ``(n,)`` share of
    pixels not hidden, in draw order (back to front)."""

    width: int
    height: int
    shape: np.ndarray
    color: np.ndarray
    size: np.ndarray
    material: np.ndarray
    boxes: np.ndarray
    visible: np.ndarray

    @property
    def n(self) -> int:
        return len(self.shape)

    def attr(self, name: str) -> np.ndarray:
        """The index column of ``name`` (shape | color | size | material)."""
        return getattr(self, name)

    def value(self, name: str, i: int) -> str:
        return ATTRIBUTES[name][int(self.attr(name)[i])]

    @property
    def centres(self) -> np.ndarray:
        """``(n, 2)`` box centres."""
        return np.stack(
            [(self.boxes[:, 0] + self.boxes[:, 2]) / 2, (self.boxes[:, 1] + self.boxes[:, 3]) / 2],
            1,
        )

    def objects(self) -> list[dict]:
        """The scene as JSON-able rows (what a sample's meta carries)."""
        return [
            {
                **{k: self.value(k, i) for k in ATTRIBUTES},
                "box": [float(v) for v in self.boxes[i]],
                "visible": round(float(self.visible[i]), 3),
            }
            for i in range(self.n)
        ]


class SceneError(RuntimeError):
    """No valid placement was found for a seed (the caller skips the seed and counts it)."""


def sample_scene(seed: int, config: SceneConfig = SceneConfig()) -> Scene:
    """A scene from ``seed``: attributes, then positions by vectorised rejection sampling
    (64 candidates per object at once), then the visibility of each object on the id map.

    Raises:
        SceneError: the constraints could not be met in a few attempts.
    """
    for attempt in range(8):
        rng = np.random.default_rng([seed, attempt])
        scene = _try_scene(rng, config)
        if scene is not None:
            return scene
    raise SceneError(f"seed {seed}: no scene meets the placement constraints")


def _try_scene(rng: np.random.Generator, c: SceneConfig) -> Scene | None:
    n = int(rng.integers(c.min_objects, c.max_objects + 1))
    size = rng.integers(0, len(SIZES), n).astype(np.int8)
    radius = np.asarray(c.radius, dtype=np.float64)[size] * rng.uniform(0.9, 1.1, n)
    centres = np.zeros((n, 2))
    for i in range(n):
        r = radius[i]
        cand = np.stack(
            [rng.uniform(r + 2, c.width - r - 2, 64), rng.uniform(r + 2, c.height - r - 2, 64)], 1
        )
        if i:
            d = np.abs(cand[:, None, :] - centres[None, :i, :])  # [64, i, 2]
            gap_ok = (d >= c.min_gap).all(axis=(1, 2))
            # overlap of the two boxes as a share of the smaller one
            ov = np.clip(radius[None, :i] + r - d[..., 0], 0, None) * np.clip(
                radius[None, :i] + r - d[..., 1], 0, None
            )
            small = (2 * np.minimum(radius[None, :i], r)) ** 2
            ok = gap_ok & (ov / small <= c.max_overlap).all(axis=1)
            idx = np.flatnonzero(ok)
            if not len(idx):
                return None
            cand = cand[idx]
        centres[i] = cand[0]
    order = np.argsort(centres[:, 1] + radius, kind="stable")  # back (top) to front (bottom)
    centres, radius, size = centres[order], radius[order], size[order]
    boxes = np.concatenate([centres - radius[:, None], centres + radius[:, None]], 1)
    shape = rng.integers(0, len(SHAPES), n).astype(np.int8)
    # triangles are drawn in their box; their box is their own bounding box
    scene = Scene(
        c.width, c.height, shape,
        rng.integers(0, len(COLOURS), n).astype(np.int8), size,
        rng.integers(0, len(MATERIALS), n).astype(np.int8), boxes, np.ones(n),
    )  # fmt: skip
    visible = visibility(scene)
    if (visible < c.min_visible).any():
        return None
    return Scene(**{**scene.__dict__, "visible": visible})


def _outline(shape: str, box: np.ndarray) -> list[tuple[float, float]] | None:
    x0, y0, x1, y1 = (float(v) for v in box)
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    if shape == "triangle":
        return [(cx, y0), (x1, y1), (x0, y1)]
    if shape == "star":
        pts = []
        for k in range(10):
            a = math.radians(-90 + 36 * k)
            r = 1.0 if k % 2 == 0 else 0.45
            pts.append((cx + r * rx * math.cos(a), cy + r * ry * math.sin(a)))
        ys = [p[1] for p in pts]  # tighten to the star's own vertical extent
        lo, hi = min(ys), max(ys)
        return [(x, y0 + (y - lo) / (hi - lo) * (y1 - y0)) for x, y in pts]
    return None


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, box: np.ndarray, fill) -> None:
    pts = _outline(shape, box)
    xy = [float(v) for v in box]
    if shape == "circle":
        draw.ellipse(xy, fill=fill)
    elif shape == "square":
        draw.rectangle(xy, fill=fill)
    else:
        draw.polygon(pts, fill=fill)


def visibility(scene: Scene) -> np.ndarray:
    """``(n,)`` visible share of each object's pixels: objects drawn back to front into an
    id map, then the pixels each still owns over the pixels its mask has."""
    ids = Image.new("I", (scene.width, scene.height), -1)
    draw = ImageDraw.Draw(ids)
    full = np.zeros(scene.n)
    for i in range(scene.n):
        # the whole mask, drawn into the same id map region alone (same rasterisation)
        alone = Image.new("I", (scene.width, scene.height), -1)
        x0, y0, x1, y1 = (int(v) for v in scene.boxes[i])
        _draw_shape(ImageDraw.Draw(alone), SHAPES[scene.shape[i]], scene.boxes[i], i)
        full[i] = np.count_nonzero(np.asarray(alone.crop((x0 - 1, y0 - 1, x1 + 2, y1 + 2))) == i)
        _draw_shape(draw, SHAPES[scene.shape[i]], scene.boxes[i], i)
    owned = np.bincount(np.asarray(ids).ravel() + 1, minlength=scene.n + 1)[1:]
    return owned / np.maximum(full, 1)


def render_scene(scene: Scene, seed: int = 0) -> Image.Image:
    """The scene's pixels: a floor with a soft vertical gradient whose tint depends on the
    seed, a shadow per object, then each object back to front; metal gets a radial shading
    and a highlight. (No per-pixel noise: it would triple the PNG size.)"""
    w, h = scene.width, scene.height
    rng = np.random.default_rng([seed, 7])
    tint = rng.uniform(-8, 8, 3).astype(np.float32)
    ys = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    top = np.array([200, 200, 205], np.float32) + tint
    bottom = np.array([150, 150, 158], np.float32) + tint
    column = np.clip(top + ys * (bottom - top), 0, 255).astype(np.uint8)  # [H, 3]
    canvas = Image.fromarray(np.ascontiguousarray(np.broadcast_to(column[:, None], (h, w, 3))))
    shadow = Image.new("L", (w, h), 0)
    sdraw = ImageDraw.Draw(shadow)
    for box in scene.boxes:
        x0, _, x1, y1 = box
        r = (x1 - x0) / 2
        sdraw.ellipse([x0 + 0.3 * r, y1 - 0.35 * r, x1 + 0.5 * r, y1 + 0.25 * r], fill=70)
    canvas.paste((40, 40, 45), mask=shadow)
    for i in range(scene.n):
        _paint_object(canvas, scene, i)
    return canvas


def _paint_object(canvas: Image.Image, scene: Scene, i: int) -> None:
    shape, colour = SHAPES[scene.shape[i]], RGB[COLOURS[scene.color[i]]]
    bx0, by0, bx1, by1 = scene.boxes[i]
    x0, y0, x1, y1 = math.floor(bx0), math.floor(by0), math.ceil(bx1), math.ceil(by1)
    bw, bh = x1 - x0 + 1, y1 - y0 + 1
    local = scene.boxes[i] - np.array([x0, y0, x0, y0])
    mask = Image.new("L", (bw, bh), 0)
    _draw_shape(ImageDraw.Draw(mask), shape, local, 255)
    yy, xx = np.mgrid[0:bh, 0:bw].astype(np.float32)
    base = np.asarray(colour, np.float32)
    if MATERIALS[scene.material[i]] == "metal":
        # radial shading from a light at the upper left, plus a specular spot
        lx, ly = bw * 0.35, bh * 0.3
        d = np.sqrt((xx - lx) ** 2 + (yy - ly) ** 2) / max(bw, bh)
        shade = np.clip(1.25 - 1.1 * d, 0.45, 1.25)[..., None]
        spot = np.exp(-((d / 0.09) ** 2))[..., None]
        px = base * shade + spot * (255 - base * shade) * 0.85
    else:
        # rubber: flat, a little darker towards the bottom
        px = base * (1.0 - 0.18 * (yy / max(bh - 1, 1)))[..., None]
    patch = Image.fromarray(np.clip(px, 0, 255).astype(np.uint8), "RGB")
    canvas.paste(patch, (x0, y0), mask)
    edge = ImageDraw.Draw(canvas)
    outline = tuple(int(v * 0.55) for v in colour)
    pts = _outline(shape, scene.boxes[i])
    xy = [float(v) for v in scene.boxes[i]]
    if shape == "circle":
        edge.ellipse(xy, outline=outline, width=2)
    elif shape == "square":
        edge.rectangle(xy, outline=outline, width=2)
    else:
        edge.line([*pts, pts[0]], fill=outline, width=2)


__all__ = [
    "ATTRIBUTES",
    "COLOURS",
    "MATERIALS",
    "SHAPES",
    "SIZES",
    "Scene",
    "SceneConfig",
    "SceneError",
    "render_scene",
    "sample_scene",
    "visibility",
]
