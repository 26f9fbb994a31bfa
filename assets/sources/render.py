"""Pixels for ``synthetic://`` images, drawn on demand and always the same.

The synthetic corpus stores no pixels: an image is ``synthetic://<source_id>/<name>?w=&h=``.
:func:`render_image` draws it from its URI and the objects it holds: a background that depends
on the URI (a two-colour gradient with a little blocky texture), and each object at its box
with a look that depends on its label (shape and base colour from a stable hash of the
normalised label) and on its attributes (``colour`` overrides the colour, ``occluded`` draws a
partial occluder over it, ``pose`` turns it: a marker shows which way it faces).

Same inputs, identical pixels: nothing here depends on time, machine or Python's ``hash``.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import parse_qs, urlsplit

import numpy as np
from PIL import Image, ImageDraw

from vprim.assets.contracts.hashing import stable_hash64

#: Largest synthetic image drawn (pixels); a hostile URI cannot ask for gigabytes.
MAX_PIXELS = 64 * 1024 * 1024

SHAPES = ("ellipse", "rectangle", "rounded", "triangle", "diamond", "hexagon", "star", "cross")

NAMED_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (210, 40, 40),
    "green": (40, 160, 60),
    "blue": (40, 80, 210),
    "yellow": (235, 210, 40),
    "orange": (240, 140, 30),
    "purple": (130, 50, 170),
    "pink": (240, 130, 180),
    "brown": (120, 75, 40),
    "black": (20, 20, 20),
    "white": (245, 245, 245),
    "grey": (128, 128, 128),
    "gray": (128, 128, 128),
    "silver": (192, 192, 200),
    "gold": (212, 175, 55),
    "beige": (225, 210, 170),
    "cyan": (40, 200, 210),
}

_TRUE = frozenset({"1", "true", "yes", "y", "t"})


def parse_synthetic_uri(image_uri: str) -> tuple[str, str, int, int]:
    """``synthetic://<source_id>/<name>?w=<W>&h=<H>`` -> (source_id, name, W, H).

    Raises:
        ValueError: not a synthetic URI, or no valid positive size.
    """
    parts = urlsplit(image_uri)
    if parts.scheme != "synthetic":
        raise ValueError(f"not a synthetic:// image: {image_uri!r}")
    q = parse_qs(parts.query)
    try:
        w, h = int(q["w"][0]), int(q["h"][0])
    except (KeyError, ValueError, IndexError):
        raise ValueError(f"synthetic image without a size (?w=..&h=..): {image_uri!r}") from None
    if w <= 0 or h <= 0 or w * h > MAX_PIXELS:
        raise ValueError(f"synthetic image size {w}x{h} is out of range in {image_uri!r}")
    return parts.netloc, parts.path.lstrip("/"), w, h


def normalise_label(label: str) -> str:
    """Lower-case words: "TrafficLight", "traffic_light", "Traffic-Light" -> "traffic light"."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", str(label))
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


def label_look(label: str) -> tuple[str, tuple[int, int, int]]:
    """The shape and base colour of a label (stable hash of its normalised form)."""
    h = stable_hash64("look\x1f" + normalise_label(label))
    shape = SHAPES[h % len(SHAPES)]
    hue = ((h >> 8) % 360) / 360.0
    sat = 0.55 + ((h >> 20) % 40) / 100.0
    val = 0.55 + ((h >> 28) % 40) / 100.0
    return shape, _hsv(hue, sat, val)


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r, g, b = ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))[i]
    return int(r * 255), int(g * 255), int(b * 255)


