"""Data contracts of the raw stage: Arrow schemas, reason codes and stable ids.

Everything here is public (docs/CONTRACTS.md). Readers, the synthetic generator and the
quality stage all import from this module so that an ``instance_id`` or a reason code means
the same thing everywhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Bumped when a column is added or changes meaning; written into Parquet metadata.
RAW_SCHEMA_VERSION = "1.0"

FORMATS = ("coco", "voc", "yolo", "openimages", "odvg", "labelme")
CATALOG_FORMATS = (*FORMATS, "auto")

STAGES = ("parse", "label", "geometry", "source")

# --- reject reason codes of the parse stage (stable, documented in the README) ----------------
PARSE_EMPTY_FILE = "parse_empty_file"  # zero bytes or only whitespace
PARSE_INVALID_JSON = "parse_invalid_json"  # truncated or malformed JSON / JSON Lines
PARSE_INVALID_XML = "parse_invalid_xml"  # malformed XML, or XML that is not a VOC annotation
PARSE_INVALID_CSV = "parse_invalid_csv"  # CSV without the columns its format needs
PARSE_BAD_ENCODING = "parse_bad_encoding"  # bytes that are not text in the declared encoding
PARSE_MISSING_IMAGE_SIZE = "parse_missing_image_size"  # no size in the file, no readable image
PARSE_UNKNOWN_FORMAT = "parse_unknown_format"  # format=auto and nothing recognisable inside
PARSE_MISSING_FILE = "parse_missing_file"  # source URI or a file it names does not exist
PARSE_PATH_ESCAPE = "parse_path_escape"  # a path that leaves the source's own folder
PARSE_UNKNOWN_CATEGORY = "parse_unknown_category"  # box names a category id/index not defined
PARSE_UNKNOWN_IMAGE = "parse_unknown_image"  # box names an image id that is not defined
PARSE_MALFORMED_BOX = "parse_malformed_box"  # box field missing, wrong length or not numeric
PARSE_READER_ERROR = "parse_reader_error"  # the reader failed unexpectedly: a bug to report

PARSE_REASONS = (
    PARSE_EMPTY_FILE,
    PARSE_INVALID_JSON,
    PARSE_INVALID_XML,
    PARSE_INVALID_CSV,
    PARSE_BAD_ENCODING,
    PARSE_MISSING_IMAGE_SIZE,
    PARSE_UNKNOWN_FORMAT,
    PARSE_MISSING_FILE,
    PARSE_PATH_ESCAPE,
    PARSE_UNKNOWN_CATEGORY,
    PARSE_UNKNOWN_IMAGE,
    PARSE_MALFORMED_BOX,
    PARSE_READER_ERROR,
)

# Box and label codes are produced by the quality stage; the synthetic generator plants them.
BOX_REASONS = (
    "non_finite_box",
    "degenerate_box",
    "out_of_bounds",
    "truncated_box",
    "oversized_box",
    "tiny_box",
    "extreme_aspect",
    "duplicate_box",
    "crowd_region",
    "invalid_polygon",
)
LABEL_REASONS = ("label_gibberish", "label_private", "label_vague", "label_unmapped")
SOURCE_REASONS = (
    "source_label_quality",
    "source_oversized_everywhere",
    "source_missing_annotations",
    "source_too_few_boxes",
)
#: Clean boxes that balancing leaves out of the lake. Not rejects (nothing is wrong with them):
#: the lake's funnel counts them. ``duplicate_image`` is also the planted code of a mirrored
#: image in the synthetic corpus (the same image published by two sources).
BALANCE_REASONS = ("balance_cap", "duplicate_image")

ATTRIBUTES_TYPE = pa.map_(pa.string(), pa.string())
POLYGON_TYPE = pa.list_(pa.list_(pa.float64()))  # rings of flat [x0, y0, x1, y1, ...]

#: What a reader returns per file: the raw_instances columns that the file itself defines.
#: ``instance_id``, ``source_id`` and ``format`` are added by the ingest framework.
READER_SCHEMA = pa.schema(
    [
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("image_uri", pa.string(), nullable=False),
        pa.field("image_width", pa.int32(), nullable=False),
        pa.field("image_height", pa.int32(), nullable=False),
        pa.field("box_index", pa.int32(), nullable=False),
        pa.field("raw_label", pa.string(), nullable=False),
        pa.field("x0", pa.float64()),
        pa.field("y0", pa.float64()),
        pa.field("x1", pa.float64()),
        pa.field("y1", pa.float64()),
        pa.field("is_crowd", pa.bool_(), nullable=False),
        pa.field("attributes", ATTRIBUTES_TYPE),
        pa.field("polygon", POLYGON_TYPE),
    ]
)

RAW_INSTANCES_SCHEMA = pa.schema(
    [
        pa.field("instance_id", pa.uint64(), nullable=False),
        pa.field("source_id", pa.string(), nullable=False),
        *[READER_SCHEMA.field(name) for name in READER_SCHEMA.names],
        pa.field("format", pa.string(), nullable=False),
    ],
    metadata={"vprim.schema": "raw_instances", "vprim.schema_version": RAW_SCHEMA_VERSION},
)

REJECTS_SCHEMA = pa.schema(
    [
        pa.field("instance_id", pa.uint64()),  # null for file and source rows
        pa.field("source_id", pa.string(), nullable=False),
        pa.field("uri", pa.string(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
    ],
    metadata={"vprim.schema": "rejects", "vprim.schema_version": RAW_SCHEMA_VERSION},
)

PLANTED_SCHEMA = pa.schema(
    [
        pa.field("source_id", pa.string(), nullable=False),
        pa.field("image_id", pa.string()),
        pa.field("box_index", pa.int32()),
        pa.field("instance_id", pa.uint64()),
        pa.field("defect", pa.string(), nullable=False),
    ],
    metadata={"vprim.schema": "planted", "vprim.schema_version": RAW_SCHEMA_VERSION},
)

CATALOG_SCHEMA = pa.schema(
    [
        pa.field("source_id", pa.string(), nullable=False),
        pa.field("uri", pa.string(), nullable=False),
        pa.field("format", pa.string(), nullable=False),
        pa.field("license", pa.string()),
        pa.field("content_hash", pa.string()),
    ],
    metadata={"vprim.schema": "catalog", "vprim.schema_version": RAW_SCHEMA_VERSION},
)


def stable_hash64(text: str) -> int:
    """A 64-bit hash of ``text`` that never changes across runs, machines or versions."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(values: np.ndarray) -> np.ndarray:
    """Vectorised splitmix64 finaliser (wrapping uint64 arithmetic)."""
    with np.errstate(over="ignore"):
        z = values + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        return z ^ (z >> np.uint64(31))


