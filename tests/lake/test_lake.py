"""The lake stage on tiny hand-made storage roots (tests/lake/roots.py): balancing (cap,
boxes, dedup, dropped sources, split), the row contract, versions (publish, retention, a build
killed mid-write), the DuckDB views and the balance statistics. The blocking checks are in
test_checks.py, the macros and keys in test_keys.py."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.lake.roots import (
    T0,
    box,
    build,
    check_outcomes,
    images,
    mixed_root,
    read_lake,
    rows_of,
    write_root,
)
from vprim.assets.contracts import layout
from vprim.assets.contracts import schemas as S
from vprim.assets.lake import publish as P
from vprim.assets.lake import stats
from vprim.assets.lake.balance import BalanceConfig
from vprim.assets.lake.build import lake_files_sql
from vprim.assets.settings import PROJECT_ROOT
from vprim.assets.storage import Storage
from vprim.resources.duckdb import DuckDBResource

# --- 1. cap ---------------------------------------------------------------------------------


def test_cap_limits_images_per_source_and_label(tmp_path):
    boxes = images("src_a", "dog", 20) + images("src_a", "cat", 3) + images("src_b", "dog", 4)
    store = write_root(tmp_path, boxes, {"src_a": "keep", "src_b": "keep"})
    built = build(store, BalanceConfig(cap=5, buckets=2))
    counts = Counter((r["source_id"], r["label"]) for r in rows_of(store, built.version))
    assert counts == {("src_a", "dog"): 5, ("src_a", "cat"): 3, ("src_b", "dog"): 4}
    balance = built.manifest["counts"]["balance"]
    assert balance["samples_before"] == 27
    assert balance["samples_capped"] == 15
    assert balance["instances_capped"] == 15
    assert balance["samples_duplicate"] == 0
    assert built.manifest["counts"]["rows"] == 12
    assert built.manifest["counts"]["instances"] == 12


def test_cap_order_is_seeded_and_reproducible(tmp_path):
    store = write_root(tmp_path, images("src_a", "dog", 20), {"src_a": "keep"})
    first = build(store, BalanceConfig(cap=5, seed=3, buckets=2), now=T0)
    again = build(store, BalanceConfig(cap=5, seed=3, buckets=2), now=T0 + 60)
    assert first.version != again.version
    a, b = read_lake(store, first.version), read_lake(store, again.version)
    assert set(a["sample_id"].to_pylist()) == set(b["sample_id"].to_pylist())
    assert a.equals(b)

    chosen = set()
    for seed in range(6):
        built = build(store, BalanceConfig(cap=5, seed=seed, buckets=2), now=T0 + 120 + seed)
        picked = frozenset(r["image_id"] for r in rows_of(store, built.version))
        assert len(picked) == 5
        chosen.add(picked)
    assert len(chosen) >= 2


def test_balance_config_rejects_bad_values():
    for bad in ({"cap": 0}, {"buckets": 0}, {"buckets": 1025}, {"holdout_permille": 1001}):
        with pytest.raises(ValueError):
            BalanceConfig(**bad)


# --- 2. an image brings all its boxes --------------------------------------------------------


def test_image_brings_all_its_boxes_of_the_label(tmp_path):
    w, h = 1000, 500
    boxes = [
        box("src_a", "multi", "dog", (300, 50, 400, 150), w=w, h=h),
        box("src_a", "multi", "cat", (0, 0, w, h), w=w, h=h),
        box("src_a", "multi", "dog", (10, 0, 110, 500), w=w, h=h),
        box("src_a", "multi", "dog", (600, 100, 1000, 400), w=w, h=h),
    ]
    store = write_root(tmp_path, boxes, {"src_a": "keep"})
    built = build(store, BalanceConfig(cap=1, buckets=2))
    rows = {r["label"]: r for r in rows_of(store, built.version)}
    assert set(rows) == {"dog", "cat"}

    dog = rows["dog"]
    assert dog["n_boxes"] == 3
    assert dog["boxes"] == [[10, 0, 110, 500], [300, 50, 400, 150], [600, 100, 1000, 400]]
    # round(v / side * 999): 10 -> 9.99, 110 -> 109.89, 300 -> 299.7, 50 -> 99.9, 150 -> 299.7,
    # 600 -> 599.4, 100 -> 199.8, 400/500 -> 799.2
    assert dog["boxes_999"] == [[10, 0, 110, 999], [300, 100, 400, 300], [599, 200, 999, 799]]
    assert dog["target"] == (
        "<|ref|>dog<|/ref|><|box|>[[10,0,110,999],[300,100,400,300],[599,200,999,799]]<|/box|>"
    )
    cat = rows["cat"]
    assert cat["n_boxes"] == 1
    assert cat["boxes_999"] == [[0, 0, 999, 999]]
    assert cat["target"] == "<|ref|>cat<|/ref|><|box|>[[0,0,999,999]]<|/box|>"

    for r in rows.values():
        assert (r["image_width"], r["image_height"]) == (w, h)
        assert re.fullmatch(r"[0-9a-f]{16}", r["sample_id"])
    assert rows["dog"]["sample_id"] != rows["cat"]["sample_id"]
    assert built.manifest["counts"]["instances"] == 4
    assert built.manifest["counts"]["images"] == 1


def test_boxes_999_are_clamped(tmp_path):
    store = write_root(
        tmp_path, [box("src_a", "x", "dog", (-3, -1, 1003, 200), w=1000, h=500)], {"src_a": "keep"}
    )
    built = build(store)
    (row,) = rows_of(store, built.version)
    # -2.997 -> -3 -> 0, -1.998 -> -2 -> 0, 1001.997 -> 1002 -> 999, 399.6 -> 400
    assert row["boxes_999"] == [[0, 0, 999, 400]]


# --- 3. cross-source de-duplication ----------------------------------------------------------


def test_same_image_from_two_sources_is_kept_once_per_label(tmp_path):
    boxes = [
        box("src_a", "img1", "dog", (5, 5, 50, 50), h=80, uri="synthetic://a/img1?w=100&h=80"),
        box("src_b", "b-77", "dog", (5, 5, 50, 50), h=80, uri="synthetic://a//img1?h=80&w=100"),
        box("src_b", "b-77", "cat", (60, 5, 90, 50), h=80, uri="synthetic://a//img1?h=80&w=100"),
        box("src_b", "b-78", "dog"),
    ]
    store = write_root(tmp_path, boxes, {"src_a": "keep", "src_b": "keep"})
    kept_from = set()
    for seed in range(6):
        built = build(store, BalanceConfig(seed=seed, buckets=2), now=T0 + seed)
        rows = rows_of(store, built.version)
        on_img1 = [r for r in rows if r["image_id"] in ("img1", "b-77")]
        assert Counter(r["label"] for r in on_img1) == {"dog": 1, "cat": 1}
        assert [r["source_id"] for r in on_img1 if r["label"] == "cat"] == ["src_b"]
        kept_from |= {r["source_id"] for r in on_img1 if r["label"] == "dog"}
        assert any(r["image_id"] == "b-78" for r in rows)
        assert len(rows) == 3
        counts = built.manifest["counts"]
        assert counts["balance"]["samples_duplicate"] == 1
        assert counts["balance"]["instances_duplicate"] == 1
        assert counts["images"] == 2
    assert kept_from == {"src_a", "src_b"}  # the seed chooses which source keeps it


# --- 4. dropped sources ---------------------------------------------------------------------


def test_dropped_sources_contribute_nothing(tmp_path):
    boxes = (
        images("src_a", "dog", 3)
        + images("src_c", "dog", 4)
        + images("src_c", "zebra", 2)
        + [box("src_c", "dup", "dog", uri="synthetic://src_a/img00?w=100&h=100")]
    )
    store = write_root(tmp_path, boxes, {"src_a": "keep", "src_c": "drop"})
    built = build(store)
    rows = rows_of(store, built.version)
    assert {r["source_id"] for r in rows} == {"src_a"}
    assert {r["label"] for r in rows} == {"dog"}
    assert len(rows) == 3
    counts = built.manifest["counts"]
    assert counts["sources"] == 1
    assert counts["balance"]["samples_before"] == 3
    assert counts["balance"]["samples_duplicate"] == 0


def test_source_missing_from_selection_contributes_nothing(tmp_path):
    boxes = images("src_a", "dog", 2) + images("src_x", "dog", 2)
    store = write_root(tmp_path, boxes, {"src_a": "keep"})
    built = build(store)
    assert {r["source_id"] for r in rows_of(store, built.version)} == {"src_a"}


# --- 5. split --------------------------------------------------------------------------------


def _split_root(tmp_path: Path) -> Storage:
    """30 images each with a dog and a cat box, plus a bird on src_a's img00 seen by src_b."""
    boxes = images("src_a", "dog", 30) + images("src_a", "cat", 30)
    boxes.append(box("src_b", "other", "bird", uri="synthetic://src_a/img00?h=100&w=100"))
    return write_root(tmp_path, boxes, {"src_a": "keep", "src_b": "keep"})


