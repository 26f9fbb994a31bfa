"""The `tiny` corpus end to end through Dagster, as `make rebuild-dataset` runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import dagster as dg
import fsspec
import polars as pl
import pytest
from PIL import Image, ImageOps

from tests.tiny import tiny_env
from vprim.assets.contracts import layout
from vprim.assets.contracts import reasons as R
from vprim.assets.contracts import schemas as S
from vprim.assets.settings import PROJECT_ROOT


@pytest.fixture(scope="module")
def rebuilt(tiny_rebuilt):
    """The session's tiny rebuild (a throwaway root and DAGSTER_HOME) the tests below read."""
    return tiny_rebuilt


@pytest.mark.e2e
def test_every_asset_materialised_with_metadata(rebuilt):
    base, stdout = rebuilt
    instance = dg.DagsterInstance.from_config(str(base / "home"))
    try:
        catalog = instance.get_latest_materialization_event(dg.AssetKey("catalog"))
        assert catalog is not None
        meta = catalog.asset_materialization.metadata
        assert meta["dagster/row_count"].value > 20
        parts = instance.get_materialized_partitions(dg.AssetKey("raw_instances"))
        assert parts == {"000", "001", "002", "003"}
        assert instance.get_materialized_partitions(dg.AssetKey("parse_rejects")) == parts
        raw = instance.get_latest_materialization_event(dg.AssetKey("raw_instances"))
        raw_meta = raw.asset_materialization.metadata
        seen = 0  # each partition's event carries that shard's own figures
        for key in parts:
            (record,) = instance.fetch_materializations(
                dg.AssetRecordsFilter(
                    asset_key=dg.AssetKey("raw_instances"), asset_partitions=[key]
                ),
                limit=1,
            ).records
            seen += record.event_log_entry.asset_materialization.metadata["boxes_seen"].value
        assert seen > 1000 and raw_meta["boxes_seen"].value < seen
        assert "parse_quality_vs_planted" in raw_meta
        (run,) = instance.get_runs()  # one run over all shards, recorded in DAGSTER_HOME
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags["dagster/asset_partition_range_end"] == "003"
        check_key = dg.AssetCheckKey(dg.AssetKey("raw_instances"), "every_box_accounted_for")
        records = instance.event_log_storage.get_asset_check_execution_history(check_key, limit=1)
        assert records and records[0].status.value == "SUCCEEDED"
    finally:
        instance.dispose()
    # the summary printed at the end: step times, the funnel to the lake, rejects by reason
    assert "step wall times" in stdout and "in the lake" in stdout and "parse_" in stdout


@pytest.mark.e2e
def test_accounting_and_planted_parse_defects(rebuilt):
    base, _ = rebuilt
    root = base / "data"
    raw = pl.read_parquet(root / "raw_instances" / "*.parquet")
    rejects = pl.read_parquet(root / "rejects" / "stage=parse" / "*.parquet")
    image_rejects = pl.read_parquet(root / "rejects" / "stage=image" / "*.parquet")
    stats = pl.read_parquet(root / "source_stats" / "*.parquet")
    box_rejects = rejects.filter(pl.col("instance_id").is_not_null())
    assert stats["boxes_seen"].sum() == raw.height + box_rejects.height + image_rejects.height
    assert raw["instance_id"].n_unique() == raw.height  # ids are unique
    (corpus,) = list((root / "raw").iterdir())
    planted = pl.read_parquet(corpus / "planted.parquet")
    # every box-level parse defect that was planted is in the ledger with its exact reason
    planted_boxes = planted.filter(
        pl.col("defect").is_in(R.PARSE_REASONS) & pl.col("instance_id").is_not_null()
    )
    assert planted_boxes.height > 0
    found = planted_boxes.join(
        box_rejects.rename({"reason": "defect"}), on=["instance_id", "defect"], how="semi"
    )
    assert found.height == planted_boxes.height
    # every file/source-level parse defect shows up for its source with its reason
    planted_files = planted.filter(
        pl.col("defect").is_in(R.PARSE_REASONS) & pl.col("instance_id").is_null()
    )
    file_rejects = rejects.filter(pl.col("instance_id").is_null()).rename({"reason": "defect"})
    missing = planted_files.join(file_rejects, on=["source_id", "defect"], how="anti")
    assert missing.is_empty(), missing
    # and nothing in the ledger is unexplained by the plan
    unexplained = file_rejects.join(planted_files, on=["source_id", "defect"], how="anti")
    assert unexplained.is_empty(), unexplained
    # a planted box defect of the quality stage is still in raw_instances, untouched
    geometric = planted.filter(pl.col("defect") == "degenerate_box")
    assert geometric.join(raw, on="instance_id", how="semi").height == geometric.height


