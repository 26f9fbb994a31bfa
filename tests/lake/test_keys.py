"""The lake's SQL macros and keys: ``normalise_uri`` (which images are the same),
``md5_permille`` (the split) and ``stable_hash64`` (sample ids, the cap order, the choice among
duplicates, the label bucket), each against an independent Python computation."""

from __future__ import annotations

import hashlib
import re

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from tests.lake.roots import box, build, images, mixed_root, rows_of, write_root
from vprim.assets.contracts import hashing as H
from vprim.assets.contracts import layout
from vprim.assets.lake import publish as P
from vprim.assets.lake.balance import BalanceConfig
from vprim.assets.sql import register_macros


def md5_key(*parts: object) -> int:
    """The contract's 64-bit key, written out here from its definition (docs/CONTRACTS.md): the
    first 8 bytes, little-endian, of the md5 of the parts' text joined by the unit separator."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.md5(text.encode("utf-8")).digest()[:8], "little")


def normalise(con: duckdb.DuckDBPyConnection, uri: str) -> str:
    """The normalise_uri macro applied to one URI."""
    return con.execute("SELECT normalise_uri(?)", [uri]).fetchone()[0]


# --- normalise_uri and md5_permille ------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("synthetic://a/img1?w=100&h=80", "synthetic://a/img1?h=80&w=100"),
        ("synthetic://a//img1?h=80&w=100", "synthetic://a/img1?h=80&w=100"),
        ("HTTP://example.com/x/./y/././z.jpg", "http://example.com/x/y/z.jpg"),
        ("Https://example.com/a.jpg#frag?x=1", "https://example.com/a.jpg"),
        ("s3://bucket//a///b.jpg?b=2&a=1#top", "s3://bucket/a/b.jpg?a=1&b=2"),
        ("file:///data/img.png", "file:///data/img.png"),
        ("relative//dir/./img.png", "relative/dir/img.png"),
        ("synthetic://a/img1", "synthetic://a/img1"),
    ],
)
def test_normalise_uri_macro(uri, expected):
    con = duckdb.connect()
    register_macros(con)
    assert normalise(con, uri) == expected
    assert con.execute("SELECT normalise_uri_general(?)", [uri]).fetchone()[0] == expected


def _adversarial_uris(n: int, seed: int = 0) -> list[str]:
    """Addresses built from the parts the normalisation rule cares about (scheme case, "//",
    "/./", '#', '?', '&', empty parameters, non-ASCII), and common addresses with one or two
    such parts spliced in: many on each side of the fast path's test."""
    rng = np.random.default_rng(seed)
    pick = lambda options: options[rng.integers(len(options))]  # noqa: E731
    schemes = ["http", "HTTP", "hTtp", "s3", "a+b", "x.y", "", "é", "file", "1a"]
    seps = ["://", ":/", ":", ":///", "://./", "//", "", ":////"]
    hosts = ["", "host", ".", "..", ".h", "h.", "H", "a&b", "é", "h:1", "h?"]
    segments = ["", ".", "..", ".x", "x.", "img.png", "a&b", "A", "%2F", "é", "./", "x//y"]
    queries = ["", "?", "?a", "?a&b", "?b&a", "?&", "?a&", "?&a", "?a&b&c", "?a&&b",
               "?b=2&a=1", "?a=1&a=1", "?a?b", "?é&e", "?E&e", "? &a", "?a=&b", "??",
               "?w=640&h=480", "?h=480&w=640", "?a#&b"]  # fmt: skip
    fragments = ["", "", "", "#", "#f", "#f?x"]
    common = ["synthetic://src-000001/img_000001?w=640&h=480", "s3://bucket/a/b.jpg?b=2&a=1",
              "http://h/x.png", "file:///data/img.png", "http://h/x?", "http://h/x?z"]  # fmt: skip
    splice = ["/", "//", ".", "./", "/./", "?", "&", "#", ":", "A", "é", "", "..", "=", "&&"]
    uris = set()
    for _ in range(n):
        segs = "".join("/" + pick(segments) for _ in range(rng.integers(5)))
        uris.add(pick(schemes) + pick(seps) + pick(hosts) + segs + pick(queries) + pick(fragments))
        u = pick(common)
        for _ in range(rng.integers(3)):
            i = int(rng.integers(len(u) + 1))
            u = u[:i] + pick(splice) + u[i + int(rng.integers(2)) :]
        uris.add(u)
    return sorted(uris)


