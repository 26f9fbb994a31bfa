"""The plan of each source: its format, kind, size and defects, drawn from (scale, seed, index).

The first ``len(FORCED)`` sources of every scale are fixed (every format, kind, file defect and
real-image layout at least once); the others are drawn. Each source draws from generators
seeded by (seed, source index, stream) (:func:`source_rng`), so a source never depends on
another one or on how many processes generate the corpus.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from vprim.assets.contracts import schemas as S
from vprim.assets.contracts.reasons import Reason


@dataclass(frozen=True)
class Scale:
    n_sources: int
    size: float  # multiplies the median number of images of a source
    max_images: int
    chunk: int  # sources per unit of (parallel) work; fixed per scale, so bytes never vary


SCALES: dict[str, Scale] = {
    "tiny": Scale(45, 0.08, 40, 5),
    "small": Scale(2_000, 0.8, 6_000, 20),
    "full": Scale(97_984, 1.0, 30_000, 40),
}

# --- source kinds ----------------------------------------------------------------------------
GOOD = "good"
LABELS = "label_bad"
OVERSIZED = "oversized_everywhere"
MISSING = "missing_annotations"
JUNK = "unknown_format"

FORMAT_WEIGHTS = {
    "coco": 0.28,
    "yolo": 0.20,
    "voc": 0.14,
    "openimages": 0.10,
    "odvg": 0.12,
    "labelme": 0.16,
}

#: the formats the corpus writes: every catalog format but hf_parquet, which has no writer
#: (its reader is tested on Hub-style shards: tests/sources/test_hfparquet.py)
SYNTHETIC_FORMATS = tuple(fmt for fmt in S.FORMATS if fmt != "hf_parquet")
assert set(SYNTHETIC_FORMATS) == set(FORMAT_WEIGHTS)

#: formats that write one annotation file per image, and the source size (images) above which
#: a source becomes less likely to use one of them
PER_IMAGE_FILE_FORMATS = ("voc", "yolo", "labelme")
PER_IMAGE_FILE_LIMIT = 150

#: file defects each format can carry in a way its reader must report unambiguously
FILE_DEFECTS: dict[str, tuple[str, ...]] = {
    "coco": ("invalid_json", "bad_encoding", "empty_file", "path_escape"),
    "odvg": ("invalid_json", "path_escape"),
    "voc": ("bad_encoding", "missing_image_size", "empty_file", "path_escape"),
    "labelme": ("missing_image_size", "path_escape"),
    "yolo": (),
    "openimages": (),
}
FILE_DEFECT_CODES = {
    "invalid_json": Reason.PARSE_INVALID_JSON,
    "bad_encoding": Reason.PARSE_BAD_ENCODING,
    "empty_file": Reason.PARSE_EMPTY_FILE,
    "missing_image_size": Reason.PARSE_MISSING_IMAGE_SIZE,
    "path_escape": Reason.PARSE_PATH_ESCAPE,
}

#: Real-image sources (``real_images.py``) write image files in the layouts people download;
#: each layout is written in one catalog format. Drawn sources (not junk, not mirrors) are real
#: at :data:`REAL_RATE`, in one layout drawn by :data:`LAYOUT_WEIGHTS`, with at most
#: :data:`REAL_MAX_IMAGES` images (every image is rendered and encoded: the costly part).
COCO_OFFICIAL = "coco_official"  # annotations/instances_<subset>.json beside <subset>/*.jpg
ROBOFLOW = "roboflow"  # <split>/_annotations.coco.json beside <split>/*.jpg
ROBOFLOW_ZIP = "roboflow_zip"  # the same, delivered as one .zip file (the catalog uri)
ULTRALYTICS = "ultralytics"  # data.yaml, images/<split>/*.jpg, labels/<split>/*.txt
COCO_GZ = "coco_gz"  # annotations/instances_val.json.gz beside val/*.jpg
LAYOUT_FORMAT = {
    COCO_OFFICIAL: "coco",
    ROBOFLOW: "coco",
    ROBOFLOW_ZIP: "coco",
    ULTRALYTICS: "yolo",
    COCO_GZ: "coco",
}
LAYOUT_WEIGHTS = {COCO_OFFICIAL: 0.3, ROBOFLOW: 0.2, ROBOFLOW_ZIP: 0.15, ULTRALYTICS: 0.25,
                  COCO_GZ: 0.1}  # fmt: skip
REAL_RATE = 0.05
REAL_MAX_IMAGES = 32
#: images of a forced real-image source, so that every image case fits beside plain images
REAL_FORCED_MIN_IMAGES = 24
#: share of drawn good real-image sources that re-publish images of an earlier one
COPY_RATE = 0.3

#: Sources 0..len-1 of every scale: every format, kind and file defect at least once.
#: (format, kind, file defect or source-level near case); a good source without either here
#: plants every box defect and every near-threshold box case its format can express and a bad
#: label of each kind.
FORCED: tuple[tuple[str, str, str | None], ...] = (
    *((fmt, GOOD, None) for fmt in SYNTHETIC_FORMATS),
    ("coco", LABELS, "only_bad"),
    ("yolo", LABELS, None),
    ("voc", LABELS, None),
    ("openimages", LABELS, None),
    ("labelme", LABELS, "only_bad"),
    ("coco", OVERSIZED, None),
    ("openimages", OVERSIZED, None),
    ("labelme", MISSING, None),
    ("odvg", MISSING, None),
    ("yolo", MISSING, None),
    ("coco", GOOD, "invalid_json"),
    ("odvg", GOOD, "invalid_json"),
    ("voc", GOOD, "bad_encoding"),
    ("coco", GOOD, "bad_encoding"),
    ("labelme", GOOD, "missing_image_size"),
    ("voc", GOOD, "missing_image_size"),
    ("voc", GOOD, "empty_file"),
    ("coco", GOOD, "empty_file"),
    ("coco", GOOD, "path_escape"),
    ("labelme", GOOD, "path_escape"),
    ("voc", GOOD, "path_escape"),
    ("odvg", GOOD, "path_escape"),
    ("auto", JUNK, None),
    # whole sources next to the source rules' thresholds (``near.SOURCE_CASES``)
    ("coco", GOOD, "near_missing_pos"),
    ("labelme", GOOD, "near_missing_neg"),
    ("voc", GOOD, "near_labels_pos"),
    ("yolo", GOOD, "near_labels_neg"),
    ("odvg", GOOD, "near_few_pos"),
    ("openimages", GOOD, "near_few_neg"),
    # real-image sources, one per layout; each after the first re-publishes images of the one
    # before it (cross-source duplicates by content)
    *((fmt, GOOD, layout) for layout, fmt in LAYOUT_FORMAT.items()),
)

#: the source-level near-threshold cases of ``FORCED`` and the images of each
#: (``near.SOURCE_CASES`` says what each one plants)
NEAR_SOURCES: dict[str, int] = {
    "near_missing_pos": 20,
    "near_missing_neg": 20,
    "near_labels_pos": 10,
    "near_labels_neg": 10,
    "near_few_pos": 3,
    "near_few_neg": 3,
}

#: formats whose boxes can carry attributes (colour, pose, occluded)
ATTRIBUTE_FORMATS = ("coco", "voc", "labelme", "openimages")


# --- per-source plan -------------------------------------------------------------------------
@dataclass
class SourcePlan:
    """The top-level decisions about one source (cheap; drawn from (seed, index))."""

    index: int
    source_id: str
    fmt: str
    kind: str
    only_bad: bool
    file_defect: str | None
    n_images: int
    forced_all: bool  # plant every box defect of the format and each bad-label kind
    attributes: bool
    segmentation: bool
    licence: str | None
    #: a mirror re-publishes source ``mirror_of`` (its images, boxes and labels) under its own
    #: id, naming the same images with a differently spelled URI: a cross-source duplicate
    mirror_of: int = -1
    #: a source-level near-threshold case (a key of ``NEAR_SOURCES``): the source is built to
    #: sit just inside or just outside one source rule
    near: str | None = None
    #: the download layout of a real-image source (a key of ``LAYOUT_FORMAT``); None: the
    #: source names ``synthetic://`` images and writes no image file
    layout: str | None = None
    #: a real-image source that re-publishes some images of real-image source ``copies_of``
    #: (re-encoded or resized, under its own file names); -1 none
    copies_of: int = -1

    @property
    def data_index(self) -> int:
        """The index whose random streams draw this source's content."""
        return self.mirror_of if self.mirror_of >= 0 else self.index


