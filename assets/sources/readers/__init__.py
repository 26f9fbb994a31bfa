"""Format readers: one :class:`~vprim.assets.sources.readers.base.FormatReader` per raw format.

``READERS`` maps each catalog format to its reader; ``detect_format`` resolves ``format=auto``.
The contract every reader follows is ``docs/FORMATS.md``.
"""

from __future__ import annotations

from vprim.assets.contracts import schemas as S
from vprim.assets.sources.readers.base import FormatReader, ParseError, Source
from vprim.assets.sources.readers.coco import CocoReader
from vprim.assets.sources.readers.hfparquet import HfParquetReader
from vprim.assets.sources.readers.labelme import LabelmeReader
from vprim.assets.sources.readers.odvg import OdvgReader
from vprim.assets.sources.readers.openimages import OpenImagesReader
from vprim.assets.sources.readers.voc import VocReader
from vprim.assets.sources.readers.yolo import YoloReader

READERS: dict[str, FormatReader] = {
    "coco": CocoReader(),
    "voc": VocReader(),
    "yolo": YoloReader(),
    "openimages": OpenImagesReader(),
    "odvg": OdvgReader(),
    "labelme": LabelmeReader(),
    "hf_parquet": HfParquetReader(),
}

#: the order ``format=auto`` tries (docs/FORMATS.md, section auto): the most specific first
#: (a Parquet shard with an ``objects.bbox`` schema is unambiguous, and its footer is cheap)
DETECT_ORDER = ("hf_parquet", "coco", "labelme", "odvg", "voc", "openimages", "yolo")

assert set(READERS) == set(S.FORMATS) == set(DETECT_ORDER)


def get_reader(format: str) -> FormatReader:
    """The reader of a catalog format; ValueError naming the known formats otherwise."""
    reader = READERS.get(format)
    if reader is None:
        hint = " ('auto' is resolved with detect_format first)" if format == "auto" else ""
        raise ValueError(
            f"unknown annotation format {format!r}{hint}; known formats: {', '.join(S.FORMATS)}"
        )
    return reader


def detect_format(source: Source) -> str | None:
    """The first format (in ``DETECT_ORDER``) whose reader recognises ``source``, or None."""
    for name in DETECT_ORDER:
        try:
            if READERS[name].detect(source):
                return name
        except (ParseError, OSError):
            continue  # an unreadable file is not evidence of a format
    return None


__all__ = [
    "DETECT_ORDER",
    "READERS",
    "CocoReader",
    "FormatReader",
    "HfParquetReader",
    "LabelmeReader",
    "OdvgReader",
    "OpenImagesReader",
    "VocReader",
    "YoloReader",
    "detect_format",
    "get_reader",
]
