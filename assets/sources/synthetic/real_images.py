"""Real-image sources: what each image file is, its pixels, and the images a source copies.

A real-image source (``plan.layout`` set) is built like any other (``source.build_source``,
with images 64-200 px a side), then :func:`build_real_source` decides what each image file is
(:class:`RealImages`, drawn from stream 8 of the source) and appends the pictures it
re-publishes from an earlier real-image source (``plan.copies_of``). ``layouts.py`` writes the
files; ``planted.py`` plants what this module decides.

Image cases (``RealImages.case``), planted only on images whose every box is clean (so a box
carries one planted code):

- ``MISSING``: the annotation names a file that is not written (every box: ``image_missing``);
- ``UNDECODABLE``: a ``.jpg`` file that is an HTML error page, a JPEG cut before its frame
  header, or empty (every box: ``image_undecodable``);
- ``MISMATCH``: the annotation says twice the file's width and height, its boxes scaled
  alike, as if the images were shrunk after annotating (every box: ``image_size_mismatch``);
- ``EXIF_DISPLAYED`` / ``EXIF_STORED``: a JPEG stored rotated with EXIF orientation 6 or 8; the
  annotation is in the displayed orientation (width and height displayed), or in the stored
  pixels (width and height stored, boxes rotated with them), which ingest turns to displayed
  (every box: ``exif_rotated``, to be kept);
- ``COPY``: an earlier real-image source's picture, re-encoded at another JPEG quality or
  resized to 50-75%, its boxes scaled alike, under this source's own file name (image level:
  ``duplicate_content``).

Only COCO layouts carry a size, so only they plant the first three and ``EXIF_STORED``. The
picture of an image is ``render.render_image`` of its boxes and labels (in the displayed
orientation), so pictures differ per image and a copy shows its origin's objects.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace

import numpy as np
from PIL import ExifTags, Image

from vprim.assets.contracts import schemas as S
from vprim.assets.contracts.reasons import Reason
from vprim.assets.sources.render import render_image
from vprim.assets.sources.synthetic.labels import LabelTable
from vprim.assets.sources.synthetic.plan import (
    FORCED,
    ROBOFLOW,
    ROBOFLOW_ZIP,
    SourcePlan,
    plan_source,
    source_rng,
)
from vprim.assets.sources.synthetic.source import (
    SourceData,
    build_source,
    synthetic_uri,
)
from vprim.assets.sources.synthetic.text import attr_pairs

PLAIN, MISSING, UNDECODABLE, MISMATCH, EXIF_DISPLAYED, EXIF_STORED, COPY = range(7)
#: the planted ``defect`` of each case (of its boxes; of the image for ``COPY``)
CASE_DEFECTS = (
    "",
    Reason.IMAGE_MISSING,
    Reason.IMAGE_UNDECODABLE,
    Reason.IMAGE_SIZE_MISMATCH,
    S.PLANTED_EXIF_ROTATED,
    S.PLANTED_EXIF_ROTATED,
    S.PLANTED_DUPLICATE_CONTENT,
)
#: the cases of a forced source (each rotation convention in orientations 6 and 8); a YOLO
#: layout states no size, so it plants only displayed rotations
FORCED_CASES = {
    "coco": (MISSING, UNDECODABLE, MISMATCH, EXIF_DISPLAYED, EXIF_DISPLAYED, EXIF_STORED,
             EXIF_STORED),
    "yolo": (EXIF_DISPLAYED, EXIF_DISPLAYED),
}  # fmt: skip
#: the annotation of a ``MISMATCH`` image is this many times the file's size
MISMATCH_FACTOR = 2
#: how the displayed picture is turned to be stored under each EXIF orientation (Pillow's
#: ``exif_transpose`` applies the inverse: ROTATE_270 for 6, ROTATE_90 for 8)
STORE_TURN = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
#: a copied box keeps each side at least this many pixels (clean boxes are >= 20 px)
COPY_MIN_SIDE = 20.0


@dataclass
class RealImages:
    """What each image file of a real-image source is; arrays ``(n_images,)``."""

    case: np.ndarray  # int8, PLAIN .. COPY
    orientation: np.ndarray  # int8 EXIF orientation of the file: 1, 6 or 8
    png: np.ndarray  # bool: written as PNG (else JPEG)
    quality: np.ndarray  # int16 JPEG quality
    origin: np.ndarray  # int64: the image a COPY shows, in ``origin_data``; -1 otherwise
    origin_data: SourceData | None = None

    def annotated_size(self, W: np.ndarray, H: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The width and height the annotation states for pictures of size ``(W, H)``."""
        stored = self.case == EXIF_STORED
        factor = np.where(self.case == MISMATCH, MISMATCH_FACTOR, 1)
        return np.where(stored, H, W * factor), np.where(stored, W, H * factor)