def test_split_all_train_or_all_holdout(tmp_path):
    store = _split_root(tmp_path)
    train = build(store, BalanceConfig(holdout_permille=0, buckets=2), now=T0)
    assert {r["split"] for r in rows_of(store, train.version)} == {"train"}
    assert train.manifest["counts"]["holdout_rows"] == 0
    assert train.manifest["counts"]["train_rows"] == 61
    holdout = build(store, BalanceConfig(holdout_permille=1000, buckets=2), now=T0 + 1)
    assert {r["split"] for r in rows_of(store, holdout.version)} == {"holdout"}
    assert holdout.manifest["counts"]["train_rows"] == 0
    assert holdout.manifest["counts"]["holdout_instances"] == 61


@pytest.mark.parametrize("permille", [20, 500])
def test_split_is_a_function_of_the_image(tmp_path, permille):
    store = _split_root(tmp_path)
    per_seed = []
    for seed in (0, 1):
        config = BalanceConfig(holdout_permille=permille, seed=seed, buckets=2)
        built = build(store, config, now=T0 + seed)
        splits: dict[str, set[str]] = {}
        for r in rows_of(store, built.version):
            uri = r["image_uri"].split("?")[0]
            splits.setdefault(uri, set()).add(r["split"])
        assert all(len(s) == 1 for s in splits.values()), splits
        assert len(splits["synthetic://src_a/img00"]) == 1  # dog, cat (src_a), bird (src_b)
        per_seed.append(splits)
        counts = built.manifest["counts"]
        assert counts["train_rows"] + counts["holdout_rows"] == counts["rows"] == 61
    assert per_seed[0] == per_seed[1]  # the split is not seeded
    if permille == 500:
        assert {s for v in per_seed[0].values() for s in v} == {"train", "holdout"}