@pytest.mark.e2e
def test_the_image_stage_finds_what_was_planted_in_the_real_image_sources(rebuilt):
    """The tiny corpus's real-image sources (COCO official and Roboflow layouts, a zipped
    export, a .json.gz, Ultralytics): every planted image defect is in the image ledger with
    its reason and nothing else is; EXIF-rotated boxes are kept at the displayed size; every
    re-encoded or resized copy is grouped with another source's picture; the lake keeps one
    sample of each (picture, label)."""
    base, _ = rebuilt
    root = base / "data"
    (corpus,) = list((root / "raw").iterdir())
    planted = pl.read_parquet(corpus / "planted.parquet")
    raw = pl.read_parquet(root / "raw_instances" / "*.parquet")
    ledger = pl.read_parquet(root / "rejects" / "stage=image" / "*.parquet")
    expected = planted.filter(pl.col("defect").is_in(R.IMAGE_REASONS))
    assert set(expected["defect"]) == set(R.IMAGE_REASONS)
    got = ledger.select("instance_id", pl.col("reason").alias("defect"))
    assert expected.join(got, on=["instance_id", "defect"], how="anti").is_empty()
    assert got.join(expected, on=["instance_id", "defect"], how="anti").is_empty()
    # read through each layout: zip members, and files of the other layouts
    uris = raw["image_uri"]
    assert uris.str.starts_with("zip://").any() and uris.str.starts_with("file://").any()
    rotated = planted.filter(pl.col("defect") == S.PLANTED_EXIF_ROTATED)
    kept = raw.join(rotated.select("instance_id"), on="instance_id", how="semi")
    assert rotated.height > 0 and kept.height == rotated.height
    for row in kept.unique("image_uri").iter_rows(named=True):
        with fsspec.open(row["image_uri"], "rb") as f, Image.open(f) as img:
            shown = ImageOps.exif_transpose(img).size
        assert (row["image_width"], row["image_height"]) == shown
    # every planted copy is in a group that spans sources
    copies = planted.filter(pl.col("defect") == S.PLANTED_DUPLICATE_CONTENT)
    groups = pl.read_parquet(root / "images" / "groups.parquet")
    copy_uris = raw.join(copies.select("source_id", "image_id"), on=["source_id", "image_id"])
    assert copies.height > 0
    assert copy_uris.join(
        groups.filter(pl.col("sources") > 1), on="image_uri", how="anti"
    ).is_empty()
    scores = json.loads((root / "quality" / "quality_vs_planted.json").read_text())
    image_scores = {
        r["reason"]: r for r in scores if r["reason"] in (*R.IMAGE_REASONS, "duplicate_content")
    }
    assert set(image_scores) == {*R.IMAGE_REASONS, "duplicate_content"}
    assert all(r["recall"] == 1.0 for r in image_scores.values()), image_scores
    # the lake holds each (picture, label) of a group once
    version = (root / layout.LAKE_CURRENT).read_text().strip()
    lake = pl.read_parquet(root / layout.lake_samples_glob(version))
    keyed = lake.join(groups.select("image_uri", "group_key"), on="image_uri")
    assert keyed.group_by("group_key", "label").len()["len"].max() == 1


ASSETS_QUERY = """
{ assetNodes { assetKey { path } groupName partitionStats { numMaterialized }
    assetMaterializations(limit: 1) { metadataEntries { label } } } }
"""


def _graphql(port: int, query: str, timeout: float) -> dict:
    import json
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    body = json.dumps({"query": query}).encode()
    while True:
        try:
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/graphql", body, {"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


