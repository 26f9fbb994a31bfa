"""The quality stage's run config reaches its decisions: thresholds set in a Dagster run."""

from __future__ import annotations

import re

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.quality.test_curate import LABEL_MAP, _boxes, _write
from vprim.assets.contracts import layout
from vprim.assets.quality.defs import QualityConfig, clean_instances, label_embeddings, label_map
from vprim.assets.quality.geometry import GeometryConfig
from vprim.assets.quality.labels import LabelConfig
from vprim.assets.storage import Storage
from vprim.resources.embedder import LabelEmbedderResource
from vprim.resources.storage import StorageResource


def test_defaults_are_the_dataclasses():
    config = QualityConfig()
    assert config.geometry.settings() == GeometryConfig()
    assert config.labels.settings() == LabelConfig()


@pytest.fixture(scope="module")
def label_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("label_map")
    vocabulary = pa.table({"raw_label": ["hamster", "Car", "obj_17", "kitty cat"]})
    Storage(str(root)).write_parquet(vocabulary, layout.VOCABULARY_PATH)
    resources = {
        "storage": StorageResource(root=str(root)),
        "embedder": LabelEmbedderResource(device="cpu"),
    }
    assert dg.materialize([label_embeddings, label_map], resources=resources).success
    return root, resources


def _label_map(root, resources, **label_config) -> dict[str, dict]:
    run_config = {"ops": {"label_map": {"config": label_config}}}
    assert dg.materialize([label_map], resources=resources, run_config=run_config).success
    table = pq.read_table(root / layout.LABEL_MAP_PATH)
    return {r["raw_label"]: r for r in table.to_pylist()}


def test_a_label_threshold_set_in_the_run_config_reaches_label_map(label_root):
    root, resources = label_root
    default = {r["raw_label"]: r for r in pq.read_table(root / layout.LABEL_MAP_PATH).to_pylist()}
    hamster = default["hamster"]
    assert hamster["reason"] == "novel_object"  # an object outside the vocabulary
    # its top-k similarity to the vocabulary, which novel_min_similarity is compared with
    similarity = float(re.search(r"object=([0-9.]+)", hamster["evidence"]).group(1))
    # just above the label's similarity: no longer an object; just below: still one
    above = _label_map(root, resources, novel_min_similarity=similarity + 0.002)
    assert above["hamster"]["reason"] == "label_unmapped"
    assert above["hamster"]["decision"] == "reject"
    below = _label_map(root, resources, novel_min_similarity=similarity - 0.002)
    assert below["hamster"]["reason"] == "novel_object"
    # rules that need no threshold do not move
    for rows in (above, below):
        assert rows["Car"]["reason"] == "canonical_match"
        assert rows["obj_17"]["reason"] == "label_gibberish"


def test_thresholds_set_in_the_run_config_reach_clean_instances(tmp_path):
    rows = (
        _boxes("mixed", "cars", 4) + _boxes("mixed", "NG", 1)  # 1 of 5 labels rejected: 0.2
        + _boxes("good", "Dog", 5, per_image=2)  # 10 clean boxes
    )  # fmt: skip
    storage = _write(tmp_path, rows, {"mixed": 5, "good": 5})
    storage.write_parquet(LABEL_MAP, layout.LABEL_MAP_PATH)
    resources = {"storage": StorageResource(root=str(tmp_path))}

    def selection(**config) -> dict[str, str | None]:
        run_config = {"ops": {"clean_instances": {"config": {"workers": 1, **config}}}}
        result = dg.materialize(
            [clean_instances], partition_key="000", resources=resources, run_config=run_config
        )
        assert result.success
        table = pq.read_table(tmp_path / layout.shard_file(layout.SELECTION_DIR, "000"))
        return dict(zip(table["source_id"].to_pylist(), table["reason"].to_pylist()))

    assert selection() == {"good": None, "mixed": None}
    # the source rule of step I, just below and just above mixed's 0.2
    assert selection(labels={"source_bad_label_fraction": 0.19})["mixed"] == "source_label_quality"
    assert selection(labels={"source_bad_label_fraction": 0.21})["mixed"] is None
    # a geometric threshold: good keeps 10 clean boxes
    assert selection(geometry={"min_clean_boxes": 11})["good"] == "source_too_few_boxes"
    assert selection(geometry={"min_clean_boxes": 10})["good"] is None
