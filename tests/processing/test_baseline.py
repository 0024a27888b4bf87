"""Hour-of-week baseline: the closed form equals np.nanmedian; robust z and the scan."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose

from processing.baseline import (
    TAIL_BLOCK_STEPS,
    _block_tail,
    _block_tail_values,
    baseline_scan,
    fit_heating_term,
    hour_of_week_baseline,
    median_at,
    nan_median,
    nan_median_mad,
    nan_median_of_lags,
    robust_z,
    split_medians,
)

W = 168


def test_split_medians_take_the_halves_at_or_below_and_above_the_median():
    nan = np.nan
    v = np.array(
        [
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, nan],  # median 3.5: halves 1 2 3 and 4 5 6
            [5.0, nan, 1.0, 3.0, nan, 9.0, 3.0],  # median 3: 1 3 3 and 5 9
            [2.0, 2.0, 2.0, 2.0, nan, nan, nan],  # all at the median: nothing above
            [5.0, nan, 1.0, 3.0, nan, nan, nan],  # median 3: 1 3 and 5 alone (NaN)
            [nan, 7.0, nan, nan, nan, nan, nan],  # one value: no median
        ]
    )
    med, low, high = split_medians(v)
    assert_allclose(med, [3.5, 3.0, 2.0, 3.0, nan])
    assert_allclose(low, [2.0, 3.0, 2.0, 2.0, nan])
    assert_allclose(high, [5.0, 7.0, nan, nan, nan])


@pytest.mark.parametrize("lags", [1, 2, 3, 4, 5])
def test_nan_median_of_lags_is_nan_median_along_the_first_axis(lags: int) -> None:
    rng = np.random.default_rng(lags)
    v = np.round(rng.normal(size=(lags, 300, 24)), 1)  # ties too
    v[rng.random(v.shape) < 0.3] = np.nan
    v[0, 0, 0] = np.inf
    want = nan_median(np.moveaxis(v, 0, -1))
    assert np.isnan(want).any() and (lags == 1 or np.isfinite(want).any())
    assert_allclose(nan_median_of_lags(v), want, rtol=0, atol=0)


def test_split_medians_match_nan_median_of_each_half():
    rng = np.random.default_rng(5)
    v = np.round(rng.gamma(2.0, 5.0, (200, 60)))  # rounded: ties at the median
    v[rng.random(v.shape) < 0.2] = np.nan
    med, low, high = split_medians(v)
    above = v > med[:, np.newaxis]
    assert np.array_equal(med, nan_median(v), equal_nan=True)
    assert np.array_equal(low, nan_median(np.where(above, np.nan, v)), equal_nan=True)
    assert np.array_equal(high, nan_median(np.where(above, v, np.nan)), equal_nan=True)


def test_nan_median_is_the_median_of_nan_median_mad():
    rng = np.random.default_rng(3)
    v = rng.standard_normal((50, 7, 30))
    v[rng.random(v.shape) < 0.3] = np.nan
    v[0, 0, :] = np.nan  # no valid value
    v[0, 1, 1:] = np.nan  # one
    med = nan_median(v)
    assert np.array_equal(med, nan_median_mad(v)[0], equal_nan=True)
    assert np.isnan(med[0, :2]).all()


def _reference(x, weeks):
    """Straightforward stacked-lag nanmedian/MAD, the definition the fast path must match."""
    m, n = x.shape
    lags = np.full((m, n, weeks), np.nan)
    for k in range(weeks):
        lag = (k + 1) * W
        lags[:, lag:, k] = x[:, : n - lag]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(lags, axis=-1)
        mad = np.nanmedian(np.abs(lags - med[..., None]), axis=-1)
    few = (~np.isnan(lags)).sum(-1) < 2
    med[few] = np.nan
    mad[few] = np.nan
    return med, mad


@pytest.mark.parametrize("values", ["noise", "ties", "mostly_zero"])
def test_block_tail_equals_a_plain_partition(values):
    """The grouped selection returns exactly the partition's order statistic."""
    rng = np.random.default_rng(3)
    shape = (7, 3 * TAIL_BLOCK_STEPS + 50)  # a short last block
    if values == "noise":
        resid = rng.standard_normal(shape)
    elif values == "ties":
        resid = rng.integers(-3, 4, shape).astype(float)
    else:
        resid = np.where(rng.random(shape) < 0.97, 0.0, rng.standard_normal(shape))
    resid[rng.random(shape) < 0.01] = np.nan
    resid[0, 5] = np.inf
    for q in (0.5, 0.98, 0.999):
        padded = np.zeros((shape[0], 4 * TAIL_BLOCK_STEPS), dtype=np.float32)
        padded[:, : shape[1]] = np.nan_to_num(np.abs(resid).astype(np.float32))
        # The short last block is the series' last TAIL_BLOCK_STEPS steps that end a day.
        end = shape[1] - shape[1] % 24
        padded[:, 3 * TAIL_BLOCK_STEPS :] = padded[:, end - TAIL_BLOCK_STEPS : end]
        k = min(TAIL_BLOCK_STEPS - 1, int(q * TAIL_BLOCK_STEPS))
        per_block = np.partition(padded.reshape(shape[0], 4, -1), k, axis=2)[:, :, k]
        expected = np.repeat(per_block.astype(np.float64), TAIL_BLOCK_STEPS, axis=1)
        np.testing.assert_array_equal(_block_tail(resid, q), expected[:, : shape[1]])


