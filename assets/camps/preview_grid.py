"""A grid of rendered camp samples with their primitives drawn on top, for the Dagster UI.

Each tile is a sample's image with every ``<|ref|>..<|box|>`` group of its target drawn in
its own colour (boxes) and every ``<|point|>`` group as a polyline with dots (its first point
larger), the prompt and the answer written under it. Every camp's asset shows one.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from PIL import Image, ImageDraw

from vprim.assets.camps.primitives import parse_primitives

PALETTE = ((230, 25, 75), (0, 130, 200), (60, 180, 75), (245, 130, 48), (145, 30, 180),
           (255, 225, 25), (70, 240, 240), (240, 50, 230))  # fmt: skip


def draw_primitives(img: Image.Image, text: str) -> Image.Image:
    """A copy of ``img`` (RGB) with the primitives of ``text`` (0..999) drawn on it."""
    out = img.convert("RGB")
    draw = ImageDraw.Draw(out)
    sx, sy = out.width / 999, out.height / 999
    parsed = parse_primitives(text)
    for k, ref in enumerate(parsed.refs):
        colour = PALETTE[k % len(PALETTE)]
        for x0, y0, x1, y1 in ref.boxes:
            draw.rectangle((x0 * sx, y0 * sy, x1 * sx, y1 * sy), outline=colour, width=2)
    for k, group in enumerate(parsed.points):
        colour = PALETTE[k % len(PALETTE)]
        xy = [(x * sx, y * sy) for x, y in group]
        if len(xy) > 1:
            draw.line(xy, fill=colour, width=2)
        for i, (x, y) in enumerate(xy):
            r = 4 if i == 0 else 2
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    return out


def tile(row: dict, size: int = 240) -> Image.Image:
    """One sample as a ``size``-wide tile: image, primitives, prompt and answer."""
    img = Image.open(io.BytesIO(row["image_png"]))
    img = draw_primitives(img.resize((size, max(1, round(img.height * size / img.width)))),
                          row["target"])  # fmt: skip
    out = Image.new("RGB", (size, img.height + 30), (255, 255, 255))
    out.paste(img, (0, 0))
    tdraw = ImageDraw.Draw(out)
    prompt = row["prompt"] if len(row["prompt"]) <= 44 else row["prompt"][:43] + "…"
    tdraw.text((3, img.height + 2), prompt, fill=(0, 0, 0))
    tdraw.text((3, img.height + 15), f"[{row['difficulty']}] answer: {row['answer']}",
               fill=(90, 0, 0))  # fmt: skip
    return out


def grid_png(rows: Sequence[dict], columns: int = 4, size: int = 240) -> bytes:
    """The rows as a grid of tiles (row-major), PNG bytes."""
    tiles = [tile(r, size) for r in rows]
    if not tiles:
        return b""
    cell_h = max(t.height for t in tiles)
    n_rows = (len(tiles) + columns - 1) // columns
    canvas = Image.new("RGB", (columns * (size + 4), n_rows * (cell_h + 4)), (235, 235, 235))
    for k, t in enumerate(tiles):
        canvas.paste(t, ((k % columns) * (size + 4), (k // columns) * (cell_h + 4)))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return buf.getvalue()


def pick_preview(rows: Sequence[dict], n: int = 8) -> list[dict]:
    """Up to ``n`` rows, spread across difficulties (round robin in first-seen order)."""
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["difficulty"], []).append(r)
    out: list[dict] = []
    while len(out) < n and any(by.values()):
        for d in list(by):
            if by[d] and len(out) < n:
                out.append(by[d].pop(0))
    return out


__all__ = ["draw_primitives", "grid_png", "pick_preview", "tile"]