# --- which image is what ---------------------------------------------------------------------
def build_real_source(plan: SourcePlan, seed: int, scale: str) -> SourceData:
    """Build a real-image source: its own images (cases drawn), then the pictures it copies."""
    data = build_source(plan, seed)
    rng = source_rng(seed, plan.index, 8)
    data.real = _image_cases(data, rng)
    if plan.copies_of >= 0:
        origin = build_source(plan_source(scale, seed, plan.copies_of), seed)
        origin.real = _image_cases(origin, source_rng(seed, plan.copies_of, 8))
        _append_copies(data, origin, rng)
    return data


def _clean_images(data: SourceData) -> np.ndarray:
    """Images with boxes, every one clean (no planted code, no near case), in index order."""
    b = data.b
    planted = (b["code"] != 0) | (b["near"] != 0)
    with_planted = np.bincount(b["img"][planted], minlength=data.n_images) > 0
    return np.flatnonzero((np.diff(data.starts) > 0) & ~with_planted)


def _image_cases(data: SourceData, rng: np.random.Generator) -> RealImages:
    """What each image of a source is (its own images: before any copy is appended): the
    cases on clean images, drawn (:data:`FORCED_CASES` in a forced source), and the encoding."""
    plan, n = data.plan, data.n_images
    free = rng.permutation(_clean_images(data))
    if plan.index < len(FORCED):
        cases = np.array(FORCED_CASES[plan.fmt], dtype=np.int8)[: len(free)]
        turns = np.resize(np.array([6, 8], dtype=np.int8), len(cases))
    else:
        cases = _drawn_cases(rng, len(free), coco=plan.fmt == "coco")
        turns = rng.choice(np.array([6, 8], dtype=np.int8), len(cases))
    # a square picture stored rotated has one size either way, so its annotation could not
    # tell in which orientation it is: stored-pixel annotations take the other pictures first
    # (a square one left over is annotated displayed)
    free = np.concatenate([free[data.W[free] != data.H[free]], free[data.W[free] == data.H[free]]])
    order = np.argsort(cases != EXIF_STORED, kind="stable")
    cases, turns = cases[order], turns[order]
    picked = free[: len(cases)]
    cases[(cases == EXIF_STORED) & (data.W[picked] == data.H[picked])] = EXIF_DISPLAYED
    case = np.zeros(n, dtype=np.int8)
    case[picked] = cases
    orientation = np.ones(n, dtype=np.int8)
    rotated = (cases == EXIF_DISPLAYED) | (cases == EXIF_STORED)
    orientation[picked[rotated]] = turns[rotated]
    # Roboflow converts every image to JPEG; elsewhere a few are PNG (never a rotated one,
    # nor a file planted undecodable, which is named .jpg)
    png = (rng.random(n) < 0.1) & (case == PLAIN) & (plan.layout not in (ROBOFLOW, ROBOFLOW_ZIP))
    quality = np.full(n, int(rng.integers(80, 93)), dtype=np.int16)
    return RealImages(case, orientation, png, quality, np.full(n, -1, dtype=np.int64))


