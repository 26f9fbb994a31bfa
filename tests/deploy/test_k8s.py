"""The Kubernetes path: the step executor's config, the Jobs it would create for each kind of
step (built by dagster-k8s's own functions from the code location's real op tags), and the
Helm values against the official chart's schema. Nothing here reaches an API server."""

from __future__ import annotations

import copy
import importlib
import json
import re

import dagster as dg
import pytest
import yaml
from dagster._config import process_config, resolve_to_config_type
from dagster._serdes.config_class import ConfigurableClassData
from dagster_k8s import K8sRunLauncher, k8s_job_executor
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import (
    UserDefinedDagsterK8sConfig,
    construct_dagster_k8s_job,
    get_k8s_job_name,
    get_user_defined_k8s_config,
)
from jsonschema import Draft202012Validator
from kubernetes.client import ApiClient
from kubernetes.utils import parse_quantity
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.deploy import DATA, deploy_yaml
from vprim.assets.settings import SettingsError, current
from vprim.assets.steps import (
    CELERY_QUEUE,
    GPU,
    SHARD_CPUS,
    duckdb_bytes,
    duckdb_step,
    k8s_executor_config,
)
from vprim.dagster_project.definitions import defs

#: what k8s_job_executor passes from its config to the step's container context (executor.py)
EXECUTOR_FIELDS = (
    "image_pull_policy",
    "image_pull_secrets",
    "service_account_name",
    "env_config_maps",
    "env_secrets",
    "env_vars",
    "volume_mounts",
    "volumes",
    "labels",
    "resources",
    "scheduler_name",
    "security_context",
)
#: a kubeconfig that names no reachable cluster: the launcher loads it, nothing connects
NO_CLUSTER = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "none", "cluster": {"server": "https://127.0.0.1:9"}}],
    "users": [{"name": "none", "user": {"token": "unused"}}],
    "contexts": [{"name": "none", "context": {"cluster": "none", "user": "none"}}],
    "current-context": "none",
}


def _processed(config_schema, value: dict) -> dict:
    result = process_config(resolve_to_config_type(config_schema), value)
    assert result.success, [error.message for error in result.errors]
    return result.value


def _executor_config(env: dict[str, str] | None = None) -> dict:
    return _processed(k8s_job_executor.config_schema.config_type, k8s_executor_config(env or {}))


@pytest.fixture(scope="module")
def launcher(tmp_path_factory) -> K8sRunLauncher:
    """dagster-k8s.yaml's run launcher as the daemon builds it, but outside a cluster."""
    kubeconfig = tmp_path_factory.mktemp("kube") / "config"
    kubeconfig.write_text(yaml.safe_dump(NO_CLUSTER))
    ref = deploy_yaml("dagster-k8s.yaml")["run_launcher"]
    config = {**ref["config"], "load_incluster_config": False, "kubeconfig_file": str(kubeconfig)}
    data = ConfigurableClassData(ref["module"], ref["class"], yaml.safe_dump(config))
    return K8sRunLauncher.from_config_value(data, _processed(K8sRunLauncher.config_type(), config))


def step_job(op_name: str, launcher: K8sRunLauncher) -> dict:
    """The Kubernetes Job that ``k8s_job_executor`` creates for the step of ``op_name``, built
    as ``K8sStepHandler.launch_step`` builds it (dagster_k8s/executor.py), as the JSON the API
    server would receive. Only the command line is a stand-in: it sets no resources."""
    tags = defs.get_assets_def(op_name).op.tags
    cfg = _executor_config()
    executor_context = K8sContainerContext(
        **{field: cfg.get(field) for field in EXECUTOR_FIELDS},
        namespace=cfg.get("job_namespace"),
        run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(cfg.get("step_k8s_config", {})),
    )
    run = dg.DagsterRun(job_name="rebuild_dataset")
    per_op = UserDefinedDagsterK8sConfig.from_dict(cfg["per_step_k8s_config"].get(op_name, {}))
    context = (
        K8sContainerContext.create_for_run(run, launcher, include_run_tags=False)
        .merge(executor_context)
        .merge(K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(tags)))
        .merge(K8sContainerContext(run_k8s_config=per_op))
    )
    job_config = context.get_k8s_job_config(cfg.get("job_image"), launcher)
    job_config = job_config.with_image("registry.example.com/vprim:test")  # the code's image
    name = f"dagster-step-{get_k8s_job_name(run.run_id, op_name)}"
    job = construct_dagster_k8s_job(
        job_config=job_config,
        args=["dagster", "api", "execute_step"],
        job_name=name,
        pod_name=name,
        component="step_worker",
        user_defined_k8s_config=context.run_k8s_config,
        labels={"dagster/job": run.job_name, "dagster/op": op_name, "dagster/run-id": run.run_id},
        env_vars=[
            {"name": "DAGSTER_RUN_JOB_NAME", "value": run.job_name},
            {"name": "DAGSTER_RUN_STEP_KEY", "value": op_name},
        ],
    )
    manifest = ApiClient().sanitize_for_serialization(job)
    assert _k8s_round_trip(manifest, "V1Job") == manifest
    return manifest


