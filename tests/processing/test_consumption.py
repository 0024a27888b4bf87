"""Cumulative indexes to consumption: resets are never negative consumption."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from processing.consumption import hourly_mean_power, interval_consumption


def test_reset_gives_value_after_reset():
    index = np.array([[100.0, 105.0, 111.0, 2.0, 5.0, np.nan, 9.0]])
    cons, reset = interval_consumption(index)
    assert_allclose(cons, [[np.nan, 5.0, 6.0, 2.0, 3.0, np.nan, np.nan]])
    assert_array_equal(reset, [[False, False, False, True, False, False, False]])
    bridged, _ = interval_consumption(index, bridge_gaps=True)
    assert_allclose(bridged[0, 6], 4.0)


def test_jitter_is_zero_not_reset():
    cons, reset = interval_consumption([10.0, 9.99, 12.0], jitter=0.05)
    assert_allclose(cons, [[np.nan, 0.0, 2.01]])
    assert not reset.any()


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.one_of(st.floats(-1e6, 1e9, allow_nan=False), st.just(float("nan"))),
        min_size=2,
        max_size=60,
    ),
    st.booleans(),
)
def test_resets_never_produce_negative_consumption(values, bridge):
    cons, reset = interval_consumption(np.array([values]), bridge_gaps=bridge)
    assert not (cons < 0).any()
    assert not reset[:, 0].any()


def test_hourly_mean_power():
    p = np.array([[1.0, 3.0, np.nan, np.nan, 2.0, np.nan]])
    assert_allclose(hourly_mean_power(p, steps_per_hour=2), [[2.0, np.nan, 2.0]])
