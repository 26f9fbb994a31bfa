"""Samples per second of every camp, generated and written as their training assets do it:
``--partitions`` seed-range partitions in ``--workers`` processes, PNG encoding and the
Parquet write included.

    python -m vprim.assets.camps.bench CAMP --samples N --out DIR [--lake-root ROOT]
                                 [--workers 2] [--partitions 4]

prints one JSON line: samples, wall seconds, samples/s over the wall time and per process
(samples / the partitions' own seconds, i.e. one core). The counting camp reads the published
lake under ``--lake-root`` (its ``train`` images); every camp writes under ``--out`` only.
``python -m vprim.assets.bench --only camps`` runs it for the four camps, each in a fresh process,
and prints the table.
"""

from __future__ import annotations

import argparse
import json
import time

from vprim.assets.camps import runs as R
from vprim.assets.camps.schema import CAMPS
from vprim.assets.parallel import map_shards

#: Default sizes: about 20 s each on 2 busy cores.
SAMPLES = {"counting": 800, "spatial": 2000, "maze": 2000, "path_tracing": 1000}


def bench(camp: str, samples: int, out: str, lake_root: str | None = None, workers: int = 2,
          partitions: int = 4) -> dict:  # fmt: skip
    """Generate ``samples`` training samples of ``camp``; its figures."""
    if camp == "counting" and not lake_root:
        raise ValueError("the counting camp needs --lake-root (a published lake)")
    jobs = [{"camp": camp, "root": lake_root or out, "out_root": out, "partition": p,
             "partitions": partitions, "train_size": samples}
            for p in range(partitions)]  # fmt: skip
    t0 = time.perf_counter()
    results = map_shards(R.train_partition, jobs, workers)
    wall = time.perf_counter() - t0
    rows = sum(r.rows for r in results)
    busy = sum(r.seconds for r in results)
    return {
        "camp": camp,
        "samples": rows,
        "wall_seconds": round(wall, 2),
        "samples_per_second": round(rows / wall, 1) if wall else 0.0,
        "samples_per_second_per_process": round(rows / busy, 1) if busy else 0.0,
        "workers": workers,
        "partitions": partitions,
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m vprim.assets.camps.bench")
    ap.add_argument("camp", choices=CAMPS)
    ap.add_argument("--samples", type=int, default=0, help="default: SAMPLES[camp]")
    ap.add_argument("--out", required=True, help="storage root the samples are written to")
    ap.add_argument("--lake-root", default="", help="root of the published lake (counting)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--partitions", type=int, default=4)
    args = ap.parse_args(argv)
    figures = bench(args.camp, args.samples or SAMPLES[args.camp], args.out,
                    args.lake_root or None, args.workers, args.partitions)  # fmt: skip
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
