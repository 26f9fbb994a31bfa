"""``make bench``: every benchmark of the project, figures and ratios against peers.

Each measured step runs in a fresh subprocess so that its peak RSS is its own; the peak is
sampled over the whole process tree (workers included) with psutil.

    python -m vprim.assets.bench [--only coco,archives,ingest,quality,lake,camps,incremental,
                                  images,neardup]
                           [--coco-boxes N] [--archive-images N] [--images N] [--neardup-hashes N]
                           [--scale small] [--lake-sizes 10000000,40000000] [--lake-root ROOT]
                           [--camp-samples counting=800,maze=2000] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from vprim.assets.settings import PROJECT_ROOT


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
    from vprim.assets.sources.synthetic.corpus import generate_corpus

    corpus = generate_corpus(str(out / f"corpus-{scale}"), scale=scale, seed=0, workers=workers)
    code = (
        "import json,sys\n"
        "from vprim.assets.sources.catalog import build_catalog\n"
        "from vprim.assets.contracts.layout import CATALOG_PATH\n"
        "from vprim.assets.sources.ingest import ingest_shards\n"
        "from vprim.assets.storage import Storage\n"
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


def bench_archives(out: Path, n_images: int) -> dict:
    """A Roboflow COCO export read zipped in place vs unzipped: images/s and the ratio."""
    from vprim.assets.sources.bench_archives import bench_zip_vs_folder

    print(f"== Roboflow COCO export, zip read in place vs folder, {n_images:,} images", flush=True)
    figures = bench_zip_vs_folder(out, n_images)
    _print(figures)
    return figures


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
        m = measure([sys.executable, "-m", "vprim.assets.quality.bench", what, str(root), *extra])
        figures[what] = {
            **json.loads(m["stdout"].strip().splitlines()[-1]),
            "peak_rss_mb": round(m["peak_rss_mb"]),
        }
        _print(figures[what])
    return figures


def bench_lake(out: Path, sizes: list[int], peer_max: int, lake_root: str | None) -> dict:
    """Balance + checks + publish alone on clean_instances of each size (rows/s, RSS), the
    same rule as eager Polars where it fits in memory, and the views' query times."""
    figures: dict = {}
    for n in sizes:
        root = out / f"lake-{n // 1_000_000}M"
        if not (root / "clean_instances").is_dir():
            print(f"   writing {n:,} clean instances", flush=True)
            measure([sys.executable, "-m", "vprim.assets.lake.bench", "synth", str(root),
                     "--instances", str(n)])  # fmt: skip
        m = measure([sys.executable, "-m", "vprim.assets.lake.bench", "build", str(root)])
        row = json.loads(m["stdout"].strip().splitlines()[-1])
        seconds = row["build_seconds"] + row["checks_seconds"] + row["publish_seconds"]
        row.update(
            seconds=round(seconds, 2),
            instances_per_second=round(row["instances_in"] / seconds),
            peak_rss_mb=round(m["peak_rss_mb"]),
        )
        if n <= peer_max:
            p = measure([sys.executable, "-m", "vprim.assets.lake.bench", "peer", str(root)])
            peer = json.loads(p["stdout"].strip().splitlines()[-1])
            row["peer_polars_eager"] = {**peer, "peak_rss_mb": round(p["peak_rss_mb"])}
            row["speed_vs_peer"] = round(peer["seconds"] / row["build_seconds"], 2)
            row["memory_vs_peer"] = round(row["peak_rss_mb"] / p["peak_rss_mb"], 2)
        figures[f"{n // 1_000_000}M"] = row
        print(f"== lake: balance and publish, {n:,} clean instances", flush=True)
        _print(row)
    for name, root in (("bench lake", out / f"lake-{max(sizes) // 1_000_000}M"),
                       ("pipeline lake", lake_root)):  # fmt: skip
        if root and Path(root, "lake", "CURRENT").exists():
            q = measure([sys.executable, "-m", "vprim.assets.lake.bench", "queries", str(root)])
            figures[f"queries: {name}"] = json.loads(q["stdout"].strip().splitlines()[-1])
            print(f"== lake: view query seconds over the {name} ({root})", flush=True)
            _print(figures[f"queries: {name}"])
    return figures


