"""``make bench``: every benchmark of the project, figures and ratios against peers.

Each measured step runs in a fresh subprocess so that its peak RSS is its own; the peak is
sampled over the whole process tree (workers included) with psutil.

    python -m assets.bench [--only coco,ingest] [--coco-boxes N] [--scale small] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from dagster_project.profiles import PROJECT_ROOT


def measure(cmd: list[str], cwd: Path = PROJECT_ROOT, interval: float = 0.05) -> dict:
    """Run ``cmd``; return its wall seconds, peak RSS of its process tree (MB), and stdout."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    out, _ = proc.communicate()
    done.set()
    thread.join()
    if proc.returncode:
        raise RuntimeError(f"{cmd} exited {proc.returncode}")
    return {"seconds": time.perf_counter() - started, "peak_rss_mb": peak / 2**20, "stdout": out}


def bench_ingest(scale: str, out: Path, workers: int) -> dict:
    """Whole ingest of the synthetic corpus at ``scale``: boxes/s and peak RSS."""
    from assets.sources.synthetic import generate_corpus

    corpus = generate_corpus(str(out / f"corpus-{scale}"), scale=scale, seed=0, workers=workers)
    code = (
        "import json,sys\n"
        "from assets.sources.catalog import build_catalog, CATALOG_PATH\n"
        "from assets.sources.ingest import ingest_shards\n"
        "from assets.storage import Storage\n"
        f"s = Storage({str(out / 'ingest-root')!r})\n"
        f"t, _ = build_catalog({str(corpus.catalog_path)!r}, 64, storage_root=s.url(),"
        f" scale={scale!r}, seed=0)\n"
        "s.write_parquet(t, CATALOG_PATH)\n"
        "keys = [f'{i:03d}' for i in range(64)]\n"
        f"r = ingest_shards(s, CATALOG_PATH, keys, workers={workers})\n"
        "print(json.dumps({'boxes': sum(x['boxes'] for x in r),"
        " 'seen': sum(x['boxes_seen'] for x in r), 'sources': sum(x['sources'] for x in r)}))\n"
    )
    m = measure([sys.executable, "-c", code])
    counts = json.loads(m["stdout"].strip().splitlines()[-1])
    return {
        "scale": scale,
        "sources": counts["sources"],
        "boxes_seen": counts["seen"],
        "seconds": round(m["seconds"], 2),
        "boxes_per_second": round(counts["seen"] / m["seconds"]),
        "peak_rss_mb": round(m["peak_rss_mb"]),
        "workers": workers,
    }


def _print(figures: dict) -> None:
    for k, v in figures.items():
        print(f"  {k:>20}: {v:,}" if isinstance(v, int | float) else f"  {k:>20}: {v}")


def bench_quality(scale: str, out: Path, workers: int, rows: int) -> dict:
    """Geometry checks on a ``rows``-box table; label embedding cold and with nothing new."""
    root = out / "ingest-root"
    if not (root / "raw_instances").is_dir():
        bench_ingest(scale, out, workers)
    figures = {}
    for what, extra in (("geometry", ["--rows", str(rows)]), ("labels", [])):
        print(f"== quality: {what}", flush=True)
        m = measure([sys.executable, "-m", "assets.quality.bench", what, str(root), *extra])
        figures[what] = {
            **json.loads(m["stdout"].strip().splitlines()[-1]),
            "peak_rss_mb": round(m["peak_rss_mb"]),
        }
        _print(figures[what])
    return figures


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m assets.bench")
    parser.add_argument("--only", default="coco,ingest,quality")
    parser.add_argument("--geometry-rows", type=int, default=10_000_000)
    parser.add_argument("--coco-boxes", type=int, default=1_000_000)
    parser.add_argument("--scale", default="small")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=str(PROJECT_ROOT / "bench_out"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    only = set(args.only.split(","))
    results: dict = {}
    if "coco" in only:
        from assets.sources import bench_coco

        print(f"== COCO reader vs pycocotools, {args.coco_boxes:,} boxes", flush=True)
        results["coco"] = bench_coco.main(["--boxes", str(args.coco_boxes), "--out", str(out)])
    if "ingest" in only:
        print(f"== whole ingest, synthetic corpus scale={args.scale}", flush=True)
        results["ingest"] = bench_ingest(args.scale, out, args.workers)
        _print(results["ingest"])
    if "quality" in only:
        results["quality"] = bench_quality(args.scale, out, args.workers, args.geometry_rows)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    print(f"figures written to {out / 'results.json'}")
    return results


if __name__ == "__main__":
    main()
