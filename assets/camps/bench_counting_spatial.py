"""Samples per second of the counting and spatial camps, as their assets generate them: four
seed-range partitions in ``--workers`` processes (the counting camp over the published lake
of ``--root``; the root is written to: ``camps/<camp>/train/part-*.parquet``).

    python -m assets.camps.bench_counting_spatial --root ROOT [--counting 800]
                                                  [--spatial 2000] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import time

from assets.camps import counting_spatial_runs as R
from assets.camps.counting import CountingConfig
from assets.camps.spatial import SpatialConfig
from assets.parallel import map_shards


def bench(root: str, counting: int, spatial: int, workers: int, partitions: int = 4) -> dict:
    """Wall time, samples and samples/s per camp (0 samples: the camp is skipped)."""
    out = {}
    for camp, n, config in (("counting", counting, CountingConfig()),
                            ("spatial", spatial, SpatialConfig())):  # fmt: skip
        if n <= 0:
            continue
        jobs = [{"camp": camp, "root": root, "partition": p, "partitions": partitions,
                 "train_size": n, "config": config} for p in range(partitions)]  # fmt: skip
        t0 = time.perf_counter()
        summaries = map_shards(R.train_partition, jobs, workers)
        wall = time.perf_counter() - t0
        rows = sum(s.rows for s in summaries)
        busy = sum(s.seconds for s in summaries)
        out[camp] = {
            "samples": rows,
            "wall_seconds": round(wall, 2),
            "samples_per_second": round(rows / wall, 1),
            "samples_per_second_per_process": round(rows / busy, 1) if busy else 0.0,
            "workers": workers,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--counting", type=int, default=800)
    ap.add_argument("--spatial", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    print(json.dumps(bench(args.root, args.counting, args.spatial, args.workers), indent=1))


if __name__ == "__main__":
    main()