def _k8s_round_trip(obj: object, model: str) -> object:
    """``obj`` read as the kubernetes client's ``model`` and written back: a field the model
    does not have is dropped, so a misspelt field changes the result."""

    class Response:
        data = json.dumps(obj)

    api = ApiClient()
    return api.sanitize_for_serialization(api.deserialize(Response(), model))


def _pod(manifest: dict) -> tuple[dict, dict]:
    pod = manifest["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return pod, container


# -- the executor and the Jobs of each kind of step ------------------------------------------


def test_the_executor_config_is_k8s_job_executors():
    config = _executor_config()
    assert config["job_namespace"] == "vprim" and config["max_concurrent"] == 16
    assert config["retries"] == {"enabled": {}}
    assert _executor_config({"VPRIM_K8S_NAMESPACE": "vprim-staging"})["job_namespace"] == (
        "vprim-staging"
    )


@pytest.mark.parametrize("op_name", ["training_run", "evaluation"])
def test_gpu_steps_get_a_gpu_on_gpu_nodes(launcher, op_name):
    pod, container = _pod(step_job(op_name, launcher))
    assert container["resources"]["limits"][GPU] == "1"
    assert container["resources"]["requests"][GPU] == "1"
    # GPU nodes are tainted: without the toleration the pod would never be scheduled there
    assert {"key": GPU, "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert defs.get_assets_def(op_name).op.tags[CELERY_QUEUE] == "gpu"


@pytest.mark.parametrize("op_name", ["raw_instances", "clean_instances"])
def test_shard_steps_ask_for_the_cores_their_process_pools_use(launcher, op_name):
    pod, container = _pod(step_job(op_name, launcher))
    assert container["resources"] == {
        "requests": {"cpu": "2", "memory": "4Gi"},
        "limits": {"memory": "8Gi"},
    }
    env = {var["name"]: var.get("value") for var in container["env"]}
    assert env["VPRIM_WORKERS"] == str(SHARD_CPUS) == container["resources"]["requests"]["cpu"]
    assert env["VPRIM_INGEST_WORKERS"] == str(SHARD_CPUS + 1)
    assert "tolerations" not in pod and GPU not in json.dumps(container)
    assert defs.get_assets_def(op_name).op.tags[CELERY_QUEUE] == "cpu"


@pytest.mark.parametrize("op_name", ["label_vocabulary", "curation_funnel", "lake_samples"])
def test_duckdb_steps_ask_for_duckdbs_limit_and_more(launcher, op_name):
    # the tests' profile leaves VPRIM_DUCKDB_MEMORY at its default, 4GB = 3.7 GiB
    assert current().duckdb_memory == "4GB"
    _, container = _pod(step_job(op_name, launcher))
    assert container["resources"] == {
        "requests": {"cpu": "2", "memory": "6Gi"},
        "limits": {"memory": "8Gi"},
    }
    tags = defs.get_assets_def(op_name).op.tags
    # the local executor's one-at-a-time tag is still there, beside the queue
    assert (tags["vprim/memory"], tags[CELERY_QUEUE]) == ("duckdb", "cpu")


def test_a_step_without_a_kind_gets_the_executors_defaults(launcher):
    _, container = _pod(step_job("catalog", launcher))
    assert container["resources"] == {
        "requests": {"cpu": "1", "memory": "2Gi"},
        "limits": {"memory": "4Gi"},
    }
    # no queue tag: Celery's default queue "dagster"
    assert CELERY_QUEUE not in defs.get_assets_def("catalog").op.tags


def test_every_step_fits_its_limits(launcher):
    # Kubernetes refuses a pod that asks for more than its limit, and a step without a memory
    # limit could take a node's memory; the merge of launcher, executor and tags must not
    graph = defs.resolve_asset_graph()
    ops = {graph.get(key).assets_def.op.name for key in graph.get_all_asset_keys()}
    for op_name in sorted(ops):
        resources = _pod(step_job(op_name, launcher))[1]["resources"]
        requests, limits = resources["requests"], resources["limits"]
        assert "memory" in limits, op_name
        for name in requests.keys() & limits.keys():
            assert parse_quantity(requests[name]) <= parse_quantity(limits[name]), op_name


@pytest.mark.parametrize(
    ("limit", "request_gib"),
    [
        ("4GB", 6),  # 3.73 GiB, rounded up, + 2
        ("4GiB", 6),
        ("8GiB", 10),
        ("1.5 gb", 4),  # DuckDB's spelling is case-insensitive, with or without a space
        ("500MB", 3),
    ],
)
def test_duckdb_requests_follow_the_memory_setting(limit, request_gib):
    resources = duckdb_step(limit)["dagster-k8s/config"]["container_config"]["resources"]
    assert resources["requests"]["memory"] == f"{request_gib}Gi"
    assert resources["limits"]["memory"] == f"{request_gib + 2}Gi"


def test_a_bad_duckdb_memory_setting_is_one_line():
    with pytest.raises(SettingsError, match=r"^VPRIM_DUCKDB_MEMORY='lots'; expected a size"):
        duckdb_bytes("lots")


# -- the Helm values against the official chart's schema --------------------------------------


def _refs(node: object):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _under_items(node: object):
    """Every schema found under an ``items`` keyword: what a list holds."""
    if isinstance(node, dict):
        if isinstance(node.get("items"), dict):
            yield node["items"]
        for value in node.values():
            yield from _under_items(value)
    elif isinstance(node, list):
        for value in node:
            yield from _under_items(value)


def _local(node: object) -> set[str]:
    return {ref.removeprefix("#/$defs/") for ref in _refs(node) if ref.startswith("#/$defs/")}


def chart_schema() -> dict:
    return json.loads((DATA / "dagster-values.schema.json").read_text())


def as_an_override_file(schema: dict) -> dict:
    """The chart's schema as it applies to a values file Helm merges over the chart's defaults.

    A map may leave out what the defaults hold, so its ``required`` goes; a list replaces the
    default list whole, so the objects in a list keep theirs (a deployment must name its image
    and port). A map that declares its keys refuses others: the chart's templates would ignore
    a misspelt key without a word.
    """
    schema = copy.deepcopy(schema)
    in_lists, todo = set(), set().union(*map(_local, _under_items(schema)))
    while todo:
        name = todo.pop()
        in_lists.add(name)
        todo |= _local(schema["$defs"][name]) - in_lists
    schema.pop("required")
    for name, definition in schema["$defs"].items():
        if name not in in_lists:
            definition.pop("required", None)
        if definition.get("properties"):
            definition.setdefault("additionalProperties", False)
    return schema


def values_validator(schema: dict) -> Draft202012Validator:
    """A validator for ``schema`` that needs no network: Kubernetes' own definitions, which the
    chart's schema refers to by URL, accept anything here; the Kubernetes objects in our values
    are read by the kubernetes client's models instead (test_kubernetes_objects_...)."""
    documents: dict[str, dict] = {}
    for ref in _refs(schema):
        url, _, pointer = ref.partition("#/")
        if url:
            node = documents.setdefault(url, {})
            for part in pointer.split("/"):
                node = node.setdefault(part, {})
    resources = [(url, Resource(doc, DRAFT202012)) for url, doc in documents.items()]
    return Draft202012Validator(schema, registry=Registry().with_resources(resources))


def _errors(values: dict) -> list[str]:
    validator = values_validator(as_an_override_file(chart_schema()))
    return sorted(f"{e.json_path}: {e.message}" for e in validator.iter_errors(values))


def test_the_schema_copy_is_whole():
    schema = chart_schema()
    Draft202012Validator.check_schema(schema)
    assert _local(schema) <= schema["$defs"].keys()
    assert "Concurrency" in schema["$defs"]  # the chart of Dagster 1.13, not an older one


def test_the_values_validate_against_the_charts_schema():
    assert _errors(deploy_yaml("helm/values.yaml")) == []


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        # a misspelt key in a section that declares its keys
        (("runLauncher", "config", "k8sRunLauncher", "jobNamespce"), "vprim", "jobNamespce"),
        # a deployment (a list item) must be whole: Helm does not merge it with a default
        (("dagster-user-deployments", "deployments", 0, "port"), None, "'port' is a required"),
        # a value of the wrong type
        (("dagsterDaemon", "runRetries", "maxRetries"), "two", "'two' is not valid"),
    ],
)
def test_the_schema_check_is_not_blind(path, value, message):
    values = deploy_yaml("helm/values.yaml")
    node = values
    for key in path[:-1]:
        node = node[key]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    assert any(message in error for error in _errors(values)), _errors(values)


