"""The lake's blocking checks on built versions of tiny roots (tests/lake/roots.py): each one
passes on a good build and fails on the fault it guards against, planted; a failed check keeps
the version from being published."""

from __future__ import annotations

import dagster as dg
import duckdb
import pyarrow as pa
import pytest

from tests.lake.roots import (
    build,
    check_outcomes,
    images,
    label_map_table,
    mixed_root,
    rows_of,
    write_root,
)
from vprim.assets.contracts import layout
from vprim.assets.contracts.schemas import LAKE_SCHEMA
from vprim.assets.lake import checks as C
from vprim.assets.lake import defs as lake_defs
from vprim.assets.lake import publish as P
from vprim.assets.lake import stats
from vprim.assets.lake.balance import BalanceConfig
from vprim.assets.lake.build import lake_files_sql
from vprim.assets.sql import register_macros
from vprim.assets.storage import Storage
from vprim.resources.duckdb import DuckDBResource
from vprim.resources.storage import StorageResource


def test_checks_pass_on_a_good_build(tmp_path):
    store = mixed_root(tmp_path)
    built = build(store, BalanceConfig(cap=5, buckets=4))
    counts = built.manifest["counts"]
    assert (counts["rows"], counts["instances"], counts["sources"], counts["labels"]) == (
        14,
        15,
        2,
        3,
    )
    assert counts["balance"]["samples_capped"] == 2
    assert counts["balance"]["samples_duplicate"] == 1
    outcomes = check_outcomes(store, built.version)
    assert set(outcomes) == set(C.CHECKS)
    failed = {n: o.metadata for n, o in outcomes.items() if not o.passed}
    assert not failed


def test_check_cap_fails_when_cap_is_exceeded(tmp_path):
    store = mixed_root(tmp_path)
    built = build(store, BalanceConfig(cap=5, buckets=4))
    con = duckdb.connect()
    register_macros(con)
    outcome = C.check_cap(con, lake_files_sql(store, built.version), cap=1)
    assert not outcome.passed
    assert outcome.metadata["violations"] == 3  # src_a dog (4 or 5), src_a cat, src_b bird
    found = {(e["source_id"], e["label"], e["images"]) for e in outcome.metadata["examples"]}
    assert {("src_a", "cat", 5), ("src_b", "bird", 3)} <= found


@pytest.mark.parametrize(
    "count",
    ["rows", "instances", "sources", "labels", "images", "train_rows", "holdout_instances"],
)
def test_manifest_count_tampering_is_caught(tmp_path, count):
    store = mixed_root(tmp_path)
    built = build(store, BalanceConfig(cap=5, buckets=4))
    manifest = P.read_manifest(store, built.version)
    manifest["counts"][count] += 1
    store.write_json(manifest, layout.lake_version_dir(built.version), layout.LAKE_MANIFEST)
    outcomes = check_outcomes(store, built.version)
    assert not outcomes["manifest_counts_match"].passed
    assert [n for n, o in outcomes.items() if not o.passed] == ["manifest_counts_match"]
    found = outcomes["manifest_counts_match"].metadata["found"]
    assert found[count] == built.manifest["counts"][count]


def test_manifest_counts_equal_a_recount_of_the_files(tmp_path):
    """The manifest's facts come from the writer's tallies; they equal a plain DuckDB count
    over the written files (the definition they replace)."""
    store = mixed_root(tmp_path)
    built = build(store, BalanceConfig(cap=5, buckets=4, holdout_permille=500))
    con = duckdb.connect()
    register_macros(con)
    lake = lake_files_sql(store, built.version)
    recount = con.execute(
        "SELECT count(DISTINCT source_id), count(DISTINCT label), "
        "count(DISTINCT hash(normalise_uri(image_uri))), "
        "count(*) FILTER (WHERE split = 'train'), count(*) FILTER (WHERE split = 'holdout'), "
        "coalesce(sum(n_boxes) FILTER (WHERE split = 'train'), 0), "
        f"coalesce(sum(n_boxes) FILTER (WHERE split = 'holdout'), 0) FROM {lake}"
    ).fetchone()
    counts = built.manifest["counts"]
    names = ("sources", "labels", "images", "train_rows", "holdout_rows", "train_instances")
    assert tuple(counts[k] for k in (*names, "holdout_instances")) == recount
    assert 0 < counts["holdout_rows"] < counts["rows"]


