"""Catalog loading and validation: clear errors for a bad catalog, every format read alike."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vprim.assets.sources import catalog as cat

ROWS = [
    {"source_id": "a", "uri": "/data/a", "format": "coco"},
    {"source_id": "b", "uri": "s3://bucket/b", "format": "VOC ", "license": "cc-by"},
    {"source_id": "c", "uri": "/data/c", "format": "auto", "content_hash": "abc"},
]


def _write(tmp_path, rows, kind):
    path = tmp_path / f"catalog.{kind}"
    if kind == "csv":
        cols = ["source_id", "uri", "format", "license", "content_hash"]
        lines = [",".join(cols)] + [",".join(r.get(c, "") for c in cols) for r in rows]
        path.write_text("\n".join(lines) + "\n")
    elif kind == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    return str(path)


@pytest.mark.parametrize("kind", ["csv", "jsonl", "parquet"])
def test_catalog_formats_read_alike(tmp_path, kind):
    table = cat.validate_catalog(cat.read_catalog_file(_write(tmp_path, ROWS, kind)))
    assert table.column_names == ["source_id", "uri", "format", "license", "content_hash"]
    assert table["format"].to_pylist() == ["coco", "voc", "auto"]  # case and spaces folded
    assert table["source_id"].to_pylist() == ["a", "b", "c"]


def test_duplicate_ids_are_named(tmp_path):
    rows = [*ROWS, {"source_id": "a", "uri": "/x", "format": "yolo"}]
    with pytest.raises(cat.CatalogError, match=r"unique.*\['a'\]"):
        cat.validate_catalog(cat.read_catalog_file(_write(tmp_path, rows, "jsonl")))


def test_unknown_format_lists_rows_and_known_formats(tmp_path):
    rows = [*ROWS, {"source_id": "d", "uri": "/x", "format": "pascal"}]
    with pytest.raises(cat.CatalogError, match=r"unknown format \['pascal'\] in row\(s\) 4"):
        cat.validate_catalog(cat.read_catalog_file(_write(tmp_path, rows, "jsonl")))


def test_missing_column_and_missing_file(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"source_id": "a", "format": "coco"}\n')
    with pytest.raises(cat.CatalogError, match=r"lacks column\(s\) \['uri'\]"):
        cat.validate_catalog(cat.read_catalog_file(str(path)))
    with pytest.raises(cat.CatalogError, match="does not exist"):
        cat.read_catalog_file(str(tmp_path / "nope.csv"))
    with pytest.raises(cat.CatalogError, match="unknown extension"):
        cat.read_catalog_file(str(tmp_path / "c.xlsx"))


def test_shards_are_stable_and_digests_track_content(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.json").write_text("{}")
    rows = [{"source_id": f"s{i}", "uri": str(src), "format": "coco"} for i in range(50)]
    table = cat.validate_catalog(pa.Table.from_pylist(rows))
    table = cat.with_shards(cat.with_fingerprints(table), 8)
    again = cat.with_shards(
        cat.with_fingerprints(cat.validate_catalog(pa.Table.from_pylist(rows))), 8
    )
    assert table["shard"].to_pylist() == again["shard"].to_pylist()
    assert len(set(table["shard"].to_pylist())) > 4  # hashing spreads sources
    before = cat.shard_digests(table)
    (src / "a.json").write_text('{"images": []}')  # content changes -> fingerprint changes
    after = cat.shard_digests(
        cat.with_shards(cat.with_fingerprints(cat.validate_catalog(pa.Table.from_pylist(rows))), 8)
    )
    assert set(before) == set(after) and all(before[k] != after[k] for k in before)


def _fingerprint(src, content_hash: str | None = None) -> str:
    row = {"source_id": "s", "uri": str(src), "format": "voc", "content_hash": content_hash}
    table = cat.validate_catalog(pa.Table.from_pylist([row]))
    return cat.with_fingerprints(table)["fingerprint"][0].as_py()


def test_a_content_hash_is_a_hint_never_a_reason_not_to_look(tmp_path):
    """The catalog says nothing changed (same content_hash), but a file was edited behind its
    back: same size, one second newer. The fingerprint still moves; so does a new hint."""
    src = tmp_path / "src" / "Annotations"
    src.mkdir(parents=True)
    xml = src / "0001.xml"
    xml.write_text("<annotation><object><name>dog</name></object></annotation>")
    os.utime(xml, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    first = _fingerprint(tmp_path / "src", "sha256:abc")
    assert first == _fingerprint(tmp_path / "src", "sha256:abc")  # nothing changed: stable
    xml.write_text("<annotation><object><name>cat</name></object></annotation>")  # same size
    os.utime(xml, ns=(1_700_000_001_000_000_000, 1_700_000_001_000_000_000))
    edited = _fingerprint(tmp_path / "src", "sha256:abc")
    assert edited != first
    assert _fingerprint(tmp_path / "src", "sha256:def") != edited  # a new hint counts too
    (src / "0002.xml").write_text("<annotation/>")  # a new file
    assert _fingerprint(tmp_path / "src", "sha256:abc") != edited
    assert _fingerprint(tmp_path / "missing") == "missing"
    assert _fingerprint(tmp_path / "src").startswith("listing:")  # no hint: the listing alone