def _drawn_cases(rng: np.random.Generator, n_free: int, coco: bool) -> np.ndarray:
    """The cases of a drawn source with ``n_free`` clean images: a few missing, undecodable
    and mismatched files (COCO only), and in a quarter of the sources a phone's photos, a
    share of them rotated (annotated in stored pixels, in 40% of the COCO ones)."""
    counts = [rng.binomial(n_free, p) if coco else 0 for p in (0.02, 0.01, 0.01)]
    cases = np.repeat(np.array([MISSING, UNDECODABLE, MISMATCH], dtype=np.int8), counts)
    if rng.random() < 0.25:
        rotated = EXIF_STORED if coco and rng.random() < 0.4 else EXIF_DISPLAYED
        n_rotated = max(1, round(rng.uniform(0.2, 0.4) * n_free))
        cases = np.concatenate([cases, np.full(n_rotated, rotated, dtype=np.int8)])
    return cases[:n_free]


# --- copies of another source's pictures -----------------------------------------------------
def _append_copies(data: SourceData, origin: SourceData, rng: np.random.Generator) -> None:
    """Append to ``data`` some plain pictures of ``origin`` with all their boxes, each
    re-encoded at a clearly lower quality or (every other one, where its boxes stay >= 20 px)
    resized to 50-75% with its boxes scaled alike."""
    cand = [j for j in _clean_images(origin).tolist() if origin.real.case[j] == PLAIN]
    if data.plan.index < len(FORCED):
        k = min(4, len(cand))
    else:
        k = min(len(cand), 50, max(1, round(rng.uniform(0.1, 0.3) * len(cand))))
    if not k:
        return
    picks = rng.choice(np.array(cand, dtype=np.int64), k, replace=False)
    sizes, quality = [], []
    for t, j in enumerate(picks.tolist()):
        ow, oh = int(origin.W[j]), int(origin.H[j])
        scale = rng.uniform(0.5, 0.75)
        w, h = round(ow * scale), round(oh * scale)
        shrink = min(w / ow, h / oh)
        resize = t % 2 == 1 and _min_side(origin, j) * shrink >= COPY_MIN_SIDE
        sizes.append((w, h) if resize else (ow, oh))
        quality.append(int(rng.integers(80, 93)) if resize else int(rng.integers(55, 71)))
    W, H = (np.array(v, dtype=data.W.dtype) for v in zip(*sizes))
    src = np.concatenate([np.arange(origin.starts[j], origin.starts[j + 1]) for j in picks])
    img = np.repeat(np.arange(k), np.diff(origin.starts)[picks])
    sx, sy = (W / origin.W[picks])[img], (H / origin.H[picks])[img]
    _append_boxes(data, origin, src, img, (sx, sy))
    data.W, data.H = np.concatenate([data.W, W]), np.concatenate([data.H, H])
    _reindex(data, k)
    real = data.real
    data.real = RealImages(
        case=np.concatenate([real.case, np.full(k, COPY, dtype=np.int8)]),
        orientation=np.concatenate([real.orientation, np.ones(k, dtype=np.int8)]),
        png=np.concatenate([real.png, np.zeros(k, dtype=bool)]),
        quality=np.concatenate([real.quality, np.array(quality, dtype=np.int16)]),
        origin=np.concatenate([real.origin, picks]),
        origin_data=origin,
    )


def _min_side(data: SourceData, i: int) -> float:
    b, s, e = data.b, int(data.starts[i]), int(data.starts[i + 1])
    return float(np.min(np.minimum(b["x1"][s:e] - b["x0"][s:e], b["y1"][s:e] - b["y0"][s:e])))


