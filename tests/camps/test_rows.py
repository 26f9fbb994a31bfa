"""Every camp writes the one row schema through ``schema.camp_row``, its targets parse back
with the one primitive parser, the scorer's rewards give the targets 1.0, and the preview grid
draws every camp's primitives (boxes and grouped points)."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from vprim.assets.camps.counting import CountScene, generate_counting
from vprim.assets.camps.maze import generate_maze
from vprim.assets.camps.path_tracing import generate_path
from vprim.assets.camps.preview_grid import draw_primitives, grid_png
from vprim.assets.camps.primitives import format_boxes, format_points, parse_primitives
from vprim.assets.camps.rewards import REWARDS
from vprim.assets.camps.schema import rows_to_table
from vprim.assets.camps.spatial import generate_spatial
from vprim.assets.contracts.schemas import CAMP_SCHEMA


def _counting_rows() -> list[dict]:
    boxes = np.asarray([[4, 4, 20, 16], [30, 6, 44, 20], [8, 26, 24, 40], [40, 28, 60, 44]])
    scene = CountScene.from_instances(
        "k", "synthetic://s/img?w=64&h=48", 64, 48, ["car", "car", "bus", "dog"],
        boxes.astype(float), [{"colour": "red"}, {"colour": "blue"}, {}, {}],
    )  # fmt: skip
    rows, _ = generate_counting(range(6), [scene], ["car", "bus", "dog", "kite"])
    return rows


@pytest.fixture(scope="module")
def rows() -> dict[str, list[dict]]:
    return {
        "counting": _counting_rows(),
        "spatial": generate_spatial(range(4))[0],
        "maze": [generate_maze(s) for s in range(4)],
        "path_tracing": [generate_path(s) for s in range(4)],
    }


def test_rows_share_the_schema_and_targets_score_one(rows):
    for camp, rs in rows.items():
        assert rs, camp
        table = rows_to_table(rs)
        assert table.schema == CAMP_SCHEMA and set(table.column("camp").to_pylist()) == {camp}
        for r in rs:
            assert set(r) == set(CAMP_SCHEMA.names)
            p = parse_primitives(r["target"])
            assert p.errors == [] and p.answer == r["answer"], (camp, r["target"])
            meta = json.loads(r["meta"])
            assert REWARDS[camp](meta, r["target"])["total"] == pytest.approx(1.0), camp


def test_preview_grid_draws_boxes_and_grouped_points(rows):
    blank = Image.new("RGB", (999, 999), "white")
    text = format_boxes("a", [[100, 100, 300, 300]]) + format_points([[600, 600], [800, 800]])
    text += format_points([[200, 800]])  # a second point group
    drawn = np.asarray(draw_primitives(blank, text))
    for x, y in ((100, 200), (600, 600), (700, 700), (800, 800), (200, 800)):
        assert drawn[y, x].tolist() != [255, 255, 255], (x, y)
    png = grid_png([r for rs in rows.values() for r in rs[:2]], columns=4, size=120)
    assert Image.open(io.BytesIO(png)).size[0] == 4 * 124
