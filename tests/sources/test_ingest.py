"""Ingest: hostile inputs each give their reject reason and nothing else; shards add up."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vprim.assets.contracts import hashing as H
from vprim.assets.contracts import schemas as S
from vprim.assets.sources import ingest
from vprim.assets.sources.catalog import validate_catalog, with_fingerprints, with_shards
from vprim.assets.storage import Storage

GOOD_COCO = {
    "images": [{"id": 7, "width": 100, "height": 80, "file_name": "a.jpg"}],
    "categories": [{"id": 3, "name": "dog"}],
    "annotations": [
        {"id": 1, "image_id": 7, "category_id": 3, "bbox": [10, 10, 30, 20], "iscrowd": 0},
        {"id": 2, "image_id": 7, "category_id": 3, "bbox": [50, 40, 20, 20], "iscrowd": 0},
    ],
}


def _source(tmp_path: Path, name: str, files: dict[str, bytes | str]) -> str:
    root = tmp_path / name
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode()
        path.write_bytes(content)
    root.mkdir(exist_ok=True)
    return str(root)


def _reasons(outcome: ingest.SourceOutcome) -> list[str]:
    return sorted(r["reason"] for r in outcome.rejects)


def test_good_source_reads_every_box(tmp_path):
    uri = _source(tmp_path, "good", {"annotations/instances.json": json.dumps(GOOD_COCO)})
    out = ingest.read_source("good", uri, "coco")
    assert out.rejects == []
    table = pa.concat_tables(out.boxes)
    assert table.schema.equals(S.RAW_INSTANCES_SCHEMA, check_metadata=False)
    assert table["raw_label"].to_pylist() == ["dog", "dog"]
    assert table["x1"].to_pylist() == [40.0, 70.0]
    assert out.stats["boxes_seen"] == 2 and out.stats["boxes_rejected"] == 0
    expected = H.instance_ids("good", ["7", "7"], [0, 1]).tolist()
    assert table["instance_id"].to_pylist() == expected


# Each hostile input yields exactly its own reason (and no raw rows).
HOSTILE = {
    # an annotation file of zero bytes
    "empty": ("coco", {"a.json": b""}, ["parse_empty_file"]),
    # a COCO file cut off mid-array
    "truncated": ("coco", {"a.json": json.dumps(GOOD_COCO)[:-40]}, ["parse_invalid_json"]),
    # latin-1 bytes in a UTF-8 file
    "latin1": (
        "coco",
        {"a.json": json.dumps(GOOD_COCO).replace("dog", "caf\u00e9").encode("latin-1")},
        ["parse_bad_encoding"],
    ),
    # LabelMe without a size whose image does not exist: each box is rejected
    "nosize": (
        "labelme",
        {
            "x.json": json.dumps(
                {
                    "imagePath": "missing.jpg",
                    "shapes": [
                        {"label": "cat", "points": [[1, 1], [9, 9]], "shape_type": "rectangle"},
                        {"label": "cat", "points": [[20, 20], [30, 30]], "shape_type": "rectangle"},
                    ],
                }
            )
        },
        ["parse_missing_image_size", "parse_missing_image_size"],
    ),
    # format=auto over files that are no annotation format
    "junk": (
        "auto",
        {"notes.bin": b"\x00\x01garbage", "readme.txt": "hello"},
        ["parse_unknown_format"],
    ),
    # an image reference that leaves the source folder: the boxes of that image
    "escape": (
        "coco",
        {
            "a.json": json.dumps(
                {
                    **GOOD_COCO,
                    "images": [{**GOOD_COCO["images"][0], "file_name": "../../etc/passwd"}],
                }
            )
        },
        ["parse_path_escape", "parse_path_escape"],
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_gives_its_reason_and_nothing_else(tmp_path, name):
    fmt, files, expected = HOSTILE[name]
    out = ingest.read_source(name, _source(tmp_path, name, files), fmt)
    assert _reasons(out) == expected
    assert sum(t.num_rows for t in out.boxes) == 0
    for row in out.rejects:
        assert row["stage"] == "parse" and row["detail"] and row["uri"]
    # box-level rejects carry an id, file-level ones do not; both are counted honestly
    box_level = [r for r in out.rejects if r["instance_id"] is not None]
    assert out.stats["boxes_seen"] == len(box_level)


def test_missing_source_uri(tmp_path):
    out = ingest.read_source("gone", str(tmp_path / "nowhere"), "voc")
    assert _reasons(out) == ["parse_missing_file"]


def test_reader_bug_is_a_ledger_row_not_a_crash(tmp_path, monkeypatch):
    from vprim.assets.sources.readers import READERS

    def boom(*args, **kwargs):
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(READERS["coco"], "read_file", boom)
    uri = _source(
        tmp_path, "bug", {"a.json": json.dumps(GOOD_COCO), "b.json": json.dumps(GOOD_COCO)}
    )
    out = ingest.read_source("bug", uri, "coco")
    assert _reasons(out) == ["parse_reader_error", "parse_reader_error"]
    assert "ZeroDivisionError: oops" in out.rejects[0]["detail"]


def test_shard_files_and_accounting(tmp_path):
    good = _source(tmp_path, "good", {"a.json": json.dumps(GOOD_COCO)})
    bad = _source(tmp_path, "bad", {"a.json": b""})
    rows = [
        {"source_id": "good", "uri": good, "format": "coco"},
        {"source_id": "bad", "uri": bad, "format": "coco"},
        {"source_id": "gone", "uri": str(tmp_path / "gone"), "format": "yolo"},
    ]
    catalog = with_shards(with_fingerprints(validate_catalog(pa.Table.from_pylist(rows))), 1)
    storage = Storage(str(tmp_path / "root"))
    storage.write_parquet(catalog, "catalog/catalog.parquet")
    (summary,) = ingest.ingest_shards(storage, "catalog/catalog.parquet", ["000"], workers=1)
    assert summary["sources"] == 3 and summary["boxes"] == 2
    assert summary["rejects_by_reason"] == {"parse_empty_file": 1, "parse_missing_file": 1}
    raw = pq.read_table(storage.path("raw_instances/shard=000.parquet"))
    assert raw.num_rows == 2 and set(raw["source_id"].to_pylist()) == {"good"}
    (acct,) = ingest.accounting(storage, ["000"])
    assert acct == {"shard": "000", "seen": 2, "raw": 2, "rejected": 0, "ok": True}
    # no temporary files are left beside the published ones
    assert not list(Path(storage.path()).rglob(".*.tmp-*"))


def test_coco_files_that_restart_image_ids_stay_distinct(tmp_path):
    # a train/val export whose files both number their images from 7
    uri = _source(
        tmp_path,
        "split",
        {
            "annotations/instances_train.json": json.dumps(GOOD_COCO),
            "annotations/instances_val.json": json.dumps(GOOD_COCO),
        },
    )
    out = ingest.read_source("split", uri, "coco")
    table = pa.concat_tables(out.boxes)
    assert sorted(set(table["image_id"].to_pylist())) == [
        "annotations/instances_train:7",
        "annotations/instances_val:7",
    ]
    assert len(set(table["instance_id"].to_pylist())) == table.num_rows == 4


def test_real_coco_sample_through_ingest(shared_fixtures):
    uri = str(shared_fixtures / "datumaro" / "coco_dataset" / "coco_instances")
    out = ingest.read_source("datumaro-coco", uri, "auto")
    table = pa.concat_tables(out.boxes)
    assert out.stats["format"] == "coco"
    assert {"annotations/instances_train:5", "annotations/instances_val:40"} == set(
        table["image_id"].to_pylist()
    )


def _voc(label: str, objects: int = 1, malformed: bool = False) -> str:
    box = "<bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox>"
    body = f"<object><name>{label}</name>{box}</object>" * objects
    if malformed:
        body += "<object><name>x</name></object>"  # no <bndbox>: a box-level reject
    size = "<size><width>10</width><height>10</height></size>"
    return f"<annotation><filename>a.jpg</filename>{size}{body}</annotation>"


def test_a_fragment_that_fails_to_convert_is_its_files_reader_error(tmp_path, monkeypatch):
    """A bug converting one file's columns makes that file one parse_reader_error row (its
    counts and rows withdrawn); the other files' boxes are kept, nothing is read again."""
    from vprim.assets.sources.readers import voc

    real = voc._VocBoxes.convert.__func__

    def convert(cls, geometry, columns):
        if "boom" in columns["raw_label"].to_pylist():
            raise ZeroDivisionError("a bug in a conversion")
        return real(cls, geometry, columns)

    monkeypatch.setattr(voc._VocBoxes, "convert", classmethod(convert))
    files = {
        "a.xml": _voc("cat", 2),
        "b.xml": _voc("boom", 1, malformed=True),
        "c.xml": _voc("dog"),
    }
    reads: list[str] = []
    real_read = voc.VocReader.read_file
    monkeypatch.setattr(
        voc.VocReader,
        "read_file",
        lambda self, source, context, path: (
            reads.append(path) or real_read(self, source, context, path)
        ),
    )
    out = ingest.read_source("src", _source(tmp_path, "voc", files), "voc")
    assert [t["raw_label"].to_pylist() for t in out.boxes] == [["cat", "cat", "dog"]]
    assert [(r["reason"], r["uri"].rsplit("/", 1)[-1]) for r in out.rejects] == [
        ("parse_reader_error", "b.xml")
    ]
    assert "ZeroDivisionError: a bug in a conversion" in out.rejects[0]["detail"]
    stats = {k: out.stats[k] for k in ("files", "files_rejected", "images", "boxes_seen")}
    assert stats == {"files": 3, "files_rejected": 1, "images": 2, "boxes_seen": 3}
    assert len(reads) == 3  # every file read once


