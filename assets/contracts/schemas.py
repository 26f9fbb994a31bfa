"""The Arrow schema of every table vprim writes, and the schema version in its metadata.

Public (docs/CONTRACTS.md). A table that carries a version writes ``vprim.schema`` and
``vprim.schema_version`` into its Parquet metadata.
"""

from __future__ import annotations

import pyarrow as pa

#: Bumped when a column is added or changes meaning; written into Parquet metadata.
RAW_SCHEMA_VERSION = "1.0"

FORMATS = ("coco", "voc", "yolo", "openimages", "odvg", "labelme")
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
