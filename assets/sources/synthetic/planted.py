"""The planted ground truth of one written source (columns of ``schemas.PLANTED_SCHEMA``).

Box-level rows (a box defect, a bad label, a box of an image planted without a size or with a
path escape, a near-threshold case) carry the box's image id, box index and instance id; file-
and source-level rows carry none; a mirror's images with boxes are image-level
``duplicate_image`` rows. ``near`` names the threshold of a near-threshold case (``near.py``):
its ``defect`` is the reason code just outside it, ``near:<code>`` just inside. In a
real-image source (``real_images.py``) every box of a missing, undecodable, mismatched or
EXIF-rotated image is a box-level row of its case, and each copied picture an image-level
``duplicate_content`` row.
"""

from __future__ import annotations

import numpy as np

from vprim.assets.contracts import hashing as H
from vprim.assets.contracts import schemas as S
from vprim.assets.contracts.reasons import BalanceReason, Reason
from vprim.assets.sources.synthetic.defects import CODES, MISSING_SIZE, PATH_ESCAPE
from vprim.assets.sources.synthetic.near import BOX_CASES, SOURCE_CASES
from vprim.assets.sources.synthetic.plan import (
    FILE_DEFECT_CODES,
    LABELS,
    MISSING,
    OVERSIZED,
    SourcePlan,
)
from vprim.assets.sources.synthetic.real_images import CASE_DEFECTS, COPY, PLAIN
from vprim.assets.sources.synthetic.source import SourceData


def planted_rows(
    data: SourceData, image_ids: list[str], file_rows: int
) -> dict[str, list | np.ndarray]:
    """The planted rows of one written source: ``image_ids`` as the writer named them,
    ``file_rows`` files planted unreadable (one source-level row each)."""
    plan, b = data.plan, data.b
    sid = plan.source_id
    src_codes: list[str] = []
    src_near: list[str | None] = []
    if plan.kind == LABELS:
        src_codes.append(Reason.SOURCE_LABEL_QUALITY)
    elif plan.kind == OVERSIZED:
        src_codes.append(Reason.SOURCE_OVERSIZED_EVERYWHERE)
    elif plan.kind == MISSING:
        src_codes.append(Reason.SOURCE_MISSING_ANNOTATIONS)
    src_near.extend([None] * len(src_codes))
    if plan.near:
        case = SOURCE_CASES[plan.near]
        src_codes.append(case.defect)
        src_near.append(case.threshold)
    if plan.file_defect:
        src_codes.extend([FILE_DEFECT_CODES[plan.file_defect]] * file_rows)
        src_near.extend([None] * file_rows)
    code = b["code"].copy()
    flag = data.img_flag[b["img"]]
    code[flag == 2] = MISSING_SIZE
    code[flag == 3] = PATH_ESCAPE
    near = b["near"]
    sel = np.flatnonzero(((code > 0) | (near > 0)) & (flag != 1))
    img_of = [image_ids[i] for i in b["img"][sel].tolist()]
    box_index = data.box_index[sel]
    ids = H.instance_ids(sid, img_of, box_index)
    names = np.array(CODES, dtype=object)[code[sel]]
    cases = np.array([None, *BOX_CASES], dtype=object)[near[sel]]
    defects = [c.defect if c is not None else d for c, d in zip(cases.tolist(), names.tolist())]
    box_near = [c.threshold if c is not None else None for c in cases.tolist()]
    n_src = len(src_codes)
    # a mirror's images with boxes are all cross-source duplicates of its origin's
    mirrored = np.flatnonzero(np.diff(data.starts) > 0) if plan.mirror_of >= 0 else []
    dup_images = [image_ids[i] for i in mirrored]
    dup_codes = [BalanceReason.DUPLICATE_IMAGE] * len(dup_images)
    if data.real is not None:
        case_img, case_box, case_codes = _real_image_rows(data, image_ids)
        img_of, defects = img_of + case_img, defects + case_codes
        box_index = np.concatenate([box_index, data.box_index[case_box]])
        ids = np.concatenate([ids, H.instance_ids(sid, case_img, data.box_index[case_box])])
        box_near += [None] * len(case_box)
        copies = np.flatnonzero(data.real.case == COPY)
        dup_images = [image_ids[i] for i in copies]
        dup_codes = [S.PLANTED_DUPLICATE_CONTENT] * len(copies)
    n_box, n_dup = len(img_of), len(dup_images)
    return {
        "source_id": [sid] * (n_src + n_box + n_dup),
        "image_id": [None] * n_src + img_of + dup_images,
        "box_index": [None] * n_src + box_index.tolist() + [None] * n_dup,
        "instance_id": [None] * n_src + ids.tolist() + [None] * n_dup,
        "defect": src_codes + defects + dup_codes,
        "near": src_near + box_near + [None] * n_dup,
    }


def _real_image_rows(data: SourceData, image_ids: list[str]) -> tuple[list, np.ndarray, list]:
    """The boxes of the images a real-image source plants as a case (its boxes are clean
    otherwise): their image ids, positions and codes."""
    case = data.real.case[data.b["img"]]
    boxes = np.flatnonzero((case != PLAIN) & (case != COPY))
    img_of = [image_ids[i] for i in data.b["img"][boxes].tolist()]
    return img_of, boxes, [CASE_DEFECTS[c] for c in case[boxes].tolist()]


def junk_rows(plan: SourcePlan) -> dict[str, list]:
    """A junk folder: nothing in it can be read, so it is ``parse_unknown_format`` and, with no
    box at all, ``source_too_few_boxes`` (source-level rows)."""
    return {
        "source_id": [plan.source_id] * 2,
        "image_id": [None] * 2,
        "box_index": [None] * 2,
        "instance_id": [None] * 2,
        "defect": [Reason.PARSE_UNKNOWN_FORMAT, Reason.SOURCE_TOO_FEW_BOXES],
        "near": [None] * 2,
    }
