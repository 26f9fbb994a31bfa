"""Figures of the image stage's building blocks, each against a naive peer measured in the run.

    python -m vprim.assets.sources.images.bench hashes
    python -m vprim.assets.sources.images.bench images [--images 400] [--threads 8] [--out DIR]
    python -m vprim.assets.sources.images.bench neardup [--hashes 13500000] [--radius 4]
                                                       [--queries 10000]

- ``hashes``: Hamming distances between real photos and their copies (JPEG quality 95 and 40,
  resized to 50% and 25%) and between different photos, for pHash (ours) and dHash (9x8 row
  gradients, the alternative): what chose the hash and its radius (docs/FORMATS.md "images").
- ``images``: a folder of JPEGs written from the real photos at 640x480 and 1920x1080 (every
  fourth with EXIF orientation 6), then: the header probe, the probe with its pHash (draft
  decode), and the naive peers, ``Image.open().load()`` for the probe and a full decode +
  resize for the same hash (``imagehash`` is not installed). Files are read once before timing
  (page cache). Per core = images per CPU second of the process (all threads).
- ``neardup``: uniformly random hashes (the worst case for the tables), all pairs within the
  radius (``near_pairs``), the groups, then a :class:`HashIndex` and a batch of lookups
  (half of them planted near copies, which must all be found).
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from vprim.assets.settings import PROJECT_ROOT
from vprim.assets.sources.images import neardup
from vprim.assets.sources.images import phash as H
from vprim.assets.sources.images.orientation import ORIENTATION_TAG
from vprim.assets.sources.images.probe import OK, probe_files, probe_image, read_orientation

IMAGE_DATA = PROJECT_ROOT / "tests" / "sources" / "data" / "images"
#: the copies of the hash measurement: name -> (scale, format, save options)
COPIES = {
    "q95": (1.0, "JPEG", {"quality": 95}),
    "q40": (1.0, "JPEG", {"quality": 40}),
    "r50": (0.5, "JPEG", {"quality": 90}),
    "r25": (0.25, "JPEG", {"quality": 90}),
    "q40_r50": (0.5, "JPEG", {"quality": 40}),
    "png": (1.0, "PNG", {"compress_level": 1}),
}
SIZES = ((640, 480), (1920, 1080))
PROBE_REPEAT = 10


def photos() -> list[Path]:
    """The real photos: the test fixtures, and scikit-learn's two sample photos when it is
    installed (measurement only; not copied into the repository)."""
    found = [*sorted((IMAGE_DATA / "photos").glob("*.jpg")), IMAGE_DATA / "exif" / "hopper.jpg"]
    try:
        import sklearn.datasets

        extra = Path(sklearn.datasets.__file__).parent / "images"
        found += sorted(extra.glob("*.jpg"))
    except ImportError:
        pass
    return found


def _jpeg(img: Image.Image, quality: int, exif: Image.Exif | None = None) -> bytes:
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality, **({"exif": exif} if exif else {}))
    return out.getvalue()


def copies_of(data: bytes) -> dict[str, bytes]:
    """The copies of one picture (as displayed), each a file's bytes."""
    img = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    out = {}
    for name, (scale, fmt, options) in COPIES.items():
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        saved = io.BytesIO()
        img.resize(size, Image.Resampling.BICUBIC).save(saved, fmt, **options)
        out[name] = saved.getvalue()
    return out


def dhash(data: bytes) -> int:
    """dHash, the alternative measured: the same decode, 9x8 (Lanczos), row gradients."""
    img = Image.open(io.BytesIO(data))
    gray = H.displayed_gray(img, read_orientation(img))
    small = np.asarray(gray.resize((9, 8), Image.Resampling.LANCZOS), np.int16)
    return H.pack_bits((small[:, 1:] > small[:, :-1]).ravel())


def phash(data: bytes) -> int:
    """Ours, as the probe computes it (EXIF orientation applied)."""
    probe = probe_image(data, with_hash=True)
    if probe.phash is None:
        raise RuntimeError(f"a bench picture did not hash: {probe.detail}")
    return probe.phash


def quadrants(path: Path) -> list[bytes]:
    """The four quarter crops of a photo (different pictures that share its statistics)."""
    img = Image.open(path).convert("RGB")
    w, h = img.width // 2, img.height // 2
    return [_jpeg(img.crop((x, y, x + w, y + h)), 90) for x in (0, w) for y in (0, h)]


