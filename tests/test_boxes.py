"""vprim.assets.boxes: IoU of box columns, on hand-computed cases."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from vprim.assets.boxes import iou


def _cols(*boxes):
    return tuple(np.array(c, dtype=np.float64) for c in zip(*boxes))


@pytest.mark.parametrize(
    ("a", "b", "want"),
    [
        ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),  # identical
        ((0, 0, 10, 10), (5, 0, 15, 10), 50 / 150),  # half overlap along x
        ((0, 0, 10, 10), (1, 0, 11, 10), 90 / 110),  # one-pixel shift
        ((0, 0, 10, 10), (10, 0, 20, 10), 0.0),  # touching edges
        ((0, 0, 10, 10), (2, 2, 4, 4), 4 / 100),  # nested
        ((0, 0, 10, 10), (20, 20, 30, 30), 0.0),  # apart
        ((10, 10, 0, 0), (0, 0, 10, 10), 0.0),  # inverted box: area 0
        ((0, 0, 0, 0), (0, 0, 0, 0), 0.0),  # empty union
        ((math.nan, 0, 10, 10), (0, 0, 10, 10), 0.0),  # NaN coordinate
        ((0, 0, math.inf, 10), (0, 0, 10, 10), 0.0),  # infinite box: no overlap share
    ],
)
def test_iou_hand_cases(a, b, want):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NaN and inf raise no RuntimeWarning
        got = iou(_cols(a), _cols(b))
    assert got.shape == (1,)
    assert got[0] == pytest.approx(want, abs=1e-12)


def test_iou_is_elementwise_and_symmetric():
    a = _cols((0, 0, 10, 10), (0, 0, 4, 4), (0, 0, 2, 8))
    b = _cols((5, 0, 15, 10), (0, 0, 4, 4), (0, 4, 2, 12))
    want = np.array([50 / 150, 1.0, 8 / 24])
    np.testing.assert_allclose(iou(a, b), want)
    np.testing.assert_allclose(iou(b, a), want)
