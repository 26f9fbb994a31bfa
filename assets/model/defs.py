"""Dagster wiring for the model: ``training_run`` and ``evaluation`` (logic in ``train.py``
and ``evaluate.py``)."""

import dagster as dg
from pydantic import Field

from vprim.assets.configs import dagster_config
from vprim.assets.contracts import layout
from vprim.assets.model import evaluate as ev
from vprim.assets.model.model import kv_accounting
from vprim.assets.model.train import TrainConfig, curve_table, train_on_camps
from vprim.assets.steps import GPU_STEP
from vprim.resources.compute import ComputeResource
from vprim.resources.storage import StorageResource


class TrainingRunConfig(dagster_config(TrainConfig, name="TrainingRunConfig", checkpoint_every=50)):
    """How the run trains (``TrainConfig``'s fields), its name, and which camp rows it reads."""

    run_name: str = "default"
    difficulties: list[str] = Field(default_factory=list)  # empty: every difficulty
    max_rows_per_camp: int = 4000


@dg.asset(
    group_name="model",
    deps=[dg.AssetKey("counting_camp"), dg.AssetKey("spatial_camp")],
    op_tags=GPU_STEP,
    retry_policy=dg.RetryPolicy(max_retries=2),  # a retry resumes from the last checkpoint
    description="Trains the compact CSA model on the camps mix; checkpoints in model/runs/.",
)
def training_run(
    context: dg.AssetExecutionContext,
    config: TrainingRunConfig,
    storage: StorageResource,
    compute: ComputeResource,
) -> dg.MaterializeResult:
    store, device = storage.get(), compute.torch_device()
    out = train_on_camps(
        store,
        config.run_name,
        config.settings(),
        difficulties=tuple(config.difficulties),
        max_rows_per_camp=config.max_rows_per_camp,
        device=device,
    )
    curve, kl = out["loss_curve"], out["indexer_kl_curve"]
    kv = kv_accounting(out["image_size"], out["image_size"])
    context.log.info(f"{config.run_name}: {len(curve)} steps, final loss {curve[-1]:.4f}")
    return dg.MaterializeResult(
        metadata={
            "run_name": config.run_name,
            "device": device,
            "train_rows": out["train_rows"],
            "parameters": out["parameters"],
            "steps": out["steps"],
            "resumed_from_step": out["resumed_from"] if out["resumed_from"] is not None else -1,
            "seconds": out["seconds"],
            "final_loss": float(curve[-1]),
            "first_loss": float(curve[0]),
            "final_indexer_kl": float(kl[-1]) if kl else -1.0,
            "loss_curve": dg.MetadataValue.md(curve_table(curve, kl)),
            "image_size": out["image_size"],
            "kv_entries_per_image": kv["kv_entries"],
            "pixels_per_kv_entry": kv["pixels_per_entry"],
            "kv_accounting_756": kv_accounting(756, 756),
            "kv_accounting_800": kv_accounting(800, 800),
            "model_config": out["model_config"],
            "checkpoint": store.url(layout.model_run_dir(config.run_name)),
        }
    )


class EvaluationConfig(dg.Config):
    run_name: str = "default"
    eval_sets: list[str] = Field(default_factory=lambda: ["counting_coarse", "counting_fine"])
    difficulties: list[str] = Field(default_factory=list)
    max_rows: int = 200
    max_new_tokens: int = 96
    batch: int = 64


@dg.asset(
    group_name="model",
    deps=[
        training_run,
        dg.AssetKey("counting_coarse_eval"),
        dg.AssetKey("counting_eval"),
        dg.AssetKey("spatial_eval"),
    ],
    op_tags=GPU_STEP,
    description="Greedy answers on the held-out eval sets, scored by the camps' scorer; "
    "compares with the last evaluation.",
)
def evaluation(
    context: dg.AssetExecutionContext,
    config: EvaluationConfig,
    storage: StorageResource,
    compute: ComputeResource,
) -> dg.MaterializeResult:
    try:
        done = ev.evaluate_run(
            storage.get(),
            config.run_name,
            list(config.eval_sets),
            difficulties=tuple(config.difficulties),
            max_rows=config.max_rows,
            batch=config.batch,
            max_new_tokens=config.max_new_tokens,
            device=compute.torch_device(),
            log=context.log.info,
        )
    except ev.EvaluationError as e:
        raise dg.Failure(str(e)) from e
    return dg.MaterializeResult(
        metadata={
            "run_name": config.run_name,
            "step": done.step,
            "scorecard": done.scorecard,
            "scorecard_table": dg.MetadataValue.md(ev.scorecard_table(done.scorecard)),
            "comparison": dg.MetadataValue.md(ev.comparison_table(done.comparison)),
            "previous_found": done.previous is not None,
        }
    )


model_assets = [training_run, evaluation]
