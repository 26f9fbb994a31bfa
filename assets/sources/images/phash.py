"""A 64-bit perceptual hash (DCT pHash) of an image's displayed pixels, from a reduced decode.

The hash: the image as grayscale, in its displayed orientation, resized to 32x32 (Lanczos);
its 2-D DCT; the 8x8 lowest frequencies; bit ``8*r + c`` (most significant first) set where
coefficient ``(r, c)`` is above the median of the 63 non-DC ones. Copies of one picture
(re-encoded, resized) differ in a few bits; different pictures in about half of them.

Why pHash and not dHash (9x8 row gradients): measured on 209 real pictures (9 photos and 200
crops of them at 640x480 and 1920x1080), each re-encoded at JPEG quality 95 and 40, resized to
50% and 25%, both, and saved as PNG (``python -m vprim.assets.sources.images.bench hashes``):
copies are within 4 bits under pHash and 5 under dHash, and different pictures (the photos and
their quarter crops) at least 18 bits apart under pHash but 8 under dHash. docs/FORMATS.md
("images") has the table and the radius chosen from it.

Only what the hash needs is decoded: a JPEG is decoded by libjpeg's DCT scaling at 1/2, 1/4 or
1/8 of its size (Pillow's ``draft``), at least 128 pixels a side, straight to grayscale, so a
4000x3000 photo costs a 500x375 decode. Other formats are decoded whole.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

#: side of the grayscale thumbnail the DCT runs on
DCT_SIZE = 32
#: side of the low-frequency block kept (8x8 = 64 bits)
HASH_SIDE = 8
#: JPEG draft target: libjpeg scales down by the largest of 8, 4, 2 that keeps both sides at or
#: above this (a 640x480 JPEG decodes at 320x240, a 1920x1080 one at 240x135). At 64 the copies
#: of a picture drifted apart (up to 8 bits, against 4 here: docs/FORMATS.md "images")
DRAFT_SIDE = 128
#: default Hamming radius for "the same picture" (docs/FORMATS.md "images"): the largest
#: distance measured between copies (4 bits), far below the smallest between different
#: pictures (18); the widest radius whose exact search stays well under a minute at 13.5M
DEFAULT_RADIUS = 4

_ORIENTATION_TAG = 0x0112
# transposes that show stored pixels as displayed, per EXIF orientation (Pillow's own table
# in ImageOps.exif_transpose)
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _dct_matrix(n: int) -> np.ndarray:
    """The orthonormal DCT-II matrix, shape ``(n, n)``: ``D @ x`` is the DCT of ``x``."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    d = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2 / n)
    d[0] /= np.sqrt(2)
    return d


_DCT = _dct_matrix(DCT_SIZE)
_BIT_WEIGHTS = np.uint64(1) << np.arange(HASH_SIDE * HASH_SIDE - 1, -1, -1, dtype=np.uint64)


def displayed_gray(img: Image.Image, orientation: int = 1) -> Image.Image:
    """``img`` decoded as grayscale (in draft mode for JPEG) and shown in its ``orientation``.

    Args:
        img: a lazily opened image (``Image.open``): it is decoded here.
        orientation: its EXIF orientation (1-8), as the probe read it from the header.

    Raises:
        OSError, ValueError, ...: whatever Pillow raises for pixels it cannot decode.
    """
    if img.format == "JPEG":
        img.draft("L", (DRAFT_SIDE, DRAFT_SIDE))
    gray = img.convert("L")
    if orientation in _TRANSPOSE and not _shown_on_load(img):
        gray = gray.transpose(_TRANSPOSE[orientation])  # cheap and exact on the reduced image
    return gray


def _shown_on_load(img: Image.Image) -> bool:
    """Whether Pillow itself showed the image in its orientation as it decoded it: Pillow 12+
    does so for TIFF, and drops the tag the probe read (older versions keep both as stored)."""
    tags = getattr(img, "tag_v2", None)
    return tags is not None and _ORIENTATION_TAG not in tags


def displayed_thumbnail(img: Image.Image, orientation: int = 1) -> np.ndarray:
    """The ``DCT_SIZE`` x ``DCT_SIZE`` grayscale thumbnail of ``img`` as displayed, float64."""
    gray = displayed_gray(img, orientation)
    # Lanczos, not a box average: copies decoded at different scales stay within 4 bits
    small = gray.resize((DCT_SIZE, DCT_SIZE), Image.Resampling.LANCZOS)
    return np.asarray(small, dtype=np.float64)


def hash_thumbnail(thumbnail: np.ndarray) -> int:
    """The 64-bit pHash of a ``DCT_SIZE`` x ``DCT_SIZE`` grayscale thumbnail."""
    # rounded: a flat picture's AC terms are float noise around 0, which must not set bits
    low = np.round((_DCT @ thumbnail @ _DCT.T)[:HASH_SIDE, :HASH_SIDE].ravel(), 6)
    return pack_bits(low > np.median(low[1:]))  # the DC term only says how bright it is


def pack_bits(bits: np.ndarray) -> int:
    """64 booleans, the first the most significant, as one integer."""
    return int(np.sum(_BIT_WEIGHTS[bits], dtype=np.uint64))


def image_hash(img: Image.Image, orientation: int = 1) -> int:
    """The 64-bit pHash of a lazily opened image shown in its EXIF ``orientation``."""
    return hash_thumbnail(displayed_thumbnail(img, orientation))


def hamming(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """Bitwise Hamming distances between uint64 hashes (broadcasting), as uint8."""
    return np.bitwise_count(np.bitwise_xor(np.asarray(a, np.uint64), np.asarray(b, np.uint64)))