def image_keys(source_id: str, image_ids: Sequence[str] | pa.ChunkedArray | pa.Array) -> np.ndarray:
    """uint64 key of each (source_id, image_id); hashed once per distinct image."""
    if isinstance(image_ids, pa.ChunkedArray):
        image_ids = image_ids.combine_chunks()
    if isinstance(image_ids, pa.Array):  # an Arrow column: hash its distinct values only
        encoded = pc.dictionary_encode(image_ids)
        keys = image_keys(source_id, encoded.dictionary.to_pylist())
        return keys[encoded.indices.to_numpy(zero_copy_only=False)]
    cache: dict[str, int] = {}
    out = np.empty(len(image_ids), dtype=np.uint64)
    for i, image_id in enumerate(image_ids):
        key = cache.get(image_id)
        if key is None:
            key = cache[image_id] = stable_hash64(f"{source_id}\x1f{image_id}")
        out[i] = key
    return out


def instance_ids(
    source_id: str, image_ids: Sequence[str] | pa.ChunkedArray | pa.Array, box_index: np.ndarray
) -> np.ndarray:
    """Stable uint64 ``instance_id`` for boxes of one source.

    Args:
        source_id: the catalog id of the source.
        image_ids: ``(n,)`` image id of each box (the format's own image identifier, as str).
        box_index: ``(n,)`` 0-based position of the box among its image's boxes, in file order.

    Returns:
        ``(n,)`` uint64 array. The same inputs give the same ids on every run and machine.
    """
    box_index = np.asarray(box_index, dtype=np.uint64)
    if len(image_ids) != len(box_index):
        raise ValueError(
            f"image_ids has {len(image_ids)} entries but box_index has {len(box_index)}"
        )
    keys = image_keys(source_id, image_ids)
    with np.errstate(over="ignore"):
        return _splitmix64(keys ^ (box_index * _GOLDEN))


def shard_of(source_id: str, n_shards: int) -> int:
    """The static shard a source belongs to: a stable hash of its id modulo ``n_shards``."""
    return stable_hash64(source_id) % n_shards
