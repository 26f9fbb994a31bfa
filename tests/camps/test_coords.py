"""One rounding of 0..999: ``contracts.coords`` (the camps) and the SQL macro ``to_999`` (the
lake) round halves away from zero, agree with each other and with an independent reference on
exact ties and on every integer coordinate of the widths where Python's half-to-even rounding
differed; and a counting row built from lake rows carries exactly the lake's ``boxes_999``."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pytest

from tests.camps.grid999 import grid, grid_box
from tests.lake.test_lake import box, build, write_root
from vprim.assets.camps.counting import CountingConfig
from vprim.assets.camps.runs import counting_run
from vprim.assets.contracts import layout
from vprim.assets.contracts.coords import boxes_to_999, round_half_away, to_999, to_999_array
from vprim.assets.lake import publish as P
from vprim.assets.lake.balance import BalanceConfig
from vprim.assets.sql import register_macros

#: the image sides where the camps' old half-to-even rounding disagreed with the lake
TIE_SIDES = (666, 1332, 1998, 756)


@pytest.fixture(scope="module")
def con():
    con = duckdb.connect()
    register_macros(con)
    yield con
    con.close()


def _sql(con, values, sides) -> list[int]:
    """The lake's macro on each (value, side) pair, in one query."""
    rows = con.execute(
        "SELECT to_999(v, s) FROM (SELECT unnest(?::DOUBLE[]) AS v, unnest(?::DOUBLE[]) AS s)",
        [list(map(float, values)), list(map(float, sides))],
    ).fetchall()
    return [r[0] for r in rows]


def test_halves_round_away_from_zero():
    # exact halves, both signs; the largest double below 0.5 (floor(x + 0.5) would give 1);
    # the double just below 2.5; and integers, which stay
    x = [0.5, 1.5, 2.5, 4.5, -0.5, -1.5, -2.5, 0.49999999999999994, 2.4999999999999996, 3.0, 0.0]
    assert round_half_away(np.array(x)).tolist() == [1, 2, 3, 5, -1, -2, -3, 0, 2, 3, 0]
    assert round_half_away(4.5) == 5 and round_half_away(5.5) == 6  # half to even: 4 and 6


def test_exact_ties_on_the_four_widths_hand_computed(con):
    # v / side * 999 is exactly x.5 here: 3/666 -> 4.5, 6/1332 -> 4.5, 9/1998 -> 4.5,
    # 14/756 -> 18.5, 70/756 -> 92.5, 1/1998 -> 0.5; half to even would give 4, 4, 4, 18, 92, 0
    cases = [(3, 666, 5), (6, 1332, 5), (9, 1998, 5), (14, 756, 19), (70, 756, 93), (1, 1998, 1)]
    # next to a tie: 2/666 -> 3.0, 7/1332 -> 5.25 (no tie, the same either way)
    cases += [(2, 666, 3), (7, 1332, 5)]
    # clamped to the grid
    cases += [(-5, 100, 0), (120, 100, 999), (100, 100, 999), (0, 756, 0)]
    values, sides, want = zip(*cases, strict=True)
    assert [to_999(v, s) for v, s, _ in cases] == list(want)
    assert _sql(con, values, sides) == list(want)
    assert [grid(v, s) for v, s, _ in cases] == list(want)


def test_every_integer_coordinate_of_the_tie_widths_agrees_with_the_lake(con):
    values = [v for side in TIE_SIDES for v in range(side + 1)]
    sides = [side for side in TIE_SIDES for _ in range(side + 1)]
    python = to_999_array(np.array(values), np.array(sides)).tolist()
    assert python == _sql(con, values, sides) == [grid(v, s) for v, s in zip(values, sides)]
    # the widths do hold ties where half to even differs (else this test could not fail)
    even = [min(999, max(0, round(v / s * 999))) for v, s in zip(values, sides, strict=True)]
    assert sum(p != e for p, e in zip(python, even, strict=True)) > 800


def test_random_coordinates_agree_with_the_lake_and_the_reference(con):
    rng = np.random.default_rng(7)
    sides = rng.integers(1, 4000, 5000).astype(float)
    values = np.round(rng.uniform(-0.1, 1.1, 5000) * sides * 2) / 2  # many on half pixels
    python = to_999_array(values, sides).tolist()
    assert python == _sql(con, values, sides)
    assert python == [grid(v, s) for v, s in zip(values, sides, strict=True)]


def test_boxes_to_999_scales_x_by_width_and_y_by_height():
    # 666 x 1332: x * 1.5 and y * 0.75 -> (4.5, 4.5, 13.5, 7.5) -> 5, 5, 14, 8
    assert boxes_to_999([[3, 6, 9, 10]], 666, 1332) == [[5, 5, 14, 8]]
    assert boxes_to_999(np.zeros((0, 4)), 10, 10) == []


# a camp row built from lake rows: the boxes of each image (one label each) and their grid
# boxes worked out by hand (v * 999 / side is a tie on every coordinate but two)
TIE_IMAGES = {
    # 666 x 1332: x * 1.5, y * 0.75
    "img0": (666, 1332, [((3, 6, 9, 10), [5, 5, 14, 8]),
                         ((103, 206, 305, 410), [155, 155, 458, 308])]),
    # 1998 x 756: x * 0.5, y * 999 / 756 (14 -> 18.5, 42 -> 55.5)
    "img1": (1998, 756, [((1, 14, 5, 42), [1, 19, 3, 56])]),
    # 1332 x 666: 2 -> 1.5, 1 -> 1.5, 6 -> 4.5, 3 -> 4.5
    "img2": (1332, 666, [((2, 1, 6, 3), [2, 2, 5, 5])]),
    # 756 x 1998: 70 -> 92.5, 7 -> 3.5, 98 -> 129.5, 9 -> 4.5
    "img3": (756, 1998, [((70, 7, 98, 9), [93, 4, 130, 5])]),
}  # fmt: skip


def test_a_counting_row_carries_exactly_the_lakes_boxes(tmp_path):
    boxes = [
        box("src_a", image, "car", xyxy, w=w, h=h)
        for image, (w, h, items) in TIE_IMAGES.items()
        for xyxy, _ in items
    ]
    store = write_root(tmp_path, boxes, {"src_a": "keep"})
    version = build(store, BalanceConfig(buckets=2, holdout_permille=0)).version
    P.publish(store, version)
    con = duckdb.connect()
    try:
        glob = store.url(layout.lake_samples_glob(version))
        lake = {
            image: json.loads(b)
            for image, b in con.execute(
                f"SELECT image_id, to_json(boxes_999) FROM read_parquet('{glob}')"
            ).fetchall()
        }
        res = counting_run(store, con, range(4), split="train", families=("coarse",),
                           config=CountingConfig(questions_per_image=1))  # fmt: skip
    finally:
        con.close()
    # the lake's own boxes_999 are the hand-computed ones (its rule did not change)
    assert lake == {image: [b for _, b in items] for image, (_, _, items) in TIE_IMAGES.items()}
    assert len(res.rows) == 4, res.rejects
    for row in res.rows:
        image = row["image_uri"].split("/")[3].split("?")[0]
        meta = json.loads(row["meta"])
        assert meta["boxes_999"] == sorted(lake[image]), image
        w, h, items = TIE_IMAGES[image]
        assert meta["boxes_999"] == sorted(grid_box(xyxy, w, h) for xyxy, _ in items)