# --- 6. schema -------------------------------------------------------------------------------


def test_samples_files_follow_the_lake_schema(tmp_path):
    store = mixed_root(tmp_path)
    built = build(store, BalanceConfig(cap=5, buckets=4))
    files = store.glob(f"{layout.lake_samples_dir(built.version)}/*/*.parquet")
    assert len(files) == len(built.manifest["files"]) >= 1
    for f in files:
        assert pq.read_schema(f).remove_metadata().equals(S.LAKE_SCHEMA.remove_metadata())
    total = built.manifest["counts"]["rows"]
    assert sum(pl.read_parquet(f).height for f in files) == total
    assert pl.read_parquet(files).columns == S.LAKE_SCHEMA.names
    con = duckdb.connect()
    lake_sql = lake_files_sql(store, built.version)
    assert con.execute(f"SELECT count(*) FROM {lake_sql}").fetchone()[0] == total
    assert sum(f["rows"] for f in built.manifest["files"]) == total
    manifest = P.read_manifest(store, built.version)
    assert manifest["schema"] == {f.name: str(f.type) for f in S.LAKE_SCHEMA}
    assert manifest["config"] == {"cap": 5, "seed": 0, "buckets": 4, "holdout_permille": 20}


# --- 8. publish and retention ----------------------------------------------------------------


def test_publish_and_retention(tmp_path):
    store = write_root(tmp_path, images("src_a", "dog", 3), {"src_a": "keep"})
    # four distinct versions: another cap each time (the same inputs and config make copies,
    # of which retention keeps only the newest: test_retention_counts_distinct_versions)
    configs = [BalanceConfig(cap=10 + i, buckets=2) for i in range(4)]
    v = [build(store, configs[i], now=T0 + 3600 * i).version for i in range(4)]
    assert v == sorted(v) and len(set(v)) == 4
    assert v[0].startswith("20231114T221320-")
    assert P.versions(store) == v
    assert store.read_text(layout.LAKE_STAGED) == v[3]
    assert P.current_version(store) is None

    assert P.publish(store, v[0]) is None
    assert P.publish(store, v[1]) == v[0]
    assert (tmp_path / "lake" / "CURRENT").read_text() == v[1] + "\n"

    old_incomplete = "20000101T000000-deadbeef"
    new_incomplete = "29990101T000000-deadbeef"
    for name in (old_incomplete, new_incomplete):
        (tmp_path / "lake" / f"v={name}" / "samples").mkdir(parents=True)
    with pytest.raises(P.LakeError):
        P.publish(store, new_incomplete)
    with pytest.raises(P.LakeError):
        P.publish(store, "19990101T000000-00000000")
    with pytest.raises(P.LakeError):
        P.read_manifest(store, old_incomplete)
    assert P.current_version(store) == v[1]

    with pytest.raises(ValueError):
        P.apply_retention(store, keep=0)
    removed = P.apply_retention(store, keep=2)
    assert removed == [old_incomplete, v[0], new_incomplete]
    assert P.versions(store) == [
        v[1],
        v[2],
        v[3],
    ]  # CURRENT v1, newest two v2 v3 (STAGED v3)
    assert P.apply_retention(store, keep=1) == [v[2]]
    assert P.versions(store) == [v[1], v[3]]
    assert read_lake(store, v[1]).num_rows == 3


