"""One source before it is written: its images, labels, boxes, defects and attributes.

:func:`build_source` draws everything from the source's content stream (stream 2 of
``plan.source_rng``); a mirror draws its origin's. Boxes are columns (``SourceData.b``), sorted
by image and box order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from vprim.assets.sources.synthetic.defects import (
    DEFECT_WEIGHT,
    DUP,
    OVERSIZE,
    apply_defects,
    box_defects,
    oversized_boxes,
)
from vprim.assets.sources.synthetic.geometry import (
    clean_boxes,
    image_sizes,
    overlap_pairs,
    small_image_sizes,
)
from vprim.assets.sources.synthetic.labels import LabelTable, label_table, sample_labels
from vprim.assets.sources.synthetic.near import cases_of, near_boxes
from vprim.assets.sources.synthetic.plan import (
    MISSING,
    OVERSIZED,
    SourcePlan,
    source_id_of,
    source_rng,
)
from vprim.assets.sources.synthetic.vocabulary import Vocabulary, load_vocabulary

#: The image reference planted as ``parse_path_escape``.
ESCAPE_PATH = "../../../etc/passwd"

#: box attributes (formats in ATTRIBUTE_FORMATS), drawn as indices into these
COLOURS = (
    "red", "green", "blue", "yellow", "orange", "purple", "pink", "brown", "black", "white",
    "grey", "silver",
)  # fmt: skip
POSES = ("frontal", "left", "right", "rear")


def synthetic_uri(source_id: str, name: str, width: int, height: int) -> str:
    """The URI of a synthetic image: its size is in the query (``render.py`` parses it)."""
    return f"synthetic://{source_id}/{name}?w={int(width)}&h={int(height)}"


@dataclass
class SourceData:
    """Everything about one source before it is written (arrays sorted by image, box order).

    ``b`` holds one array ``(n_boxes,)`` per box column: ``img`` (image index), ``pos`` (order
    key within the image), ``lab`` (label table entry), ``x0 y0 x1 y1`` (pixels), ``code``
    (``defects.CODES`` index), ``crowd``, ``poly`` (0 none, 1 valid polygon, 2 bow-tie),
    ``uid`` (stable box id), ``dup`` (uid of the original of a planted duplicate; -1 none,
    -2 the essential box of an oversized-everywhere image), ``near`` (the near-threshold case,
    an index into ``near.BOX_CASES`` + 1; 0 none).
    """

    plan: SourcePlan
    labels: LabelTable
    W: np.ndarray  # (n_images,) image widths
    H: np.ndarray  # (n_images,) image heights
    b: dict[str, np.ndarray]
    starts: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))  # (n_images + 1,)
    box_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # in its image
    #: per image: 0 plain, 1 in a broken file, 2 planted without size, 3 planted path escape
    img_flag: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    img_file: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))  # COCO file
    bad_file: int = -1
    colour: np.ndarray | None = None
    pose: np.ndarray | None = None
    occluded: np.ndarray | None = None
    #: what each image file is, in a real-image source (``real_images.py``); None otherwise
    #: the pixels and files of a real-image source (``real_images.RealImages``, which builds
    #: on this class, so it is not imported here); None for a synthetic:// source
    real: object | None = None

    @property
    def n_images(self) -> int:
        return len(self.W)

    @property
    def n_boxes(self) -> int:
        return len(self.b["img"])

    def uri(self, name: str, width: int, height: int) -> str:
        """The URI of image ``name``; a mirror names its origin's image, query keys swapped."""
        if self.plan.mirror_of < 0:
            return synthetic_uri(self.plan.source_id, name, width, height)
        origin = source_id_of(self.plan.mirror_of)
        return f"synthetic://{origin}/{name}?h={int(height)}&w={int(width)}"

    def escape_ref(self, i: int) -> str:
        """The image reference of image ``i`` when it is planted as ``parse_path_escape``:
        distinct per image (ODVG's image id is the reference itself)."""
        k = int(np.count_nonzero(self.img_flag[:i] == 3))
        return ESCAPE_PATH if k == 0 else f"../../../private/photo_{k:03d}.jpg"


def _take(b: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[idx] for k, v in b.items()}


