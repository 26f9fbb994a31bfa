"""Every format writer by catalog format, and the writer of junk folders (format ``auto``)."""

from __future__ import annotations

import numpy as np

from vprim.assets.sources.synthetic.coco import write_coco
from vprim.assets.sources.synthetic.labelme import write_labelme
from vprim.assets.sources.synthetic.odvg import write_odvg
from vprim.assets.sources.synthetic.openimages import write_openimages
from vprim.assets.sources.synthetic.text import Files
from vprim.assets.sources.synthetic.voc import write_voc
from vprim.assets.sources.synthetic.yolo import write_yolo

#: format -> writer(data, rng) -> (files, image_ids, file_rows) (see ``text.py``)
WRITERS = {
    "coco": write_coco,
    "voc": write_voc,
    "yolo": write_yolo,
    "openimages": write_openimages,
    "odvg": write_odvg,
    "labelme": write_labelme,
}

_JUNK_NAMES = (
    "dump.bin", "export.dat", "archive.part01", "index.idx", "notes.rtf", "model.weights",
    "thumbs.db", "data.h5", "blob.raw",
)  # fmt: skip


def write_junk(rng: np.random.Generator) -> Files:
    """A few files of random bytes under names no reader knows."""
    picks = rng.choice(len(_JUNK_NAMES), int(rng.integers(2, 5)), replace=False)
    return [
        (
            _JUNK_NAMES[k],
            rng.integers(0, 256, int(rng.integers(64, 2048)), dtype=np.uint8).tobytes(),
        )
        for k in sorted(picks.tolist())
    ]
