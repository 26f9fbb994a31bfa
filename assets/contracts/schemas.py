"""The Arrow schema of every table vprim writes, and the schema version in its metadata.

Public (docs/CONTRACTS.md). A table that carries a version writes ``vprim.schema`` and
``vprim.schema_version`` into its Parquet metadata.
"""

from __future__ import annotations

import pyarrow as pa

#: Bumped when a column is added or changes meaning; written into Parquet metadata.
RAW_SCHEMA_VERSION = "2.0"  # 2.0: instance_id from md5_64 (was blake2b)

FORMATS = ("coco", "voc", "yolo", "openimages", "odvg", "labelme", "hf_parquet")
CATALOG_FORMATS = (*FORMATS, "auto")

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

#: Per source and shard: what ingest read (ours, not in the original design).
SOURCE_STATS_SCHEMA = pa.schema(
    [
        pa.field("source_id", pa.string(), nullable=False),
        pa.field("format", pa.string(), nullable=False),
        pa.field("files", pa.int32(), nullable=False),
        pa.field("files_rejected", pa.int32(), nullable=False),
        pa.field("images", pa.int64(), nullable=False),
        pa.field("boxes_seen", pa.int64(), nullable=False),
        pa.field("boxes_kept", pa.int64(), nullable=False),
        pa.field("boxes_rejected", pa.int64(), nullable=False),
        pa.field("seconds", pa.float64(), nullable=False),
    ]
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

#: 1.1 added ``near`` (the threshold of a near-threshold case) and ``near:<code>`` defects;
#: 1.2 the image defects of real-image sources (``image_*``, ``exif_rotated``,
#: ``duplicate_content``)
PLANTED_SCHEMA_VERSION = "1.2"
#: the ``defect`` of a planted negative: ``near:<code>`` is kept, though close to ``<code>``'s
#: threshold
PLANTED_NEAR_PREFIX = "near:"
#: planted codes that are no reject (1.2): a box of an EXIF-rotated JPEG (kept, in the displayed
#: orientation), and an image that re-publishes another source's picture (re-encoded or resized)
PLANTED_EXIF_ROTATED = "exif_rotated"
PLANTED_DUPLICATE_CONTENT = "duplicate_content"

PLANTED_SCHEMA = pa.schema(
    [
        pa.field("source_id", pa.string(), nullable=False),
        pa.field("image_id", pa.string()),
        pa.field("box_index", pa.int32()),
        pa.field("instance_id", pa.uint64()),
        pa.field("defect", pa.string(), nullable=False),
        pa.field("near", pa.string()),
    ],
    metadata={"vprim.schema": "planted", "vprim.schema_version": PLANTED_SCHEMA_VERSION},
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

CLEAN_SCHEMA = pa.schema(
    [*RAW_INSTANCES_SCHEMA, pa.field("canonical_label", pa.string(), nullable=False)],
    metadata={"vprim.schema": "clean_instances", "vprim.schema_version": RAW_SCHEMA_VERSION},
)

SELECTION_SCHEMA = pa.schema(
    [
        pa.field("source_id", pa.string(), nullable=False),
        pa.field("decision", pa.string(), nullable=False),  # keep | drop
        pa.field("stage", pa.string()),  # ingest | label | geometry, null when kept
        pa.field("reason", pa.string()),
        pa.field("detail", pa.string()),
        pa.field("raw_boxes", pa.int64(), nullable=False),
        pa.field("label_rejected", pa.int64(), nullable=False),
        pa.field("bad_label_fraction", pa.float64()),
        pa.field("geometry_rejected", pa.int64(), nullable=False),
        pa.field("clean_boxes", pa.int64(), nullable=False),
        pa.field("images", pa.int64(), nullable=False),
        pa.field("miss_rate_estimate", pa.float64()),
    ]
)

LABEL_MAP_SCHEMA = pa.schema(
    [
        pa.field("raw_label", pa.string(), nullable=False),
        pa.field("normalised", pa.string(), nullable=False),
        pa.field("canonical_label", pa.string()),
        pa.field("decision", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("score", pa.float32(), nullable=False),
        pa.field("embedding_model", pa.string(), nullable=False),
        pa.field("evidence", pa.string(), nullable=False),
        pa.field("nearest_term", pa.string()),
    ],
    metadata={"vprim.schema": "label_map", "vprim.schema_version": "1.0"},
)

#: The persisted :class:`Triage` (``label_embeddings`` writes it, ``label_map`` decides from
#: it): the ``label_map`` columns the rules filled, ``todo`` (left for the embeddings) and,
#: for those rows, their word shape.
TRIAGE_SCHEMA = pa.schema(
    [
        *(
            LABEL_MAP_SCHEMA.field(name)
            for name in LABEL_MAP_SCHEMA.names
            if name != "embedding_model"
        ),
        pa.field("todo", pa.bool_(), nullable=False),
        pa.field("codes", pa.list_(pa.string())),
        pa.field("possessive", pa.bool_()),
        pa.field("rest", pa.string()),
        pa.field(
            "name_words",
            pa.list_(pa.struct([("word", pa.string()), ("candidates", pa.list_(pa.string()))])),
        ),
    ],
    metadata={"vprim.schema": "label_triage", "vprim.schema_version": "1.0"},
)

LAKE_SCHEMA_VERSION = "2.0"  # 2.0: md5-based sample_id, buckets and cap order (was DuckDB hash())

#: The public lake row (docs/CONTRACTS.md).
LAKE_SCHEMA = pa.schema(
    [
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("source_id", pa.string(), nullable=False),
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("image_uri", pa.string(), nullable=False),
        pa.field("image_width", pa.int32(), nullable=False),
        pa.field("image_height", pa.int32(), nullable=False),
        pa.field("label", pa.string(), nullable=False),
        pa.field("boxes", pa.list_(pa.list_(pa.float64())), nullable=False),
        pa.field("boxes_999", pa.list_(pa.list_(pa.int32())), nullable=False),
        pa.field("n_boxes", pa.int32(), nullable=False),
        pa.field("target", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
    ],
    metadata={"vprim.schema": "lake", "vprim.schema_version": LAKE_SCHEMA_VERSION},
)

CAMP_SCHEMA = pa.schema(
    [
        ("sample_id", pa.string()),
        ("camp", pa.string()),
        ("split", pa.string()),
        ("eval_set", pa.string()),
        ("difficulty", pa.string()),
        ("seed", pa.int64()),
        ("image_png", pa.binary()),
        ("image_uri", pa.string()),
        ("image_width", pa.int32()),
        ("image_height", pa.int32()),
        ("prompt", pa.string()),
        ("target", pa.string()),
        ("answer", pa.string()),
        ("meta", pa.string()),
    ]
)
