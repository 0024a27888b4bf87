"""Data-quality rules on hand-made series."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from processing.quality import (
    counter_resets,
    flatline_mask,
    flatlines,
    impossible_jumps,
    negative,
    outages,
    quality_scan,
    zero_runs,
)


def test_flatline_needs_n_identical_values():
    x = np.array([[1, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 4.0]])
    mask = flatline_mask(x, min_steps=6)
    assert_array_equal(np.flatnonzero(mask[0]), [1, 2, 3, 4, 5, 6])
    # Two adjacent flat runs both qualify at N=5.
    assert_array_equal(np.flatnonzero(flatline_mask(x, min_steps=5)[0]), np.arange(1, 12))
    ev = flatlines(x, min_steps=6)
    assert (ev.start[0], ev.end[0], ev.observed[0]) == (1, 7, 2.0)
    with pytest.raises(ValueError, match="min_steps"):
        flatline_mask(x, min_steps=1)


def test_zeros_are_not_flatlines_but_zero_runs():
    x = np.zeros((1, 30))
    assert not flatline_mask(x).any()
    ev = zero_runs(x, min_steps=24)
    assert (ev.start[0], ev.end[0], ev.severity[0]) == (0, 30, 30.0)


def test_negative_outage_jump_reset():
    x = np.array([[1.0, -0.5, np.nan, np.nan, 50.0, 1.0]])
    assert_array_equal(negative(x).start, [1])
    out = outages(x)
    assert (out.start[0], out.end[0], out.severity[0]) == (2, 4, 2.0)
    jump = impossible_jumps(x, max_step=np.array([[10.0]]))
    assert (jump.start[0], jump.severity[0], jump.observed[0]) == (4, 5.0, 50.0)
    resets = counter_resets([[5.0, 6.0, 1.0, 2.0]])
    assert (resets.start[0], resets.expected[0], resets.observed[0]) == (2, 6.0, 1.0)


def test_scan_returns_every_rule():
    assert set(quality_scan(np.ones((2, 48)))) == {"negative", "outage", "zero_run", "flatline"}