def test_normalise_uri_fast_path_agrees_with_the_rule():
    """normalise_uri (fast path for common addresses) = normalise_uri_general (the rule)."""
    con = duckdb.connect()
    register_macros(con)
    con.register("uris", pa.table({"u": pa.array([*_adversarial_uris(20_000), None])}))
    fast_path = (
        "regexp_full_match(u, '[a-z][a-z0-9+.-]*://([^/#?&.][^/#?&]*)?"
        "(/([^/#?&.][^/#?&]*|\\.[^/#?&]+))*(\\?([^#?&]*|[^#?&]+&[^#?&]+))?')"
    )
    total, fast, differ = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {fast_path}), "
        "count(*) FILTER (WHERE normalise_uri(u) IS DISTINCT FROM normalise_uri_general(u)) "
        "FROM uris"
    ).fetchone()
    examples = con.execute(
        "SELECT u, normalise_uri(u), normalise_uri_general(u) FROM uris "
        "WHERE normalise_uri(u) IS DISTINCT FROM normalise_uri_general(u) LIMIT 5"
    ).fetchall()
    assert differ == 0, examples
    assert fast > 1_000 and total - fast > 10_000  # both sides of the fast path are exercised


def test_md5_permille_is_md5_number_mod_1000():
    con = duckdb.connect()
    register_macros(con)
    differ = con.execute(
        "SELECT count(*) FILTER (WHERE md5_permille(s) IS DISTINCT FROM md5_number(s) % 1000) "
        "FROM (SELECT 'synthetic://src/' || i AS s FROM range(200000) t(i) "
        "UNION ALL SELECT '' UNION ALL SELECT 'é' UNION ALL SELECT NULL)"
    ).fetchone()[0]
    assert differ == 0


# --- stable_hash64 -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0x04B2008FD98C1DD4),  # md5("") = d41d8cd98f00b204...: bytes d4 1d 8c d9 8f 00 b2 04
        ("abc", 0xB04FD23C98500190),  # md5("abc") = 900150983cd24fb0...
        ("src_a\x1fimg00\x1fdog", 0x7FAF8F8E617A4BCE),  # a sample_id's key
    ],
)
def test_stable_hash64_known_answers(text, expected):
    """Pinned values: the same on every DuckDB release (DuckDB's hash() carries no such promise)."""
    con = duckdb.connect()
    register_macros(con)
    assert con.execute("SELECT stable_hash64(?)", [text]).fetchone()[0] == expected
    assert md5_key(text) == expected == H.md5_64(text)


def test_stable_hash64_macro_equals_md5_64():
    """On 20,000 texts (ASCII, non-ASCII, empty, keys of several parts joined by chr(31)), the
    macro is the Python md5_64 and the definition written out here; NULL stays NULL."""
    rng = np.random.default_rng(0)
    alphabet = [*"abcXYZ019 _-/:?&=.", "é", "漢", "\x1f", "🙂"]
    texts = ["".join(rng.choice(alphabet, size=rng.integers(0, 40))) for _ in range(20_000)]
    con = duckdb.connect()
    register_macros(con)
    con.register("t", pa.table({"i": pa.array(range(len(texts))), "s": pa.array(texts)}))
    got = dict(con.execute("SELECT i, stable_hash64(s) FROM t").fetchall())
    assert all(got[i] == md5_key(s) == H.md5_64(s) for i, s in enumerate(texts))
    joined = con.execute(
        "SELECT stable_hash64(concat_ws(chr(31), 7, 'src', 'img é')), stable_hash64(NULL)"
    ).fetchone()
    assert joined == (H.md5_64(7, "src", "img é"), None)
    assert joined[0] == md5_key(7, "src", "img é")


# --- the keys of the lake ----------------------------------------------------------------------


def test_sample_id_is_the_md5_key_of_source_image_and_label(tmp_path):
    store = mixed_root(tmp_path)
    built = build(store, BalanceConfig(cap=5, buckets=4))
    rows = rows_of(store, built.version)
    assert len(rows) == 14
    for r in rows:
        assert re.fullmatch(r"[0-9a-f]{16}", r["sample_id"])
        assert r["sample_id"] == f"{md5_key(r['source_id'], r['image_id'], r['label']):016x}"
    by_key = {(r["source_id"], r["image_id"], r["label"]): r["sample_id"] for r in rows}
    assert by_key[("src_a", "img00", "dog")] == "7faf8f8e617a4bce"  # pinned
    # the seed decides which rows are kept, never what a kept row is called
    other = rows_of(store, build(store, BalanceConfig(cap=5, seed=9, buckets=4), now=2e9).version)
    for r in other:
        key = (r["source_id"], r["image_id"], r["label"])
        assert by_key.get(key, r["sample_id"]) == r["sample_id"]


@pytest.mark.parametrize("buckets", [3, 7])
def test_label_bucket_is_the_md5_key_of_the_label_mod_buckets(tmp_path, buckets):
    labels = ["dog", "cat", "bird", "car", "tree", "cup", "boat", "lamp", "traffic light"]
    boxes = [b for label in labels for b in images("src_a", label, 2, prefix=label)]
    store = write_root(tmp_path, boxes, {"src_a": "keep"})
    built = build(store, BalanceConfig(buckets=buckets))
    expected = {label: md5_key(label) % buckets for label in labels}
    assert len(set(expected.values())) >= 2  # the labels do spread over buckets
    seen = {}
    for f in built.manifest["files"]:
        bucket = int(re.fullmatch(r"samples/label_bucket=(\d{3})/part-0\.parquet", f["path"])[1])
        table = store.read_parquet(layout.lake_version_dir(built.version), f["path"])
        for label in table["label"].to_pylist():
            seen[label] = bucket
    assert seen == expected


