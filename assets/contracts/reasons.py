"""The reason codes of the rejects ledger and of the label map, each with its stage and meaning.

A code is a ``StrEnum`` member, so it is its own string in Parquet and SQL. The meanings are
the ones docs/REASONS.md shows; ``tests/test_docs.py`` checks the page against this module.
"""

from __future__ import annotations

from enum import StrEnum

STAGES = ("parse", "image", "label", "geometry", "source")


class _Coded(StrEnum):
    """A code with the stage that writes it, its level (box, file, ...) and its meaning."""

    def __new__(cls, code: str, stage: str, level: str, meaning: str):
        member = str.__new__(cls, code)
        member._value_ = code
        member.stage = stage
        member.level = level
        member.meaning = meaning
        return member


class Reason(_Coded):
    """Why a box, file or source is in the ledger."""

    # parse: written by ingest
    PARSE_EMPTY_FILE = "parse_empty_file", "parse", "file", "zero bytes or only whitespace"
    PARSE_INVALID_JSON = (
        "parse_invalid_json",
        "parse",
        "file / JSONL line",
        ("truncated or malformed JSON"),
    )
    PARSE_INVALID_XML = (
        "parse_invalid_xml",
        "parse",
        "file",
        ("malformed XML, or XML that is not a VOC annotation"),
    )
    PARSE_INVALID_CSV = (
        "parse_invalid_csv",
        "parse",
        "file",
        (
            "a CSV or Parquet table without the columns its format needs, or a Parquet file "
            "that cannot be read"
        ),
    )
    PARSE_BAD_ENCODING = (
        "parse_bad_encoding",
        "parse",
        "file",
        ("bytes that are not UTF-8 (UTF-16/32 with a BOM are read), or a corrupt .gz/.zst file"),
    )
    PARSE_MISSING_IMAGE_SIZE = (
        "parse_missing_image_size",
        "parse",
        "box",
        ("no size in the annotation and no readable image header"),
    )
    PARSE_UNKNOWN_FORMAT = (
        "parse_unknown_format",
        "parse",
        "source",
        ("`format=auto` and nothing recognisable inside, or a `.zip` that is not an archive"),
    )
    PARSE_MISSING_FILE = (
        "parse_missing_file",
        "parse",
        "source / file",
        ("the URI, or a file the source needs, does not exist"),
    )
    PARSE_PATH_ESCAPE = (
        "parse_path_escape",
        "parse",
        "box / file",
        ("an image path, link or archive member that leaves the source folder (absolute, `..`)"),
    )
    PARSE_UNKNOWN_CATEGORY = (
        "parse_unknown_category",
        "parse",
        "box",
        ("a category id / class index / `/m/` id with no name"),
    )
    PARSE_UNKNOWN_IMAGE = (
        "parse_unknown_image",
        "parse",
        "box",
        ("an annotation naming an image id that is not defined"),
    )
    PARSE_MALFORMED_BOX = (
        "parse_malformed_box",
        "parse",
        "box",
        ("bbox missing, of the wrong length, or not numeric"),
    )
    PARSE_READER_ERROR = (
        "parse_reader_error",
        "parse",
        "file",
        ("the reader failed unexpectedly (a vprim bug; the detail names where)"),
    )

    # image: written by ingest's image step, which resolves and probes every local image once
    IMAGE_MISSING = (
        "image_missing",
        "image",
        "box",
        ("the image the annotation names is not among the source's files (never a made-up URI)"),
    )
    IMAGE_UNDECODABLE = (
        "image_undecodable",
        "image",
        "box",
        ("the image file exists but its header or its pixels are not a readable image"),
    )
    IMAGE_SIZE_MISMATCH = (
        "image_size_mismatch",
        "image",
        "box",
        ("the annotation's image size is neither the file's stored nor its displayed (EXIF) size"),
    )

    # label: decided once per raw label in label_map
    LABEL_GIBBERISH = (
        "label_gibberish",
        "label",
        "box",
        ('machine codes, numbers, random strings ("0", "class_3", "xkcd_q")'),
    )
    LABEL_PRIVATE = (
        "label_private",
        "label",
        "box",
        ('personal or non-generalisable names ("MyRoommate", "johns_mug")'),
    )
    LABEL_VAGUE = (
        "label_vague",
        "label",
        "box",
        ('subjective or meaningless words ("OK", "NG", "good", "other")'),
    )
    LABEL_UNMAPPED = "label_unmapped", "label", "box", "no confident match to an object category"

    # geometry, in the bit order of the `flags` mask (geometry.PRECEDENCE picks the reason)
    NON_FINITE_BOX = "non_finite_box", "geometry", "box", "a coordinate is NaN, inf or null"
    DEGENERATE_BOX = (
        "degenerate_box",
        "geometry",
        "box",
        ("zero or negative width/height, inverted corners (also after clipping)"),
    )
    OUT_OF_BOUNDS = (
        "out_of_bounds",
        "geometry",
        "box",
        ("beyond the image by more than max(2 px, 2%) (within it: clipped)"),
    )
    TRUNCATED_BOX = (
        "truncated_box",
        "geometry",
        "box",
        (
            "cut by the border: `truncated` attribute (Open Images, VOC), "
            "else within max(1 px, 0.5%) of an edge"
        ),
    )
    OVERSIZED_BOX = "oversized_box", "geometry", "box", "more than 90% of the image area"
    TINY_BOX = (
        "tiny_box",
        "geometry",
        "box",
        ("shorter side below 4 px or area below 1e-4 of the image"),
    )
    EXTREME_ASPECT = "extreme_aspect", "geometry", "box", "long/short side above 15"
    DUPLICATE_BOX = (
        "duplicate_box",
        "geometry",
        "box",
        ("same image and canonical label, IoU above 0.9 with an earlier box (the first is kept)"),
    )
    CROWD_REGION = "crowd_region", "geometry", "box", "COCO `iscrowd`, Open Images `IsGroupOf`"
    INVALID_POLYGON = (
        "invalid_polygon",
        "geometry",
        "box",
        ("segmentation invalid (self-intersecting, < 3 points) or far from its box (IoU < 0.5)"),
    )

    # source: every remaining box of a dropped source gets the source's reason
    SOURCE_LABEL_QUALITY = (
        "source_label_quality",
        "source",
        "step I",
        ("more than half the source's boxes carry rejected labels"),
    )
    SOURCE_OVERSIZED_EVERYWHERE = (
        "source_oversized_everywhere",
        "source",
        "step II",
        ("an oversized box in every sampled image (3, in a seeded hash order)"),
    )
    SOURCE_MISSING_ANNOTATIONS = (
        "source_missing_annotations",
        "source",
        "step II",
        ("estimated miss rate above 0.5 (share of the source's images with no box at all)"),
    )
    SOURCE_TOO_FEW_BOXES = (
        "source_too_few_boxes",
        "source",
        "step II",
        ("fewer than 3 clean boxes left"),
    )