def _attrs(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {str(k).lower(): str(v) for k, v in value.items()}
    return {str(k).lower(): str(v) for k, v in value}  # list of (key, value), as Arrow maps


def background(image_uri: str, width: int, height: int) -> np.ndarray:
    """The URI's background: a two-colour gradient plus a faint blocky texture (H, W, 3) u8."""
    rng = np.random.default_rng(stable_hash64("bg\x1f" + image_uri))
    c0 = rng.integers(40, 216, 3).astype(np.float32)
    c1 = rng.integers(40, 216, 3).astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    # the gradient's terms per column and per row, summed by broadcasting, and the sums done in
    # place: the same float32 operations per pixel as on full grids, in about 70% of the time
    xs = np.arange(width, dtype=np.float32) / max(width - 1, 1) * math.cos(angle)
    ys = np.arange(height, dtype=np.float32) / max(height - 1, 1) * math.sin(angle)
    t = xs[None, :] + ys[:, None]
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    img = t[..., None] * (c1 - c0)
    img += c0
    cell = int(rng.integers(6, 17))
    noise = rng.normal(0, 6, ((height + cell - 1) // cell, (width + cell - 1) // cell, 1))
    img += noise.astype(np.float32).repeat(cell, axis=0).repeat(cell, axis=1)[:height, :width]
    return np.clip(img, 0, 255, out=img).astype(np.uint8)


def draw_scenery(draw: ImageDraw.ImageDraw, image_uri: str, width: int, height: int) -> None:
    """Four to seven large shapes in colours of their own, placed by the URI's seed: the
    coarse layout a photo has (sky, ground, walls) and a gradient does not."""
    rng = np.random.default_rng(stable_hash64("scenery\x1f" + image_uri))
    for _ in range(int(rng.integers(4, 8))):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        rx, ry = rng.uniform(0.2, 0.6) * width, rng.uniform(0.2, 0.6) * height
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        box = [cx - rx, cy - ry, cx + rx, cy + ry]
        if rng.random() < 0.5:
            draw.ellipse(box, fill=colour)
        else:
            draw.rectangle(box, fill=colour)


def _shape_points(shape: str, x0: float, y0: float, x1: float, y1: float, turn: int) -> list:
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2

    def at(angle_deg: float, r: float = 1.0) -> tuple[float, float]:
        a = math.radians(angle_deg + 90 * turn)
        return cx + r * rx * math.cos(a), cy + r * ry * math.sin(a)

    if shape == "triangle":
        return [at(-90), at(30), at(150)]
    if shape == "diamond":
        return [at(-90), at(0), at(90), at(180)]
    if shape == "hexagon":
        return [at(-90 + 60 * k) for k in range(6)]
    if shape == "star":
        return [at(-90 + 36 * k, 1.0 if k % 2 == 0 else 0.45) for k in range(10)]
    if shape == "cross":
        return [at(a, r) for a, r in ((-90, 1), (-45, 0.35), (0, 1), (45, 0.35), (90, 1),
                                      (135, 0.35), (180, 1), (225, 0.35))]  # fmt: skip
    return []


_POSE_TURN = {"frontal": 0, "front": 0, "right": 1, "rear": 2, "back": 2, "left": 3}


def render_image(
    image_uri: str,
    boxes: Sequence[Sequence[float]] | np.ndarray | None,
    labels: Sequence[str] | None,
    attributes: Sequence[object] | None = None,
    scenery: bool = False,
) -> Image.Image:
    """Draw a ``synthetic://`` image with its objects.

    Args:
        image_uri: ``synthetic://<source_id>/<name>?w=<W>&h=<H>``.
        boxes: ``(n, 4)`` absolute ``x0, y0, x1, y1``; non-finite or empty boxes are skipped,
            inverted corners are taken in order, parts outside the image are clipped.
        labels: ``n`` raw labels (the look follows the normalised label).
        attributes: optional, ``n`` dicts (or lists of key/value pairs, as Arrow maps give);
            keys ``colour``/``color``, ``occluded``, ``pose`` are used.
        scenery: also draw large shapes behind the objects (:func:`draw_scenery`), so that
            pictures differ as much in their coarse structure as photos do (the synthetic
            corpus's real image files use it; a perceptual hash of gradients alone confuses
            different pictures).

    Returns:
        an RGB ``PIL.Image.Image`` of the URI's size.
    """
    _, _, width, height = parse_synthetic_uri(image_uri)
    arr = np.asarray(boxes if boxes is not None else [], dtype=np.float64).reshape(-1, 4)
    labels = list(labels) if labels is not None else [""] * len(arr)
    if len(labels) != len(arr):
        raise ValueError(f"{len(arr)} boxes but {len(labels)} labels")
    attrs = list(attributes) if attributes is not None else [None] * len(arr)
    if len(attrs) != len(arr):
        raise ValueError(f"{len(arr)} boxes but {len(attrs)} attribute entries")
    img = Image.fromarray(background(image_uri, width, height), "RGB")
    draw = ImageDraw.Draw(img)
    if scenery:
        draw_scenery(draw, image_uri, width, height)
    for (bx0, by0, bx1, by1), label, attr in zip(arr.tolist(), labels, attrs):
        if not all(math.isfinite(v) for v in (bx0, by0, bx1, by1)):
            continue
        x0, x1 = sorted((bx0, bx1))
        y0, y1 = sorted((by0, by1))
        x0, y0 = max(x0, 0.0), max(y0, 0.0)
        x1, y1 = min(x1, float(width)), min(y1, float(height))
        if x1 - x0 < 1 or y1 - y0 < 1:
            continue
        _draw_object(draw, str(label), _attrs(attr), x0, y0, x1 - 1, y1 - 1)
    return img


def _draw_object(
    draw: ImageDraw.ImageDraw, label: str, attrs: dict[str, str],
    x0: float, y0: float, x1: float, y1: float,
) -> None:  # fmt: skip
    shape, fill = label_look(label)
    colour = attrs.get("colour", attrs.get("color", "")).strip().lower()
    if colour in NAMED_COLOURS:
        fill = NAMED_COLOURS[colour]
    elif colour:
        fill = label_look("colour\x1f" + colour)[1]
    lum = 0.299 * fill[0] + 0.587 * fill[1] + 0.114 * fill[2]
    edge = (15, 15, 15) if lum > 110 else (240, 240, 240)
    turn = _POSE_TURN.get(attrs.get("pose", "").strip().lower(), 0)
    width = max(1, int(min(x1 - x0, y1 - y0) / 20))
    box = [x0, y0, x1, y1]
    if shape == "ellipse":
        draw.ellipse(box, fill=fill, outline=edge, width=width)
    elif shape == "rectangle":
        draw.rectangle(box, fill=fill, outline=edge, width=width)
    elif shape == "rounded":
        radius = max(1, int(min(x1 - x0, y1 - y0) / 4))
        draw.rounded_rectangle(box, radius=radius, fill=fill, outline=edge, width=width)
    else:
        draw.polygon(_shape_points(shape, x0, y0, x1, y1, turn), fill=fill, outline=edge)
    # a marker on the side the object faces (frontal: top, right, rear: bottom, left)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    mx, my = [(cx, y0 + (y1 - y0) * 0.2), (x1 - (x1 - x0) * 0.2, cy),
              (cx, y1 - (y1 - y0) * 0.2), (x0 + (x1 - x0) * 0.2, cy)][turn]  # fmt: skip
    r = max(1.0, min(x1 - x0, y1 - y0) * 0.08)
    draw.ellipse([mx - r, my - r, mx + r, my + r], fill=edge)
    if attrs.get("occluded", "").strip().lower() in _TRUE:
        # an occluder covering the lower-right part of the object
        ox0, oy0 = x0 + (x1 - x0) * 0.45, y0 + (y1 - y0) * 0.4
        grey = (int(fill[0] * 0.3 + 90), int(fill[1] * 0.3 + 90), int(fill[2] * 0.3 + 90))
        draw.rectangle([ox0, oy0, x1, y1], fill=grey, outline=(60, 60, 60))


def open_image(
    image_uri: str,
    boxes: Sequence[Sequence[float]] | np.ndarray | None = None,
    labels: Sequence[str] | None = None,
    attributes: Iterable[object] | None = None,
) -> Image.Image:
    """Open an image by URI: ``synthetic://`` is rendered (with its objects when given);
    anything else is read through fsspec and decoded by Pillow (returned as RGB)."""
    if urlsplit(image_uri).scheme == "synthetic":
        n = 0 if boxes is None else len(boxes)
        if labels is None:
            labels = [""] * n
        return render_image(
            image_uri, boxes, labels, list(attributes) if attributes is not None else None
        )
    import fsspec

    with fsspec.open(image_uri, "rb") as f:
        data = f.read()
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB")


__all__ = [
    "background",
    "label_look",
    "normalise_label",
    "open_image",
    "parse_synthetic_uri",
    "render_image",
]