def _concat(*parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def build_source(plan: SourcePlan, seed: int, vocab: Vocabulary | None = None) -> SourceData:
    """Generate the images, labels and boxes of one source (nothing is written)."""
    vocab = vocab or load_vocabulary()
    rng = source_rng(seed, plan.data_index, 2)
    lt = label_table(plan, rng, vocab)
    n_img = plan.n_images
    W, H = small_image_sizes(rng, n_img) if plan.layout else image_sizes(rng, n_img)
    if plan.near:
        counts, lab = _near_source_boxes(plan.near, rng, lt, n_img)
    else:
        lam = rng.uniform(0.3, 4.0) if rng.random() > 0.05 else rng.uniform(6.0, 14.0)
        counts = 1 + rng.poisson(lam, n_img)
        if plan.kind == MISSING:
            n_empty = min(n_img - 1, math.ceil(rng.uniform(0.6, 0.8) * n_img))
        elif plan.kind == OVERSIZED or plan.fmt == "openimages" or rng.random() < 0.4:
            n_empty = 0
        else:
            n_empty = int(rng.uniform(0.0, 0.08) * n_img)
        if n_empty:
            counts[rng.choice(n_img, n_empty, replace=False)] = 0
        lab, _ = sample_labels(rng, plan, lt, int(counts.sum()))
    img = np.repeat(np.arange(n_img, dtype=np.int64), counts)
    n = len(img)
    Wb, Hb = W[img], H[img]
    x0, y0, x1, y1 = clean_boxes(rng, Wb, Hb)
    # clean boxes of one label never overlap much: drop the later one of each close pair
    _, jj = overlap_pairs(img, lt.key[lab], (x0, y0, x1, y1))
    keep = np.ones(n, dtype=bool)
    keep[jj] = False
    img, lab, x0, y0, x1, y1 = (v[keep] for v in (img, lab, x0, y0, x1, y1))
    n = len(img)
    first = np.searchsorted(img, img, side="left")
    b = {
        "img": img,
        "pos": (np.arange(n) - first).astype(np.float64),
        "lab": lab,
        "x0": x0,
        "y0": y0,
        "x1": x1,
        "y1": y1,
        "code": lt.code[lab].copy(),
        "crowd": np.zeros(n, dtype=bool),
        "poly": np.full(n, 1 if plan.segmentation else 0, dtype=np.int8),
        "uid": np.arange(n, dtype=np.int64),
        "dup": np.full(n, -1, dtype=np.int64),
        "near": np.zeros(n, dtype=np.int8),
    }
    # box defects, on boxes with a good label only (one defect per box)
    allowed = np.array(box_defects(plan.fmt, small_images=bool(plan.layout)), dtype=np.int64)
    weights = np.array([DEFECT_WEIGHT[c] for c in allowed.tolist()])
    eligible = np.flatnonzero(b["code"] == 0)
    rate = rng.uniform(0.005, 0.03)
    n_def = int(rng.binomial(len(eligible), rate)) if len(eligible) and not plan.near else 0
    forced = allowed if plan.forced_all else np.empty(0, dtype=np.int64)
    n_def = min(len(eligible), max(n_def, len(forced)))
    chosen = rng.choice(eligible, n_def, replace=False) if n_def else eligible[:0]
    codes = rng.choice(allowed, n_def, p=weights / weights.sum()) if n_def else allowed[:0]
    codes[: len(forced)] = forced[:n_def]
    apply_defects(rng, b, chosen[codes != DUP], codes[codes != DUP], W, H, plan.fmt)
    extra = []
    originals = chosen[codes == DUP]
    if len(originals):
        copies = _take(b, originals)
        copies["code"][:] = DUP
        copies["dup"] = b["uid"][originals]
        copies["uid"] = n + np.arange(len(originals))
        jitter = (rng.random(len(originals)) < 0.5) & (
            np.minimum(copies["x1"] - copies["x0"], copies["y1"] - copies["y0"]) >= 60
        )
        shift = np.where(jitter, rng.choice(np.array([-1.0, 1.0]), len(originals)), 0.0)
        copies["x0"] = copies["x0"] + shift
        copies["x1"] = copies["x1"] + shift
        at_end = rng.random(len(originals)) < 0.5
        copies["pos"] = np.where(at_end, 1e7 + np.arange(len(originals)), copies["pos"] + 0.5)
        extra.append(copies)
    if plan.kind == OVERSIZED:
        ov_lab = lt.good[rng.integers(0, len(lt.good), n_img)]
        ox0, oy0, ox1, oy1 = oversized_boxes(rng, W, H)
        k = n + len(originals)
        extra.append(
            {
                "img": np.arange(n_img, dtype=np.int64),
                "pos": rng.uniform(-0.5, counts + 0.5) if n_img else np.zeros(0),
                "lab": ov_lab,
                "x0": ox0,
                "y0": oy0,
                "x1": ox1,
                "y1": oy1,
                "code": np.full(n_img, OVERSIZE, dtype=np.int8),
                "crowd": np.zeros(n_img, dtype=bool),
                "poly": np.zeros(n_img, dtype=np.int8),
                "uid": k + np.arange(n_img, dtype=np.int64),
                "dup": np.full(n_img, -2, dtype=np.int64),  # -2: essential, never dropped
                "near": np.zeros(n_img, dtype=np.int8),
            }
        )
    # near-threshold box cases, each in an image of its own appended to the source
    near_rng = source_rng(seed, plan.data_index, 5)
    cases = cases_of(plan, near_rng)
    if cases:
        uid0 = 1 + max((int(p["uid"].max()) for p in (b, *extra) if len(p["uid"])), default=-1)
        nW, nH, nb = near_boxes(cases, plan.fmt, near_rng, lt.good, uid0, n_img)
        W, H = np.concatenate([W, nW]), np.concatenate([H, nH])
        extra.append(nb)
    if extra:
        b = _concat(b, *extra)
    b = _take(b, np.lexsort((b["pos"], b["img"])))
    b = _resolve_conflicts(b, lt)
    data = SourceData(plan=plan, labels=lt, W=W, H=H, b=b)
    _finish(data, rng)
    return data


def _near_source_boxes(
    name: str, rng: np.random.Generator, lt: LabelTable, n_img: int
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes per image and the label entry of each box of a source-level near case
    (``near.SOURCE_CASES`` says what each case holds); good labels only, but for the
    bad-label cases' first two bad entries."""
    counts = np.zeros(n_img, dtype=np.int64)
    if name.startswith("near_labels"):
        # one good and one bad box per image; the positive has one more bad box
        counts[:] = 2
        lab = np.stack([lt.good[rng.integers(0, len(lt.good), n_img)],
                        np.full(n_img, lt.bad[0])], axis=1).ravel()  # fmt: skip
        if name.endswith("_pos"):
            counts[0] = 3
            lab = np.insert(lab, 2, lt.bad[1])
        return counts, lab
    if name.startswith("near_missing"):
        with_boxes = rng.choice(n_img, 9 if name.endswith("_pos") else 10, replace=False)
        counts[with_boxes] = 1 + rng.poisson(1.0, len(with_boxes))
    else:  # near_few: 2 or 3 boxes, at most one per image
        counts[rng.permutation(n_img)[: 2 if name.endswith("_pos") else 3]] = 1
    return counts, lt.good[rng.integers(0, len(lt.good), int(counts.sum()))]


def _resolve_conflicts(b: dict[str, np.ndarray], lt: LabelTable) -> dict[str, np.ndarray]:
    """Make every clean box keep IoU < 0.5 with every other same-label box of its image."""
    xyxy = (b["x0"], b["y0"], b["x1"], b["y1"])
    ii, jj = overlap_pairs(b["img"], lt.key[b["lab"]], xyxy)
    if not len(ii):
        return b
    clean = b["code"] == 0
    dup_of = b["dup"]
    copies = np.flatnonzero(dup_of >= 0)
    by_uid = np.argsort(b["uid"])
    originals = by_uid[np.searchsorted(b["uid"][by_uid], dup_of[copies])]
    copy_of = dict(zip(originals.tolist(), copies.tolist()))
    drop: set[int] = set()

    def kill(p: int) -> None:
        drop.add(p)
        if p in copy_of:
            drop.add(copy_of[p])

    for i, j in zip(ii.tolist(), jj.tolist()):
        if i in drop or j in drop:
            continue
        if copy_of.get(i) == j or copy_of.get(j) == i:
            continue  # a planted duplicate and its original
        if not (clean[i] or clean[j]):
            continue  # two planted boxes: the checker rejects both anyway
        if clean[i] and clean[j]:
            kill(j)
            continue
        c, o = (i, j) if clean[i] else (j, i)
        if c not in copy_of:
            kill(c)
        elif dup_of[o] != -2:
            kill(o)
        else:
            kill(c)
    if not drop:
        return b
    keep = np.ones(len(b["img"]), dtype=bool)
    keep[list(drop)] = False
    return _take(b, keep)


def _finish(data: SourceData, rng: np.random.Generator) -> None:
    """Box order, image offsets, attributes and the image-level file defects."""
    b = data.b
    n_img, n = data.n_images, data.n_boxes
    data.starts = np.searchsorted(b["img"], np.arange(n_img + 1)).astype(np.int64)
    data.box_index = (np.arange(n) - data.starts[b["img"]]).astype(np.int32)
    plan = data.plan
    if plan.attributes:
        data.colour = rng.integers(0, len(COLOURS), n).astype(np.int8)
        data.pose = rng.integers(0, len(POSES), n).astype(np.int8)
        data.occluded = (rng.random(n) < 0.3).astype(np.int8)
    data.img_flag = np.zeros(n_img, dtype=np.int8)
    data.img_file = np.zeros(n_img, dtype=np.int16)
    fd = plan.file_defect
    counts = np.diff(data.starts)
    with_boxes = np.flatnonzero(counts > 0)
    if fd in ("path_escape", "missing_image_size") and len(with_boxes):
        k = 1 if n_img < 40 else 2
        pick = rng.choice(with_boxes, min(k, len(with_boxes)), replace=False)
        data.img_flag[pick] = 3 if fd == "path_escape" else 2
    elif fd in ("invalid_json", "bad_encoding", "empty_file"):
        if plan.fmt == "coco":
            n_files = min(n_img, int(rng.integers(2, 4)))
            cuts = np.sort(rng.choice(np.arange(1, n_img), n_files - 1, replace=False))
            data.img_file = np.searchsorted(cuts, np.arange(n_img), side="right").astype(np.int16)
            data.bad_file = int(rng.integers(0, n_files))
            data.img_flag[data.img_file == data.bad_file] = 1
        elif len(with_boxes):
            data.img_flag[int(rng.choice(with_boxes))] = 1
    elif plan.fmt == "coco" and n_img >= 50 and rng.random() < 0.1:
        cuts = np.sort(rng.choice(np.arange(1, n_img), 1, replace=False))
        data.img_file = np.searchsorted(cuts, np.arange(n_img), side="right").astype(np.int16)