def bench_camps(out: Path, lake_root: str | None, workers: int, samples: dict[str, int]) -> dict:
    """Samples/s of each camp (``vprim.assets.camps.bench``, each camp in a fresh process), written
    under ``out``; counting reads the published lake under ``lake_root`` (skipped without
    one)."""
    from vprim.assets.camps.bench import CAMPS, SAMPLES

    figures: dict = {}
    has_lake = bool(lake_root) and Path(lake_root, "lake", "CURRENT").exists()
    for camp in CAMPS:
        if camp == "counting" and not has_lake:
            print(f"   counting skipped: no published lake under {lake_root!r} (--lake-root)")
            continue
        n = samples.get(camp, SAMPLES[camp])
        cmd = [sys.executable, "-m", "vprim.assets.camps.bench", camp, "--samples", str(n),
               "--out", str(out / "camps"), "--workers", str(workers)]  # fmt: skip
        if camp == "counting":
            cmd += ["--lake-root", str(lake_root)]
        m = measure(cmd)
        row = json.loads(m["stdout"].strip().splitlines()[-1])
        row["peak_rss_mb"] = round(m["peak_rss_mb"])
        figures[camp] = row
    print(f"== camps: samples per second, {workers} worker processes, 4 seed partitions")
    print(f"  {'camp':<13} {'samples':>8} {'wall s':>8} {'samples/s':>10} {'per process':>12}"
          f" {'peak RSS MB':>12}")  # fmt: skip
    for camp, r in figures.items():
        print(f"  {camp:<13} {r['samples']:>8,} {r['wall_seconds']:>8.1f}"
              f" {r['samples_per_second']:>10.1f} {r['samples_per_second_per_process']:>12.1f}"
              f" {r['peak_rss_mb']:>12,}")  # fmt: skip
    if has_lake:
        figures["lake_root"] = str(lake_root)
    return figures


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m vprim.assets.bench")
    parser.add_argument(
        "--only", default="coco,archives,ingest,quality,lake,camps,incremental,images,neardup"
    )
    parser.add_argument("--camp-samples", default="", help="e.g. counting=800,maze=2000")
    parser.add_argument("--lake-sizes", default="10000000,40000000")
    parser.add_argument("--lake-peer-max", type=int, default=10_000_000)
    parser.add_argument("--lake-root", default=os.environ.get("VPRIM_ROOT", ""))
    parser.add_argument("--geometry-rows", type=int, default=10_000_000)
    parser.add_argument("--coco-boxes", type=int, default=1_000_000)
    parser.add_argument("--archive-images", type=int, default=5000)
    parser.add_argument("--images", type=int, default=400, help="real JPEGs probed and hashed")
    parser.add_argument("--neardup-hashes", type=int, default=13_500_000)
    parser.add_argument("--scale", default="small")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=str(PROJECT_ROOT / "bench_out"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    only = set(args.only.split(","))
    results: dict = {}
    if "coco" in only:
        from vprim.assets.sources import bench_coco

        print(f"== COCO reader vs pycocotools, {args.coco_boxes:,} boxes", flush=True)
        results["coco"] = bench_coco.main(["--boxes", str(args.coco_boxes), "--out", str(out)])
    if "archives" in only:
        results["archives"] = bench_archives(out, args.archive_images)
    if "ingest" in only:
        print(f"== whole ingest, synthetic corpus scale={args.scale}", flush=True)
        results["ingest"] = bench_ingest(args.scale, out, args.workers)
        _print(results["ingest"])
    if "quality" in only:
        results["quality"] = bench_quality(args.scale, out, args.workers, args.geometry_rows)
    if "lake" in only:
        sizes = [int(v) for v in args.lake_sizes.split(",")]
        results["lake"] = bench_lake(out, sizes, args.lake_peer_max, args.lake_root or None)
    if "camps" in only:
        samples = {k: int(v) for k, v in (x.split("=") for x in args.camp_samples.split(",") if x)}
        results["camps"] = bench_camps(out, args.lake_root or None, args.workers, samples)
    if "images" in only:
        from vprim.assets.sources.images import bench as images_bench

        print(f"== image probe and pHash, {args.images} real JPEGs", flush=True)
        results["images"] = {
            "hashes": images_bench.main(["hashes", "--images", "200", "--out", str(out)]),
            "probe": images_bench.main(["images", "--images", str(args.images), "--out", str(out)]),
        }
    if "neardup" in only:
        from vprim.assets.sources.images import bench as images_bench

        print(f"== near-duplicate search, {args.neardup_hashes:,} random hashes", flush=True)
        results["neardup"] = images_bench.main(["neardup", "--hashes", str(args.neardup_hashes)])
    if "incremental" in only:
        from vprim.assets.lake import bench_incremental

        print(f"== incremental re-curation, scale={args.scale}", flush=True)
        results["incremental"] = bench_incremental.main(
            ["--scale", args.scale, "--workers", str(args.workers), "--out", str(out)]
        )
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    print(f"figures written to {out / 'results.json'}")
    return results


if __name__ == "__main__":
    main()