def test_hour_floor_is_the_second_largest_of_four_strided_seven_day_maxima():
    """Per hour of the day: days 1, 5, 9…, days 2, 6, 10… and so on each give their
    maximum |resid|; the floor is the second largest of the four."""
    rng = np.random.default_rng(4)
    resid = rng.standard_normal((5, 2 * TAIL_BLOCK_STEPS + 30))  # short last block, mid-day
    resid[rng.random(resid.shape) < 0.01] = np.nan
    resid[2, 100] = 50.0  # one event: it raises one maximum, not the floor
    _, by_step = _block_tail_values(resid, 0.98, TAIL_BLOCK_STEPS)
    a = np.nan_to_num(np.abs(resid)).astype(np.float32)
    end = a.shape[1] - a.shape[1] % 24
    size = TAIL_BLOCK_STEPS
    for b, block in enumerate([a[:, :size], a[:, size : 2 * size], a[:, end - size : end]]):
        days = block.reshape(5, 28, 24)
        maxima = np.stack([days[:, d::4].max(axis=1) for d in range(4)], axis=1)
        np.testing.assert_array_equal(by_step[:, b], np.sort(maxima, axis=1)[:, -2])
    assert by_step[2, 0, 100 % 24] < 5.0


@pytest.mark.parametrize("weeks", [2, 3, 4, 6])
@pytest.mark.parametrize("missing", [0.0, 0.15])
def test_fast_path_equals_nanmedian(weeks, missing):
    rng = np.random.default_rng(weeks)
    x = rng.gamma(2.0, 0.5, size=(13, W * 7 + 11))
    x[rng.random(x.shape) < missing] = np.nan
    med, mad = hour_of_week_baseline(x, weeks=weeks, block_meters=4)
    ref_med, ref_mad = _reference(x, weeks)
    assert_allclose(med, ref_med, rtol=1e-12, atol=1e-12, equal_nan=True)
    assert_allclose(mad, ref_mad, rtol=1e-12, atol=1e-12, equal_nan=True)


def test_first_weeks_and_sparse_points():
    x = np.arange(W * 6, dtype=float)[None, :]
    med, _ = hour_of_week_baseline(x)
    assert np.isnan(med[0, : 2 * W]).all()  # fewer than 2 trailing weeks
    assert_allclose(med[0, 2 * W], (0 + W) / 2)
    assert_allclose(med[0, 5 * W + 3], 3 * W + 3 - W / 2)  # median of lags 1..4 weeks
    cols = np.array([2 * W, 5 * W + 3])
    assert_allclose(median_at(x, [0, 0], cols), med[0, cols])


def test_robust_z_and_scan_agree():
    rng = np.random.default_rng(1)
    x = rng.normal(10.0, 1.0, size=(5, W * 8))
    med, mad = hour_of_week_baseline(x)
    z = robust_z(x, med, mad, floor=0.01, rel_floor=0.05)
    scan = baseline_scan(x, floor=0.01, rel_floor=0.05, block_meters=2)
    assert_allclose(scan.z, z, equal_nan=True, rtol=1e-12)
    # Daily residual of the full days after the warm-up equals the sum of x − median.
    day = 40
    sl = slice(day * 24, (day + 1) * 24)
    assert_allclose(scan.daily_residual[:, day], (x[:, sl] - med[:, sl]).sum(axis=1))


def test_spike_of_eight_sigma_stands_out():
    rng = np.random.default_rng(2)
    x = rng.normal(1.0, 0.1, size=(20, W * 10))
    x[7, W * 8 + 5] += 0.8  # 8 σ
    z = baseline_scan(x).z
    assert z[7, W * 8 + 5] > 5
    assert np.nanargmax(z[7]) == W * 8 + 5