class KeepReason(_Coded):
    """The ``reason`` of a kept ``label_map`` row (not a reject)."""

    CANONICAL_MATCH = (
        "canonical_match",
        "label",
        "label",
        ("the normalised label is a canonical term of the shipped vocabulary"),
    )
    SYNONYM_MATCH = (
        "synonym_match",
        "label",
        "label",
        ("the normalised label is a listed synonym of a canonical term"),
    )
    EMBEDDING_MATCH = (
        "embedding_match",
        "label",
        "label",
        ('an unknown surface form close enough to a term to merge into it ("automobile" -> car)'),
    )
    NOVEL_OBJECT = (
        "novel_object",
        "label",
        "label",
        ("a real object name outside the vocabulary, kept as itself"),
    )


class BalanceReason(_Coded):
    """Why balancing leaves a clean box out of the lake: counted, never in the ledger.

    ``duplicate_image`` is also the synthetic corpus's planted code for a mirrored image.
    """

    BALANCE_CAP = (
        "balance_cap",
        "lake",
        "sample",
        (
            "beyond the per-(source, label) cap of `cap` images "
            "(manifest: `samples_capped`, `instances_capped`)"
        ),
    )
    DUPLICATE_IMAGE = (
        "duplicate_image",
        "lake",
        "sample",
        (
            "the same image (one near-duplicate content group, else one normalised URI) and label "
            "already kept from another source "
            "(manifest: `samples_duplicate`, `instances_duplicate`)"
        ),
    )


def of_stage(stage: str) -> tuple[Reason, ...]:
    """The ledger codes one stage writes, in precedence order."""
    return tuple(r for r in Reason if r.stage == stage)


PARSE_REASONS = of_stage("parse")
IMAGE_REASONS = of_stage("image")
#: what ingest writes (readers raise parse codes and ``image_missing``; the image step the rest)
INGEST_REASONS = PARSE_REASONS + IMAGE_REASONS
INGEST_STAGES = ("parse", "image")
LABEL_REASONS = of_stage("label")
BOX_REASONS = of_stage("geometry")
SOURCE_REASONS = of_stage("source")
BALANCE_REASONS = tuple(BalanceReason)
KEEP_REASONS = tuple(KeepReason)