def _append_boxes(
    data: SourceData, origin: SourceData, src: np.ndarray, img: np.ndarray,
    scale: tuple[np.ndarray, np.ndarray],
) -> None:  # fmt: skip
    """Append boxes ``src`` of ``origin`` to new images ``n_images + img`` of ``data``, scaled
    by ``scale`` (x, y), clean, labelled in ``data``'s label table."""
    ob, m, sx, sy = origin.b, len(src), *scale
    copies = {
        "img": data.n_images + img,
        "pos": np.arange(m) - np.searchsorted(img, img),
        "lab": _adopt_labels(data.labels, origin.labels, ob["lab"][src]),
        "x0": ob["x0"][src] * sx,
        "y0": ob["y0"][src] * sy,
        "x1": ob["x1"][src] * sx,
        "y1": ob["y1"][src] * sy,
        "code": 0,
        "crowd": False,
        "poly": 1 if data.plan.segmentation else 0,
        "uid": int(data.b["uid"].max(initial=-1)) + 1 + np.arange(m),
        "dup": -1,
        "near": 0,
    }
    for key, column in data.b.items():
        add = np.broadcast_to(np.asarray(copies[key]), (m,)).astype(column.dtype)
        data.b[key] = np.concatenate([column, add])
    if data.colour is not None:
        # the origin's attributes, else what its picture shows: drawn facing front, not
        # occluded, in colours no attribute names (-1: none written)
        for name, unknown in (("colour", -1), ("pose", 0), ("occluded", 0)):
            theirs = getattr(origin, name)
            add = theirs[src] if theirs is not None else np.full(m, unknown)
            setattr(data, name, np.concatenate([getattr(data, name), add.astype(np.int8)]))


def _reindex(data: SourceData, k: int) -> None:
    """Image offsets and box indices after ``k`` images were appended."""
    data.starts = np.searchsorted(data.b["img"], np.arange(data.n_images + 1)).astype(np.int64)
    data.box_index = (np.arange(data.n_boxes) - data.starts[data.b["img"]]).astype(np.int32)
    data.img_flag = np.concatenate([data.img_flag, np.zeros(k, dtype=np.int8)])
    data.img_file = np.concatenate([data.img_file, np.zeros(k, dtype=np.int16)])


def _adopt_labels(lt: LabelTable, theirs: LabelTable, entries: np.ndarray) -> np.ndarray:
    """The entries of ``lt`` for the good labels ``entries`` of another source's table
    ``theirs``: this source's own spelling of the same vocabulary row, else theirs, added to
    ``lt``."""
    own = {key: e for e, key in enumerate(lt.key.tolist()) if lt.code[e] == 0}
    out = np.empty(len(entries), dtype=np.int64)
    for k, entry in enumerate(entries.tolist()):
        key = int(theirs.key[entry])
        if key not in own:
            name = theirs.names[entry]
            own[key] = lt.names.index(name) if name in lt.names else _add_label(lt, name, key)
        out[k] = own[key]
    return out


def _add_label(lt: LabelTable, name: str, key: int) -> int:
    lt.names.append(name)
    lt.code = np.append(lt.code, np.int8(0))
    lt.key = np.append(lt.key, np.int64(key))
    lt.alt = np.append(lt.alt, np.int64(-1))
    return len(lt.names) - 1


# --- pixels ----------------------------------------------------------------------------------
def picture(data: SourceData, i: int) -> Image.Image:
    """The displayed picture of image ``i``: its objects drawn at their boxes (a copy: its
    origin's picture, resized to its size)."""
    real = data.real
    size = (int(data.W[i]), int(data.H[i]))
    if real is not None and real.case[i] == COPY:
        pic = picture(real.origin_data, int(real.origin[i]))
        return pic if pic.size == size else pic.resize(size, Image.Resampling.BILINEAR)
    b, s, e = data.b, int(data.starts[i]), int(data.starts[i + 1])
    boxes = np.stack([b[k][s:e] for k in ("x0", "y0", "x1", "y1")], axis=1)
    labels = [data.labels.names[k] for k in b["lab"][s:e].tolist()]
    attrs = [attr_pairs(data, p) for p in range(s, e)] if data.colour is not None else None
    return render_image(synthetic_uri(data.plan.source_id, f"picture-{i}", *size), boxes,
                        labels, attrs, scenery=True)  # fmt: skip


