"""The counting and spatial camp assets materialise through Dagster on a tiny lake (built with
the lake tests' helpers), write the row contract, and keep train and eval apart by image and
by seed."""

from __future__ import annotations

import json

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.lake.test_lake import box, build, write_root
from vprim.assets.camps import counting_spatial_runs as R
from vprim.assets.camps.defs_counting_spatial import counting_spatial_assets
from vprim.assets.lake import publish as P
from vprim.assets.lake.balance import BalanceConfig
from vprim.resources.duckdb import DuckDBResource
from vprim.resources.storage import StorageResource

LABELS = ("car", "bus", "dog", "cat")


def _tiny_lake(root, n_images: int = 40) -> None:
    """``n_images`` images (320x240) of 2-4 labels with 1-3 boxes each, shifted by a few
    pixels from image to image, cars with a colour and an occlusion flag, a third held out;
    published. (The README's counting_fine scorecard is measured on 1,800 of them.)"""
    boxes = []
    for i in range(n_images):
        dx, dy = (i * 13) % 40, (i * 7) % 30
        for k, label in enumerate(LABELS[: 2 + i % 3]):
            for j in range(1 + (i + k) % 3):
                x = 10 + 60 * j + 7 * k + dx
                y = 15 + 50 * k + 3 * j + dy
                boxes.append(box("src_a", f"img{i:02d}", label, (x, y, x + 40, y + 30),
                                 w=320, h=240))  # fmt: skip
    store = write_root(root, boxes, {"src_a": "keep"})
    # cars carry a colour and an occlusion flag in clean_instances (the lake has none)
    for path in store.glob("clean_instances/shard=*.parquet"):
        table = pq.read_table(path)
        attrs = [
            [("colour", ("red", "blue")[int(r["x0"]) % 2]), ("occluded", "0")]
            if r["canonical_label"] == "car" else []
            for r in table.select(["canonical_label", "x0"]).to_pylist()
        ]  # fmt: skip
        column = pa.array(attrs, table.schema.field("attributes").type)
        table = table.set_column(table.schema.get_field_index("attributes"), "attributes", column)
        pq.write_table(table, path)
    version = build(store, BalanceConfig(buckets=2, holdout_permille=330)).version
    P.publish(store, version)


@pytest.fixture(scope="module")
def materialised(tmp_path_factory):
    root = tmp_path_factory.mktemp("camps")
    _tiny_lake(root)
    resources = {
        "storage": StorageResource(root=str(root)),
        "duckdb": DuckDBResource(root=str(root)),
    }
    config = {
        "counting_camp": {"config": {"train_size": 24}},
        "counting_eval": {"config": {"eval_size": 12}},
        "counting_coarse_eval": {"config": {"eval_size": 6}},
        "spatial_camp": {"config": {"train_size": 16}},
        "spatial_eval": {"config": {"eval_tf_size": 6, "eval_open_size": 6}},
    }
    partitioned = [a for a in counting_spatial_assets if a.partitions_def is not None]
    unpartitioned = [a for a in counting_spatial_assets if a.partitions_def is None]

    def ops(assets):
        return {"ops": {a.key.to_user_string(): config[a.key.to_user_string()] for a in assets}}

    results = {}
    for key in ("seeds-00", "seeds-01"):
        results[key] = dg.materialize(
            partitioned, partition_key=key, resources=resources, run_config=ops(partitioned)
        )
    results["eval"] = dg.materialize(
        unpartitioned, resources=resources, run_config=ops(unpartitioned)
    )
    return root, results


def _read(root, rel):
    return pq.read_table(root / rel).to_pylist()


def test_assets_materialise_with_counts_and_a_grid(materialised):
    _, results = materialised
    assert all(r.success for r in results.values())
    for key in ("seeds-00", "seeds-01"):
        for mat in results[key].asset_materializations_for_node("counting_camp"):
            meta = mat.metadata
            assert meta["dagster/row_count"].value > 0
            assert "coarse" in meta["by_difficulty"].value
            assert meta["samples_grid"].value.startswith("![counting samples](data:image/png")
    spatial = results["eval"].asset_materializations_for_node("spatial_eval")[0].metadata
    assert "refuse" in spatial["by_answer_type"].value or spatial["dagster/row_count"].value > 0


def test_written_rows_follow_the_contract_and_stay_apart(materialised):
    root, _ = materialised
    train = [r for p in (0, 1) for r in _read(root, f"camps/counting/train/part-{p:05d}.parquet")]
    fine = _read(root, "camps/eval/counting_fine.parquet")
    assert train and fine
    assert {r["split"] for r in train} == {"train"} and {r["eval_set"] for r in fine} == {
        "counting_fine"
    }
    # disjoint by image and by seed
    assert {r["image_uri"] for r in train}.isdisjoint({r["image_uri"] for r in fine})
    assert {r["seed"] for r in train}.isdisjoint({r["seed"] for r in fine})
    assert {r["difficulty"] for r in fine} <= set(R.FINE_FAMILIES)
    for r in train + fine:
        meta = json.loads(r["meta"])
        assert r["answer"] == str(meta["gt"]) == str(len(meta["boxes_999"]))
    # attributes joined back from clean_instances make attribute questions possible
    attribute = [json.loads(r["meta"]) for r in train + fine if r["difficulty"] == "attribute"]
    assert attribute and {m["label"] for m in attribute} == {"car"}
    seeds = [r["seed"] for r in train]
    assert len(seeds) == len(set(seeds)) and max(seeds) < 12  # partitions 0 and 1 of 24
    sp_train = [r for p in (0, 1) for r in _read(root, f"camps/spatial/train/part-{p:05d}.parquet")]
    tf = _read(root, "camps/eval/spatial_tf.parquet")
    op = _read(root, "camps/eval/spatial_open.parquet")
    assert {r["seed"] for r in sp_train}.isdisjoint({r["seed"] for r in tf + op})
    assert {json.loads(r["meta"])["question_kind"] for r in tf} == {"tf"}
    assert {json.loads(r["meta"])["question_kind"] for r in op} == {"open"}


def test_partition_seed_ranges_cover_the_size_once():
    ranges = [R.partition_seeds(10, p, 4) for p in range(4)]
    assert [s for r in ranges for s in r] == list(range(10))
    with pytest.raises(ValueError):
        R.partition_seeds(10, 4, 4)


def test_code_location_has_the_camp_assets():
    from vprim.dagster_project.definitions import defs

    graph = defs.resolve_asset_graph()
    for name in ("counting_camp", "spatial_camp"):
        node = graph.get(dg.AssetKey(name))
        assert node.partitions_def.get_partition_keys() == [f"seeds-{i:02d}" for i in range(4)]
        assert node.group_name == "camps"
    deps = graph.get(dg.AssetKey("counting_camp")).parent_keys
    assert {d.to_user_string() for d in deps} == {"lake"}
    assert graph.get(dg.AssetKey("spatial_eval")).partitions_def is None


def test_camps_bench_reads_the_lake_and_writes_only_under_out(materialised, tmp_path):
    from vprim.assets.camps.bench import bench

    root, _ = materialised
    before = sorted(p.relative_to(root) for p in root.rglob("*.parquet"))
    out = tmp_path / "bench"
    for camp in ("counting", "spatial", "maze", "path_tracing"):
        figures = bench(camp, 6, str(out), str(root), workers=1, partitions=2)
        assert figures["samples"] > 0 and figures["samples_per_second"] > 0, figures
        assert sorted(out.glob(f"camps/{camp}/train/part-*.parquet")), camp
    assert sorted(p.relative_to(root) for p in root.rglob("*.parquet")) == before
