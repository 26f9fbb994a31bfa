"""The camp assets materialise through Dagster (counting on a tiny lake built with the lake
tests' helpers), write the row contract, keep train and eval apart by image and by seed, and
take their generators' settings as run config."""

from __future__ import annotations

import json

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.lake.test_lake import box, build, write_root
from vprim.assets.camps import runs as R
from vprim.assets.camps.defs import camps_assets
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


CONFIG = {
    # run config reaches the generator: only coarse and attribute questions
    "counting_camp": {"train_size": 24, "family_weights": {"coarse": 1.0, "attribute": 1.0}},
    "counting_eval": {"eval_size": 12},
    "counting_coarse_eval": {"eval_size": 6},
    "spatial_camp": {"train_size": 16, "max_objects": 4},  # ... and to the scene sampler
    "spatial_eval": {"eval_tf_size": 6, "eval_open_size": 6},
    "maze_camp": {"train_size": 8},
    "maze_eval": {"eval_size": 4},
    "path_tracing_camp": {"train_size": 8},
    "path_tracing_eval": {"eval_size": 4},
}


@pytest.fixture(scope="module")
def materialised(tmp_path_factory):
    root = tmp_path_factory.mktemp("camps")
    _tiny_lake(root)
    resources = {
        "storage": StorageResource(root=str(root)),
        "duckdb": DuckDBResource(root=str(root)),
    }
    partitioned = [a for a in camps_assets if a.partitions_def is not None]
    unpartitioned = [a for a in camps_assets if a.partitions_def is None]

    def ops(assets):
        names = [a.key.to_user_string() for a in assets]
        return {"ops": {name: {"config": CONFIG[name]} for name in names}}

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


def _metadata(results, run: str, asset: str) -> dict:
    (mat,) = results[run].asset_materializations_for_node(asset)
    return {k: v.value for k, v in mat.metadata.items()}


def test_assets_materialise_with_counts_and_a_grid(materialised):
    root, results = materialised
    assert all(r.success for r in results.values())
    for key in ("seeds-00", "seeds-01"):
        for camp in ("counting", "spatial", "maze", "path_tracing"):
            meta = _metadata(results, key, f"{camp}_camp")
            assert meta["dagster/row_count"] > 0, camp
            assert meta["samples_grid"].startswith(f"![{camp} samples](data:image/png"), camp
            part = f"part-0000{key[-1]}.parquet"
            assert meta["samples_grid_png"].endswith(f"camps/{camp}/preview/{part}.png")
            assert meta["paths"] == [str(root / f"camps/{camp}/train/{part}")]
    maze = _metadata(results, "seeds-01", "maze_camp")
    assert maze["dagster/row_count"] == 2 and maze["rejected_by_reason"] == "(none)"
    counting = _metadata(results, "seeds-00", "counting_camp")
    assert counting["pool_images"] > 0 and counting["lake_version"]
    spatial = _metadata(results, "eval", "spatial_eval")
    assert spatial["dagster/row_count"] == 12 and "answer_type" in spatial["by_answer_type"]
    assert len(spatial["paths"]) == 2
    for name, rows in (("counting_coarse_eval", 6), ("maze_eval", 4), ("path_tracing_eval", 4)):
        assert _metadata(results, "eval", name)["dagster/row_count"] == rows, name


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
    assert {r["difficulty"] for r in fine} <= {"attribute", "relation", "negative"}
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


def test_run_config_reaches_the_generators(materialised):
    root, _ = materialised
    train = [r for p in (0, 1) for r in _read(root, f"camps/counting/train/part-{p:05d}.parquet")]
    assert {r["difficulty"] for r in train} <= {"coarse", "attribute"}
    spatial = [r for p in (0, 1) for r in _read(root, f"camps/spatial/train/part-{p:05d}.parquet")]
    assert spatial and all(len(json.loads(r["meta"])["objects"]) <= 4 for r in spatial)
    maze = pq.read_table(root / "camps/maze/train/part-00001.parquet")
    assert set(maze.column("seed").to_pylist()) == {2, 3}  # seeds 2, 3 of 0..7
    assert pq.read_table(root / "camps/eval/path_tracing.parquet").num_rows == 4


def test_camp_config_is_the_generators_settings_plus_sizes():
    from vprim.assets.camps import defs as D

    for config, extra in (
        (D.CountingCampConfig, {"train_size", "eval_size"}),
        (D.SpatialCampConfig, {"train_size", "eval_tf_size", "eval_open_size"}),
        (D.MazeCampConfig, {"train_size", "eval_size"}),
        (D.PathTracingCampConfig, {"train_size", "eval_size"}),
    ):
        spec = type(config().settings())
        assert set(config.model_fields) == set(spec.__dataclass_fields__) | extra, config
    assert D.CountingCampConfig(margin=0.1, pool_seed=3).settings().margin == 0.1
    assert D.SpatialCampConfig(max_objects=4).settings().max_objects == 4


def test_code_location_has_the_camp_assets():
    from vprim.dagster_project.definitions import defs

    graph = defs.resolve_asset_graph()
    for camp in ("counting", "spatial", "maze", "path_tracing"):
        node = graph.get(dg.AssetKey(f"{camp}_camp"))
        assert node.partitions_def.get_partition_keys() == [f"seeds-{i:02d}" for i in range(4)]
        assert node.group_name == "camps"
    evals = ("counting_eval", "counting_coarse_eval", "spatial_eval", "maze_eval",
             "path_tracing_eval")  # fmt: skip
    for name in evals:
        node = graph.get(dg.AssetKey(name))
        assert node.partitions_def is None and node.group_name == "camps"
    for name in ("counting_camp", "counting_eval", "counting_coarse_eval"):
        deps = graph.get(dg.AssetKey(name)).parent_keys
        assert {d.to_user_string() for d in deps} == {"lake"}, name
    assert not graph.get(dg.AssetKey("maze_camp")).parent_keys


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
