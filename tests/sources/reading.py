"""What the reader tests share: reading a whole source file by file, and writing sources."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
from PIL import Image

from vprim.assets.contracts import reasons as R
from vprim.assets.contracts import schemas as S
from vprim.assets.sources.readers import get_reader
from vprim.assets.sources.readers.base import BoxReject, ParseError, ReadResult, Source

#: the header of an Open Images box CSV
OI_HEADER = "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsGroupOf\n"


@dataclass
class Outcome:
    """Everything one source yields through a reader, file errors included."""

    boxes: pa.Table
    rejects: list[BoxReject] = field(default_factory=list)
    images: int = 0
    record_errors: list[ParseError] = field(default_factory=list)
    file_errors: dict[str, str] = field(default_factory=dict)  # relpath -> reason

    @property
    def rows(self) -> list[dict]:
        return self.boxes.to_pylist()

    @property
    def reasons(self) -> list[str]:
        return sorted(r.reason for r in self.rejects)

    def xyxy(self) -> list[tuple[float, float, float, float]]:
        return [(r["x0"], r["y0"], r["x1"], r["y1"]) for r in self.rows]


def check_result(result: ReadResult) -> None:
    """Invariants of any ReadResult: the reader schema, and one (image, box_index) per box."""
    assert result.boxes.schema.equals(S.READER_SCHEMA)
    keys = list(zip(result.boxes["image_id"].to_pylist(), result.boxes["box_index"].to_pylist()))
    keys += [(r.image_id, r.box_index) for r in result.rejects]
    assert len(keys) == len(set(keys)), "box_index must be unique within an image"
    for r in result.rejects:
        assert r.reason in R.INGEST_REASONS and r.detail
    for e in result.record_errors:
        assert e.reason in R.INGEST_REASONS and e.detail


def read(fmt: str, uri: Path | str) -> Outcome:
    """Read a whole source with one reader, as ingest does, collecting file-level errors."""
    source = Source("src", str(uri))
    reader = get_reader(fmt)
    context = reader.prepare(source)
    tables, out = [], Outcome(boxes=S.READER_SCHEMA.empty_table())
    for path in reader.files(source, context):
        try:
            result = reader.read_file(source, context, path)
        except ParseError as exc:
            out.file_errors[source.relpath(path)] = exc.reason
            continue
        check_result(result)
        tables.append(result.boxes)
        out.rejects += result.rejects
        out.images += result.images
        out.record_errors += result.record_errors
    if tables:
        out.boxes = pa.concat_tables(tables)
    return out


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    root.mkdir(parents=True, exist_ok=True)
    return root


def image(path: Path, width: int, height: int) -> Path:
    """A real (tiny) PNG whose header carries its size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height)).save(path, format="PNG")
    return path


def synthetic(name: str, width: int, height: int) -> str:
    return f"synthetic://src/{name}?w={width}&h={height}"


def jsonl(*records: object) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


def labelme(shapes: list, **fields: object) -> str:
    return json.dumps({"version": "5.2.1", "flags": {}, "shapes": shapes, **fields})


def shape(kind: str | None, points: list, label: object = "dog", **extra: object) -> dict:
    out = {"label": label, "points": points, "group_id": None, "flags": {}, **extra}
    if kind is not None:
        out["shape_type"] = kind
    return out


def ingested(fmt: str, uri: Path | str) -> tuple[list[dict], list[tuple[str, str, bool]], dict]:
    """A whole source through ingest (the files' fragments converted together): its rows, its
    ledger as sorted ``(file name, reason, box-level)`` and its counts (without seconds)."""
    from vprim.assets.sources import ingest

    out = ingest.read_source("src", str(uri), fmt)
    rows = pa.concat_tables(out.boxes).to_pylist() if out.boxes else []
    ledger = sorted(
        (r["uri"].rsplit("/", 1)[-1], r["reason"], r["instance_id"] is not None)
        for r in out.rejects
    )
    stats = {k: v for k, v in out.stats.items() if k not in ("seconds", "source_id", "format")}
    return rows, ledger, stats


def counts(*, files: int, files_rejected: int, images: int, seen: int, kept: int) -> dict:
    """A source's expected counts, as ``source_stats`` holds them."""
    return {
        "files": files,
        "files_rejected": files_rejected,
        "images": images,
        "boxes_seen": seen,
        "boxes_kept": kept,
        "boxes_rejected": seen - kept,
    }