def test_kubernetes_objects_in_the_values_are_real_kubernetes_fields():
    values = deploy_yaml("helm/values.yaml")
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    for resources in (
        deployment["resources"],
        values["dagsterWebserver"]["resources"],
        launcher["runK8sConfig"]["containerConfig"]["resources"],
    ):
        assert _k8s_round_trip(resources, "V1ResourceRequirements") == resources
    for source in deployment["envSecrets"] + launcher["envSecrets"]:
        assert _k8s_round_trip(source, "V1SecretEnvSource") == source


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def test_the_values_queue_retry_and_monitor_runs_as_the_instance_files():
    values, hosts = deploy_yaml("helm/values.yaml"), deploy_yaml("dagster.yaml")
    k8s = deploy_yaml("dagster-k8s.yaml")
    daemon = values["dagsterDaemon"]
    queue = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert (
        queue["tagConcurrencyLimits"]
        == hosts["run_coordinator"]["config"]["tag_concurrency_limits"]
    )
    assert queue["maxConcurrentRuns"] == hosts["run_coordinator"]["config"]["max_concurrent_runs"]
    for helm_key, instance_key in (
        ("runRetries", "run_retries"),
        ("runMonitoring", "run_monitoring"),
    ):
        assert {_snake(k): v for k, v in daemon[helm_key].items()} == k8s[instance_key]