def bench_hashes(out: Path, count: int) -> dict:
    """Distances of copies and of different pictures under both hashes.

    Copies: of each real photo and of ``count`` pictures of :func:`write_folder` (crops of the
    photos at 640x480 and 1920x1080). Different pictures: every two of the photos and their
    quarter crops (the folder's crops overlap, so they are not used as different pictures).
    """
    paths = photos()
    pictures = [p.read_bytes() for p in paths]
    pictures += [p.read_bytes() for p in write_folder(out / f"images-{count}", count)]
    crops = [c for p in paths for c in quadrants(p)] + [p.read_bytes() for p in paths]
    figures: dict = {"pictures": len(pictures), "different_pictures": len(crops)}
    copies = [copies_of(data) for data in pictures]
    for name, fn in (("phash", phash), ("dhash", dhash)):
        distance = {k: [] for k in COPIES}
        for data, its_copies in zip(pictures, copies, strict=True):
            original = fn(data)
            for k, copy in its_copies.items():
                distance[k].append(int(H.hamming(original, fn(copy))))
        different = np.array([fn(c) for c in crops], np.uint64)
        i, j = np.triu_indices(different.size, 1)
        apart = H.hamming(different[i], different[j])
        figures[name] = {
            "copy_max": {k: max(v) for k, v in distance.items()},
            "copies_beyond_radius": sum(d > H.DEFAULT_RADIUS for v in distance.values() for d in v),
            "copies": sum(len(v) for v in distance.values()),
            "different_min": int(apart.min()),
            "different_1st_percentile": float(np.percentile(apart, 1)),
            "different_median": float(np.median(apart)),
        }
    return figures


