"""How often unrelated synthetic pictures look alike to the perceptual hash.

``python -m vprim.assets.sources.synthetic.bench_renders [N]`` renders N unrelated pictures
(random sizes 64-200 px, 1-4 objects, JPEG quality 85) without and with the scenery the
real-image sources draw (``render.draw_scenery``), hashes each as ingest does, and counts the
pairs within the near-duplicate radius (``neardup.near_pairs``): the false-duplicate rate the
corpus's duplicate detection is scored against.
"""

from __future__ import annotations

import io
import sys

import numpy as np

from vprim.assets.sources.images import neardup
from vprim.assets.sources.images.phash import DEFAULT_RADIUS
from vprim.assets.sources.images.probe import probe_image
from vprim.assets.sources.render import render_image

LABELS = ("dog", "car", "cup", "tree", "chair", "bird", "bottle", "person")


def render_hashes(n: int, scenery: bool, seed: int = 1) -> np.ndarray:
    """The pHashes of ``n`` unrelated rendered pictures, encoded as JPEG first."""
    rng = np.random.default_rng(seed)
    hashes = np.empty(n, np.uint64)
    for k in range(n):
        w, h = int(rng.integers(64, 201)), int(rng.integers(64, 201))
        m = int(rng.integers(1, 5))
        x0, y0 = rng.uniform(0, w * 0.6, m), rng.uniform(0, h * 0.6, m)
        x1, y1 = x0 + rng.uniform(16, w * 0.4, m), y0 + rng.uniform(16, h * 0.4, m)
        labels = list(rng.choice(LABELS, m))
        uri = f"synthetic://renders/{k}?w={w}&h={h}"
        img = render_image(uri, np.stack([x0, y0, x1, y1], 1), labels, scenery=scenery)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=85)
        hashes[k] = probe_image(buf.getvalue(), with_hash=True).phash
    return hashes


def false_pairs(n: int) -> dict:
    """Pairs within the radius among ``n`` unrelated renders, without and with scenery."""
    pairs = n * (n - 1) // 2
    out = {"renders": n, "pairs": pairs, "radius": DEFAULT_RADIUS}
    for scenery in (False, True):
        i, _ = neardup.near_pairs(render_hashes(n, scenery), DEFAULT_RADIUS)
        out[f"scenery_{scenery}".lower()] = {"near_pairs": int(i.size), "rate": i.size / pairs}
    return out


if __name__ == "__main__":
    print(false_pairs(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000))