def test_new_version_names_sort_by_time():
    assert P.new_version("abcdef0123", 0) == "19700101T000000-abcdef01"
    assert P.new_version("ff" * 32, T0) < P.new_version("00" * 32, T0 + 1)


def test_a_second_build_in_the_same_second_never_writes_into_the_first(tmp_path):
    """Same inputs, same config, same second, the first not yet published (a published one
    would make the second build find it unchanged): the names would be equal; the second
    build is named a second later and the first (staged) version keeps its files."""
    store = write_root(tmp_path, images("src_a", "dog", 3), {"src_a": "keep"})
    first = build(store, now=T0)
    before = read_lake(store, first.version)
    again = build(store, now=T0)
    assert first.version.split("-")[1] == again.version.split("-")[1]  # same inputs digest
    assert first.version == "20231114T221320-" + first.version.split("-")[1]
    assert again.version == "20231114T221321-" + first.version.split("-")[1]
    assert again.manifest["created_at"] == "2023-11-14T22:13:21Z"
    assert P.versions(store) == [first.version, again.version]
    assert P.current_version(store) is None
    assert read_lake(store, first.version).equals(before)


def test_an_unchanged_build_publishes_nothing(tmp_path):
    """The published version was built from these inputs and config: the next build writes
    no version, names the published one, and publishing it again changes nothing."""
    store = write_root(tmp_path, images("src_a", "dog", 3), {"src_a": "keep"})
    first = build(store, now=T0)
    P.publish_staged(store, retention=3)
    current = tmp_path / "lake" / "CURRENT"
    stamp = current.stat().st_mtime_ns
    for night in range(1, 4):  # three quiet nights
        again = build(store, now=T0 + 86400 * night)
        assert again.unchanged and again.version == first.version
        assert again.manifest == P.read_manifest(store, first.version)
        done = P.publish_staged(store, retention=3)
        assert done.unchanged and done.version == first.version and done.removed == []
    assert P.versions(store) == [first.version]
    assert current.stat().st_mtime_ns == stamp  # CURRENT was not rewritten


def test_retention_counts_distinct_versions(tmp_path):
    """Versions from two configs, A then B, then three quiet nights of B: retention 2 still
    keeps A for a rollback. A again makes a new version, and the older copy of A goes."""
    store = write_root(tmp_path, images("src_a", "dog", 3), {"src_a": "keep"})
    a, b = BalanceConfig(cap=10, buckets=2), BalanceConfig(cap=11, buckets=2)
    first_a = build(store, a, now=T0).version
    P.publish_staged(store, retention=2)
    only_b = build(store, b, now=T0 + 3600).version
    P.publish_staged(store, retention=2)
    for night in range(3):
        assert build(store, b, now=T0 + 86400 * (night + 1)).unchanged
        assert P.publish_staged(store, retention=2).removed == []
    assert P.versions(store) == [first_a, only_b]
    second_a = build(store, a, now=T0 + 86400 * 5).version
    assert second_a.split("-")[1] == first_a.split("-")[1] and second_a != first_a
    assert P.versions(store) == [first_a, only_b, second_a]
    assert P.publish_staged(store, retention=2).removed == [first_a]  # an older copy of A
    assert P.versions(store) == [only_b, second_a]


# --- 9. a build killed mid-write -------------------------------------------------------------

KILLED_BUILD = """
import os, signal, sys
import duckdb
from vprim.assets.lake import publish as P
from vprim.assets.lake.balance import BalanceConfig
from vprim.assets.lake.build import build_version
from vprim.assets.storage import Storage

store = Storage(sys.argv[1])
config = BalanceConfig(cap=5, buckets=8)
first = build_version(store, duckdb.connect(), config, scratch=sys.argv[2], now=float(sys.argv[3]))
P.publish(store, first.version)
print("published", first.version, flush=True)

def die(result):
    print("bucket", result.bucket, result.path, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

build_version(  # another cap: a new version (the same config would find nothing changed)
    store, duckdb.connect(), BalanceConfig(cap=4, buckets=8), scratch=sys.argv[2],
    now=float(sys.argv[3]) + 60, on_bucket=die,
)
print("not killed", flush=True)
"""


