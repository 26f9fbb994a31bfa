"""The errors a reader raises and the box-level rejects it returns (``readers/base.py`` has
the contract they serve)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vprim.assets.contracts import reasons as R


class ParseError(Exception):
    """A file (or a whole source) that cannot be read; becomes one ``rejects`` row.

    Args:
        reason: one of ``reasons.INGEST_REASONS`` (a parse code, or ``image_missing``).
        detail: one line that tells a user what is wrong and where.
    """

    def __init__(self, reason: str, detail: str):
        if reason not in R.INGEST_REASONS:
            raise ValueError(f"unknown ingest reason {reason!r}; add it to reasons.INGEST_REASONS")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = " ".join(str(detail).split())[:500]


@dataclass(frozen=True)
class BoxReject:
    """A box that was counted on read but cannot become a raw_instances row."""

    image_id: str
    box_index: int
    reason: str
    detail: str

    @classmethod
    def of(cls, image_id: str, box_index: int, error: ParseError) -> BoxReject:
        """The box-level row of an error that concerns the box's whole image (its size, path)."""
        return cls(image_id, box_index, error.reason, error.detail)


def kept_indexes(rejects: Sequence[BoxReject], n: int) -> list[int]:
    """The box indexes of an image's ``n`` boxes that ``rejects`` does not hold, in order."""
    rejected = {r.box_index for r in rejects}
    return [i for i in range(n) if i not in rejected]


def reject_image(
    image_id: str, rejects: Sequence[BoxReject], n: int, error: ParseError
) -> list[BoxReject]:
    """All ``n`` boxes of an image that its own problem (its path, its size) rejects: those
    in ``rejects`` keep their reason, the others get ``error``; in box order."""
    rejected = {r.box_index: r for r in rejects}
    return [rejected.get(i) or BoxReject.of(image_id, i, error) for i in range(n)]