def write_folder(out: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` JPEGs cut from the real photos at 640x480 and 1920x1080 (quality 90), every
    fourth with EXIF orientation 6; kept when already there."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"img{k:05d}.jpg" for k in range(count)]
    if all(p.exists() for p in paths):
        return paths
    sources = [Image.open(p).convert("RGB") for p in photos()]
    rng = np.random.default_rng(seed)
    for k, path in enumerate(paths):
        src, (w, h) = sources[k % len(sources)], SIZES[k % len(SIZES)]
        # a random crop of the photo's aspect w:h, scaled to w x h (upscaled when small)
        side = min(src.width / w, src.height / h) * rng.uniform(0.7, 1.0)
        cw, ch = w * side, h * side
        x, y = rng.uniform(0, src.width - cw), rng.uniform(0, src.height - ch)
        img = src.resize((w, h), Image.Resampling.BILINEAR, box=(x, y, x + cw, y + ch))
        exif = Image.Exif()
        if k % 4 == 3:
            exif[ORIENTATION_TAG] = 6
        path.write_bytes(_jpeg(img, 90, exif))
    return paths


def _timed(fn: Callable[[], object], count: int) -> dict:
    """Wall and CPU time (all threads) of ``fn()``; images/s overall and per CPU second."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    fn()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    return {
        "seconds": round(wall, 3),
        "images_per_second": round(count / wall, 1),
        "images_per_core_second": round(count / max(cpu, 1e-9), 1),
    }


def _naive_probe(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:
        img.load()
        return ImageOps.exif_transpose(img).size


def _naive_hash(path: Path) -> int:
    with Image.open(path) as img:
        gray = ImageOps.exif_transpose(img.convert("L"))  # full-size decode
        small = gray.resize((H.DCT_SIZE, H.DCT_SIZE), Image.Resampling.LANCZOS)
        return H.hash_thumbnail(np.asarray(small, np.float64))


def bench_images(out: Path, count: int, threads: int) -> dict:
    """Probe and hash a folder of ``count`` real JPEGs, ours and the naive peers."""
    paths = write_folder(out / f"images-{count}", count)
    for p in paths:  # into the page cache: the figures are CPU, not this disk
        p.read_bytes()
    files = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths]
    results: dict = {}

    def ours(with_hash: bool, repeat: int = 1) -> Callable[[], object]:
        def run() -> None:
            table = probe_files(files * repeat, with_hash=with_hash, threads=threads)
            results[with_hash] = table.slice(0, count)

        return run

    def peer(fn: Callable[[Path], object]) -> Callable[[], object]:
        def run() -> None:
            with ThreadPoolExecutor(threads) as pool:
                results[fn] = list(pool.map(fn, paths))

        return run

    figures = {
        "images": count,
        "sizes": [f"{w}x{h}" for w, h in SIZES],
        "threads": threads,
        # the header probe is fast: timed over the folder read PROBE_REPEAT times
        "probe": _timed(ours(False, PROBE_REPEAT), count * PROBE_REPEAT),
        "probe_naive_full_decode": _timed(peer(_naive_probe), count),
        "probe_and_phash": _timed(ours(True), count),
        "phash_naive_full_decode": _timed(peer(_naive_hash), count),
    }
    table = results[True]
    if table["status"].to_pylist().count(OK) != count:
        raise RuntimeError("a bench image did not probe ok")
    shown = list(zip(table["displayed_width"].to_pylist(), table["displayed_height"].to_pylist()))
    if shown != results[_naive_probe]:
        raise RuntimeError("displayed sizes differ from Pillow's exif_transpose")
    draft_vs_full = H.hamming(table["phash"].to_numpy(), np.array(results[_naive_hash], np.uint64))
    figures["phash_draft_vs_full_decode_max_bits"] = int(draft_vs_full.max())
    for name in ("probe", "probe_and_phash"):
        peer_name = "probe_naive_full_decode" if name == "probe" else "phash_naive_full_decode"
        figures[f"{name}_speedup_per_core"] = round(
            figures[name]["images_per_core_second"] / figures[peer_name]["images_per_core_second"],
            1,
        )
    return figures


def _peak_rss_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def bench_neardup(count: int, radius: int, queries: int, seed: int = 0) -> dict:
    """All pairs, groups, index build and lookups over ``count`` uniform random hashes."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**64, count, dtype=np.uint64, endpoint=False)
    p = neardup.plan(count, radius)
    figures: dict = {
        "hashes": count,
        "radius": radius,
        "blocks": len(p.blocks),
        "tables": len(p.tables),
    }
    started = time.perf_counter()
    i, _ = neardup.near_pairs(hashes, radius)
    figures["near_pairs_seconds"] = round(time.perf_counter() - started, 2)
    figures["pairs"] = int(i.size)
    figures["near_pairs_peak_rss_mb"] = _peak_rss_mb()
    started = time.perf_counter()
    group = neardup.groups(hashes, radius)
    figures["groups_seconds"] = round(time.perf_counter() - started, 2)
    figures["items_not_own_representative"] = int(np.count_nonzero(group != np.arange(count)))
    started = time.perf_counter()
    index = neardup.HashIndex(hashes, radius)
    figures["index_build_seconds"] = round(time.perf_counter() - started, 2)
    figures["index_peak_rss_mb"] = _peak_rss_mb()
    # half the queries are near copies of base hashes (radius bits flipped), half random
    planted = queries // 2
    base_items = rng.choice(count, planted, replace=False)
    flips = np.zeros(planted, np.uint64)
    for _ in range(radius):
        flips |= np.uint64(1) << rng.integers(0, 64, planted).astype(np.uint64)
    batch = np.r_[hashes[base_items] ^ flips, rng.integers(0, 2**64, queries - planted, np.uint64)]
    started = time.perf_counter()
    q, b = index.lookup(batch)
    seconds = time.perf_counter() - started
    found = set(zip(q.tolist(), b.tolist(), strict=True))
    if not all((k, int(base_items[k])) in found for k in range(planted)):
        raise RuntimeError("a planted near copy was not found")
    figures["lookup_batch"] = queries
    figures["lookup_seconds"] = round(seconds, 3)
    figures["lookup_microseconds_per_query"] = round(seconds / queries * 1e6, 1)
    return figures


def _print(figures: dict, indent: str = "  ") -> None:
    for key, value in figures.items():
        if isinstance(value, dict):
            print(f"{indent}{key}:")
            _print(value, indent + "  ")
        else:
            print(f"{indent}{key:>38}: {value}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m vprim.assets.sources.images.bench")
    parser.add_argument("what", choices=("hashes", "images", "neardup"))
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--hashes", type=int, default=13_500_000)
    parser.add_argument("--radius", type=int, default=H.DEFAULT_RADIUS)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--out", default=str(PROJECT_ROOT / "bench_out"))
    args = parser.parse_args(argv)
    if args.what == "hashes":
        figures = bench_hashes(Path(args.out), args.images)
    elif args.what == "images":
        figures = bench_images(Path(args.out), args.images, args.threads)
    else:
        figures = bench_neardup(args.hashes, args.radius, args.queries)
    _print(figures)
    print(json.dumps(figures, default=str))
    return figures


if __name__ == "__main__":
    main()
