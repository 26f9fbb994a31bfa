"""The shared parser reads the spatial camp's targets as cs_contract's interim parser does
(so switching the camps' import is safe) and the rewards score those targets 1.0."""

import json

import pytest

from assets.camps import cs_contract
from assets.camps.primitives import parse_primitives
from assets.camps.rewards import spatial_reward
from assets.camps.spatial import SpatialConfig, generate_spatial


def test_spatial_targets_parse_alike_and_oracle_scores_one():
    rows, _ = generate_spatial(range(30), SpatialConfig(), split="train")
    assert rows
    for row in rows:
        new, old = parse_primitives(row["target"]), cs_contract.parse_primitives(row["target"])
        assert new.errors == old.errors == []
        assert new.answer == old.answer == row["answer"]
        assert [(r.label, [list(b) for b in r.boxes]) for r in old.refs] == new.refs
        assert new.all_points == [list(p) for p in old.points]
        meta = json.loads(row["meta"])
        assert spatial_reward(meta, row["target"])["total"] == pytest.approx(1.0)
