"""Schedule misuse: heating or baseload on at night, at weekends and on holidays."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Final

import numpy as np
import numpy.typing as npt

from processing.baseline import (
    MAD_TO_SIGMA,
    HeatingTerm,
    as_matrix,
    nan_median,
    nan_median_mad,
)
from processing.detector_config import DetectorConfig
from processing.events import (
    Anomaly,
    AnomalyEvents,
    mask_runs,
    segment_index,
    step_time,
)
from processing.local_time import hour_mask, step_calendar, weekend_and_holiday
from processing.shifts import SegmentMeans

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def _window_means(
    x: FloatArray,
    starts: IntArray,
    ends: IntArray,
    block_meters: int = 32,
    *,
    bridged: bool = False,
) -> FloatArray:
    """NaN-ignoring mean of each meter over contiguous step windows; NaN if < half valid.

    ``bridged``: the series is a register's, whose reading after a gap carries the gap's
    energy, so the window's sum is divided by its length rather than by its valid steps.
    """
    (out,) = _window_means_of_sets(x, [(starts, ends)], block_meters, bridged=bridged)
    return out


class _WindowSet:
    """Cut points of one set of windows, for :func:`_window_means_of_sets`: each window is
    summed as the segment from its start to the next cut."""

    def __init__(self, starts: IntArray, ends: IntArray, n: int) -> None:
        cuts = np.unique(np.concatenate((starts, ends, [0])))
        self.cuts = cuts[cuts < n]
        self.pick = np.searchsorted(self.cuts, starts)
        self.length = (ends - starts).astype(np.float64)
        self.first = self.cuts[self.pick] if self.pick.size else self.pick
        self.stop = np.append(self.cuts[1:], n)[self.pick]  # end of each window's segment


def _shared_cuts(sets: Sequence[_WindowSet], n: int) -> tuple[IntArray, list[IntArray]] | None:
    """The union of the sets' cuts and where each set's windows fall in it, when no cut of
    one set falls inside a window of another (nights and closed daytimes never meet): one
    ``reduceat`` then sums every window, each over the same steps as alone."""
    cuts = np.unique(np.concatenate([ws.cuts for ws in sets]))
    stops = np.append(cuts[1:], n)
    picks = [np.searchsorted(cuts, ws.first) for ws in sets]
    same = all(np.array_equal(stops[p], ws.stop) for p, ws in zip(picks, sets, strict=True))
    return (cuts, picks) if same else None


def _resum_gaps(xb: FloatArray, ws: _WindowSet, total: FloatArray, count: FloatArray) -> None:
    """Sums and valid counts, in place, of the windows whose plain sum is NaN (a gap in
    them), with their gaps as 0: the same ``reduceat`` over the same steps, and so the same
    rounding, as a sum over a zero-filled copy of the block. Gaps are sparse."""
    rows, wins = np.divmod(np.flatnonzero(np.isnan(total)), total.shape[1])
    seg_len = ws.stop[wins] - ws.first[wins]
    if 4 * int(seg_len.sum()) > xb.size:
        # Long windows (a whole year for the mean use): a zero-filled copy costs less than
        # gathering their steps.
        gaps = np.isnan(xb)
        filled = np.where(gaps, 0.0, xb)
        total[...] = np.add.reduceat(filled, ws.cuts, axis=1)[:, ws.pick]
        count -= np.add.reduceat(gaps, ws.cuts, axis=1, dtype=np.int64)[:, ws.pick]
        return
    for length in np.unique(seg_len).tolist():  # a loop over window lengths, not windows
        pick = seg_len == length
        r, w = rows[pick], wins[pick]
        seg = xb[r[:, np.newaxis], ws.first[w][:, np.newaxis] + np.arange(length)]
        gaps = np.isnan(seg)
        seg[gaps] = 0.0
        total[r, w] = np.add.reduceat(seg, np.zeros(1, dtype=np.int64), axis=1)[:, 0]
        count[r, w] -= gaps.sum(axis=1)


def _window_means_of_sets(
    x: FloatArray,
    windows: Sequence[tuple[IntArray, IntArray]],
    block_meters: int = 32,
    *,
    bridged: bool = False,
) -> list[FloatArray]:
    """:func:`_window_means` of several sets of ``(starts, ends)`` in one pass over ``x``:
    each window summed over the same steps (so rounded) as its set alone."""
    m, n = x.shape
    sets = [_WindowSet(starts, ends, n) for starts, ends in windows]
    outs = [np.empty((m, ws.pick.size)) for ws in sets]
    shared = _shared_cuts(sets, n) if len(sets) > 1 else None
    # Blocks of meters keep each block in cache for the sums and the regathered gaps; the
    # sums run on the series as they are (no zero-filled copy, no gap mask): only the few
    # windows that come out NaN are summed again.
    for i in range(0, m, block_meters):
        xb = x[i : i + block_meters]
        if shared is None:
            totals = [np.add.reduceat(xb, ws.cuts, axis=1)[:, ws.pick] for ws in sets]
        else:
            every = np.add.reduceat(xb, shared[0], axis=1)
            totals = [every[:, pick] for pick in shared[1]]
        for ws, out, total in zip(sets, outs, totals, strict=True):
            count = np.repeat((ws.stop - ws.first)[np.newaxis, :].astype(np.float64), len(xb), 0)
            _resum_gaps(xb, ws, total, count)
            out[i : i + len(xb)] = np.divide(
                total,
                ws.length if bridged else count,
                out=np.full(total.shape, np.nan),
                where=count >= 0.5 * ws.length,
            )
    return outs


def _typical_night_level(
    night_mean: FloatArray, night_period: IntArray, n_periods: int
) -> FloatArray:
    """Median night mean of each meter in each reference period, shape (meters, periods).

    Periods with fewer than two valid nights fall back to the median over all nights.
    """
    m, n = night_mean.shape
    first = np.searchsorted(night_period, np.arange(n_periods))
    pos = np.arange(n) - first[night_period]
    width = int(pos.max(initial=0)) + 1
    grouped = np.full((m, n_periods, width), np.nan)
    grouped[:, night_period, pos] = night_mean
    typical = nan_median(grouped)
    overall = nan_median(night_mean)
    return np.where(np.isnan(typical), overall[:, np.newaxis], typical)


def _group_typical(values: FloatArray, group: IntArray, n_groups: int) -> FloatArray:
    """Per-window median of ``values`` over the windows of the same group, (meters, windows)."""
    if values.shape[1] == 0:
        return values.copy()
    order = np.argsort(group, kind="stable")  # the grouping wants groups in ascending order
    typical = _typical_night_level(values[:, order], group[order], n_groups)
    return np.asarray(typical[:, group], dtype=np.float64)


WEATHER_BIN_WINDOWS: Final = 20  # windows per weather bin of a heating meter's schedule check


def _weather_bins(weather: FloatArray, per_bin: int) -> tuple[IntArray, int]:
    """Bins of about ``per_bin`` windows with similar ``weather`` (e.g. mean degree-hours),
    by rank so every bin is equally full; one bin for fewer than ``2·per_bin`` windows."""
    n = weather.size
    n_bins = int(np.clip(n // per_bin, 1, None))
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(weather, kind="stable")] = np.arange(n)
    return (rank * n_bins) // max(n, 1), n_bins


SCHEDULE_LEVEL_FLOOR: Final = 0.5  # share of the typical expected window added to the level


def _weather_corrected_excess(
    mean: FloatArray,
    dh: FloatArray | None,
    period: IntArray,
    n_periods: int,
    *,
    split: IntArray | None = None,
    sun: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Excess of each window over the meter's typical window of its period, corrected for
    degree-hours; returns (excess, expected, robust σ per window) [unit per step].

    ``dh`` holds the windows' mean degree-hours at several balance temperatures, shape
    (bases, windows). With it, the typical window is that of windows with similar weather
    (bins of ``WEATHER_BIN_WINDOWS`` by the degree-hours at the highest base) rather than of
    the same weeks: night heating behind a setback is far from linear in the cold, and a
    cold night is best compared with nights as cold. ``split`` (0/1 per window) further
    separates two sorts of window, e.g. nights after an open and after a closed day. What
    the bin leaves is corrected by ``mean − typical = β·(dh_b − typical dh_b) + e``, β
    fitted per meter through the origin at each base b, keeping the base that explains the
    most. With ``sun`` (mean irradiance of each window's day [W/m²]), what is left is also
    corrected for the day's sunshine (:func:`_sun_term`). σ is relative: 1.4826·MAD of
    ``e / level`` per meter, times each window's level.
    """
    if dh is not None:
        # Heating meters: the windows of similar weather, not of the same weeks.
        period, n_periods = _weather_bins(dh[-1], WEATHER_BIN_WINDOWS)
    if split is not None and split.any():
        period, n_periods = period * 2 + split, n_periods * 2
    typical = _group_typical(mean, period, n_periods)
    resid = mean - typical
    expected = typical
    if dh is not None:
        d = dh - _group_typical(dh, period, n_periods)  # (bases, windows)
        ok = ~np.isnan(resid)
        r0 = np.where(ok, resid, 0.0)
        d0 = np.nan_to_num(d)
        sxy = r0 @ d0.T  # (meters, bases)
        sxx = ok.astype(np.float64) @ (d0 * d0).T
        beta = np.divide(sxy, sxx, out=np.zeros_like(sxy), where=sxx > 0)
        beta = np.maximum(beta, 0.0)  # heating only ever adds use in the cold
        best = np.argmax(beta * sxy, axis=1)
        rows = np.arange(mean.shape[0])
        expected = typical + beta[rows, best][:, np.newaxis] * d0[best]
        resid = mean - expected
        if sun is not None:
            expected = expected + _sun_term(resid, sun, period, n_periods)
            resid = mean - expected
    # Heating windows err in proportion to their level (a 10 % miss on a cold night is many
    # kWh, on a mild one a few hundred Wh): σ is relative, to a level floored at a share of
    # the meter's typical expected window so near-zero windows do not get a zero scale.
    level = np.abs(expected)
    level = level + SCHEDULE_LEVEL_FLOOR * nan_median(level)[:, np.newaxis]
    with np.errstate(invalid="ignore", divide="ignore"):
        sigma_rel = MAD_TO_SIGMA * nan_median_mad(resid / level)[1]
    # Use is never negative: a window warmer than its bin's typical one expects no less than
    # nothing (else an idle weekend at 0 reads as use above a negative expectation).
    expected = np.maximum(expected, 0.0)
    return mean - expected, expected, sigma_rel[:, np.newaxis] * level


