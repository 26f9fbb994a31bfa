"""counting_coarse_eval, training_run and evaluation materialise through Dagster in the tiny
configuration, on counting-camp rows over a tiny lake; evaluation's scorecard is the camps'
scorer's and the second evaluation compares with the first. The run config's settings are
TrainConfig's, with the defaults the launchpad always showed."""

from __future__ import annotations

import json

import dagster as dg
import duckdb

from tests.model.camp_lake import coarse_lake
from vprim.assets.camps.defs import counting_coarse_eval
from vprim.assets.camps.runs import counting_run
from vprim.assets.camps.schema import write_rows
from vprim.assets.model.defs import TrainingRunConfig, evaluation, training_run
from vprim.assets.model.train import TrainConfig, load_checkpoint
from vprim.resources.compute import ComputeResource
from vprim.resources.duckdb import DuckDBResource
from vprim.resources.storage import StorageResource


def test_training_and_evaluation_materialise(tmp_path):
    store = coarse_lake(tmp_path, 60, holdout_permille=200, labels_per_image=2)
    con = duckdb.connect()
    rows = counting_run(store, con, range(24), split="train", families=("coarse",)).rows
    con.close()
    write_rows(store, "camps/counting/train/part-00000.parquet", rows)
    resources = {
        "storage": StorageResource(root=str(tmp_path)),
        "duckdb": DuckDBResource(root=str(tmp_path)),
        "compute": ComputeResource(),
    }
    train_cfg = {"steps": 3, "batch": 4, "checkpoint_every": 2, "run_name": "t", "warmup": 1}
    eval_cfg = {"run_name": "t", "max_new_tokens": 8, "eval_sets": ["counting_coarse"]}
    run_config = {
        "ops": {
            "counting_coarse_eval": {"config": {"eval_size": 6}},
            "training_run": {"config": train_cfg},
            "evaluation": {"config": eval_cfg},
        }
    }
    assets = [counting_coarse_eval, training_run, evaluation]
    for attempt in range(2):  # the second evaluation compares with the first
        res = dg.materialize(assets, resources=resources, run_config=run_config)
        assert res.success
        mats = {
            m.asset_key.to_user_string(): m.metadata
            for m in res.get_asset_materialization_events()
            for m in [m.materialization]
        }
        assert mats["counting_coarse_eval"]["dagster/row_count"].value == 6
        train_md, eval_md = mats["training_run"], mats["evaluation"]
        assert train_md["kv_entries_per_image"].value == 3  # 126 px: 3x3 tokens -> ceil(9/4)
        assert train_md["kv_accounting_756"].value["kv_entries"] == 81
        assert train_md["steps"].value == 3
        assert train_md["final_indexer_kl"].value >= 0
        # the second run finds the finished checkpoint and trains nothing more
        assert train_md["resumed_from_step"].value == (-1 if attempt == 0 else 3)
        card = eval_md["scorecard"].value["counting_coarse"]
        assert card["camp"] == "counting" and card["n"] == 6 and card["missing"] == 0
        assert 0 <= card["accuracy"] <= 1 and 0 <= card["baseline_accuracy"] <= 1
        assert {"accuracy_ci95", "reward", "reward_ci95", "components"} <= set(card)
        assert "counting_coarse" in eval_md["scorecard_table"].value
        assert eval_md["previous_found"].value is (attempt == 1)
        if attempt == 1:
            assert "| counting_coarse | accuracy |" in eval_md["comparison"].value
    assert store.glob("model/evals/t/counting_coarse-step*.jsonl")
    # a TrainConfig setting the old hand-written config lacked reaches the run
    recorded = json.loads(load_checkpoint(store, "t")["train_config"])
    assert (recorded["warmup"], recorded["steps"], recorded["checkpoint_every"]) == (1, 3, 2)
    eval_rows = store.read_parquet("camps/eval/counting_coarse.parquet").to_pylist()
    assert {r["split"] for r in eval_rows} == {"eval"}
    assert not {r["image_uri"] for r in eval_rows} & {r["image_uri"] for r in rows}


def test_training_run_config_is_train_config_with_the_old_defaults():
    config = TrainingRunConfig()
    # the launchpad's defaults before TrainingRunConfig was made from TrainConfig
    assert (config.run_name, config.size, config.steps, config.batch, config.lr) == (
        "default",
        "tiny",
        300,
        32,
        2e-3,
    )
    assert (config.camps, config.difficulties, config.seed) == ({"counting": 1.0}, [], 0)
    assert (config.checkpoint_every, config.max_rows_per_camp) == (50, 4000)
    assert config.settings() == TrainConfig(checkpoint_every=50)  # 50 here, 100 in the dataclass
    fields = set(TrainingRunConfig.model_fields)
    assert fields == {f for f in TrainConfig.__dataclass_fields__} | {
        "run_name",
        "difficulties",
        "max_rows_per_camp",
    }
    custom = TrainingRunConfig(steps=7, camps={"spatial": 2.0}, indexer_loss=0.0)
    assert custom.settings() == TrainConfig(
        steps=7, camps={"spatial": 2.0}, indexer_loss=0.0, checkpoint_every=50
    )
