"""Text primitives of the object vocabularies, shared by the synthetic generator (sources) and
the label filter (quality) so that both read and compare names the same way.
"""

from __future__ import annotations

from pathlib import Path


def compact(text: str) -> str:
    """Letters and digits only, lower case: "Traffic_Light" -> "trafficlight"."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


def read_tsv(path: Path, header: list[str]) -> list[list[str]]:
    """The rows of a tab-separated vocabulary file, its header row checked and dropped.

    Lines starting with ``#`` and blank lines are skipped; cells are returned as written
    (not stripped); the header is compared with its cells stripped.

    Raises:
        ValueError: the first row is not ``header`` (or the file has no rows).
    """
    text = path.read_text(encoding="utf-8")
    rows = [ln.split("\t") for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if not rows or [c.strip() for c in rows[0]] != header:
        raise ValueError(f"{path}: expected the header {header}, found {rows[:1]}")
    return rows[1:]


__all__ = ["compact", "read_tsv"]