def test_a_bad_extra_samples_file_is_caught(tmp_path):
    store = mixed_root(tmp_path)
    built = build(store, BalanceConfig(cap=5, buckets=4))
    existing = rows_of(store, built.version)[0]
    bad = dict(existing, sample_id="f" * 16, source_id="src_z")
    bad["boxes"] = [[0.0, 0.0, float(existing["image_width"]) + 50.0, 10.0]]
    bad["boxes_999"] = [[0, 0, 999, 99]]
    bad["n_boxes"] = 1
    store.write_parquet(
        pa.Table.from_pylist([bad], LAKE_SCHEMA),
        layout.lake_samples_dir(built.version),
        "label_bucket=999",
        "part-0.parquet",
    )
    outcomes = check_outcomes(store, built.version)
    failed = {n for n, o in outcomes.items() if not o.passed}
    assert failed == {"boxes_inside_images", "no_duplicate_image_label", "manifest_counts_match"}
    assert outcomes["boxes_inside_images"].metadata["violations"] == 1
    assert outcomes["boxes_inside_images"].metadata["examples"][0]["sample_id"] == "f" * 16
    assert outcomes["no_duplicate_image_label"].metadata["violations"] == 1
    assert outcomes["no_duplicate_image_label"].metadata["examples"][0]["samples"] == 2


def test_a_rejected_or_unknown_label_is_caught(tmp_path):
    store = mixed_root(tmp_path)
    built = build(store, BalanceConfig(cap=5, buckets=4))
    # "cat" is now rejected as a raw label and "bird" is no kept canonical label
    store.write_parquet(label_map_table(["dog"], reject=["cat"]), layout.LABEL_MAP_PATH)
    outcome = check_outcomes(store, built.version)["no_rejected_label"]
    assert not outcome.passed
    assert {e["label"] for e in outcome.metadata["examples"]} == {"cat", "bird"}
    # a kept row without a canonical label must not hide "bird" (NOT IN over a NULL)
    with_null = pa.concat_tables(
        [label_map_table(["dog", "cat"], reject=[]), label_map_table(["doggo"], reject=[])]
    )
    canonical = with_null.schema.get_field_index("canonical_label")
    nulls = pa.array(["dog", "cat", None], pa.string())
    store.write_parquet(
        with_null.set_column(canonical, "canonical_label", nulls), layout.LABEL_MAP_PATH
    )
    outcome = check_outcomes(store, built.version)["no_rejected_label"]
    assert not outcome.passed
    assert {e["label"] for e in outcome.metadata["examples"]} == {"bird"}
    store.fs.rm(store.path(layout.LABEL_MAP_PATH))
    outcome = check_outcomes(store, built.version)["no_rejected_label"]
    assert not outcome.passed
    assert outcome.metadata["error"] == "no label_map"


def test_an_empty_version_fails_only_lake_not_empty_and_says_why(tmp_path):
    """Issue 19: a catalog where no source survives must not crash the lake (it raised
    KeyError 'instances_before'): the build is empty and valid, the row checks hold
    vacuously, and the one blocking check that fails names what curation decided."""
    store = write_root(tmp_path, images("src_c", "dog", 2), {"src_c": "drop"})
    built = build(store)
    assert built.manifest["files"] == []
    assert built.manifest["counts"]["rows"] == 0
    assert built.labels.num_rows == 0 and "instances_before" in built.labels.column_names
    report = stats.balance_report(store, built.version, built.manifest["counts"], built.labels)
    assert report.distribution[0] == {"when": "before balancing", "labels": 0, "instances": 0}
    outcomes = check_outcomes(store, built.version)
    assert set(outcomes) == set(C.CHECKS)
    failed = {name for name, o in outcomes.items() if not o.passed}
    assert failed == {"lake_not_empty"}
    error = outcomes["lake_not_empty"].metadata["error"]
    assert error.startswith("no sample to publish: 0 of 1 sources kept by curation (dropped: ")
    assert error.endswith("the current lake is left as it was")


# --- unique_sample_id ------------------------------------------------------------------------


def plant_duplicate_sample_id(store: Storage, version: str) -> tuple[str, str]:
    """Give the second row of the version's first samples file that has two rows the first
    row's ``sample_id`` (row counts unchanged); returns (that id, the id it replaced)."""
    for f in P.read_manifest(store, version)["files"]:
        rel = f"{layout.lake_version_dir(version)}/{f['path']}"
        table = store.read_parquet(rel)
        if table.num_rows >= 2:
            ids = table["sample_id"].to_pylist()
            replaced, ids[1] = ids[1], ids[0]
            column = table.schema.get_field_index("sample_id")
            store.write_parquet(
                table.set_column(column, LAKE_SCHEMA.field("sample_id"), pa.array(ids)), rel
            )
            return ids[0], replaced
    raise AssertionError("no samples file with two rows")