def test_a_build_killed_mid_write_leaves_the_published_version_intact(tmp_path):
    root, scratch = tmp_path / "root", tmp_path / "scratch"
    scratch.mkdir()
    labels = ["dog", "cat", "bird", "car", "tree", "cup", "boat", "lamp"]
    boxes = [b for i, label in enumerate(labels) for b in images(f"src_{i % 3}", label, 3)]
    store = write_root(root, boxes, {f"src_{i}": "keep" for i in range(3)})
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_BUILD, str(root), str(scratch), str(T0)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    assert "not killed" not in proc.stdout
    first = proc.stdout.split("published ", 1)[1].split()[0]

    assert P.current_version(store) == first
    manifest = P.read_manifest(store, first)
    assert len(manifest["counts"]["buckets"]) >= 2  # more than one bucket to be written
    lake = read_lake(store, first)
    assert lake.num_rows == manifest["counts"]["rows"] == len(labels) * 3
    assert all(o.passed for o in check_outcomes(store, first).values())

    (second,) = [v for v in P.versions(store) if v != first]
    assert second.split("-")[0] == P.new_version(manifest["inputs_digest"], T0 + 60).split("-")[0]
    assert not store.exists(layout.lake_version_dir(second), layout.LAKE_MANIFEST)
    written = store.glob(f"{layout.lake_samples_dir(second)}/*/*.parquet")
    assert len(written) == 1  # only the first bucket made it, and never a half file
    assert pq.read_metadata(written[0]).num_rows > 0
    with pytest.raises(P.LakeError):
        P.publish(store, second)
    assert list(scratch.glob("vprim-lake-stage-*"))  # the killed build's staging copy

    third = build(store, BalanceConfig(cap=3, buckets=8), now=T0 + 120, scratch=str(scratch))
    assert second not in P.versions(store)  # the next build clears the killed one
    assert not list(scratch.glob("vprim-lake-stage-*"))  # and its orphaned staging
    assert P.apply_retention(store, keep=1) == []  # CURRENT (first) and STAGED (third) stay
    assert P.versions(store) == [first, third.version]
    assert read_lake(store, first).equals(lake)


def test_retention_removes_an_incomplete_version(tmp_path):
    store = write_root(tmp_path, images("src_a", "dog", 2), {"src_a": "keep"})
    done = build(store, now=T0).version
    killed = "20231114T230000-0badc0de"
    (tmp_path / "lake" / f"v={killed}" / "samples" / "label_bucket=000").mkdir(parents=True)
    assert P.apply_retention(store, keep=5) == [killed]
    assert P.versions(store) == [done]


# --- 10. views --------------------------------------------------------------------------------


def _views(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}


