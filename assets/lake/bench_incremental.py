"""``make bench``'s incremental entry: what a nightly re-curation costs when nothing changed,
and when one source changed, against the cold rebuild of the same corpus.

    python -m vprim.assets.lake.bench_incremental [--scale small] [--out DIR] [--workers 2]

Each rebuild is ``vprim rebuild-dataset`` in a subprocess, as a user runs it, into a root and
DAGSTER_HOME of its own under ``--out``. The corpus is generated first and not timed. Figures:
wall seconds; sources parsed (the sources of the raw shards rewritten); labels embedded (new
rows in the embedding cache); files rewritten under the root (size or mtime changed; the
corpus itself, an input, left out); lake versions published; shards touched; lake buckets
written.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from vprim.assets.contracts import layout
from vprim.assets.incremental import read_marker, rewritten, snapshot
from vprim.assets.lake import publish as P
from vprim.assets.settings import PROJECT_ROOT
from vprim.assets.storage import Storage

#: the generated corpus under the root: an input, left out of the files a rebuild rewrote
CORPUS = ("raw",)
#: a real object name that neither the synthetic corpus nor the shipped vocabulary carries
NEW_LABEL = "Bandoneon"


def edit_one_voc_label(root: Path, scale: str, seed: int = 0) -> tuple[str, str]:
    """Rename the first clean box's label of a kept VOC source in its annotation file, as a
    user fixing one label would. Returns the source id and the label it had."""
    clean = pl.read_parquet(root / layout.CLEAN_DIR / "*.parquet").filter(pl.col("format") == "voc")
    row = clean.row(0, named=True)
    corpus = Path(layout.synthetic_dir(str(root), scale, seed)) / layout.SYNTHETIC_SOURCES_DIR
    path = corpus / row["source_id"] / "Annotations" / f"{row['image_id']}.xml"
    old = f"<name>{row['raw_label']}</name>"
    text = path.read_text()
    if old not in text:
        raise RuntimeError(f"{path} has no {old}: the corpus layout changed")
    path.write_text(text.replace(old, f"<name>{NEW_LABEL}</name>", 1))
    return row["source_id"], row["raw_label"]


def rebuild(root: Path, home: Path, scale: str, workers: int, *flags: str) -> float:
    """One ``vprim rebuild-dataset``; its wall seconds."""
    env = {**os.environ, "DAGSTER_HOME": str(home), "VPRIM_WORKERS": str(workers)}
    cmd = [sys.executable, "-m", "vprim.dagster_project.cli", "rebuild-dataset"]
    started = time.perf_counter()
    proc = subprocess.run(
        [*cmd, "--scale", scale, "--root", str(root), *flags],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        raise RuntimeError(f"rebuild failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - started


def _cache_rows(root: Path) -> int:
    path = root / layout.EMBEDDING_CACHE_PATH
    return pq.ParquetFile(path).metadata.num_rows if path.exists() else 0


def figures(root: Path, before: dict, cache_before: int, versions_before: list[str]) -> dict:
    """What a rebuild did, read from the root: files, shards, sources, labels, versions."""
    store = Storage(str(root))
    changed = rewritten(before, snapshot(root, skip=CORPUS))
    raw_shards = sorted(
        p.split("shard=")[1][:3] for p in changed if p.startswith(layout.RAW_DIR + "/")
    )
    sources = sum(
        read_marker(store, "raw_instances", key)["summary"]["sources"] for key in raw_shards
    )
    new_versions = [v for v in P.versions(store) if v not in versions_before]
    buckets = sum(len(P.read_manifest(store, v)["counts"]["buckets"]) for v in new_versions)
    return {
        "files_rewritten": len(changed),
        "shards_touched": len(raw_shards),
        "sources_parsed": sources,
        "labels_embedded": _cache_rows(root) - cache_before,
        "lake_versions_published": len(new_versions),
        "lake_buckets_written": buckets,
    }


def measure_step(root: Path, run) -> dict:
    """``run()`` (a rebuild, returning its seconds) and the figures of what it did."""
    store = Storage(str(root))
    before, cache, versions = snapshot(root, skip=CORPUS), _cache_rows(root), P.versions(store)
    seconds = run()
    return {"seconds": round(seconds, 2), **figures(root, before, cache, versions)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m vprim.assets.lake.bench_incremental")
    parser.add_argument("--scale", default="small")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=str(PROJECT_ROOT / "bench_out"))
    args = parser.parse_args(argv)
    base = Path(args.out) / f"incremental-{args.scale}"
    shutil.rmtree(base, ignore_errors=True)
    root, home = base / "data", base / "home"
    from vprim.assets.sources.synthetic.corpus import generate_corpus

    generate_corpus(
        layout.synthetic_dir(str(root), args.scale, 0), scale=args.scale, seed=0,
        workers=args.workers,
    )  # fmt: skip

    def step(*flags: str):
        return lambda: rebuild(root, home, args.scale, args.workers, *flags)

    results: dict = {"scale": args.scale, "workers": args.workers}
    results["cold"] = measure_step(root, step())
    results["no_change"] = measure_step(root, step())
    results["no_change_run"] = measure_step(root, step("--all-shards"))
    source_id, old_label = edit_one_voc_label(root, args.scale)
    results["one_source_changed"] = {
        "source": source_id,
        "label": f"{old_label} -> {NEW_LABEL}",
        **measure_step(root, step()),
    }
    cold = results["cold"]["seconds"]
    for name in ("no_change", "no_change_run", "one_source_changed"):
        results[name]["share_of_cold"] = round(results[name]["seconds"] / cold, 3)
    print(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
