"""A heating meter's days explained by the weather of the same days: degree-days, yesterday's
degree-days, sunshine and the heating's onset, fitted on the trailing weeks. The reference
the level-shift CUSUM compares a home's heating days with.

The hour-of-week baseline is the right reference for hours (spikes, nights), but summed
over a day it carries the median of four noisy same-hour values and no sun: a home's daily
gas then departs from it by a median 7 % with a lag-one autocorrelation of 0.6, and a
CUSUM reads such runs as shifts. Over the same days this model departs by 3 % with an
autocorrelation of 0.2 (seed 301, bench.accuracy's city). Buildings that close are
fitted on their open days, with the morning's reheat after a closed day.
"""

from __future__ import annotations

import warnings
from typing import Final

import numpy as np
import numpy.typing as npt

from processing.baseline import HeatingTerm, fill_gaps, nan_median

FloatArray = npt.NDArray[np.float64]

DEFAULT_WINDOW_DAYS: Final = 28
# Weight of the meter's whole-series weather response in each window's fit, in days of data:
# a window without heating days (September) still knows how the home answers the cold.
DEFAULT_PRIOR_DAYS: Final = 3.0
# A series of at least LONG_SERIES_DAYS holds a heating season's turn as well as its cold:
# its response knows the heating's onset (ONSET, fitted only then) and weighs more in each
# window, LONG_PRIOR_DAYS. Over the service's eight weeks neither holds: with them, its
# false level shifts on bench.accuracy's clean city of seed 300 went from 428 to 533 (the
# onset alone 505, the weight alone 470). Over a year (bench.accuracy's year scan, seeds
# 300–315, mean precision): +0.004 with the weight at 10 alone; with the onset +0.012 at
# 3, +0.013 at 5, +0.019 at 10, +0.022 at 20 (a schedule label lost). A building's
# response to the cold holds from month to month: at 40 rather than 10, +0.011 and 2 more
# level shifts found (fifteenth session, after its night and spike rules; 20 / 25 / 30:
# +0.004 / +0.007 / +0.007 and 3 / 3 / 2 more; 60: +0.007 and 6 fewer; 120: +0.005).
LONG_SERIES_DAYS: Final = 180
LONG_PRIOR_DAYS: Final = 40.0
MIN_READ_SHARE: Final = 0.75  # of a window's days (open days) read for a fit to count
BLOCK_METERS: Final = 64  # a block's (meters, days, p, p) normal equations stay a few MB
# Features of a day: its share of a whole day (the intercept), degree-days, the previous
# day's degree-days (the building's inertia), sunshine on heating days and the heating's
# onset (ONSET: degree-days within the band above the balance temperature).
FEATURES: Final = 5
SUN: Final = 3
ONSET: Final = 4
_RIDGE: Final = 1e-6  # of each feature's own scale: a column that is all zero fits as 0


def _long_series(days: int) -> bool:
    """Whether a series of ``days`` days is long enough to fit the heating's onset and to
    weigh its whole-series response at :data:`LONG_PRIOR_DAYS` (see there)."""
    return days >= LONG_SERIES_DAYS


