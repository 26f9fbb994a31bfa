"""How balanced the lake is: label distribution metrics and plots, before and after."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from PIL import Image, ImageDraw

from vprim.assets.contracts import layout
from vprim.assets.storage import Storage


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative counts: 0 all equal, towards 1 all in one label."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n, total = len(x), float(x.sum())
    if n == 0 or total == 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float((2.0 * (ranks * x).sum()) / (n * total) - (n + 1.0) / n)


def distribution(counts: np.ndarray) -> dict:
    """Summary of a label distribution (instances per label).

    ``head_tail_ratio``: mean count of the top 10% of labels over the mean count of the bottom
    50% (how much more a frequent label weighs than a typical rare one);
    ``top_1pct_share``: share of all instances carried by the top 1% of labels.
    """
    x = np.sort(np.asarray(counts, dtype=np.float64))[::-1]
    x = x[x > 0]
    n = len(x)
    if n == 0:
        return {"labels": 0, "instances": 0}
    head = x[: max(1, math.ceil(n * 0.10))]
    tail = x[n - max(1, n // 2) :]
    return {
        "labels": n,
        "instances": int(x.sum()),
        "max": int(x[0]),
        "median": float(np.median(x)),
        "head_tail_ratio": round(float(head.mean() / tail.mean()), 2),
        "top_1pct_share": round(float(x[: max(1, math.ceil(n * 0.01))].sum() / x.sum()), 4),
        "gini": round(gini(x), 4),
    }


def png_plot(before: np.ndarray, after: np.ndarray, size: tuple[int, int] = (640, 400)) -> bytes:
    """Rank-frequency log-log plot (instances per label): before grey, after blue."""
    w, h = size
    pad = 48
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    b = np.sort(np.asarray(before, dtype=np.float64))[::-1]
    a = np.sort(np.asarray(after, dtype=np.float64))[::-1]
    d.rectangle([pad, pad // 2, w - pad // 2, h - pad], outline=(0, 0, 0))
    d.text((pad, 4), "instances per label (log) vs label rank (log)", fill=(0, 0, 0))
    if len(b):
        x_max = math.log10(len(b)) or 1.0
        y_max = math.log10(max(b[0], 1.0)) or 1.0

        def xy(rank: int, v: float) -> tuple[float, float]:
            x = pad + (w - 1.5 * pad) * math.log10(rank) / x_max
            y = (h - pad) - (h - 1.5 * pad) * math.log10(max(v, 1.0)) / y_max
            return x, y

        for series, colour in ((b, (150, 150, 150)), (a, (30, 90, 200))):
            points = [xy(r + 1, v) for r, v in enumerate(series) if v > 0]
            if len(points) > 1:
                d.line(points, fill=colour, width=2)
        d.text((pad, h - pad + 8), f"1 .. {len(b):,} labels", fill=(0, 0, 0))
        d.text((4, pad // 2), f"{int(b[0]):,}", fill=(0, 0, 0))
        d.text((w - 170, pad), "before (grey) / after (blue)", fill=(0, 0, 0))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


@dataclass
class BalanceReport:
    """What a built version shows about its balancing (``lake_samples``' metadata).

    Attributes:
        funnel: samples and instances per step, clean samples to the lake.
        distribution: :func:`distribution` of instances per label, before and in the lake.
        png_path: the :func:`png_plot`, written under the storage root.
        largest_labels: the per-label counts, most instances before balancing first.
    """

    funnel: list[dict]
    distribution: list[dict]
    png_path: str
    png: bytes  # the same plot, shown inline in the UI
    largest_labels: pa.Table


def balance_funnel(counts: dict) -> list[dict]:
    """Samples and instances at each step of balancing, from a manifest's ``counts``."""
    bal = counts["balance"]
    return [
        {"step": "clean samples (source, image, label)", "samples": bal["samples_before"],
         "instances": bal["instances_before"]},
        {"step": "over the per-(source, label) cap", "samples": bal["samples_capped"],
         "instances": bal["instances_capped"]},
        {"step": "duplicate (image, label) across sources", "samples": bal["samples_duplicate"],
         "instances": bal["instances_duplicate"]},
        {"step": "in the lake", "samples": counts["rows"], "instances": counts["instances"]},
    ]  # fmt: skip


def balance_report(store: Storage, version: str, counts: dict, labels: pa.Table) -> BalanceReport:
    """The report of a built version; writes its PNG plot into the version's folder.

    Args:
        counts: the manifest's ``counts``.
        labels: per-label counts with ``instances_before`` and ``instances_kept`` (null where
            nothing was kept), as ``build.LakeBuild.labels``.
    """
    before = np.asarray(labels["instances_before"].to_numpy(zero_copy_only=False), dtype=float)
    after = np.nan_to_num(
        np.asarray(labels["instances_kept"].to_numpy(zero_copy_only=False), dtype=float)
    )
    png_path = f"{layout.lake_version_dir(version)}/{layout.LAKE_DISTRIBUTION_PNG}"
    png = png_plot(before, after)
    with store.atomic_path(png_path) as tmp, store.fs.open(tmp, "wb") as f:
        f.write(png)
    return BalanceReport(
        funnel=balance_funnel(counts),
        distribution=[
            {"when": "before balancing", **distribution(before)},
            {"when": "in the lake", **distribution(after)},
        ],
        png_path=png_path,
        png=png,
        largest_labels=labels.sort_by([("instances_before", "descending")]),
    )
