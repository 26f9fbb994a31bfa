"""training_run and evaluation materialise through Dagster in the tiny configuration."""

from __future__ import annotations

import dagster as dg
import pyarrow as pa

from assets.model.defs import evaluation, training_run
from assets.storage import Storage
from resources import ComputeResource, StorageResource
from tests.model.synthetic import squares_rows


def test_training_and_evaluation_materialise(tmp_path):
    store = Storage(str(tmp_path))
    store.write_parquet(
        pa.Table.from_pylist(squares_rows(24, 0)), "camps/counting/train/part-00000.parquet"
    )
    store.write_parquet(
        pa.Table.from_pylist(squares_rows(6, 1, split="eval")), "camps/eval/counting_fine.parquet"
    )
    resources = {"storage": StorageResource(root=str(tmp_path)), "compute": ComputeResource()}
    train_cfg = {"steps": 3, "batch": 4, "checkpoint_every": 2, "run_name": "t"}
    eval_cfg = {"run_name": "t", "max_new_tokens": 8}
    run_config = {
        "ops": {"training_run": {"config": train_cfg}, "evaluation": {"config": eval_cfg}}
    }
    for attempt in range(2):  # the second evaluation compares with the first
        res = dg.materialize([training_run, evaluation], resources=resources, run_config=run_config)
        assert res.success
        mats = {
            m.asset_key.to_user_string(): m.metadata
            for m in res.get_asset_materialization_events()
            for m in [m.materialization]
        }
        train_md, eval_md = mats["training_run"], mats["evaluation"]
        assert train_md["kv_entries_per_image"].value == 3  # 126 px: 3x3 tokens -> ceil(9/4)
        assert train_md["kv_accounting_756"].value["kv_entries"] == 81
        assert train_md["steps"].value == 3
        # the second run finds the finished checkpoint and trains nothing more
        assert train_md["resumed_from_step"].value == (-1 if attempt == 0 else 3)
        card = eval_md["scorecard"].value["counting_fine"]
        assert card["n"] == 6 and 0 <= card["exact_match"] <= 1
        assert eval_md["previous_found"].value is (attempt == 1)
    assert store.glob("model/evals/t/counting_fine-step*.jsonl")