def daily_features(
    term: HeatingTerm,
    day_starts: npt.ArrayLike,
    steps: int,
    *,
    steps_per_hour: int = 1,
    sun_w_m2: npt.ArrayLike | None = None,
    closed: npt.ArrayLike | None = None,
    until: npt.ArrayLike | None = None,
    onset: bool | None = None,
    felt_degree_days: npt.ArrayLike | None = None,
) -> FloatArray:
    """Per-meter daily regressors, shape (meters, days, p).

    Parameters
    ----------
    term : HeatingTerm
        Each meter's balance temperature and the degree-hours at every base.
    day_starts : array_like of int, shape (days,)
        First step of each day (the last day may be short).
    steps : int
        Steps in the series.
    sun_w_m2 : array_like, optional, shape (steps,)
        Global horizontal irradiance [W/m²] (gaps filled linearly); without it the sun
        column is 0.
    closed : array_like of bool, optional, shape (days,)
        Days the buildings close (weekends, public holidays): one more column.
    until : array_like of int, optional, shape (meters,)
        One past each meter's last reading (:func:`reading_until`): a meter behind the
        others has a day that is not over for it, whose regressors stop there too.
    onset : bool, optional
        Fill the onset column (else 0); default: over :data:`LONG_SERIES_DAYS` days or more.
    felt_degree_days : array_like, optional, shape (meters, days)
        Each meter's degree-days of the weather its building feels, to the same ``until``
        (:meth:`processing.felt_weather.FeltWeather.meters_degree_days`) [K·day]: they
        replace the outdoor air's at the term's balance temperature, and days with any
        count as heating days for the sun column. NaN rows keep the air's.

    Returns
    -------
    ndarray
        ``[share of a day, degree-days, previous day's degree-days, sun on heating days,
        onset]`` in [-], [K·day], [K·day], [kWh/m²], [K·day], sums over each day's steps
        (a short last day has a short intercept and degree-days, and its share of the
        previous day's); with ``closed``, also
        ``[day after a closed one]``: a building back from its setback reheats its mass
        that morning.

    Notes
    -----
    The onset is the degree-days between the meter's balance temperature and the next
    base up in ``term.bases_c`` (2 K with the default bases; none at the highest): each
    hour counts ``min(max(next − Te, 0), next − base)``. One balance temperature starts
    the heating at once; a building starts over a few degrees, as its sunny and occupied
    hours stop covering its losses. With the onset the fit bends there (bench.accuracy's
    year scan, seeds 300–315: mean precision +0.019, 16 more level shifts found, fewer
    false ones in autumn and spring). On a cold day the onset is the whole band, so a
    window of cold days cannot tell it from the intercept: ``trailing_weather_fit`` holds
    its coefficient to the series' (see there). A short series has too few days near the
    balance temperature to learn it (see :data:`LONG_SERIES_DAYS`).
    """
    starts = np.asarray(day_starts, dtype=np.int64)
    meters = term.base_index.size
    stop = np.full(meters, steps) if until is None else np.asarray(until, dtype=np.int64)
    if stop.shape != (meters,):
        raise ValueError(f"until: expected shape ({meters},), got {stop.shape}")
    lo = np.minimum(starts[np.newaxis, :], stop[:, np.newaxis])  # (meters, days)
    hi = np.minimum(np.append(starts[1:], steps)[np.newaxis, :], stop[:, np.newaxis])
    cum_dh = _cumulative_degree_hours(term)
    base = term.base_index[:, np.newaxis]
    dd_m = (cum_dh[base, hi] - cum_dh[base, lo]) / 24.0  # [K·day]
    air_dd = dd_m  # the outdoor air's, which the onset band is measured from
    if felt_degree_days is not None:
        felt = np.asarray(felt_degree_days, dtype=np.float64)
        if felt.shape != dd_m.shape:
            raise ValueError(f"felt_degree_days: expected shape {dd_m.shape}, got {felt.shape}")
        dd_m = np.where(np.isnan(felt[:, :1]), air_dd, felt)
    p = FEATURES + (0 if closed is None else 1)
    out = np.zeros((meters, starts.size, p))
    out[:, :, 0] = (hi - lo) / (24 * steps_per_hour)
    out[:, :, 1] = dd_m
    out[:, 1:, 2] = dd_m[:, :-1]
    out[:, 0, 2] = dd_m[:, 0]  # the day before the window: as the first day
    out[:, :, 2] *= out[:, :, 0]  # a short day carries as short a share of the day before's
    if sun_w_m2 is not None:
        g = np.asarray(sun_w_m2, dtype=np.float64).reshape(-1)
        if g.size != steps:
            raise ValueError(f"sun_w_m2: expected shape ({steps},), got ({g.size},)")
        g = np.nan_to_num(fill_gaps(g))
        cum_g = np.append(0.0, np.cumsum(g)) / steps_per_hour / 1000.0  # [kWh/m²]
        out[:, :, SUN] = np.where(dd_m > 0, cum_g[hi] - cum_g[lo], 0.0)
    fill_onset = _long_series(starts.size) if onset is None else onset
    if fill_onset:
        up = _band_top(term)[:, np.newaxis]
        out[:, :, ONSET] = (cum_dh[up, hi] - cum_dh[up, lo]) / 24.0 - air_dd
    if closed is not None:
        c = np.asarray(closed, dtype=np.float64).reshape(-1)
        if c.size != starts.size:
            raise ValueError(f"closed: expected shape ({starts.size},), got ({c.size},)")
        out[:, 1:, FEATURES] = c[:-1]
    return out


