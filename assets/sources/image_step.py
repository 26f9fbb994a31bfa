"""Ingest's image step: every real image a source's boxes name is probed once, and the boxes
follow what the file says.

After a source's annotation files are read, the distinct image URIs of its kept boxes that
point at files of the source (``file://``, inside a ``zip://`` archive, rows embedded in a
Parquet file) are probed by :mod:`vprim.assets.sources.images.probe`: the header only
(Pillow's lazy open: existence, decodability, stored size, EXIF orientation) plus a 64-bit
perceptual hash from a reduced-size decode. ``synthetic://`` and remote URLs are not probed.

Probes are cached by (uri, size, mtime): ingest hands the shard's previous probe table in,
so a nightly run probes only new or changed images.

Then each box of a probed image is judged (docs/FORMATS.md, "images"):

- the file is gone or unreadable: ``image_missing`` / ``image_undecodable``;
- the annotation's size is neither the stored nor the displayed (EXIF) size:
  ``image_size_mismatch``;
- the orientation swaps the axes and the annotation's size is the stored one: the box (and its
  polygon) is moved to the displayed orientation and the row gets the displayed size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vprim.assets.sources.images import probe as P
from vprim.assets.sources.readers.base import BoxReject, Source
from vprim.assets.sources.readers.images import index_of


@dataclass
class ImageOutcome:
    """What the image step did to one source's boxes."""

    boxes: pa.Table  # the boxes kept (moved to the displayed orientation where the rule says)
    rejects: list[BoxReject]
    probes: pa.Table  # IMAGE_PROBE_SCHEMA rows of this source's images, with its source_id
    probed: int = 0  # images probed now
    cached: int = 0  # images whose cached probe was still valid
    rotated: int = 0  # boxes moved to the displayed orientation


def check_images(source: Source, boxes: pa.Table, cache: P.ProbeCache) -> ImageOutcome:
    """Probe the source's own images named by ``boxes`` (a READER_SCHEMA table) and judge each
    box by its image; boxes of images that are not probed pass as they are."""
    if not index_of(source).present:  # annotation-only: refs are unchecked (FORMATS.md)
        return ImageOutcome(boxes, [], P.empty_probes(source.source_id))
    uris = pc.unique(boxes["image_uri"])
    local = [u for u in uris.to_pylist() if source.owns(u)]
    if not local:
        return ImageOutcome(boxes, [], P.empty_probes(source.source_id))
    probes, probed, cached = cache.probe(source, local, stat=source.stat_url)
    judged = P.judge(boxes, probes)
    rejects = [
        BoxReject(image_id, int(box_index), reason, detail)
        for image_id, box_index, reason, detail in judged.rejects
    ]
    return ImageOutcome(
        boxes=judged.boxes,
        rejects=rejects,
        probes=probes.append_column(
            "source_id", pa.array(np.full(probes.num_rows, source.source_id, object), pa.string())
        ),
        probed=probed,
        cached=cached,
        rotated=judged.rotated,
    )