LICENCES = ("CC-BY-4.0", "CC0-1.0", "CC-BY-SA-4.0", "MIT", "Apache-2.0", "CC-BY-NC-4.0", None)


def source_rng(seed: int, index: int, stream: int) -> np.random.Generator:
    """The random stream ``stream`` of source ``index``: 1 plan, 2 content, 3 file bytes,
    4 mirror, 5 near-threshold cases, 6 real-image layout, 7 copied images, 8 image files."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index), stream]))


def source_id_of(index: int) -> str:
    return f"syn-{index:06d}"


#: share of sources that mirror an earlier good source, and how far back they start looking
MIRROR_RATE = 0.03
MIRROR_WINDOW = 300


def _draws_mirror(seed: int, index: int) -> bool:
    # the first source after the forced ones always mirrors, so even ``tiny`` has one
    if index == len(FORCED):
        return True
    return index > len(FORCED) and source_rng(seed, index, 4).random() < MIRROR_RATE


def plan_source(scale: str, seed: int, index: int) -> SourcePlan:
    """Draw the plan of source ``index`` (depends on (scale, seed, index) only).

    A few sources are mirrors (:attr:`SourcePlan.mirror_of`) of the nearest earlier good source
    without file defects, searching back from a random distance; their own random stream 4
    decides, so the other sources do not change.
    """
    plan = _base_plan(scale, seed, index)
    if not _draws_mirror(seed, index):
        return replace(plan, copies_of=_copy_origin(scale, seed, plan)) if plan.layout else plan
    back = int(source_rng(seed, index, 4).integers(1, min(MIRROR_WINDOW, index) + 1))
    for origin in range(index - back, -1, -1):
        base = _base_plan(scale, seed, origin)
        plain = base.kind == GOOD and not base.file_defect and not base.near and not base.layout
        if plain and not _draws_mirror(seed, origin):
            return replace(base, index=index, source_id=plan.source_id, mirror_of=origin)
    return plan


def _copy_origin(scale: str, seed: int, plan: SourcePlan) -> int:
    """The earlier real-image source whose images ``plan`` re-publishes, or -1: every forced
    real-image source after the first copies the one before it; a drawn good one copies the
    nearest earlier real-image source at :data:`COPY_RATE` (stream 7 decides)."""
    index = plan.index
    if index < len(FORCED):
        previous = FORCED[index - 1][2]
        return index - 1 if previous in LAYOUT_FORMAT else -1
    if plan.kind != GOOD or source_rng(seed, index, 7).random() >= COPY_RATE:
        return -1
    for origin in range(index - 1, max(-1, index - 1 - MIRROR_WINDOW), -1):
        if _base_plan(scale, seed, origin).layout and not _draws_mirror(seed, origin):
            return origin
    return -1


def _draw_layout(seed: int, index: int) -> str | None:
    """The layout of drawn source ``index`` (stream 6), or None: not a real-image source."""
    rng = source_rng(seed, index, 6)
    if rng.random() >= REAL_RATE:
        return None
    weights = np.array(list(LAYOUT_WEIGHTS.values()))
    return str(rng.choice(list(LAYOUT_WEIGHTS), p=weights / weights.sum()))


def _base_plan(scale: str, seed: int, index: int) -> SourcePlan:
    sc = SCALES[scale]
    rng = source_rng(seed, index, 1)
    only_bad = False
    file_defect: str | None = None
    near: str | None = None
    layout: str | None = None
    forced_all = False
    if index < len(FORCED):
        fmt, kind, extra = FORCED[index]
        if kind == LABELS:
            only_bad = extra == "only_bad"
        elif extra in NEAR_SOURCES:
            near = extra
        elif extra in LAYOUT_FORMAT:
            layout = extra
        else:
            file_defect = extra
        forced_all = kind == GOOD and extra is None
    else:
        u = rng.random()
        kind = JUNK if u < 0.002 else LABELS if u < 0.562 else GOOD
        if 0.562 <= u < 0.682:
            kind = OVERSIZED if rng.random() < 0.55 else MISSING
    median = (250.0 if kind == GOOD else 32.0) * sc.size
    n_images = int(np.clip(np.round(np.exp(rng.normal(math.log(median), 1.1))), 3, sc.max_images))
    if index < len(FORCED):
        n_images = max(n_images, 16 if forced_all else REAL_FORCED_MIN_IMAGES if layout else 8)
    else:
        # big sources come mostly in one-file formats (one file per image is slow to write)
        damp = min(1.0, PER_IMAGE_FILE_LIMIT / n_images)
        weights = np.array(
            [w * (damp if f in PER_IMAGE_FILE_FORMATS else 1.0) for f, w in FORMAT_WEIGHTS.items()]
        )
        fmt = str(rng.choice(list(FORMAT_WEIGHTS), p=weights / weights.sum()))
        if kind == MISSING and fmt == "openimages":
            kind = OVERSIZED
        only_bad = kind == LABELS and rng.random() < 0.3
        if kind == GOOD and FILE_DEFECTS[fmt] and rng.random() < 0.03:
            file_defect = str(rng.choice(FILE_DEFECTS[fmt]))
        if kind == JUNK:
            fmt = "auto"
        else:
            layout = _draw_layout(seed, index)
        if layout:
            fmt, file_defect = LAYOUT_FORMAT[layout], None
            n_images = min(n_images, REAL_MAX_IMAGES)
    if kind == MISSING:
        n_images = max(n_images, 5)
    if near:
        n_images = NEAR_SOURCES[near]
    attributes = fmt in ATTRIBUTE_FORMATS and (forced_all or rng.random() < 0.25)
    seg_p = {"coco": 0.3, "yolo": 0.2, "labelme": 0.35}.get(fmt, 0.0)
    segmentation = seg_p > 0 and (forced_all or rng.random() < seg_p)
    licence = LICENCES[int(rng.integers(0, len(LICENCES)))]
    return SourcePlan(
        index=index,
        source_id=source_id_of(index),
        fmt=fmt,
        kind=kind,
        only_bad=only_bad,
        file_defect=file_defect,
        n_images=n_images,
        forced_all=forced_all,
        attributes=attributes,
        segmentation=segmentation,
        licence=licence,
        near=near,
        layout=layout,
    )