@pytest.mark.parametrize("cap", [1, 5, 19, 20])
def test_cap_keeps_the_first_images_in_the_seeded_md5_order(tmp_path, cap):
    """20 images of one (source, label): the cap keeps those with the smallest
    md5 key of (seed, source, image); at cap 19 exactly the largest is left out, at 20 none."""
    store = write_root(tmp_path, images("src_a", "dog", 20), {"src_a": "keep"})
    names = [f"img{i:02d}" for i in range(20)]
    for seed in (0, 1, 12345):
        built = build(store, BalanceConfig(cap=cap, seed=seed, buckets=2), now=1e9 + seed)
        kept = {r["image_id"] for r in rows_of(store, built.version)}
        assert kept == set(sorted(names, key=lambda n: md5_key(seed, "src_a", n))[:cap])
        assert built.manifest["counts"]["balance"]["samples_capped"] == 20 - cap


def test_a_duplicate_is_kept_from_the_first_source_in_the_seeded_md5_order(tmp_path):
    """One image (same normalised URI) in four sources: the lake keeps the source with the
    smallest md5 key of (seed, source)."""
    sources = ["src_a", "src_b", "src_c", "src_d"]
    uri = "synthetic://shared/img?w=100&h=100"
    boxes = [box(s, f"{s}-img", "dog", uri=uri) for s in sources]
    store = write_root(tmp_path, boxes, {s: "keep" for s in sources})
    kept_from = set()
    for seed in range(8):
        built = build(store, BalanceConfig(seed=seed, buckets=2), now=1e9 + seed)
        (row,) = rows_of(store, built.version)
        assert row["source_id"] == min(sources, key=lambda s: md5_key(seed, s))
        kept_from.add(row["source_id"])
    assert len(kept_from) >= 2  # the seed does choose


def test_the_manifest_records_the_config_the_keys_depend_on(tmp_path):
    store = mixed_root(tmp_path)
    built = build(store, BalanceConfig(cap=5, seed=3, buckets=4))
    manifest = P.read_manifest(store, built.version)
    assert manifest["config"] == {"cap": 5, "seed": 3, "buckets": 4, "holdout_permille": 20}


def test_near_duplicate_content_groups_keep_one_sample_and_share_a_split(tmp_path):
    """Three files under unrelated URIs, two of them one picture (image_duplicates put them
    in a content group): per label the lake keeps one of the pair, from the first source in
    the seeded order, and the third image (no group) is untouched. The group's split is the
    md5 permille of its key, so copies never straddle train and holdout; the manifest counts
    distinct files (the kept ones)."""
    copy_a = "file:///data/a/IMG_0001.jpg"
    copy_b = "file:///data/b/photo-re-encoded.jpg"
    other = "file:///data/c/different.jpg"
    boxes = [
        box("src_a", "a1", "dog", uri=copy_a),
        box("src_b", "b1", "dog", uri=copy_b),
        box("src_c", "c1", "dog", uri=other),
        box("src_b", "b1", "cat", uri=copy_b),  # only src_b has a cat: kept whatever the order
    ]
    store = write_root(tmp_path, boxes, {s: "keep" for s in ("src_a", "src_b", "src_c")})
    group = copy_a  # the key image_duplicates writes: the group's first normalised URI
    groups = pa.table({"image_uri": [copy_a, copy_b], "group_key": [group, group]})
    store.write_parquet(groups, layout.IMAGE_GROUPS_PATH)
    for seed in range(4):
        built = build(store, BalanceConfig(seed=seed, buckets=1), now=1e9 + seed)
        rows = rows_of(store, built.version)
        dogs = {r["image_uri"] for r in rows if r["label"] == "dog"}
        first = min(("src_a", "src_b"), key=lambda s: md5_key(seed, s))
        assert dogs == {other, copy_a if first == "src_a" else copy_b}
        assert [r["image_uri"] for r in rows if r["label"] == "cat"] == [copy_b]
        counts = built.manifest["counts"]
        assert counts["balance"]["samples_duplicate"] == 1
        assert counts["images"] == len({r["image_uri"] for r in rows})
    con = duckdb.connect()
    register_macros(con)
    permille = con.execute("SELECT md5_permille(?)", [group]).fetchone()[0]
    expected = "holdout" if permille < 20 else "train"
    assert {r["split"] for r in rows if r["image_uri"] in (copy_a, copy_b)} == {expected}
