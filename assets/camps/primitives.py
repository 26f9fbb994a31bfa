"""The primitive text format: a parser that never raises, plus the formatting functions.

Format (integers 0..999, instances left to right, then the answer)::

    <|ref|>label<|/ref|><|box|>[[x1,y1,x2,y2],...]<|/box|>
    <|point|>[[x,y],...]<|/point|>
    Answer: <answer>

Every camp writes its targets with :func:`format_boxes`, :func:`format_points` and
:func:`format_answer`, and reads them back (checks, rewards, the preview grids) with
:func:`parse_primitives`; there is no other implementation of the format.

:func:`parse_primitives` accepts any input (non-text, truncated tags, garbage, floats,
negative or huge numbers) and reports problems in ``errors`` instead of raising. A box or
point with a coordinate outside 0..999 or the wrong number of coordinates is an error and is
dropped. ``duplicate_boxes`` counts boxes repeated within one ref (a reward penalises them).

Pixel coordinates become 0..999 integers by one rule, the lake's:
:mod:`vprim.assets.contracts.coords` (``to_999``, ``boxes_to_999``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple


def _lists_text(items) -> str:
    return "[" + ",".join("[" + ",".join(str(int(c)) for c in b) + "]" for b in items) + "]"


def format_boxes(label: str, boxes_999) -> str:
    """``<|ref|>label<|/ref|><|box|>[[x1,y1,x2,y2],..]<|/box|>``, boxes left to right."""
    return f"<|ref|>{label}<|/ref|><|box|>{_lists_text(sorted(map(list, boxes_999)))}<|/box|>"


def format_points(points) -> str:
    """``<|point|>[[x,y],..]<|/point|>``, points in the given order."""
    return f"<|point|>{_lists_text(points)}<|/point|>"


def format_answer(answer: object) -> str:
    """``\\nAnswer: <answer>`` (the last line of a target)."""
    return f"\nAnswer: {answer}"


class Ref(NamedTuple):
    """One grounding: a tuple ``(label, boxes)`` that also reads as ``.label``/``.boxes``."""

    label: str
    boxes: list[list[int]]


@dataclass
class Parsed:
    refs: list[Ref] = field(default_factory=list)
    points: list[list[list[int]]] = field(default_factory=list)
    answer: str | None = None
    errors: list[str] = field(default_factory=list)
    duplicate_boxes: int = 0

    @property
    def all_points(self) -> list[list[int]]:
        """Every point of every ``<|point|>`` group, in order."""
        return [p for group in self.points for p in group]


_TAG = re.compile(r"<\|(/?)(ref|box|point)\|>")
_REF = re.compile(r"<\|ref\|>(.*?)<\|/ref\|>\s*<\|box\|>(.*?)<\|/box\|>", re.S)
_POINT = re.compile(r"<\|point\|>(.*?)<\|/point\|>", re.S)
_INNER = re.compile(r"\[([^\[\]]*)\]")
_NUM = re.compile(r"^[+-]?\d+$")
_ANSWER = re.compile(r"^[ \t]*Answer:[ \t]*(.*?)[ \t]*$", re.M)


def _coords(body: str, arity: int, what: str, errors: list[str]) -> list[list[int]]:
    """The ``[[..],..]`` lists in ``body`` with ``arity`` integers 0..999 each."""
    s = body.strip()
    if not (s.startswith("[") and s.endswith("]")):
        errors.append(f"{what}: not a list: {s[:40]!r}")
        return []
    out: list[list[int]] = []
    inner = s[1:-1]
    matched = _INNER.findall(inner)
    rest = _INNER.sub("", inner).replace(",", "").strip()
    if rest:
        errors.append(f"{what}: stray text {rest[:40]!r}")
    for item in matched:
        parts = [p.strip() for p in item.split(",")]
        if not all(_NUM.match(p) for p in parts):
            errors.append(f"{what}: not integers: [{item[:40]}]")
            continue
        if len(parts) != arity:
            errors.append(f"{what}: {len(parts)} coordinates, expected {arity}")
            continue
        # more than 4 digits is out of range anyway (and int() of a huge string raises)
        if any(len(p.lstrip("+-")) > 4 for p in parts):
            errors.append(f"{what}: coordinate outside 0..999: [{item[:40]}]")
            continue
        vals = [int(p) for p in parts]
        if not all(0 <= v <= 999 for v in vals):
            errors.append(f"{what}: coordinate outside 0..999: {vals}")
            continue
        if arity == 4 and (vals[2] < vals[0] or vals[3] < vals[1]):
            errors.append(f"{what}: inverted box {vals}")
            continue
        out.append(vals)
    return out


def _parse(text: str, p: Parsed) -> None:
    spans: list[tuple[int, int]] = []
    for m in _REF.finditer(text):
        spans.append(m.span())
        label = m.group(1)
        if _TAG.search(label):
            p.errors.append(f"ref label holds a tag: {label[:40]!r}")
            continue
        boxes = _coords(m.group(2), 4, f"box of {label[:30]!r}", p.errors)
        p.duplicate_boxes += len(boxes) - len({tuple(b) for b in boxes})
        p.refs.append(Ref(label, boxes))
    for m in _POINT.finditer(text):
        spans.append(m.span())
        p.points.append(_coords(m.group(1), 2, "point", p.errors))
    # tags outside any well-formed ref/box or point group: unbalanced or misplaced
    spans.sort()
    for t in _TAG.finditer(text):
        if not any(a <= t.start() < b for a, b in spans):
            p.errors.append(f"unmatched tag {t.group(0)!r} at {t.start()}")
    answers = _ANSWER.findall(text)
    p.answer = answers[-1] if answers else None


def parse_primitives(text: object) -> Parsed:
    """Refs (label, boxes), point groups, the last ``Answer:`` line and errors; never raises."""
    p = Parsed()
    if not isinstance(text, str):
        p.errors.append(f"not text: {type(text).__name__}")
        return p
    try:
        _parse(text, p)
    except Exception as e:  # a safety net: the parser's contract is to never raise
        p.errors.append(f"parser error: {type(e).__name__}: {e}")
    return p


__all__ = [
    "Parsed",
    "Ref",
    "format_answer",
    "format_boxes",
    "format_points",
    "parse_primitives",
]