@pytest.fixture(scope="module")
def ui_port(rebuilt):
    """`vprim ui` (dagster dev) over the rebuild's DAGSTER_HOME, as a user starts it after."""
    import signal
    import socket

    base, _ = rebuilt
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "vprim.dagster_project.cli", "ui", "--port", str(port)],
        env=tiny_env(base),
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # dagster dev may ignore SIGTERM: we kill its whole group
    )
    try:
        _graphql(port, "{ version }", timeout=180)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@pytest.mark.e2e
def test_ui_shows_every_asset_materialised(ui_port):
    data = _graphql(ui_port, ASSETS_QUERY, timeout=180)["data"]["assetNodes"]
    # the curation assets the rebuild job materialises (camps and model run separately)
    curation = {"sources", "quality", "lake"}
    nodes = {"/".join(n["assetKey"]["path"]): n for n in data if n["groupName"] in curation}
    assert {"catalog", "raw_instances", "parse_rejects"} <= set(nodes)
    for name, node in nodes.items():
        assert node["assetMaterializations"], f"{name} shows no materialisation"
        labels = {e["label"] for e in node["assetMaterializations"][0]["metadataEntries"]}
        assert "dagster/row_count" in labels, name
    assert nodes["raw_instances"]["partitionStats"]["numMaterialized"] == 4


#: What a partition's page shows: each raw_instances partition's latest materialisation
PARTITIONS_QUERY = """
{ assetNodes(assetKeys: [{path: ["raw_instances"]}]) {
    assetMaterializations(partitions: ["000", "001", "002", "003"]) {
      partition
      metadataEntries { label ... on IntMetadataEntry { intRepr }
                        ... on TextMetadataEntry { text } }
} } }
"""


@pytest.mark.e2e
def test_ui_shows_each_partition_its_own_figures(rebuilt, ui_port):
    """A shard's partition page shows that shard's rows and status, not the run's totals."""
    base, _ = rebuilt
    (node,) = _graphql(ui_port, PARTITIONS_QUERY, timeout=180)["data"]["assetNodes"]
    shown = {}
    for event in node["assetMaterializations"]:
        entries = {e["label"]: e.get("intRepr") or e.get("text") for e in event["metadataEntries"]}
        shown.setdefault(event["partition"], entries)  # newest first
    assert set(shown) == {"000", "001", "002", "003"}
    for key, entries in shown.items():
        rows = pl.read_parquet(base / "data" / layout.shard_file(layout.RAW_DIR, key)).height
        assert int(entries["dagster/row_count"]) == rows, key
        assert entries["status"] == "rebuilt" and len(entries["data_version"]) == 16
    assert len({e["dagster/row_count"] for e in shown.values()}) > 1


#: What the job page's Runs tab and the Re-execute button read: the job's runs (Dagster filters
#: them by the job's repository tag) with their origin and the snapshot each ran.
JOB_RUNS_QUERY = """
{ pipelineOrError(params: {pipelineName: "rebuild_dataset", repositoryName: "__repository__",
                           repositoryLocationName: "vprim"}) {
    __typename
    ... on Pipeline { pipelineSnapshotId
      runs { runId status pipelineSnapshotId
             repositoryOrigin { repositoryLocationName repositoryName } } } } }
"""


@pytest.mark.e2e
def test_ui_lists_the_rebuild_run_on_its_job_page(rebuilt, ui_port):
    """The run belongs to the code location the UI serves: listed, same origin, same snapshot."""
    import re

    _, stdout = rebuilt
    (run_id,) = re.findall(r"launched run ([0-9a-f-]{36}) of rebuild_dataset in vprim", stdout)
    job = _graphql(ui_port, JOB_RUNS_QUERY, timeout=180)["data"]["pipelineOrError"]
    assert job["__typename"] == "Pipeline", job
    (run,) = job["runs"]  # the job page lists it ("No runs found" for a `job execute` run)
    assert run["runId"] == run_id and run["status"] == "SUCCESS"
    # Re-execute loads the job from this origin without a "different code location" warning,
    # and with no "may be different" warning the snapshot is the one the UI has loaded
    assert run["repositoryOrigin"] == {
        "repositoryLocationName": "vprim",
        "repositoryName": "__repository__",
    }
    assert run["pipelineSnapshotId"] == job["pipelineSnapshotId"]


