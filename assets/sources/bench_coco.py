"""Benchmark: vprim's streaming COCO reader against pycocotools on one large COCO file.

``write_coco`` writes a deterministic COCO instances file (polygon segmentations of 8-16
points, about 10 boxes per image, 80 categories whose ids skip numbers, a few crowd RLE
boxes). Each reader then runs in a fresh subprocess, so that its peak RSS (the child's own
``ru_maxrss``) and its wall time are its own:

- ``vprim``: ``CocoReader().read_file`` into a ``READER_SCHEMA`` table;
- ``vprim (ingest)``: ``ingest.read_source`` of the file as a catalog source, what a shard does
  with it (the reader, then instance ids and the source's table): the streamed file must not
  also be read whole, so its peak is the reader's, not the reader's plus the file's;
- ``pycocotools``: ``COCO(path)`` (``json.load`` plus its index).

    python -m vprim.assets.sources.bench_coco [--boxes 1000000] [--out DIR]

The project's goal: vprim at least 2x faster and at most half the peak memory of pycocotools.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BOXES_PER_IMAGE = 10
N_CATEGORIES = 80

_CHILD_VPRIM = """
import json, resource, sys, time
t0 = time.perf_counter()
from vprim.assets.sources.readers.base import Source
from vprim.assets.sources.readers.coco import CocoReader
path = sys.argv[1]
t1 = time.perf_counter()
result = CocoReader().read_file(Source("bench", path), None, path)
t2 = time.perf_counter()
print(json.dumps({"seconds": t2 - t1, "import_seconds": t1 - t0,
                  "rows": result.boxes.num_rows + len(result.rejects),
                  "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

_CHILD_INGEST = """
import json, resource, sys, time
t0 = time.perf_counter()
from vprim.assets.sources.ingest import read_source
path = sys.argv[1]
t1 = time.perf_counter()
out = read_source("bench", path, "coco")
t2 = time.perf_counter()
print(json.dumps({"seconds": t2 - t1, "import_seconds": t1 - t0,
                  "rows": sum(t.num_rows for t in out.boxes) + len(out.rejects),
                  "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

_CHILD_PYCOCOTOOLS = """
import contextlib, io, json, resource, sys, time
t0 = time.perf_counter()
from pycocotools.coco import COCO
path = sys.argv[1]
t1 = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    coco = COCO(path)
t2 = time.perf_counter()
print(json.dumps({"seconds": t2 - t1, "import_seconds": t1 - t0, "rows": len(coco.anns),
                  "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def category_ids(n: int = N_CATEGORIES) -> list[int]:
    """COCO-like category ids: 1..90 with gaps (``n`` of them, deterministic)."""
    ids, i = [], 1
    while len(ids) < n:
        if i % 9 != 0:  # skip every ninth id, as COCO skips 12, 26, 29, ...
            ids.append(i)
        i += 1
    return ids


def write_coco(path: str | Path, n_boxes: int = 1_000_000, seed: int = 0) -> Path:
    """Write a deterministic COCO instances file with ``n_boxes`` annotations.

    Args:
        path: where to write the JSON.
        n_boxes: number of annotations; images = ceil(n_boxes / 10).
        seed: seed of the generator (same seed, same bytes).

    Returns:
        The path written.
    """
    path = Path(path)
    rng = np.random.default_rng(seed)
    n_images = max(1, -(-n_boxes // BOXES_PER_IMAGE))
    cats = category_ids()
    with open(path, "w", encoding="utf-8") as f:
        f.write('{"info": {"description": "vprim bench", "version": "1.0", "year": 2024}, ')
        f.write('"licenses": [{"id": 1, "name": "CC BY 4.0", "url": ""}], "images": [')
        widths = rng.integers(320, 1281, n_images)
        heights = rng.integers(240, 961, n_images)
        for i in range(n_images):
            sep = ", " if i else ""
            f.write(
                f'{sep}{{"license": 1, "file_name": "{i + 1:012d}.jpg", '
                f'"coco_url": "", "height": {heights[i]}, "width": {widths[i]}, '
                f'"date_captured": "2024-01-01 00:00:00", "id": {i + 1}}}'
            )
        f.write('], "annotations": [')
        chunk = 50_000
        for start in range(0, n_boxes, chunk):
            m = min(chunk, n_boxes - start)
            img = (np.arange(start, start + m) // BOXES_PER_IMAGE) + 1
            w_img = widths[img - 1]
            h_img = heights[img - 1]
            bw = np.round(rng.uniform(0.02, 0.5, m) * w_img, 2)
            bh = np.round(rng.uniform(0.02, 0.5, m) * h_img, 2)
            bx = np.round(rng.uniform(0, 1, m) * (w_img - bw), 2)
            by = np.round(rng.uniform(0, 1, m) * (h_img - bh), 2)
            cat = rng.integers(0, len(cats), m)
            n_pts = rng.integers(8, 17, m)
            crowd = rng.random(m) < 0.01
            parts = []
            for j in range(m):
                if crowd[j]:
                    seg = f'{{"counts": "Vb01O1000O1N2", "size": [{h_img[j]}, {w_img[j]}]}}'
                else:
                    k = int(n_pts[j])
                    t = np.linspace(0, 2 * np.pi, k, endpoint=False)
                    xs = bx[j] + bw[j] * (0.5 + 0.5 * np.cos(t))
                    ys = by[j] + bh[j] * (0.5 + 0.5 * np.sin(t))
                    pts = np.empty(2 * k)
                    pts[0::2], pts[1::2] = xs, ys
                    seg = "[[" + ("%.2f, " * (2 * k - 1) + "%.2f") % tuple(pts.tolist()) + "]]"
                parts.append(
                    f'{{"segmentation": {seg}, "area": {bw[j] * bh[j]:.2f}, '
                    f'"iscrowd": {int(crowd[j])}, "image_id": {img[j]}, '
                    f'"bbox": [{bx[j]}, {by[j]}, {bw[j]}, {bh[j]}], '
                    f'"category_id": {cats[cat[j]]}, "id": {start + j + 1}}}'
                )
            f.write((", " if start else "") + ", ".join(parts))
        f.write('], "categories": [')
        f.write(
            ", ".join(f'{{"supercategory": "thing", "id": {c}, "name": "class_{c}"}}' for c in cats)
        )
        f.write("]}")
    return path


def _run_child(code: str, path: Path) -> dict:
    root = Path(__file__).resolve().parents[2]
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])
    )
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode:
        raise RuntimeError(f"benchmark child failed ({proc.returncode}): {proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_seconds"] = time.perf_counter() - started
    out["peak_rss_mb"] = out.pop("peak_rss_kb") / 1024
    return out


def main(argv: list[str] | None = None) -> dict:
    """Write the file (unless it exists), run both readers, print a table, return figures."""
    parser = argparse.ArgumentParser(prog="python -m vprim.assets.sources.bench_coco")
    parser.add_argument("--boxes", type=int, default=1_000_000)
    parser.add_argument("--out", default="bench_out")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"coco_{args.boxes}_s{args.seed}.json"
    if not path.exists():
        t = time.perf_counter()
        tmp = path.with_suffix(".json.tmp")
        write_coco(tmp, args.boxes, args.seed)
        tmp.replace(path)
        print(
            f"wrote {path} ({path.stat().st_size / 2**20:.0f} MB) in {time.perf_counter() - t:.1f}s"
        )
    vprim = _run_child(_CHILD_VPRIM, path)
    ingest = _run_child(_CHILD_INGEST, path)
    coco = _run_child(_CHILD_PYCOCOTOOLS, path)
    if not vprim["rows"] == ingest["rows"] == coco["rows"]:
        raise RuntimeError(
            f"vprim read {vprim['rows']} boxes ({ingest['rows']} through ingest), "
            f"pycocotools {coco['rows']}"
        )
    figures = {
        "boxes": args.boxes,
        "file_mb": round(path.stat().st_size / 2**20, 1),
        "vprim_seconds": round(vprim["seconds"], 4),
        "vprim_peak_rss_mb": round(vprim["peak_rss_mb"]),
        "ingest_seconds": round(ingest["seconds"], 4),
        "ingest_peak_rss_mb": round(ingest["peak_rss_mb"]),
        "pycocotools_seconds": round(coco["seconds"], 4),
        "pycocotools_peak_rss_mb": round(coco["peak_rss_mb"]),
        "speedup": round(coco["seconds"] / vprim["seconds"], 2),
        "memory_ratio": round(vprim["peak_rss_mb"] / coco["peak_rss_mb"], 3),
    }
    figures["goal_met"] = figures["speedup"] >= 2 and figures["memory_ratio"] <= 0.5
    print(f"{'reader':<16}{'seconds':>10}{'peak RSS MB':>14}")
    print(f"{'vprim':<16}{vprim['seconds']:>10.2f}{vprim['peak_rss_mb']:>14.0f}")
    print(f"{'vprim (ingest)':<16}{ingest['seconds']:>10.2f}{ingest['peak_rss_mb']:>14.0f}")
    print(f"{'pycocotools':<16}{coco['seconds']:>10.2f}{coco['peak_rss_mb']:>14.0f}")
    print(
        f"speedup {figures['speedup']}x, memory {figures['memory_ratio']:.2f}x of pycocotools"
        f" (goal: >= 2x faster, <= 0.5x memory): {'met' if figures['goal_met'] else 'NOT met'}"
    )
    return figures


if __name__ == "__main__":
    main()
