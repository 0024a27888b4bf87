"""Events from masks: runs, gap merging, severities and readable reasons."""

from datetime import datetime

import numpy as np
from numpy.testing import assert_array_equal

from processing.events import EventRow, describe_step, events_from_mask, mask_runs


def test_runs_are_found_per_row_and_merged_across_short_gaps():
    mask = np.array(
        [
            [0, 1, 1, 0, 1, 0, 0, 0, 1, 1],
            [1, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        ],
        dtype=bool,
    )
    rows, starts, ends = mask_runs(mask)
    assert_array_equal(rows, [0, 0, 0, 1, 1])
    assert_array_equal(starts, [1, 4, 8, 0, 9])
    assert_array_equal(ends, [3, 5, 10, 1, 10])
    rows, starts, ends = mask_runs(mask, max_gap=1)
    assert_array_equal(starts, [1, 8, 0, 9])
    assert_array_equal(ends, [5, 10, 1, 10])
    # A gap never merges runs of different meters.
    rows, _, _ = mask_runs(mask, max_gap=5)
    assert_array_equal(rows, [0, 1, 1])


def test_severity_peak_and_aggregates():
    score = np.array([[0.0, 3.0, -7.0, 2.0, 0.0, np.nan, 4.0]])
    mask = np.abs(np.nan_to_num(score)) > 1
    obs = np.arange(7.0)[None, :]
    ev = events_from_mask(mask, kind="spike", score=score, observed=obs, expected=1.0)
    assert_array_equal(ev.start, [1, 6])
    assert_array_equal(ev.end, [4, 7])
    assert_array_equal(ev.peak, [2, 6])
    assert_array_equal(ev.severity, [7.0, 4.0])
    assert_array_equal(ev.observed, [2.0, 6.0])
    summed = events_from_mask(mask, kind="x", observed=obs, aggregate="sum")
    assert_array_equal(summed.observed, [6.0, 6.0])
    assert_array_equal(summed.severity, [3.0, 1.0])  # no score: length in steps


def test_anomalies_carry_reasons():
    mask = np.zeros((2, 5), dtype=bool)
    mask[1, 2] = True
    ev = events_from_mask(mask, kind="spike", observed=5.0, expected=1.0)
    (a,) = ev.to_anomalies(lambda e: f"meter {e.meter_index} at {e.peak}: {e.observed:g}")
    assert (a.meter_index, a.start, a.end, a.kind) == (1, 2, 3, "spike")
    assert a.reason == "meter 1 at 2: 5"
    assert isinstance(EventRow(1, 2, 3, 2, 1.0, 1.0, 5.0), tuple)


def test_empty_mask_gives_no_events():
    ev = events_from_mask(np.zeros((3, 4), dtype=bool), kind="x", score=np.ones((3, 4)))
    assert len(ev) == 0
    assert ev.to_anomalies() == []


def test_describe_step():
    assert describe_step(27, datetime(2024, 1, 1)) == "Tuesday 03:00"  # 2024-01-01 is a Monday
    assert describe_step(6, datetime(2024, 1, 1), steps_per_hour=4) == "Monday 01:30"