def test_only_one_file_per_image_formats_are_read_ahead(tmp_path, monkeypatch):
    from vprim.assets.sources.readers.base import Source

    ahead: list[int] = []
    real = Source.prefetch
    monkeypatch.setattr(
        Source, "prefetch", lambda self, paths: ahead.append(len(paths)) or real(self, paths)
    )
    coco = _source(
        tmp_path, "coco", {"a.json": json.dumps(GOOD_COCO), "b.json": json.dumps(GOOD_COCO)}
    )
    assert ingest.read_source("coco", coco, "coco").stats["boxes_kept"] == 4
    assert ahead == []  # streamed: never read whole in the background
    voc = _source(tmp_path, "voc", {f"{i}.xml": _voc("cat") for i in range(3)})
    assert ingest.read_source("voc", voc, "voc").stats["boxes_kept"] == 3
    assert ahead == [3]  # one window of files, read in the background


def test_read_ahead_bytes_are_held_until_taken_or_discarded(tmp_path):
    from vprim.assets.sources.readers.base import Source

    root = Path(_source(tmp_path, "files", {"a": b"A", "b": b"B", "c": b"C"}))
    source = Source("src", str(root))
    paths = [str(root / name) for name in "abc"]
    source.prefetch(paths)
    batch = source._prefetched[paths[1]].result()  # one read task holds the window
    assert source.read_bytes(paths[0]) == b"A"
    assert sorted(batch) == paths[1:]  # what was taken is no longer held
    source.discard(paths)
    assert batch == {} and source._prefetched == {}
    assert source.read_bytes(paths[2]) == b"C"  # a file dropped is read again on demand