# Days without heating (summer's hot water, a school's kitchen) are read against the days
# without heating of the BASE_WINDOW_DAYS before them, BASE_MIN_DAYS of them at least
# (see :func:`base_day_reference`).
BASE_WINDOW_DAYS: Final = 28
BASE_MIN_DAYS: Final = 8


def no_heating_days(
    term: HeatingTerm, day_starts: npt.ArrayLike, steps: int
) -> npt.NDArray[np.bool_]:
    """Days without heating, shape (meters, days): no degree-days at the top of the
    heating's onset band (the next base above each meter's balance temperature, see
    :func:`daily_features`) that day, nor at the balance temperature the day before."""
    bounds = np.append(np.asarray(day_starts, dtype=np.int64), steps)
    cum_dh = _cumulative_degree_hours(term)
    per_day = cum_dh[:, bounds[1:]] - cum_dh[:, bounds[:-1]]  # (bases, days)
    own = per_day[term.base_index]
    before = np.concatenate((own[:, :1], own[:, :-1]), axis=1)
    return np.asarray((per_day[_band_top(term)] == 0) & (before == 0))


def _cumulative_degree_hours(term: HeatingTerm) -> FloatArray:
    """Degree-hours summed from the series' start at every base, behind a column of zeros:
    shape (bases, steps + 1), so a day's are two lookups."""
    zero = np.zeros((term.degree_hours.shape[0], 1))
    return np.concatenate((zero, np.cumsum(term.degree_hours, axis=1)), axis=1)


def _band_top(term: HeatingTerm) -> npt.NDArray[np.intp]:
    """Each meter's row of the base above its balance temperature, the top of the
    heating's onset band (its own row at the highest base: no band)."""
    top = np.minimum(term.base_index + 1, term.degree_hours.shape[0] - 1)
    return np.asarray(top, dtype=np.intp)


def base_day_reference(
    observed: npt.ArrayLike,
    base_days: npt.ArrayLike,
    *,
    window_days: int = BASE_WINDOW_DAYS,
    min_days: int = BASE_MIN_DAYS,
) -> FloatArray:
    """Expected use of each day without heating: the median use of the days without
    heating read among the ``window_days`` days before it.

    The weather model fits its intercept with the heating days of its window: after a cool
    spell a school's summer days, 12.8 kWh of hot water each, are expected at −2 or +4
    (bench.accuracy's seed 302), and its whole year's σ is the winter's. A change of
    the hot water by half is then under a σ; against the days like it, it is many.

    Parameters
    ----------
    observed : array_like, shape (meters, days)
        Daily use [unit/day]; NaN where not read.
    base_days : array_like of bool, shape (meters, days)
        The days without heating (:func:`no_heating_days`, open days only for a building
        that closes).
    window_days, min_days : int
        The trailing days read, and the fewest days without heating among them.

    Returns
    -------
    ndarray, shape (meters, days)
        NaN on other days and where fewer than ``min_days`` are there.
    """
    y = np.asarray(observed, dtype=np.float64)
    base = np.asarray(base_days, dtype=bool) & ~np.isnan(y)
    out = np.full(y.shape, np.nan)
    rows, cols = np.nonzero(base)
    if not rows.size:
        return out
    # Only the base days' windows are gathered: (base days, window_days), not the year's.
    pad = np.concatenate((np.full((y.shape[0], window_days), np.nan), y), axis=1)
    np.copyto(pad[:, window_days:], np.nan, where=~base)
    lags = np.arange(window_days)[np.newaxis, :]
    windows = pad[rows[:, np.newaxis], cols[:, np.newaxis] + lags]  # days d − window … d − 1
    enough = window_days - np.isnan(windows).sum(axis=1) >= min_days
    out[rows[enough], cols[enough]] = nan_median(windows[enough])
    return out