def test_a_duplicate_sample_id_fails_only_its_check(tmp_path):
    store = mixed_root(tmp_path)
    built = build(store, BalanceConfig(cap=5, buckets=4))
    assert all(o.passed for o in check_outcomes(store, built.version).values())
    twice, replaced = plant_duplicate_sample_id(store, built.version)
    assert twice != replaced
    found = check_outcomes(store, built.version)
    assert [n for n, o in found.items() if not o.passed] == ["unique_sample_id"]
    meta = found["unique_sample_id"].metadata
    assert meta["violations"] == 1
    (example,) = meta["examples"]
    assert example["sample_id"] == twice and example["samples"] == 2
    rows = {r["sample_id"]: r for r in rows_of(store, built.version)}
    assert replaced not in rows
    assert f"{rows[twice]['source_id']} | {rows[twice]['image_id']}" in example["keys"]


def test_unique_sample_id_counts_each_shared_id_once(tmp_path):
    """Three rows on one id and two on another: two violations, with their row counts."""
    store = mixed_root(tmp_path)
    built = build(store, BalanceConfig(cap=5, buckets=4))
    lake = read_all(store, built.version)
    ids = lake["sample_id"].to_pylist()
    ids[1] = ids[2] = ids[0]
    ids[4] = ids[3]
    con = duckdb.connect()
    con.register("planted", lake.set_column(0, "sample_id", pa.array(ids)))
    outcome = C.check_sample_ids(con, "planted")
    assert not outcome.passed
    assert outcome.metadata["violations"] == 2
    samples = {e["sample_id"]: e["samples"] for e in outcome.metadata["examples"]}
    assert samples == {ids[0]: 3, ids[3]: 2}
    con.register("distinct_ids", lake)
    assert C.check_sample_ids(con, "distinct_ids").passed


def read_all(store: Storage, version: str) -> pa.Table:
    """The version's rows, sample_id first (as the contract orders the columns)."""
    table = pa.concat_tables(
        store.read_parquet(f"{layout.lake_version_dir(version)}/{f['path']}")
        for f in P.read_manifest(store, version)["files"]
    )
    assert table.column_names[0] == "sample_id"
    return table.sort_by([("source_id", "ascending"), ("image_id", "ascending")])


def test_a_failed_check_keeps_the_version_from_being_published(tmp_path, monkeypatch):
    """Through Dagster: lake_samples builds a version whose files carry a duplicate sample_id;
    its blocking check fails, ``lake`` does not run, and CURRENT still names the version that
    was published before."""
    store = mixed_root(tmp_path)
    resources = {
        "storage": StorageResource(root=str(tmp_path)),
        "duckdb": DuckDBResource(root=str(tmp_path)),
    }
    run_config = {"ops": {"lake_samples": {"config": {"cap": 5, "buckets": 4}}}}
    assets = [lake_defs.lake_samples, lake_defs.lake]
    good = dg.materialize(assets, resources=resources, run_config=run_config)
    assert good.success
    published = P.current_version(store)
    assert published is not None

    real_build = lake_defs.build_version

    def build_then_plant(store, *args, **kwargs):
        built = real_build(store, *args, **kwargs)
        plant_duplicate_sample_id(store, built.version)
        return built

    monkeypatch.setattr(lake_defs, "build_version", build_then_plant)
    # another cap, so the build makes a new version (the same inputs and config would find
    # the published version unchanged and build nothing)
    run_config = {"ops": {"lake_samples": {"config": {"cap": 4, "buckets": 4}}}}
    bad = dg.materialize(assets, resources=resources, run_config=run_config, raise_on_error=False)
    assert not bad.success
    results = {e.check_name: e.passed for e in bad.get_asset_check_evaluations()}
    failed = sorted(name for name, passed in results.items() if not passed)
    assert failed == ["unique_sample_id"] and len(results) == len(C.CHECKS)
    materialized = {e.asset_key.to_user_string() for e in bad.get_asset_materialization_events()}
    assert materialized == {"lake_samples"}  # not "lake"
    staged = store.read_text(layout.LAKE_STAGED)
    assert staged != published and P.current_version(store) == published