@pytest.mark.e2e
def test_quality_stage_accounts_for_every_box_and_finds_what_was_planted(rebuilt):
    import json

    base, _ = rebuilt
    root = base / "data"
    instance = dg.DagsterInstance.from_config(str(base / "home"))
    try:
        key = dg.AssetCheckKey(dg.AssetKey("clean_instances"), "raw_equals_clean_plus_rejected")
        records = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)
        assert records and records[0].status.value == "SUCCEEDED"
        funnel = instance.get_latest_materialization_event(dg.AssetKey("curation_funnel"))
        meta = funnel.asset_materialization.metadata
        assert meta["sources_raw"].value > meta["sources_after_labels"].value
        assert meta["sources_after_labels"].value > meta["sources_after_geometry"].value > 0
    finally:
        instance.dispose()
    raw = pl.read_parquet(root / "raw_instances" / "*.parquet")
    clean = pl.read_parquet(root / "clean_instances" / "*.parquet")
    ledger = pl.concat(
        [
            pl.read_parquet(root / "rejects" / f"stage={s}" / "*.parquet")
            for s in ("label", "geometry", "source")
        ]
    )
    assert raw.height == clean.height + ledger.height
    assert clean.join(ledger, on="instance_id", how="semi").is_empty()  # one fate per box
    assert clean["canonical_label"].null_count() == 0
    scores = json.loads((root / "quality" / "quality_vs_planted.json").read_text())
    by_reason = {r["reason"]: r for r in scores}
    for reason in R.BOX_REASONS:
        if reason in by_reason and by_reason[reason]["planted"]:
            assert by_reason[reason]["precision"] >= 0.98, by_reason[reason]
            assert by_reason[reason]["recall"] >= 0.98, by_reason[reason]
    for reason in ("label_gibberish", "label_vague", "label_private"):
        assert by_reason[reason]["precision"] >= 0.95 and by_reason[reason]["recall"] >= 0.85


@pytest.mark.e2e
def test_tiny_rebuild_publishes_a_checked_lake_every_reader_reads(rebuilt):
    import glob

    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from vprim.assets.contracts.schemas import LAKE_SCHEMA
    from vprim.assets.lake import publish as P
    from vprim.assets.lake.checks import CHECKS
    from vprim.assets.storage import Storage

    base, stdout = rebuilt
    store = Storage(str(base / "data"))
    version = P.current_version(store)
    assert version and "in the lake" in stdout and version in stdout
    manifest = P.read_manifest(store, version)
    files = str(base / "data" / layout.lake_samples_dir(version) / "*" / "*.parquet")
    arrow = pa.concat_tables(pq.read_table(f) for f in sorted(glob.glob(files)))
    assert arrow.schema.remove_metadata().equals(LAKE_SCHEMA.remove_metadata())
    frame = pl.read_parquet(files)
    con = duckdb.connect()
    rows, instances = con.execute(
        f"SELECT count(*), sum(n_boxes) FROM read_parquet('{files}', hive_partitioning=false)"
    ).fetchone()
    counts = manifest["counts"]
    assert arrow.num_rows == frame.height == rows == counts["rows"] > 100
    assert frame["n_boxes"].sum() == instances == counts["instances"]
    # the planted mirror's images reach the lake once per label
    assert counts["balance"]["samples_duplicate"] > 0
    assert set(frame["split"].unique()) <= {"train", "holdout"}
    instance = dg.DagsterInstance.from_config(str(base / "home"))
    try:
        for name in CHECKS:
            key = dg.AssetCheckKey(dg.AssetKey("lake_samples"), name)
            (record,) = instance.event_log_storage.get_asset_check_execution_history(key, limit=1)
            assert record.status.value == "SUCCEEDED", name
        published = instance.get_latest_materialization_event(dg.AssetKey("lake"))
        assert published.asset_materialization.metadata["version"].value == version
    finally:
        instance.dispose()