def reading_until(x: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """One past each meter's last reading, shape (meters,) (0 for a meter with none): a
    meter behind the others, or a run before the hour's data came in, has a day not over."""
    ok = ~np.isnan(np.asarray(x, dtype=np.float64))
    until = ok.shape[1] - np.argmax(ok[:, ::-1], axis=1)
    return np.asarray(np.where(ok.any(axis=1), until, 0), dtype=np.int64)


def daily_use(
    x: npt.ArrayLike,
    day_starts: npt.ArrayLike,
    *,
    bridged_gaps: bool,
    until: npt.ArrayLike | None = None,
) -> FloatArray:
    """Each meter's use per day, shape (meters, days) [unit/day over the day's steps].

    Parameters
    ----------
    x : array_like, shape (meters, steps)
        Use per step; NaN where no reading.
    day_starts : array_like of int, shape (days,)
        First step of each day (the last day may be short).
    bridged_gaps : bool
        A register's reading after a gap carries the gap's energy: the day's use is the
        plain sum of its readings. Otherwise the valid steps' sum is scaled to the day.
    until : array_like of int, optional, shape (meters,)
        One past each meter's last reading (:func:`reading_until`): its day ends there.

    Returns
    -------
    ndarray
        NaN for a day with fewer than half of a day's steps read, a day not over too, and
        after a meter's last reading.

    Notes
    -----
    A day not over is expected from its hours so far as a share of the day (its intercept)
    and their degree-hours, though a home burns little gas at night and much at 7 am: over
    a few hours the share misses by more than a day's noise. Once half a day is read it
    misses by little (bench.accuracy's level shifts cut two days after they start, 16
    seeds: false alarms at those cuts on the clean cities 5.4 % → 2.1 %).
    """
    a = np.asarray(x, dtype=np.float64)
    starts = np.asarray(day_starts, dtype=np.int64)
    steps = a.shape[1]
    stop = np.full(a.shape[0], steps) if until is None else np.asarray(until, dtype=np.int64)
    lo = np.minimum(starts[np.newaxis, :], stop[:, np.newaxis])
    length = np.minimum(np.append(starts[1:], steps)[np.newaxis, :], stop[:, np.newaxis]) - lo
    ok = ~np.isnan(a)
    total = np.add.reduceat(np.where(ok, a, 0.0), starts, axis=1)
    count = np.add.reduceat(ok, starts, axis=1, dtype=np.float64)
    day = starts[1] - starts[0] if starts.size > 1 else steps  # a whole day's steps
    enough = (length > 0) & (count >= 0.5 * day)
    with np.errstate(invalid="ignore", divide="ignore"):
        use = total if bridged_gaps else total * length / count
    return np.asarray(np.where(enough, use, np.nan), dtype=np.float64)


def trailing_weather_fit(
    observed: npt.ArrayLike,
    features: npt.ArrayLike,
    *,
    window_days: int = DEFAULT_WINDOW_DAYS,
    prior_days: float | None = None,
    skip: npt.ArrayLike | None = None,
) -> FloatArray:
    """Expected use of each day from a least-squares fit on the ``window_days`` days before it.

    Parameters
    ----------
    observed : array_like, shape (meters, days)
        Daily use [unit/day]; NaN days are left out of the fits.
    features : array_like, shape (meters, days, p)
        Regressors of each day, the first one the intercept (:func:`daily_features`).
    window_days : int
        Trailing days of each fit; the day itself is not one of them.
    prior_days : float, optional
        Each window's weather coefficients are pulled towards the meter's whole-series
        response (:func:`global_response`) as much as this many days of data would; 0 fits
        each window alone. Default: :data:`LONG_PRIOR_DAYS` over :data:`LONG_SERIES_DAYS`
        days or more, else :data:`DEFAULT_PRIOR_DAYS`.
    skip : array_like of bool, optional, shape (days,)
        Days neither fitted nor expected (a closing building's closed days). A last day
        that no meter has read whole (a window ending before midnight) is expected, not
        fitted: the prior is that of the series without it.

    Returns
    -------
    ndarray, shape (meters, days)
        ``features[d] · β_d`` with β_d fitted on days ``d − window_days … d − 1``, its
        weather part (all but the intercept) floored at 0; NaN over
        the first ``window_days`` days, on skipped days, and where fewer than
        ``MIN_READ_SHARE`` of the window's days that are not skipped have a reading.

    Notes
    -----
    Every window's normal equations are differences of cumulative sums of the products of
    the regressors, solved for a block of meters and all its days in one batched call: no
    loop over days. A small ridge, relative to each regressor's own sum of squares, keeps
    windows whose column is all zero (the sun on heating days, in a summer window) solvable.
    """
    y = np.asarray(observed, dtype=np.float64)
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 3 or f.shape[:2] != y.shape:
        raise ValueError(f"features: expected shape {y.shape} + (p,), got {f.shape}")
    if window_days < 2:
        raise ValueError(f"window_days: must be >= 2, got {window_days}")
    days = y.shape[1]
    # A window that ends before midnight (a service's run at 6 pm) has a last day no meter
    # has read whole: the fits over the whole series (the response and its weight) stop
    # before it, so every day before it expects what the run at midnight expected. (The
    # prior's weight is chosen on ``days``, as ``daily_features`` chose the onset column.)
    fitted = days - 1 if days > 1 and not np.any(f[:, -1, 0] == 1.0) else days
    if prior_days is None:
        prior_days = LONG_PRIOR_DAYS if _long_series(days) else DEFAULT_PRIOR_DAYS
    if prior_days < 0:
        raise ValueError(f"prior_days: must be >= 0, got {prior_days}")
    off = np.zeros(days, dtype=bool) if skip is None else np.asarray(skip, dtype=bool)
    if off.shape != (days,):
        raise ValueError(f"skip: expected shape ({days},), got {off.shape}")
    y = np.where(off[np.newaxis, :], np.nan, y)
    # Days a window could have read: a closing building's windows hold five in seven.
    cum = np.append(0, np.cumsum(~off))
    hi = np.arange(days)
    could = cum[hi] - cum[np.maximum(hi - window_days, 0)]
    out = np.empty(y.shape)
    for i in range(0, y.shape[0], BLOCK_METERS):
        j = min(i + BLOCK_METERS, y.shape[0])
        out[i:j] = _fit_block(
            y[i:j], f[i:j], window_days, prior_days, MIN_READ_SHARE * could, fitted=fitted
        )
    out[:, off] = np.nan
    return out


def _fit_block(
    y: FloatArray,
    f: FloatArray,
    window_days: int,
    prior_days: float,
    min_read: FloatArray,
    *,
    fitted: int,
) -> FloatArray:
    """:func:`trailing_weather_fit` of one block of meters; ``min_read`` (days,) is the
    fewest read days a window may hold; the prior reads the first ``fitted`` days."""
    m, days, p = f.shape
    ok = ~np.isnan(y)
    fo = np.where(ok[:, :, np.newaxis], f, 0.0)
    iu = np.triu_indices(p)
    prods = np.concatenate(
        (
            fo[:, :, iu[0]] * fo[:, :, iu[1]],
            fo * np.where(ok, y, 0.0)[:, :, np.newaxis],
            ok[:, :, np.newaxis],
        ),
        axis=2,
    )
    cum = np.concatenate((np.zeros((m, 1, prods.shape[2])), np.cumsum(prods, axis=1)), axis=1)
    hi = np.arange(days)  # the window of day d is [d − window_days, d)
    win = cum[:, hi] - cum[:, np.maximum(hi - window_days, 0)]
    n_tri = iu[0].size
    xtx = np.empty((m, days, p, p))
    xtx[:, :, iu[0], iu[1]] = win[:, :, :n_tri]
    xtx[:, :, iu[1], iu[0]] = win[:, :, :n_tri]
    xty = win[:, :, n_tri : n_tri + p]
    _add_ridge(xtx)
    if prior_days > 0:
        # Pulled towards the meter's response over the series (as much as ``prior_days``
        # days of data would weigh): a window without heating days still knows the slope,
        # and a weather regressor on for only a few of the window's days (a sunny spell)
        # cannot take up a change of level that started with them.
        weather = np.where(ok[:, :fitted, np.newaxis], f[:, :fitted, 1:], np.nan)
        with warnings.catch_warnings():
            # A meter without a reading in the window has no spread: no prior (0).
            warnings.simplefilter("ignore", RuntimeWarning)
            lam = prior_days * np.nan_to_num(np.nanvar(weather, axis=1))  # (m, p − 1)
            # The onset is the whole band on every cold day: over a winter it hardly
            # varies, yet a window of cold days leaves its split with the intercept to the
            # prior. It is weighed by its size, not its spread (by its spread, a winter's
            # series would hand the split to the ridge, and a mild day after it would
            # expect less than the hot water: the test of a mild sunny day).
            if p > ONSET:
                band = weather[:, :, ONSET - 1]
                lam[:, ONSET - 1] = prior_days * np.nan_to_num(np.nanmean(band * band, axis=1))
        weather_diag = np.arange(1, p)
        xtx[:, :, weather_diag, weather_diag] += lam[:, np.newaxis, :]
        response = global_response(y[:, :fitted], f[:, :fitted], window_days=window_days)
        xty[:, :, 1:] += (lam * response)[:, np.newaxis, :]
    beta = np.linalg.solve(xtx, xty[..., np.newaxis])[..., 0]
    # Heating cannot go below none: on a mild sunny day the sun's coefficient, learnt on
    # cold days, would take the expectation under the hot water the meter always draws.
    heating = np.einsum("mdp,mdp->md", f[:, :, 1:], beta[:, :, 1:])
    expected: FloatArray = f[:, :, 0] * beta[:, :, 0] + np.maximum(heating, 0.0)
    # A fit needs a whole window behind it, three quarters read: on fewer days (the start of
    # a service's window, the weeks after an outage) it is loose enough to make shifts.
    expected[win[:, :, -1] < min_read] = np.nan
    expected[:, :window_days] = np.nan
    return expected


def global_response(
    observed: npt.ArrayLike, features: npt.ArrayLike, *, window_days: int = DEFAULT_WINDOW_DAYS
) -> FloatArray:
    """Each meter's response to the weather regressors (all but the intercept), shape
    (meters, p − 1): least squares of each whole day's departure from its trailing weeks'
    mean use on its regressors' departure from theirs, so that a slow change of level does
    not bias it.

    The last ``window_days`` days are left out when the series holds more than twice as
    many: a change in the latest weeks that came with a change of weather would otherwise
    teach the response its own size (a shift that began with a sunny week read as sun).
    """
    y = np.asarray(observed, dtype=np.float64)
    f = np.asarray(features, dtype=np.float64)
    ok = ~np.isnan(y)
    weather = f[:, :, 1:]
    y_bar = _trailing_means(y, ok, window_days)
    f_bar = _trailing_means(weather, ok, window_days)
    use = ok & ~np.isnan(y_bar) & (f[:, :, 0] == 1.0)
    if use.shape[1] > 2 * window_days:
        use[:, -window_days:] = False
    dx = np.where(use[:, :, np.newaxis], weather - f_bar, 0.0)
    dy = np.where(use, y - y_bar, 0.0)
    xtx = np.einsum("mdp,mdq->mpq", dx, dx)
    _add_ridge(xtx)
    beta: FloatArray = np.linalg.solve(xtx, np.einsum("mdp,md->mp", dx, dy)[..., np.newaxis])
    return beta[..., 0]


def _trailing_means(a: FloatArray, ok: npt.NDArray[np.bool_], window_days: int) -> FloatArray:
    """Mean of ``a[:, d − window_days : d]`` over the valid days, along axis 1; NaN where
    fewer than half are valid. ``a`` is (meters, days) or (meters, days, p)."""
    w = ok if a.ndim == 2 else ok[:, :, np.newaxis]
    zero = np.zeros_like(a[:, :1])
    tot = np.concatenate((zero, np.cumsum(np.where(w, a, 0.0), axis=1)), axis=1)
    cnt: FloatArray = np.concatenate(
        (np.zeros((ok.shape[0], 1)), np.cumsum(ok, axis=1, dtype=np.float64)), axis=1
    )
    hi = np.arange(a.shape[1])
    lo = np.maximum(hi - window_days, 0)
    n: FloatArray = cnt[:, hi] - cnt[:, lo]
    if a.ndim == 3:
        n = n[:, :, np.newaxis]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean: FloatArray = np.where(n >= window_days / 2, (tot[:, hi] - tot[:, lo]) / n, np.nan)
    return mean


def event_least_squares(xv: FloatArray, yv: FloatArray) -> FloatArray:
    """Coefficients (events, p) of the least-squares fits of ``yv`` (events, days) on
    ``xv`` (events, days, p), days weighted in already (0: not read)."""
    xtx = np.einsum("eip,eiq->epq", xv, xv)
    _add_ridge(xtx)  # an all-zero column fits as 0
    beta: FloatArray = np.linalg.solve(xtx, np.einsum("eip,ei->ep", xv, yv)[..., np.newaxis])[
        ..., 0
    ]
    return beta


def _add_ridge(xtx: FloatArray) -> None:
    """Adds :data:`_RIDGE` of each diagonal term, and a tiny constant, to the diagonals of
    the normal matrices ``xtx`` (..., p, p), in place: a column that is all zero fits as 0."""
    diag = np.arange(xtx.shape[-1])
    xtx[..., diag, diag] *= 1.0 + _RIDGE
    xtx[..., diag, diag] += 1e-12