def test_the_values_launch_runs_as_the_kubernetes_instance_file():
    values, hosts = deploy_yaml("helm/values.yaml"), deploy_yaml("dagster.yaml")
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    config = deploy_yaml("dagster-k8s.yaml")["run_launcher"]["config"]
    assert (
        launcher["runK8sConfig"]["containerConfig"] == config["run_k8s_config"]["container_config"]
    )
    assert [s["name"] for s in launcher["envSecrets"]] == config["env_secrets"]
    assert launcher["imagePullPolicy"] == config["image_pull_policy"]
    assert (
        values["postgresql"]["postgresqlScheme"]
        == hosts["storage"]["postgres"]["postgres_db"]["scheme"]
    )
    assert values["global"]["postgresqlSecretName"] == config["postgres_password_secret"]


def test_the_user_deployment_serves_the_code_location_with_the_k8s_engine():
    values = deploy_yaml("helm/values.yaml")
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    flag, module = deployment["dagsterApiGrpcArgs"]
    assert flag == "-m" and isinstance(importlib.import_module(module).defs, dg.Definitions)
    # the settings accept the deployment's environment, and it selects the k8s engine
    profile = current(deployment["env"], deployment=False)
    assert (profile.engine, profile.root) == ("k8s", deployment["env"]["VPRIM_ROOT"])
    assert duckdb_bytes(deployment["env"]["VPRIM_DUCKDB_MEMORY"]) == 4 * 10**9
    namespaces = {
        deployment["env"]["VPRIM_K8S_NAMESPACE"],
        values["runLauncher"]["config"]["k8sRunLauncher"]["jobNamespace"],
        deploy_yaml("dagster-k8s.yaml")["run_launcher"]["config"]["job_namespace"],
        k8s_executor_config(deployment["env"])["job_namespace"],
    }
    assert namespaces == {"vprim"}
