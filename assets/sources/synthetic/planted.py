"""The planted ground truth of one written source (columns of ``schemas.PLANTED_SCHEMA``).

Box-level rows (a box defect, a bad label, a box of an image planted without a size or with a
path escape) carry the box's image id, box index and instance id; file- and source-level rows
carry none; a mirror's images with boxes are image-level ``duplicate_image`` rows.
"""

from __future__ import annotations

import numpy as np

from vprim.assets.contracts import hashing as H
from vprim.assets.contracts.reasons import BalanceReason, Reason
from vprim.assets.sources.synthetic.defects import CODES, MISSING_SIZE, PATH_ESCAPE
from vprim.assets.sources.synthetic.plan import (
    FILE_DEFECT_CODES,
    LABELS,
    MISSING,
    OVERSIZED,
    SourcePlan,
)
from vprim.assets.sources.synthetic.source import SourceData


def planted_rows(
    data: SourceData, image_ids: list[str], file_rows: int
) -> dict[str, list | np.ndarray]:
    """The planted rows of one written source: ``image_ids`` as the writer named them,
    ``file_rows`` files planted unreadable (one source-level row each)."""
    plan, b = data.plan, data.b
    sid = plan.source_id
    src_codes: list[str] = []
    if plan.kind == LABELS:
        src_codes.append(Reason.SOURCE_LABEL_QUALITY)
    elif plan.kind == OVERSIZED:
        src_codes.append(Reason.SOURCE_OVERSIZED_EVERYWHERE)
    elif plan.kind == MISSING:
        src_codes.append(Reason.SOURCE_MISSING_ANNOTATIONS)
    if plan.file_defect:
        src_codes.extend([FILE_DEFECT_CODES[plan.file_defect]] * file_rows)
    code = b["code"].copy()
    flag = data.img_flag[b["img"]]
    code[flag == 2] = MISSING_SIZE
    code[flag == 3] = PATH_ESCAPE
    sel = np.flatnonzero((code > 0) & (flag != 1))
    img_of = [image_ids[i] for i in b["img"][sel].tolist()]
    box_index = data.box_index[sel]
    ids = H.instance_ids(sid, img_of, box_index)
    names = np.array(CODES, dtype=object)[code[sel]]
    n_src = len(src_codes)
    # a mirror's images with boxes are all cross-source duplicates of its origin's
    mirrored = np.flatnonzero(np.diff(data.starts) > 0) if plan.mirror_of >= 0 else []
    dup_images = [image_ids[i] for i in mirrored]
    n_dup = len(dup_images)
    return {
        "source_id": [sid] * (n_src + len(sel) + n_dup),
        "image_id": [None] * n_src + img_of + dup_images,
        "box_index": [None] * n_src + box_index.tolist() + [None] * n_dup,
        "instance_id": [None] * n_src + ids.tolist() + [None] * n_dup,
        "defect": src_codes + names.tolist() + [BalanceReason.DUPLICATE_IMAGE] * n_dup,
    }


def junk_rows(plan: SourcePlan) -> dict[str, list]:
    """A junk folder: one source-level ``parse_unknown_format`` row."""
    return {
        "source_id": [plan.source_id],
        "image_id": [None],
        "box_index": [None],
        "instance_id": [None],
        "defect": [Reason.PARSE_UNKNOWN_FORMAT],
    }
