"""Dagster wiring for the model: ``training_run`` and ``evaluation`` (logic in the modules)."""

import json

import dagster as dg
from pydantic import Field

from vprim.assets.model import evaluate as ev
from vprim.assets.model.data import encode_rows, read_rows
from vprim.assets.model.model import kv_accounting
from vprim.assets.model.tokenizer import Tokenizer
from vprim.assets.model.train import TrainConfig, load_checkpoint, model_from_checkpoint, train
from vprim.resources.compute import ComputeResource
from vprim.resources.storage import StorageResource

GPU_TAGS = {
    "dagster-k8s/config": {
        "container_config": {
            "resources": {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}}
        }
    },
    "dagster-celery/queue": "gpu",
}


class TrainingRunConfig(dg.Config):
    run_name: str = "default"
    size: str = "tiny"
    steps: int = 300
    batch: int = 32
    lr: float = 2e-3
    camps: dict[str, float] = Field(default_factory=lambda: {"counting": 1.0})
    difficulties: list[str] = Field(default_factory=list)
    seed: int = 0
    checkpoint_every: int = 50
    max_rows_per_camp: int = 4000


def _train_config(c: TrainingRunConfig) -> TrainConfig:
    return TrainConfig(
        size=c.size, steps=c.steps, batch=c.batch, lr=c.lr, camps=dict(c.camps), seed=c.seed,
        checkpoint_every=c.checkpoint_every,
    )  # fmt: skip


def _train_rows(store, c: TrainingRunConfig) -> dict[str, list[dict]]:
    diffs = tuple(c.difficulties)
    return {
        camp: read_rows(store, f"camps/{camp}/train/*.parquet", diffs, c.max_rows_per_camp)
        for camp in c.camps
    }


def _curve_table(curve: list[float], kl: list[float], points: int = 25) -> str:
    """LM loss (and the indexers' KL, when trained) every few steps, as markdown."""
    every = max(1, len(curve) // points)
    if len(kl) != len(curve):
        kl = []
    lines = ["| step | loss | indexer KL |", "|---:|---:|---:|"]
    lines += [f"| {i + 1} | {curve[i]:.4f} | {f'{kl[i]:.4f}' if kl else ''} |"
              for i in range(0, len(curve), every)]  # fmt: skip
    return "\n".join(lines)


@dg.asset(
    group_name="model",
    deps=[dg.AssetKey("counting_camp"), dg.AssetKey("spatial_camp")],
    op_tags=GPU_TAGS,
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
    rows = _train_rows(store, config)
    tok = Tokenizer.build(r["prompt"] + " " + r["target"] for rs in rows.values() for r in rs)
    cfg = _train_config(config)
    mcfg = cfg.model_config(len(tok))
    data = {c: encode_rows(rs, tok, mcfg.image_size, cfg.max_text) for c, rs in rows.items()}
    out = train(store, config.run_name, data, tok, cfg, device=device)
    curve = out["loss_curve"]
    kv = kv_accounting(mcfg.image_size, mcfg.image_size)
    context.log.info(f"{config.run_name}: {len(curve)} steps, final loss {curve[-1]:.4f}")
    return dg.MaterializeResult(
        metadata={
            "run_name": config.run_name,
            "device": device,
            "train_rows": {c: len(rs) for c, rs in rows.items()},
            "parameters": out["parameters"],
            "steps": out["steps"],
            "resumed_from_step": out["resumed_from"] if out["resumed_from"] is not None else -1,
            "seconds": out["seconds"],
            "final_loss": float(curve[-1]),
            "first_loss": float(curve[0]),
            "final_indexer_kl": float(out["indexer_kl_curve"][-1])
            if out["indexer_kl_curve"]
            else -1.0,
            "loss_curve": dg.MetadataValue.md(_curve_table(curve, out["indexer_kl_curve"])),
            "image_size": mcfg.image_size,
            "kv_entries_per_image": kv["kv_entries"],
            "pixels_per_kv_entry": kv["pixels_per_entry"],
            "kv_accounting_756": kv_accounting(756, 756),
            "kv_accounting_800": kv_accounting(800, 800),
            "model_config": mcfg.to_dict(),
            "checkpoint": store.path("model/runs", config.run_name),
        }
    )


def _scorecard_md(card: dict[str, dict]) -> str:
    lines = ["| eval set | n | accuracy (95% CI) | mean reward (95% CI) | baseline accuracy "
             "| baseline reward |", "|---|---:|---|---|---:|---:|"]  # fmt: skip
    for name, c in sorted(card.items()):
        if "accuracy" not in c:  # several camps in one set: see the scorecard JSON
            continue
        lines.append(
            f"| {name} | {c['n']} | {c['accuracy']:.3f} ± {c['accuracy_ci95']:.3f} | "
            f"{c['reward']:.3f} ± {c['reward_ci95']:.3f} | {c.get('baseline_accuracy', '')} | "
            f"{c.get('baseline_reward', '')} |"
        )
    return "\n".join(lines)


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
    op_tags=GPU_TAGS,
    description="Greedy answers on the held-out eval sets, scored by the camps' scorer; "
    "compares with the last evaluation.",
)
def evaluation(
    context: dg.AssetExecutionContext,
    config: EvaluationConfig,
    storage: StorageResource,
    compute: ComputeResource,
) -> dg.MaterializeResult:
    store, device = storage.get(), compute.torch_device()
    state = load_checkpoint(store, config.run_name)
    if state is None:
        raise dg.Failure(f"no checkpoint for run {config.run_name!r}: materialise training_run")
    model, tok = model_from_checkpoint(state, device)
    diffs = tuple(config.difficulties)
    card: dict[str, dict] = {}
    for name in config.eval_sets:
        rows = read_rows(store, f"camps/eval/{name}.parquet", diffs, config.max_rows)
        if not rows:
            raise dg.Failure(f"eval set {name!r} has no rows under camps/eval/")
        data = encode_rows(rows, tok, model.c.image_size, model.c.max_text)
        preds = ev.predict(model, tok, data, config.batch, config.max_new_tokens, device)
        path = f"model/evals/{config.run_name}/{name}-step{state['step']:07d}.jsonl"
        with store.atomic_path(path) as tmp, store.fs.open(tmp, "w") as f:
            f.write(ev.to_jsonl(preds))
        card[name] = ev.scorecard(preds, rows)
        context.log.info(f"{name}: {card[name]}")
    last = "model/evals/last_scorecard.json"
    previous = None
    if store.exists(last):
        with store.fs.open(store.path(last), "r") as f:
            previous = json.load(f)["scorecard"]
    comparison = ev.compare(card, previous)
    with store.atomic_path(last) as tmp, store.fs.open(tmp, "w") as f:
        json.dump({"run_name": config.run_name, "step": state["step"], "scorecard": card}, f)
    lines = ["| eval set | metric | current | previous | delta |", "|---|---|---:|---:|---:|"]
    lines += [
        f"| {r['eval_set']} | {r['metric']} | {r['current']} | {r['previous']} | {r['delta']} |"
        for r in comparison
    ]
    return dg.MaterializeResult(
        metadata={
            "run_name": config.run_name,
            "step": state["step"],
            "scorecard": card,
            "scorecard_table": dg.MetadataValue.md(_scorecard_md(card)),
            "comparison": dg.MetadataValue.md("\n".join(lines)),
            "previous_found": previous is not None,
        }
    )


model_assets = [training_run, evaluation]