def test_temperature_term_explains_cold_snap():
    rng = np.random.default_rng(3)
    n = W * 8
    te = rng.normal(11.0, 3.0, n)  # outdoor temperature [°C]
    dh = np.maximum(16.0 - te, 0.0)  # degree-hours at the building's 16 °C balance [K·h]
    x = 0.5 + 0.2 * dh[None, :] + rng.normal(0, 0.02, (3, n))
    term = fit_heating_term(x, te)
    assert_allclose(term.bases_c[term.base_index], 16.0)
    assert_allclose(term.slope, 0.2, rtol=0.1)
    plain = baseline_scan(x).z
    adjusted = baseline_scan(x, heating=term).z
    assert np.nanstd(adjusted) < 0.5 * np.nanstd(plain)


def test_heating_term_finds_each_meters_balance_temperature():
    rng = np.random.default_rng(4)
    n = W * 10
    te = 10.0 + 6.0 * np.sin(2 * np.pi * np.arange(n) / (24 * 11)) + rng.normal(0, 1.0, n)
    bases = np.asarray([10.0, 14.0, 18.0])
    x = 0.3 + 0.15 * np.maximum(bases[:, None] - te[None, :], 0.0) + rng.normal(0, 0.02, (3, n))
    term = fit_heating_term(x, te)
    assert_allclose(term.bases_c[term.base_index], bases)
    assert_allclose(term.slope, 0.15, rtol=0.1)
    # With its own base, no building's daily use strays far from expected after the
    # baseline's first weeks (a fixed 16 °C base would heat the 10 °C one on mild days).
    scan = baseline_scan(x, heating=term)
    assert np.nanmax(np.abs(scan.daily_residual[:, 28:] / scan.daily_expected[:, 28:])) < 0.1


def test_the_heating_term_of_a_day_not_over_is_that_of_midnight():
    # A service run at 6 pm fits the term on the days it ran on at midnight: the day so
    # far (here a cold evening the meters answer twice as hard) is not fitted.
    rng = np.random.default_rng(6)
    n = W * 6
    te = 10.0 + 6.0 * np.sin(2 * np.pi * np.arange(n + 18) / (24 * 11)) + rng.normal(0, 1, n + 18)
    x = 0.3 + 0.15 * np.maximum(14.0 - te, 0.0) + rng.normal(0, 0.02, (3, n + 18))
    x[:, n:] *= 2.0
    midnight = fit_heating_term(x[:, :n], te[:n])
    evening = fit_heating_term(x, te)
    assert_allclose(evening.slope, midnight.slope, rtol=1e-12)
    assert_allclose(evening.base_index, midnight.base_index)


def test_bridged_reading_makes_the_day_whole():
    x = np.ones((1, W * 4))
    day = W * 3 + 24  # a Tuesday in the fourth week
    x[0, day + 10 : day + 12] = np.nan  # two readings lost...
    x[0, day + 12] = 3.0  # ...the next one carries their energy
    plain = baseline_scan(x)
    bridged = baseline_scan(x, bridged_gaps=True)
    d = day // 24
    assert plain.daily_residual[0, d] > 1.0  # 24 kWh read as 24/22 × 24 ≈ 26.2
    assert_allclose(bridged.daily_residual[0, d], 0.0, atol=1e-12)
    assert_allclose(bridged.daily_expected[0, d], 24.0)
    assert_allclose(bridged.daily_residual[0, d - 1], plain.daily_residual[0, d - 1])


def test_readings_not_yet_in_are_not_a_gap():
    x = np.ones((2, W * 4))
    x[1, -6:] = np.nan  # the last six hours of meter 1 have not come in yet
    scan = baseline_scan(x, bridged_gaps=True)
    # Its last day is 18 hours of readings against 18 hours of expectation, not 24.
    assert_allclose(scan.daily_residual[:, -1], [0.0, 0.0], atol=1e-12)
    assert_allclose(scan.daily_expected[:, -1], [24.0, 18.0])


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="weeks"):
        hour_of_week_baseline(np.ones((1, 10)), weeks=1)
    with pytest.raises(ValueError, match="outdoor_temp_c"):
        fit_heating_term(np.ones((1, W * 3)), np.ones(W * 2))
    term = fit_heating_term(np.ones((2, W * 3)), np.ones(W * 3))
    with pytest.raises(ValueError, match="heating"):
        baseline_scan(np.ones((1, W * 3)), heating=term)