def test_views_over_the_published_lake(tmp_path):
    store = mixed_root(tmp_path)
    rejects = [
        (1, "src_a", "file-a", "label", "label_gibberish", "qwzx"),
        (2, "src_b", "file-b", "label", "label_gibberish", "qwzx"),
        (3, "src_b", "file-b", "label", "label_gibberish", "zzzq"),
        (None, "src_d", "file-d", "label", "source_label_quality", "most labels rejected"),
    ]
    names = S.REJECTS_SCHEMA.names
    store.write_parquet(
        pa.Table.from_pylist([dict(zip(names, r)) for r in rejects], S.REJECTS_SCHEMA),
        "rejects/stage=label/shard=000.parquet",
    )
    built = build(store, BalanceConfig(cap=5, buckets=4))
    before = DuckDBResource(root=str(tmp_path)).connect()
    assert "lake" not in _views(before)  # nothing published yet
    assert "curation_funnel" in _views(before)
    P.publish(store, built.version)

    con = DuckDBResource(root=str(tmp_path)).connect()
    expected = {
        "lake",
        "lake_label_histogram",
        "lake_source_contribution",
        "lake_funnel",
        "curation_funnel",
        "rejects_by_reason",
    }
    assert expected <= _views(con)
    counts = built.manifest["counts"]
    lake = rows_of(store, built.version)
    assert con.execute("SELECT count(*) FROM lake").fetchone()[0] == counts["rows"] == len(lake)

    hist = con.execute(
        "SELECT label, samples, instances, sources, instance_share FROM lake_label_histogram"
    ).fetchall()
    by_label = {r[0]: r[1:] for r in hist}
    assert {k: v[:2] for k, v in by_label.items()} == {"dog": (5, 5), "cat": (6, 6), "bird": (3, 4)}
    assert sum(v[1] for v in by_label.values()) == counts["instances"] == 15
    assert by_label["cat"][2] == 2 and by_label["bird"][2] == 1
    assert sum(v[3] for v in by_label.values()) == pytest.approx(1.0, abs=1e-5)
    assert by_label["cat"][3] == pytest.approx(round(6 / 15, 6))
    assert [r[0] for r in hist] == ["cat", "dog", "bird"]  # most instances first

    contribution = {
        r[0]: r[1:]
        for r in con.execute(
            "SELECT source_id, samples, instances, clean_boxes, share_of_clean "
            "FROM lake_source_contribution"
        ).fetchall()
    }
    assert set(contribution) == {"src_a", "src_b"}
    clean = {"src_a": 12, "src_b": 6}
    for source, (samples, instances, clean_boxes, share) in contribution.items():
        mine = [r for r in lake if r["source_id"] == source]
        assert (samples, instances) == (len(mine), sum(r["n_boxes"] for r in mine))
        assert clean_boxes == clean[source]
        assert share == pytest.approx(round(instances / clean[source], 4))

    funnel = con.execute("SELECT * FROM lake_funnel").fetchall()
    assert funnel == [
        ("raw", 4, 13 + 7 + 5 + 3),
        ("after step I (labels)", 3, 12 + 6 + 4),
        ("after step II (geometry)", 2, 12 + 6),
        ("in the lake", 2, 15),
    ]
    assert funnel[-1] == ("in the lake", counts["sources"], counts["instances"])

    by_reason = con.execute("SELECT * FROM rejects_by_reason").fetchall()
    assert by_reason == [
        ("label", "label_gibberish", 3, 3, 2),
        ("label", "source_label_quality", 1, 0, 1),
    ]


def test_cli_query_prints_the_lake_count(tmp_path):
    store = mixed_root(tmp_path / "root")
    built = build(store, BalanceConfig(cap=5, buckets=4))
    P.publish(store, built.version)
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path / "dagster_home"))
    env.pop("VPRIM_ROOT", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "vprim.dagster_project.cli",
            "query",
            "SELECT count(*) AS n FROM lake",
            "--root",
            str(tmp_path / "root"),
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    rows = built.manifest["counts"]["rows"]
    assert proc.stdout.split() == ["|", "n", "|", "|---|", "|", str(rows), "|"]


# --- 11. stats --------------------------------------------------------------------------------


def test_gini():
    assert stats.gini(np.array([7, 7, 7, 7])) == pytest.approx(0.0)
    assert stats.gini(np.array([0, 0, 0, 10])) == pytest.approx(0.75)
    assert stats.gini(np.array([10, 0, 0, 0])) == pytest.approx(0.75)  # order does not matter
    assert stats.gini(np.array([])) == 0.0
    assert stats.gini(np.array([0, 0])) == 0.0


def test_distribution():
    # labels sorted: 100, 20, 5, 5 (the zero is dropped); head = top ceil(0.4) -> 1 label
    # (100), tail = bottom 4 // 2 = 2 labels (5, 5): 100 / 5 = 20
    d = stats.distribution(np.array([5, 100, 0, 20, 5]))
    assert d["labels"] == 4
    assert d["instances"] == 130
    assert d["max"] == 100
    assert d["median"] == 12.5
    assert d["head_tail_ratio"] == 20.0
    assert d["top_1pct_share"] == round(100 / 130, 4)
    assert d["gini"] == round(stats.gini(np.array([5, 5, 20, 100])), 4)
    # 1..20: head = top 2 (20, 19) mean 19.5; tail = bottom 10 (1..10) mean 5.5
    assert stats.distribution(np.arange(1, 21))["head_tail_ratio"] == round(19.5 / 5.5, 2)
    assert stats.distribution(np.array([0, 0])) == {"labels": 0, "instances": 0}


def test_plots():
    before = np.array([1000, 300, 50, 10, 3, 1])
    after = np.array([200, 200, 50, 10, 3, 1])
    png = stats.png_plot(before, after)
    assert png.startswith(b"\x89PNG")
    assert stats.png_plot(np.array([]), np.array([])).startswith(b"\x89PNG")
