"""Drawing a sample's primitives on its image, for the sample grids shown in the Dagster UI.

A tile is the sample's image with the target's boxes (one colour per ref) and its point
groups drawn as a polyline with dots (first point larger), the difficulty and answer below.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from PIL import Image, ImageDraw

from assets.camps.primitives import parse_primitives

PALETTE = ((230, 25, 75), (0, 130, 200), (60, 180, 75), (245, 130, 48), (145, 30, 180))


def draw_primitives(img: Image.Image, text: str) -> Image.Image:
    """A copy of ``img`` with the primitives of ``text`` (0..999 coordinates) drawn on it."""
    out = img.convert("RGB")
    d = ImageDraw.Draw(out)
    sx, sy = out.width / 999, out.height / 999
    p = parse_primitives(text)
    for k, ref in enumerate(p.refs):
        for x0, y0, x1, y1 in ref.boxes:
            d.rectangle((x0 * sx, y0 * sy, x1 * sx, y1 * sy), outline=PALETTE[k % 5], width=2)
    for k, group in enumerate(p.points):
        colour = PALETTE[k % 5]
        xy = [(x * sx, y * sy) for x, y in group]
        if len(xy) > 1:
            d.line(xy, fill=colour, width=2)
        for i, (x, y) in enumerate(xy):
            r = 4 if i == 0 else 2
            d.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    return out


def samples_grid(rows: Sequence[dict], columns: int = 4, size: int = 224) -> bytes:
    """Tiles of ``rows`` (with ``image_png``, ``target``, ``difficulty``, ``answer``), PNG."""
    if not rows:
        return b""
    tiles = []
    for r in rows:
        img = draw_primitives(Image.open(io.BytesIO(r["image_png"])), r["target"])
        img = img.resize((size, round(img.height * size / img.width)))
        tile = Image.new("RGB", (size, img.height + 16), "white")
        tile.paste(img, (0, 0))
        ImageDraw.Draw(tile).text(
            (3, img.height + 2), f"[{r['difficulty']}] answer: {r['answer']}", fill=(90, 0, 0)
        )
        tiles.append(tile)
    h = max(t.height for t in tiles)
    n_rows = (len(tiles) + columns - 1) // columns
    canvas = Image.new("RGB", (columns * (size + 4), n_rows * (h + 4)), (235, 235, 235))
    for k, t in enumerate(tiles):
        canvas.paste(t, ((k % columns) * (size + 4), (k // columns) * (h + 4)))
    buf = io.BytesIO()
    canvas.save(buf, "PNG")
    return buf.getvalue()


__all__ = ["draw_primitives", "samples_grid"]
