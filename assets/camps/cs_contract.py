"""Interim copy of the agreed camp contract, for the counting and spatial camps only.

The shared ``assets/camps/primitives.py`` (text format) and ``assets/camps/schema.py`` (row
schema and writer) were agreed but had not landed when these camps were written. This module
implements the same names and behaviour the contract describes, so that switching is one
import line per module (``counting.py``, ``spatial.py``, ``preview_grid.py``,
``counting_spatial_runs.py``) and this file's deletion.

Text: ``<|ref|>label<|/ref|><|box|>[[x1,y1,x2,y2],...]<|/box|>`` with integers 0..999 left to
right, ``<|point|>[[x,y],...]<|/point|>``, then ``\\nAnswer: <answer>``.
Rows: ``sample_id, camp, split, eval_set, difficulty, seed, image_png, image_uri,
image_width, image_height, prompt, target, answer, meta`` (JSON text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pyarrow as pa

from assets.storage import Storage

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


def to_999(v: float, side: float) -> int:
    """``round(v / side * 999)`` clamped to 0..999."""
    return int(min(999, max(0, round(float(v) / float(side) * 999))))


def _boxes_text(boxes) -> str:
    return "[" + ",".join("[" + ",".join(str(int(c)) for c in b) + "]" for b in boxes) + "]"


def format_boxes(label: str, boxes_999) -> str:
    """``<|ref|>label<|/ref|><|box|>[[..],..]<|/box|>``, boxes left to right."""
    return f"<|ref|>{label}<|/ref|><|box|>{_boxes_text(sorted(map(list, boxes_999)))}<|/box|>"


def format_points(points) -> str:
    return f"<|point|>{_boxes_text(points)}<|/point|>"


def format_answer(answer: object) -> str:
    return f"\nAnswer: {answer}"


@dataclass
class Ref:
    label: str
    boxes: list[tuple[int, ...]]


@dataclass
class Parsed:
    refs: list[Ref] = field(default_factory=list)
    points: list[tuple[int, int]] = field(default_factory=list)
    answer: str | None = None
    errors: list[str] = field(default_factory=list)
    duplicate_boxes: int = 0


_REF = re.compile(r"<\|ref\|>(.*?)<\|/ref\|><\|box\|>(.*?)<\|/box\|>", re.S)
_POINT = re.compile(r"<\|point\|>(.*?)<\|/point\|>", re.S)
_LIST = re.compile(r"\[\s*(-?\d+(?:\s*,\s*-?\d+)*)\s*\]")


def _coords(text: str, arity: int, errors: list[str]) -> list[tuple[int, ...]]:
    body = text.strip()
    if not (body.startswith("[") and body.endswith("]")):
        errors.append(f"not a list: {text[:40]!r}")
        return []
    out = []
    for m in _LIST.finditer(body[1:-1]):
        vals = tuple(int(v) for v in m.group(1).split(","))
        if len(vals) != arity or not all(0 <= v <= 999 for v in vals):
            errors.append(f"bad coordinates {vals}")
            continue
        out.append(vals)
    return out


def parse_primitives(text: object) -> Parsed:
    """Refs with their boxes, points, the answer and errors; never raises."""
    p = Parsed()
    if not isinstance(text, str):
        p.errors.append("not text")
        return p
    for m in _REF.finditer(text):
        boxes = _coords(m.group(2), 4, p.errors)
        p.duplicate_boxes += len(boxes) - len(set(boxes))
        p.refs.append(Ref(m.group(1), boxes))
    for m in _POINT.finditer(text):
        p.points.extend(_coords(m.group(1), 2, p.errors))
    answer = re.search(r"\nAnswer:[ \t]*(.*?)\s*$", text, re.S)
    p.answer = answer.group(1) if answer else None
    return p


def write_samples(store: Storage, rel: str, rows: list[dict]) -> str:
    """Rows as one Parquet file at ``rel`` under the storage root, atomically."""
    return store.write_parquet(pa.Table.from_pylist(rows, CAMP_SCHEMA), rel)


__all__ = [
    "CAMP_SCHEMA",
    "Parsed",
    "Ref",
    "format_answer",
    "format_boxes",
    "format_points",
    "parse_primitives",
    "to_999",
    "write_samples",
]