def _window_weather(
    heating: HeatingTerm | None,
    sun_w_m2: npt.ArrayLike | None,
    w_start: IntArray,
    w_end: IntArray,
    steps_per_hour: int,
) -> tuple[FloatArray | None, FloatArray | None]:
    """Mean degree-hours of each window at every base, shape (bases, windows), and the mean
    irradiance of the day each window starts in [W/m²] (NaN as 0); None without a heating
    term (and for the sun, without irradiance)."""
    if heating is None:
        return None, None
    dh = _window_means(heating.degree_hours, w_start, w_end)
    if sun_w_m2 is None:
        return dh, None
    g = np.nan_to_num(np.asarray(sun_w_m2, dtype=np.float64))
    day = 24 * steps_per_hour
    first = (w_start // day) * day
    last = np.minimum(first + day, g.size)
    total = np.append(0.0, np.cumsum(g))
    sun: FloatArray = (total[last] - total[first]) / np.maximum(last - first, 1)
    return dh, sun


def _sun_term(resid: FloatArray, sun: FloatArray, period: IntArray, n_periods: int) -> FloatArray:
    """``γ·(sun − typical sun of the window's bin)`` per meter and window, γ ≤ 0 fitted
    through the origin to ``resid`` (windows minus their weather-corrected typical level),
    then again without the windows more than 3 σ off the first fit, so that the faults
    themselves (a boiler left on) do not set the slope.

    A sunny day stores heat in the building and its night needs less; a dull winter week
    needs more at night than the bin's typical night: the windows' heating follows the sun
    as the days do (:mod:`processing.weather_model`), and a week of dull days read as
    heating left on.
    """
    ds = np.nan_to_num(sun - _group_typical(sun[np.newaxis, :], period, n_periods)[0])
    ok = ~np.isnan(resid)
    gamma = np.zeros(resid.shape[0])
    for _ in range(2):
        r = np.where(ok, resid, 0.0)
        sxx = ok.astype(np.float64) @ (ds * ds)
        gamma = np.minimum(np.divide(r @ ds, sxx, out=np.zeros_like(gamma), where=sxx > 0), 0.0)
        e = np.where(ok, resid - gamma[:, np.newaxis] * ds, np.nan)
        center, mad = nan_median_mad(e)
        ok = ok & (np.abs(e - center[:, np.newaxis]) <= 3.0 * MAD_TO_SIGMA * mad[:, np.newaxis])
    term: FloatArray = gamma[:, np.newaxis] * ds[np.newaxis, :]
    return term


def schedule_anomalies(
    x: npt.ArrayLike,
    *,
    start: datetime,
    steps_per_hour: int = 1,
    holidays: Sequence[date] = (),
    heating: HeatingTerm | None = None,
    quantum: npt.ArrayLike | None = None,
    config: DetectorConfig | None = None,
    mean_use: npt.ArrayLike | None = None,
    meter_offset: int = 0,
    sun_w_m2: npt.ArrayLike | None = None,
) -> list[Anomaly]:
    """Nights, weekends and holidays whose use exceeds the meter's own typical level.

    Parameters
    ----------
    x : array_like, shape (meters, steps)
        Consumption per step [``config.unit``], aligned on local wall-clock time.
    start : datetime
        Local time of step 0 (naive).
    steps_per_hour : int
        Samples per hour.
    holidays : sequence of date
        Public or site holidays (whole local days), e.g. :func:`french_holidays`.
    heating : HeatingTerm, optional
        Each meter's degree-hours (from :func:`~processing.baseline.fit_heating_term`);
        corrects the typical level for the weather.
    quantum : array_like, optional, shape (meters,)
        Register resolution [unit]; the σ of window means is never below quantum/√steps.
    config : DetectorConfig, optional
        Which windows apply, ``schedule_z``, ``min_nights``, ``day_hours``.
    mean_use : array_like, optional, shape (meters,)
        Mean use per step of each meter [unit per step] for ``schedule_min_share``;
        computed from ``x`` when not given (one more pass over the matrix).
    meter_offset : int
        Added to every anomaly's ``meter_index``: the row of ``x[0]`` in a larger matrix
        scanned in slices.
    sun_w_m2 : array_like, optional, shape (steps,)
        Global horizontal irradiance [W/m²]; with ``heating``, windows are also corrected
        for their day's sunshine.

    Returns
    -------
    list of Anomaly
        Kinds ``"night_use"``, ``"weekend_use"``, ``"holiday_use"``; severity is the excess
        in robust σ [-]; expected/observed are mean rates [unit/h].

    Notes
    -----
    The typical level of a window is the median of the meter's windows of the same kind
    (nights; weekend and holiday daytimes) over fixed ``reference_weeks`` periods, plus a
    per-meter degree-hour term, so the seasonal rise of night heating is not flagged every
    cold night; the scale grows with the expected level (see ``_weather_corrected_excess``).
    Heating left on overnight lasts several nights: night events need
    ``min_nights`` in a row; a weekend or holiday needs one day.
    """
    cfg = config if config is not None else DetectorConfig()
    a = as_matrix(x, "x")
    m, n = a.shape
    hour, day = step_calendar(n, start, steps_per_hour)
    period_days = 7 * cfg.reference_weeks
    n_periods = int(day[-1]) // period_days + 1 if n else 1
    q = (
        np.zeros((m, 1))
        if quantum is None
        else np.asarray(quantum, dtype=np.float64).reshape(-1, 1)
    )
    weekend, is_holiday = weekend_and_holiday(day, start.date(), holidays)

    windows: list[tuple[str, BoolArray, int]] = []
    if cfg.check_nights:
        windows.append(("night_use", hour_mask(hour, cfg.night_hours), cfg.min_nights))
    closed = (weekend & cfg.check_weekends) | (is_holiday & cfg.check_holidays)
    daytime = hour_mask(hour, cfg.day_hours)
    if closed.any():
        windows.append(("closed", daytime & closed, 1))

    out: list[Anomaly] = []
    rate = float(steps_per_hour)
    margin = _schedule_margin(a, cfg, mean_use)
    spans = [mask_runs(in_window[np.newaxis, :])[1:] for _, in_window, _ in windows]
    # Nights and closed days in one pass over the matrix.
    means = _window_means_of_sets(a, spans, bridged=cfg.bridged_gaps)
    for (kind, _, min_windows), (w_start, w_end), mean in zip(windows, spans, means, strict=True):
        if w_start.size == 0:
            continue
        dh_mean, sun_day = _window_weather(heating, sun_w_m2, w_start, w_end, steps_per_hour)
        period = day[w_start] // period_days
        # A night after a closed day starts from a cold building held at its setback: it is
        # compared only with such nights (nights of homes are all alike: closed is empty).
        after_closed = closed[w_start].astype(np.int64) if kind == "night_use" else None
        excess, expected, sigma = _weather_corrected_excess(
            mean, dh_mean, period, n_periods, split=after_closed, sun=sun_day
        )
        steps_in = (w_end - w_start).astype(np.float64)
        scale = np.maximum(sigma, q / np.sqrt(steps_in))
        with np.errstate(invalid="ignore", divide="ignore"):
            z = excess / scale
        long_run = cfg.long_run_nights if kind == "night_use" else 0
        rows, first, stop = _flagged_runs(z, excess > margin, cfg, min_windows, long_run)
        if kind == "closed":
            rows, first, stop = _kept_closed_runs(
                (rows, first, stop), mean, w_start, day, a=a,
                open_daytime=daytime & ~closed, cfg=cfg,
                steps_per_hour=steps_per_hour,
            )  # fmt: skip
        if rows.size == 0:
            continue
        # Flagged windows have a finite z, so neither the means nor z have a gap in a run.
        run_obs = _run_means(mean, rows, first, stop).tolist()
        run_exp = _run_means(expected, rows, first, stop).tolist()
        cols, offsets = segment_index(first, stop)
        run_sev = np.maximum.reduceat(z[np.repeat(rows, stop - first), cols], offsets).tolist()
        for m_i, f, e, obs, exp, sev in zip(
            rows.tolist(), first.tolist(), stop.tolist(), run_obs, run_exp, run_sev, strict=True
        ):
            s_step, e_step = int(w_start[f]), int(w_end[e - 1])
            name = kind
            if kind == "closed":
                name = "holiday_use" if is_holiday[s_step] else "weekend_use"
            text = _schedule_reason(
                name,
                start,
                step=s_step,
                length=e_step - s_step,
                steps_per_hour=steps_per_hour,
                observed=obs * rate,
                expected=exp * rate,
                unit=cfg.unit,
            )
            out.append(
                Anomaly(m_i + meter_offset, s_step, e_step, name, sev, exp * rate, obs * rate, text)
            )
    return out


# Days before a closed day whose open daytime gives the use it is compared with (see
# ``DetectorConfig.closed_setback_share``): two weeks, ten open days.
SETBACK_REFERENCE_DAYS: Final = 14


def _kept_closed_runs(
    runs: tuple[IntArray, IntArray, IntArray],
    mean: FloatArray,
    w_start: IntArray,
    day: IntArray,
    *,
    a: FloatArray,
    open_daytime: BoolArray,
    cfg: DetectorConfig,
    steps_per_hour: int,
) -> tuple[IntArray, IntArray, IntArray]:
    """The flagged runs of closed days (rows, first and stop windows) that are neither the
    building's routine (:func:`_without_routine`) nor its setback held
    (``cfg.closed_setback_share``): their mean use per step (``mean``, per window) under
    that share of the open daytime use (``open_daytime``, per step) of the
    :data:`SETBACK_REFERENCE_DAYS` days before them."""
    rows, first, stop = runs
    rows, first, stop = _without_routine(rows, first, stop, day[w_start[first]], cfg)
    if cfg.closed_setback_share <= 0 or rows.size == 0:
        return rows, first, stop
    # Over the few rows flagged, not the chunk.
    meters, at = np.unique(rows, return_inverse=True)
    open_means = SegmentMeans(np.where(open_daytime, a[meters], np.nan))
    hi = w_start[first]
    lo = np.maximum(hi - SETBACK_REFERENCE_DAYS * 24 * steps_per_hour, 0)
    held = _run_means(mean, rows, first, stop) < cfg.closed_setback_share * open_means(at, lo, hi)
    return rows[~held], first[~held], stop[~held]


def _without_routine(
    rows: IntArray, first: IntArray, stop: IntArray, first_day: IntArray, cfg: DetectorConfig
) -> tuple[IntArray, IntArray, IntArray]:
    """The runs (rows, first, stop) of flagged closed days without those that have
    ``cfg.closed_routine_events`` other runs of their row starting within
    ``cfg.closed_routine_days`` days (see :class:`DetectorConfig`); ``first_day`` is each
    run's first day. Runs are sorted by row, then start, as ``mask_runs`` gives them."""
    if cfg.closed_routine_events <= 0:
        return rows, first, stop
    span = int(first_day.max(initial=0)) + 2 * cfg.closed_routine_days + 1
    key = rows.astype(np.int64) * span + first_day  # one row's runs on an axis of their own
    near = np.searchsorted(key, key + cfg.closed_routine_days, "right") - np.searchsorted(
        key, key - cfg.closed_routine_days, "left"
    )
    keep = near - 1 < cfg.closed_routine_events
    return rows[keep], first[keep], stop[keep]


def _flagged_runs(
    z: FloatArray, above_margin: BoolArray, cfg: DetectorConfig, min_windows: int, long_run: int
) -> tuple[IntArray, IntArray, IntArray]:
    """Runs (rows, first, stop) of consecutive windows (nights or closed days) flagged at
    ``cfg.schedule_z``, ``min_windows`` or more; with ``long_run`` > 0, also runs that long
    at ``cfg.long_run_z``. Overlapping or touching runs become one."""
    with np.errstate(invalid="ignore"):
        runs = [mask_runs((z > cfg.schedule_z) & above_margin, min_steps=min_windows)]
        if long_run > 0:
            runs.append(mask_runs((z > cfg.long_run_z) & above_margin, min_steps=long_run))
    if len(runs) == 1:
        return runs[0]
    member = np.zeros(z.shape, dtype=bool)
    for r, f, e in runs:
        cols, _ = segment_index(f, e)
        member[np.repeat(r, e - f), cols] = True
    return mask_runs(member)


def _run_means(values: FloatArray, rows: IntArray, first: IntArray, stop: IntArray) -> FloatArray:
    """Mean of ``values[row, first:stop]`` for each run (no NaN in it), rounded as ``np.mean``
    of the slice would be.

    NumPy sums fewer than 8 values one by one from 0 (more pairwise, in 8 partial sums): the
    short runs are summed a column at a time over all runs at once, the rare long ones alone.
    A call per run cost more than the rest of the schedule check.
    """
    length = stop - first
    short = length < 8
    total = np.zeros(rows.size)
    for j in range(int(length[short].max(initial=0))):  # a loop over run lengths, not runs
        on = short & (j < length)
        total[on] += values[rows[on], first[on] + j]
    mean: FloatArray = total / length
    for i in np.flatnonzero(~short).tolist():
        mean[i] = np.mean(values[rows[i], first[i] : stop[i]])
    return mean


def _schedule_margin(
    a: FloatArray, cfg: DetectorConfig, mean_use: npt.ArrayLike | None
) -> FloatArray:
    """Smallest excess a schedule window must show per meter, shape (meters, 1) [unit per
    step]: ``schedule_margin``, or ``schedule_min_share`` × the meter's mean use if larger."""
    margin = np.full((a.shape[0], 1), cfg.schedule_margin)
    if cfg.schedule_min_share <= 0 or a.shape[1] == 0:
        return margin
    if mean_use is None:
        # Blockwise mean over all steps (no matrix-sized temporaries).
        whole = np.zeros(1, dtype=np.int64)
        level = _window_means(a, whole, np.asarray([a.shape[1]], dtype=np.int64))
    else:
        level = np.asarray(mean_use, dtype=np.float64).reshape(-1, 1)
    # A meter without a mean (NaN) gets no floor.
    floor: FloatArray = np.maximum(margin, cfg.schedule_min_share * np.nan_to_num(np.abs(level)))
    return floor


def _schedule_reason(
    kind: str,
    start: datetime,
    *,
    step: int,
    length: int,
    steps_per_hour: int,
    observed: float,
    expected: float,
    unit: str,
    programme: bool = False,
) -> str:
    t0 = step_time(step, start, steps_per_hour)
    label = {"night_use": "Night use", "weekend_use": "Weekend use"}.get(kind, "Holiday use")
    ratio = observed / expected if expected > 0 else np.nan
    size = f"{ratio:.1f}× the usual level" if np.isfinite(ratio) else "above a zero usual level"
    head = f"{label} from {t0:%a %Y-%m-%d %H:%M} ({length / steps_per_hour:g} h): "
    if programme:
        return (
            f"{head}a steady {observed:.3g} {unit}/h through the opening hours, {size} "
            f"({expected:.3g} {unit}/h on closed days) — heating left on its weekday programme?"
        )
    return (
        f"{head}{observed:.3g} {unit}/h on average, {size} ({expected:.3g} {unit}/h for the "
        f"season and weather) — heating or baseload left on?"
    )


# A building heated through a closed day on its open-day programme burns steadily from its
# opening to its closing hour (an hour of preheat before): the flatline rules see a register
# stuck for those hours. Reported as the closed day's use instead, even where the building
# often uses its closed days (the routine rule: frost protection on cold weekends is not a
# programme). bench.accuracy's year scans, twenty-first session: schedule 0.892 → 0.904
# (seeds 300–315, 16 of 16 at 0.80), 0.848 → 0.866 on seeds 316–331 (not used to choose
# it); precision −0.0002 / −0.0001; the flatline labels found the same. Through the schedule
# detector instead (the closed day exempt from the routine rule, its own z), 0.896 and
# 0.858: it does not flag a day's programme at a low level.
PROGRAMME_PREHEAT_HOURS: Final = 1


def closed_day_programmes(
    flat: AnomalyEvents,
    x: npt.ArrayLike,
    *,
    start: datetime,
    steps_per_hour: int,
    holidays: Sequence[date],
    config: DetectorConfig,
    meter_offset: int = 0,
) -> tuple[AnomalyEvents, list[Anomaly]]:
    """The flat runs of ``flat`` (:func:`~processing.flatlines.flat_events` of ``x``) that
    lie within one closed day's opening hours (``config.day_hours``, from
    :data:`PROGRAMME_PREHEAT_HOURS` before), as weekend or holiday use; and the others.

    Each use's ``expected`` is the meter's median rate over its closed days' opening hours
    [unit/h], its severity the hours of steady use.
    """
    a = as_matrix(x, "x")
    hour, day = step_calendar(a.shape[1], start, steps_per_hour)
    weekend, is_holiday = weekend_and_holiday(day, start.date(), holidays)
    lo, hi = config.day_hours
    band = hour_mask(hour, (lo - PROGRAMME_PREHEAT_HOURS, hi)) & (weekend | is_holiday)
    inside = np.append(0, np.cumsum(band))
    one_day = day[flat.start] == day[flat.end - 1]  # a run has a step at least
    held = (inside[flat.end] - inside[flat.start] == flat.end - flat.start) & one_day
    prog = flat.select(held)
    rate = float(steps_per_hour)
    usual = nan_median(a[np.ix_(prog.meter_index, np.flatnonzero(band))]) * rate
    out: list[Anomaly] = []
    for m_i, s_step, e_step, obs, exp in zip(
        prog.meter_index.tolist(), prog.start.tolist(), prog.end.tolist(),
        (prog.observed * rate).tolist(), usual.tolist(), strict=True,
    ):  # fmt: skip
        name = "holiday_use" if is_holiday[s_step] else "weekend_use"
        text = _schedule_reason(
            name, start, step=s_step, length=e_step - s_step, steps_per_hour=steps_per_hour,
            observed=obs, expected=exp, unit=config.unit, programme=True,
        )  # fmt: skip
        hours = (e_step - s_step) / rate
        out.append(Anomaly(m_i + meter_offset, s_step, e_step, name, hours, exp, obs, text))
    return flat.select(~held), out
