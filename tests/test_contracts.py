"""The contracts package: keys pinned to independent answers, paths, schema versions."""

from __future__ import annotations

import hashlib

import pyarrow as pa

from vprim.assets.contracts import hashing as H
from vprim.assets.contracts import layout
from vprim.assets.contracts import schemas as S

MASK = (1 << 64) - 1


def _splitmix64(z: int) -> int:
    """splitmix64's finaliser in plain Python integers (Steele, Lea, Flood 2014)."""
    z = (z + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def test_md5_64_is_the_first_eight_digest_bytes_little_endian():
    # RFC 1321 test suite: md5("abc") = 900150983cd24fb0 d6963f7d28e17f72
    assert H.md5_64("abc") == 0xB04FD23C98500190
    assert H.md5_64("a", "b") == H.md5_64("a\x1fb")  # parts joined by the unit separator
    assert H.stable_hash64("abc") == H.md5_64("abc")


def test_md5_64_array_is_md5_64_of_each_text_in_order():
    texts = [f"0\x1fsrc é\x1fimg {i}" for i in range(5000)] + [None, ""]
    expected = [H.md5_64("" if t is None else t) for t in texts]
    assert H.md5_64_array(texts).tolist() == expected
    assert H.md5_64_array(pa.chunked_array([texts[:10], texts[10:20]])).tolist() == expected[:20]


def test_instance_ids_are_pinned():
    """``splitmix64(md5_64(source, image) ^ box_index * φ64)``, computed here without numpy."""
    image_key = int.from_bytes(hashlib.md5(b"src\x1fimg 7").digest()[:8], "little")
    expected = [_splitmix64(image_key ^ ((k * 0x9E3779B97F4A7C15) & MASK)) for k in range(3)]
    got = H.instance_ids("src", pa.array(["img 7"] * 3), [0, 1, 2])
    assert got.tolist() == expected
    assert len(set(expected)) == 3
    assert H.instance_ids("src", ["img 7"], [0]).tolist() == expected[:1]  # a list, the same


def test_shard_of_is_md5_64_modulo_the_shard_count():
    assert H.shard_of("abc", 64) == 0xB04FD23C98500190 % 64 == 16
    assert {H.shard_of(f"s{i}", 8) for i in range(200)} == set(range(8))  # every shard is used


def test_layout_names_each_path_once():
    assert (
        layout.shard_file(layout.RAW_DIR, layout.shard_key(7)) == "raw_instances/shard=007.parquet"
    )
    assert layout.rejects_dir("parse") == "rejects/stage=parse"
    assert layout.lake_samples_glob("v1") == "lake/v=v1/samples/label_bucket=*/part-*.parquet"
    assert layout.camp_train_path("maze", 3) == "camps/maze/train/part-00003.parquet"
    paths = [v for k, v in vars(layout).items() if k.isupper() and isinstance(v, str)]
    assert len(paths) == len(set(paths)), "two names for one path"


def test_versioned_schemas_say_which_table_they_are():
    for schema in (S.RAW_INSTANCES_SCHEMA, S.REJECTS_SCHEMA, S.CLEAN_SCHEMA, S.LAKE_SCHEMA):
        meta = schema.metadata
        assert meta[b"vprim.schema"] and meta[b"vprim.schema_version"]
    assert S.RAW_INSTANCES_SCHEMA.metadata[b"vprim.schema_version"] == b"2.0"
    assert S.LAKE_SCHEMA.metadata[b"vprim.schema_version"] == b"2.0"