def image_file(data: SourceData, i: int) -> bytes | None:
    """The bytes of image ``i``'s file, or None where it is planted missing."""
    real = data.real
    case, turn, quality = int(real.case[i]), int(real.orientation[i]), int(real.quality[i])
    if case == MISSING:
        return None
    if case == UNDECODABLE:
        return _undecodable(data, i)
    pic = picture(data, i)
    buf = io.BytesIO()
    if turn != 1:
        exif = Image.Exif()
        exif[ExifTags.Base.Orientation] = turn
        pic.transpose(STORE_TURN[turn]).save(buf, "JPEG", quality=quality, exif=exif.tobytes())
    elif real.png[i]:
        pic.save(buf, "PNG")
    else:
        pic.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


#: what a failed download often saves under the image's name
ERROR_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>403 Forbidden</title></head>\n"
    b"<body><h1>Forbidden</h1><p>You don't have permission to access this resource.</p>"
    b"</body></html>\n"
)


def _undecodable(data: SourceData, i: int) -> bytes:
    """A ``.jpg`` no decoder reads, in turn (from the source's index on): an HTML error page,
    a JPEG cut before its frame header (its size is unknown), an empty file."""
    nth = int(np.count_nonzero(data.real.case[:i] == UNDECODABLE))
    variant = (data.plan.index + nth) % 3
    if variant == 0:
        return ERROR_PAGE
    if variant == 2:
        return b""
    buf = io.BytesIO()
    picture(data, i).save(buf, "JPEG", quality=int(data.real.quality[i]))
    raw = buf.getvalue()
    return raw[: _frame_header_offset(raw)]


def _frame_header_offset(jpeg: bytes) -> int:
    """Where a JPEG's first frame header (SOF0-SOF15 but DHT, JPG, DAC) starts: the segments
    before it (SOI, APPn, DQT, ...) are walked by their lengths."""
    pos = 2  # after SOI
    while jpeg[pos] == 0xFF and not (0xC0 <= jpeg[pos + 1] <= 0xCF and jpeg[pos + 1] not in
                                       (0xC4, 0xC8, 0xCC)):  # fmt: skip
        pos += 2 + int.from_bytes(jpeg[pos + 2 : pos + 4], "big")
    return pos


def annotation_view(data: SourceData) -> SourceData:
    """``data`` as its annotation states it: a ``MISMATCH`` image's size and boxes scaled, an
    ``EXIF_STORED`` image's size and boxes in the stored pixels (displayed -> stored:
    orientation 6 stores the picture turned 90 degrees counter-clockwise, ``(x, y) -> (y,
    W - x)``; 8 clockwise, ``(x, y) -> (H - y, x)``)."""
    real, b = data.real, data.b
    case, turn = real.case[b["img"]], real.orientation[b["img"]]
    W, H = (v[b["img"]].astype(np.float64) for v in (data.W, data.H))
    factor = np.where(case == MISMATCH, float(MISMATCH_FACTOR), 1.0)
    x0, y0, x1, y1 = (b[k] * factor for k in ("x0", "y0", "x1", "y1"))
    six = (case == EXIF_STORED) & (turn == 6)
    eight = (case == EXIF_STORED) & (turn == 8)
    turned = {
        "x0": np.where(six, y0, np.where(eight, H - y1, x0)),
        "x1": np.where(six, y1, np.where(eight, H - y0, x1)),
        "y0": np.where(six, W - x1, np.where(eight, x0, y0)),
        "y1": np.where(six, W - x0, np.where(eight, x1, y1)),
    }
    aw, ah = real.annotated_size(data.W, data.H)
    return replace(data, W=aw, H=ah, b={**b, **turned})
