"""The anomaly scan of a chunk of meters of one kind (:func:`anomaly_scan`): quality rules,
spikes (:mod:`processing.spikes`), schedule (:mod:`processing.schedule`) and level shifts
(:mod:`processing.shifts`), then the filters that tell a building's fault from the weather's,
the fleet's, or one already reported.

Each detector returns :class:`~processing.events.Anomaly` objects with a sentence a person can read.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from processing.baseline import (
    BLANK_WEEKS,
    HOURS_PER_WEEK,
    MAD_TO_SIGMA,
    HeatingTerm,
    as_matrix,
    baseline_scan,
    median_at,
    nan_median,
    nan_median_mad,
)
from processing.detector_config import BASE_DAY_SIGMA_SHARE, DetectorConfig
from processing.events import (
    DAY_KINDS,
    Anomaly,
    AnomalyEvents,
    EventRow,
    segment_index,
    step_time,
)
from processing.felt_weather import FeltWeatherOnDemand
from processing.fleet import (
    CommonCauseConfig,
    common_cause,
    heating_groups,
    remove_common_departure,
)
from processing.holiday_days import holiday_blind_days, reread_disturbed_days
from processing.local_time import closed_steps, hour_mask, step_calendar, weekend_and_holiday
from processing.quality import quality_scan, register_quantum
from processing.quality_config import QualityConfig
from processing.rooms import inertial_daily, weather_explained
from processing.schedule import closed_day_programmes, schedule_anomalies
from processing.shifts import SegmentMeans, level_shifts, mean_daily
from processing.spikes import spikes_and_drops, without_holiday_drops, without_restart_boosts
from processing.weather_model import (
    SUN,
    base_day_reference,
    daily_features,
    daily_use,
    event_least_squares,
    no_heating_days,
    reading_until,
    trailing_weather_fit,
)

LOG = logging.getLogger(__name__)
_T = TypeVar("_T")
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


# --- full scan -----------------------------------------------------------------------------


# A thermometer's spike scale at each hour of the day: the |residual| of this rank from the
# top over the days, at least this many (one percent of a year's: a spike or two at that
# hour in eight weeks does not set its own floor).
LOCAL_TAIL_SHARE: Final = 0.01
LOCAL_TAIL_MIN_RANK: Final = 3
POOLED_SHARE: Final = 0.5
# The hours' tails are taken per block of this many days, the service's window (eight
# weeks, ``processing_context_weeks``): a year's tail at the hour the heating starts is
# winter's, and in summer a drop there read 4.6 σ over the year, 6.7 σ in the service.
LOCAL_TAIL_BLOCK_DAYS: Final = 56


def _pooled_tail(resid: FloatArray, floor: FloatArray) -> FloatArray:
    """The 99th percentile of each row's |resid|, at least ``floor``, as a column."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a row of gaps: no quantile
        tail = np.nanquantile(np.abs(resid), 0.99, axis=1, keepdims=True)
    return np.asarray(np.maximum(floor, np.nan_to_num(tail)), dtype=np.float64)


def _hour_tails(dev: FloatArray, days: int, steps_per_day: int) -> FloatArray:
    """Each hour of the day's tail of ``dev`` (|residuals|, shape (meters, steps), at least
    ``days`` whole days), per block of :data:`LOCAL_TAIL_BLOCK_DAYS` days, at every step
    (a last block too short for its own tail joins the one before, and a last part-day
    takes its block's): the |residual| of rank ``LOCAL_TAIL_SHARE`` of the block's days
    from the top, at least :data:`LOCAL_TAIL_MIN_RANK`. Gaps count as 0."""
    m, n = dev.shape
    bounds = [*range(0, days, LOCAL_TAIL_BLOCK_DAYS), days]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] < LOCAL_TAIL_MIN_RANK * 4:
        del bounds[-2]
    bounds[-1] = -(-n // steps_per_day)  # the part-day after the last whole day
    out = np.empty((m, bounds[-1] * steps_per_day))
    for lo, hi in itertools.pairwise(bounds):
        whole = min(hi, days) - lo  # the block's whole days, which set its tail
        rank = max(LOCAL_TAIL_MIN_RANK, round(LOCAL_TAIL_SHARE * whole))
        # One copy of the block (the gaps' zeros), partitioned in place.
        block = np.nan_to_num(dev[:, lo * steps_per_day : (lo + whole) * steps_per_day])
        block = block.reshape(m, whole, steps_per_day)
        block.partition(whole - rank, axis=1)
        out[:, lo * steps_per_day : hi * steps_per_day] = np.tile(block[:, whole - rank], hi - lo)
    return out[:, :n]


def _local_median_z(
    a: FloatArray, width: int, quantum: FloatArray, *, steps_per_day: int = 24
) -> FloatArray:
    """Robust z against a centred running median of ``width`` steps (NaN-aware at gaps)."""
    m, n = a.shape
    half = width // 2
    padded = np.full((m, n + 2 * half), np.nan)
    padded[:, half : half + n] = a
    windows = sliding_window_view(padded, width, axis=1)
    med = nan_median(windows)
    resid = a - med
    mad = nan_median_mad(resid)[1]
    floor = np.maximum(MAD_TO_SIGMA * np.nan_to_num(mad), quantum)[:, np.newaxis]
    days = n // steps_per_day
    if days >= LOCAL_TAIL_MIN_RANK * 4:
        # Heating start-ups move a room by a kelvin or two in an hour, at the same hours
        # every day: each hour of the day's own tail floors the scale there, so a spike at
        # 18:00 is not measured against the 06:00 start-up (the whole series' 99th
        # percentile did; bench.accuracy, tenth session: one more spike ≥ 5 σ on 301,
        # precision +0.001 on three seeds).
        tail = _hour_tails(np.abs(resid), days, steps_per_day)
        pooled = _pooled_tail(resid, floor)
        # At least half the whole series' tail: a smooth room read in 0.1 K steps has an
        # hour's tail of 0, and a spike's neighbours, whose running median it moved by a
        # few tenths, would be spikes too.
        scale = np.maximum(tail, POOLED_SHARE * pooled, out=tail)
        # Within half a window of either end the median sees one side only (an evening
        # setback in the last hours reads as a drop): the whole series' tail there, as before.
        for edge in (slice(0, half), slice(max(n - half, 0), n)):
            np.maximum(scale[:, edge], pooled, out=scale[:, edge])
    else:
        scale = _pooled_tail(resid, floor)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(resid / np.where(scale > 0, scale, np.nan), dtype=np.float64)


def _readings(x: npt.ArrayLike) -> FloatArray:
    """``x`` as a (meters, steps) matrix with infinite values as gaps: no register reads an
    infinite amount (ingest refuses one), and one would poison every sum of its meter."""
    a = as_matrix(x, "x")
    inf = np.isinf(a)
    return np.where(inf, np.nan, a) if inf.any() else a


def anomaly_scan(
    x: npt.ArrayLike,
    *,
    start: datetime,
    steps_per_hour: int = 1,
    weeks: int = 4,
    holidays: Sequence[date] = (),
    outdoor_temp_c: npt.ArrayLike | None = None,
    sun_w_m2: npt.ArrayLike | None = None,
    config: DetectorConfig | None = None,
    quality: QualityConfig | None = None,
    z_out: FloatArray | None = None,
    threads: int = 1,
    meter_offset: int = 0,
    felt_weather: FeltWeatherOnDemand | None = None,
) -> list[Anomaly]:
    """Every consumption detector over one chunk of meters of one kind: quality, spikes,
    schedule, CUSUM.

    ``start`` must be local midnight so days of the baseline scan are calendar days.
    ``outdoor_temp_c`` (shape (steps,), [°C]) adds the degree-hour term to the baseline and
    the schedule checks of meters whose config asks for it; ``sun_w_m2`` (shape (steps,),
    global horizontal irradiance [W/m²]) corrects those meters' schedule windows for the
    day's sunshine and serves their ``daily_weather_model``. ``z_out`` is
    an optional reusable (meters, steps) float64 buffer. ``threads`` > 1 scans that many slices of
    meters at once; the level shifts, which compare each energy meter's days with the
    chunk's (:func:`~processing.fleet.remove_common_departure`), run on the whole chunk
    after them, so the result is the same. ``meter_offset`` is added to every anomaly's
    ``meter_index`` (the row of ``x[0]`` in a larger matrix). ``felt_weather``, of the same
    ``outdoor_temp_c`` and ``sun_w_m2``, is the weather the daily weather model's buildings
    feel, shared by the scans of several kinds; without it the scan makes its own.
    """
    cfg = config if config is not None else DetectorConfig()
    a = _readings(x)
    if (start.hour, start.minute) != (0, 0):
        raise ValueError(f"start: must be local midnight for daily residuals, got {start}")
    if threads < 1:
        raise ValueError(f"threads: must be >= 1, got {threads}")
    te, sun = _weather_of(outdoor_temp_c, sun_w_m2, cfg, a.shape[1])
    felt = None
    if te is not None and sun is not None:
        felt = felt_weather
        if felt is None:
            felt = FeltWeatherOnDemand(te, sun, steps_per_hour=steps_per_hour)
    parts = min(threads, a.shape[0] // MIN_METERS_PER_THREAD)
    kw: dict[str, Any] = {
        "start": start, "steps_per_hour": steps_per_hour, "weeks": weeks,
        "holidays": holidays, "outdoor_temp_c": te, "sun_w_m2": sun, "felt": felt,
        "config": cfg, "quality": quality,
    }  # fmt: skip
    slices = _in_row_slices(
        a.shape[0],
        parts,
        lambda lo, hi: _scan_slice(
            a[lo:hi], z_out=None if z_out is None else z_out[lo:hi],
            meter_offset=meter_offset + lo, **kw,
        ),
    )  # fmt: skip
    found = [an for part in slices for an in part.found]
    residual = np.concatenate([part.residual for part in slices])
    expected = np.concatenate([part.expected for part in slices])
    _drop_days_not_over(residual, expected, a, 24 * steps_per_hour)
    base = _joined_base_days(slices, a, 24 * steps_per_hour)
    terms = [part.heating for part in slices]
    day_model = _DayModel.of(
        a, _joined_terms(terms), cfg, start=start, steps_per_hour=steps_per_hour,
        holidays=holidays, sun_w_m2=sun, felt=felt,
    )  # fmt: skip
    groups = [np.arange(a.shape[0])]
    # Days read against the daily weather model (a kind that asks for it, meters with a
    # heating term; levels have none) compare no weekday with its own past weeks, and a
    # home lives a holiday as a Sunday, which is read. The hour-of-week baseline's days that
    # a holiday disturbs are read again against references without it (see
    # ``holiday_days``), before the fleet's departure is taken from them; only the rooms'
    # stay blind. Found within 2 days, year scans of 64 cities (bench.seeds --early): homes'
    # gas read on the weather model rather than blind, +0.006 to +0.009 (thirty-fifth
    # session); these days read again, 0.890 / 0.883 / 0.883 / 0.902 → 0.909 / 0.896 /
    # 0.894 / 0.911 by sets of 16 (thirty-seventh), most of it homes' electricity in
    # January and May, the year's level shifts and precision within 0.003.
    read_on_weather = cfg.daily_weather_model and day_model is not None
    if not read_on_weather and not cfg.reads_level:
        reread_disturbed_days(
            a, residual, expected, first=start.date(), holidays=holidays, weeks=weeks,
            steps_per_hour=steps_per_hour,
        )  # fmt: skip
    if cfg.reads_level:
        # A day's level is its mean (the CUSUM is scale-free: the same events).
        residual, expected = residual / (24 * steps_per_hour), expected / (24 * steps_per_hour)
    else:
        groups = _fleet_departure(residual, expected, te, steps_per_hour)
    if cfg.reads_level and not read_on_weather:
        unreliable = holiday_blind_days(start.date(), residual.shape[1], holidays, weeks)
        residual[:, unreliable] = np.nan
    if cfg.level_shifts:
        found.extend(
            _chunk_shifts(
                residual, expected, base, found, start=start.date(), config=cfg, parts=parts,
                meter_offset=meter_offset,
            )
        )  # fmt: skip
        found = _without_weather_steps(
            found, residual, expected, outdoor_temp_c, sun_w_m2, config=cfg,
            steps_per_hour=steps_per_hour, meter_offset=meter_offset,
        )  # fmt: skip
    if not cfg.reads_level:
        excess = _hours_excess_by_day(
            a, found, meter_offset=meter_offset, weeks=weeks, steps_per_hour=steps_per_hour
        )
        found = _without_explained_shifts(found, residual, excess, meter_offset=meter_offset)
    found = _without_flat_schedule(found)
    # Events that start together on improbably many of a group's meters are the fleet's.
    common = _common_in_groups(
        found, groups, a.shape[1], meter_offset=meter_offset, steps_per_hour=steps_per_hour,
        config=cfg.common_cause, warmup_steps=BLANK_WEEKS * HOURS_PER_WEEK * steps_per_hour,
    )  # fmt: skip
    if common.any():
        LOG.debug("%d events common to %d meters not reported as faults", common.sum(), len(a))
    weak = _departs_too_little(
        found, day_model, meter_offset=meter_offset, min_share=cfg.two_sided_min_share
    )
    return [an for an, c, w in zip(found, common, weak, strict=True) if not (c or w)]


def _weather_of(
    outdoor_temp_c: npt.ArrayLike | None,
    sun_w_m2: npt.ArrayLike | None,
    cfg: DetectorConfig,
    steps: int,
) -> tuple[FloatArray | None, FloatArray | None]:
    """The outdoor temperature a kind's scan reads (None without a temperature term) and
    its sunshine (None without the temperature), checked against the ``steps``."""
    te: FloatArray | None = None
    if outdoor_temp_c is not None and cfg.temperature_term:
        te = np.asarray(outdoor_temp_c, dtype=np.float64)
        if te.shape != (steps,):
            raise ValueError(f"outdoor_temp_c: expected shape ({steps},), got {te.shape}")
    sun: FloatArray | None = None
    # Every meter with a heating term: an electrically heated home's nights follow the sun
    # as a gas boiler's do (bench.accuracy, seventh session: false night use on the clean
    # city −7 to −26 %).
    if sun_w_m2 is not None and te is not None:
        sun = np.asarray(sun_w_m2, dtype=np.float64)
        if sun.shape != (steps,):
            raise ValueError(f"sun_w_m2: expected shape ({steps},), got {sun.shape}")
    return te, sun


def _drop_days_not_over(
    residual: FloatArray, expected: FloatArray, x: FloatArray, steps_per_day: int
) -> None:
    """Set each meter's last day to NaN in ``residual`` and ``expected`` (in place) when its
    readings in ``x`` stop before that day's end: a run before midnight, or a meter behind.

    The fleet's departures and the CUSUM read whole days only. A day not over is its hours
    so far scaled to a day, or a share of the day's expectation, which a home's gas at 7 am
    or at night misses by more than a day's noise; and the service reads it again at every
    run, each a new chance of an alarm that the midnight run would not raise. With it the
    service, every 6 h on seed 300's clean city, stored 895 level shifts against 337 at
    midnight (bench.accuracy ``--service-every 6``, eighteenth session).
    """
    # Each meter's last day with a residual, and whether its last step and the window's
    # were read (a gap is no end of readings): the days' matrix and two steps a meter,
    # not another pass over the steps.
    days = reading_until(residual)
    rows = np.flatnonzero(days > 0)
    end = days[rows] * steps_per_day  # one past the day's last step
    not_over = end > x.shape[1]
    inside = np.flatnonzero(~not_over)
    stopped = np.isnan(x[rows[inside], end[inside] - 1]) & np.isnan(x[rows[inside], -1])
    not_over[inside] = stopped
    rows = rows[not_over]
    residual[rows, days[rows] - 1] = np.nan
    expected[rows, days[rows] - 1] = np.nan


def _without_weather_steps(
    found: list[Anomaly],
    residual: FloatArray,
    expected: FloatArray,
    outdoor_temp_c: npt.ArrayLike | None,
    sun_w_m2: npt.ArrayLike | None,
    *,
    config: DetectorConfig,
    steps_per_hour: int,
    meter_offset: int,
) -> list[Anomaly]:
    """``found`` without the rooms' level shifts the weather explains (see
    ``DetectorConfig.weather_step_share``); hourly outdoor temperature and sun, the
    rooms' daily mean ``residual`` and ``expected``. Unchanged for other series or without
    a temperature."""
    if not config.reads_level or config.weather_step_share <= 0 or outdoor_temp_c is None:
        return found
    daily_mean = residual + expected
    days = daily_mean.shape[1]
    sun = None if sun_w_m2 is None else inertial_daily(sun_w_m2, days, steps_per_hour)
    explained = weather_explained(
        found, daily_mean, inertial_daily(outdoor_temp_c, days, steps_per_hour), sun,
        min_share=config.weather_step_share, meter_offset=meter_offset,
    )  # fmt: skip
    return [an for an, e in zip(found, explained.tolist(), strict=True) if not e]


# Hour-level kinds whose hours, already reported, move their days' totals.
_DAY_MOVERS: Final = frozenset({"spike", "drop", "zero_run", "flatline", "outage"})
# A level shift is theirs when their hours account for this share of its departure.
EXPLAINED_SHARE: Final = 0.7


def _hours_excess_by_day(
    a: FloatArray, found: Sequence[Anomaly], *, meter_offset: int, weeks: int, steps_per_hour: int
) -> FloatArray:
    """How far the hours of the hour-level events in ``found`` (``_DAY_MOVERS``) departed
    from their hour-of-week medians, summed per meter and day, shape (meters, days) [unit
    per day]. A missing hour departs by minus its median, and the reading after an outage,
    which carries it, counts with the outage (an outage with no reading after it yet is
    left out); hours of two events count once."""
    m, n = a.shape
    day = 24 * steps_per_hour
    out = np.zeros((m, -(-n // day)))
    # An outage up to the last step is readings not yet in, not energy gone (nor carried).
    ev = [
        an for an in found if an.kind in _DAY_MOVERS and not (an.kind == "outage" and an.end >= n)
    ]
    if not ev:
        return out
    first = np.asarray([an.start for an in ev], dtype=np.int64)
    carried = np.asarray([an.kind == "outage" for an in ev], dtype=np.int64)
    stop = np.minimum(np.asarray([an.end for an in ev], dtype=np.int64) + carried, n)
    rows = np.repeat(np.asarray([an.meter_index for an in ev], dtype=np.int64), stop - first)
    cols, _ = segment_index(first, stop)
    r, c = np.divmod(np.unique((rows - meter_offset) * n + cols), n)
    usual = median_at(a, r, c, weeks=weeks, steps_per_hour=steps_per_hour)
    np.add.at(out, (r, c // day), np.nan_to_num(np.nan_to_num(a[r, c]) - usual))
    return out


def _without_explained_shifts(
    found: list[Anomaly], residual: FloatArray, excess: FloatArray, *, meter_offset: int
) -> list[Anomaly]:
    """``found`` without the level shifts and drifts whose days' departure (``residual``)
    is mostly, by ``EXPLAINED_SHARE``, the departure of hours already reported as a spike,
    a drop, a zero run, a stuck register or an outage (``excess``, from
    :func:`_hours_excess_by_day`): a spike of a few hours moves its day's total by tens of
    percent, and it is reported as what it is. A shift that began on a day with a peak is
    still one: its other hours carry most of its departure."""

    def explained(an: Anomaly) -> bool:
        row = an.meter_index - meter_offset
        total = float(np.nansum(residual[row, an.start : an.end]))
        hours = float(excess[row, an.start : an.end].sum())
        return total * hours > 0 and abs(hours) >= EXPLAINED_SHARE * abs(total)

    return [an for an in found if an.kind not in ("level_shift", "drift") or not explained(an)]


def _spans_by_meter(
    found: Sequence[Anomaly], kinds: Sequence[str]
) -> dict[int, list[tuple[int, int]]]:
    """The (start, end) of the events of ``kinds`` among ``found``, by meter index."""
    spans: dict[int, list[tuple[int, int]]] = {}
    for an in found:
        if an.kind in kinds:
            spans.setdefault(an.meter_index, []).append((an.start, an.end))
    return spans


def _without_flat_schedule(found: list[Anomaly]) -> list[Anomaly]:
    """``found`` without the night, weekend and holiday use within a flatline of the same
    meter: a register stuck above its night level is reported as stuck."""
    stuck = _spans_by_meter(found, ("flatline",))
    return [
        an
        for an in found
        if an.kind not in ("night_use", "weekend_use", "holiday_use")
        or not any(s <= an.start and an.end <= e for s, e in stuck.get(an.meter_index, ()))
    ]


def _scan_slice(
    a: FloatArray,
    *,
    start: datetime,
    steps_per_hour: int,
    weeks: int,
    holidays: Sequence[date],
    outdoor_temp_c: FloatArray | None,
    sun_w_m2: FloatArray | None,
    felt: FeltWeatherOnDemand | None,
    config: DetectorConfig,
    quality: QualityConfig | None,
    z_out: FloatArray | None,
    meter_offset: int,
) -> _Slice:
    """The detectors that look at one meter at a time, and what the level shifts read.
    ``outdoor_temp_c`` is given only to meters whose config has a temperature term
    (checked by :func:`anomaly_scan`)."""
    cfg = config
    quantum = register_quantum(a)
    found: list[Anomaly] = []
    closed = closed_steps(a.shape[1], start, steps_per_hour, holidays)
    open_hours = None
    if cfg.check_weekends:  # a building that closes
        open_hours = ~closed & hour_mask(
            step_calendar(a.shape[1], start, steps_per_hour)[0], cfg.day_hours
        )
    events = quality_scan(
        a, quality, quantum=quantum, closed=closed, open_hours=open_hours, bridged=cfg.bridged_gaps
    )
    if cfg.check_weekends:
        # Before the flatlines' reasons: a closed day's programme is reported as its use.
        events["flatline"], programmes = closed_day_programmes(
            events["flatline"], a, start=start, steps_per_hour=steps_per_hour,
            holidays=holidays, config=cfg, meter_offset=meter_offset,
        )  # fmt: skip
        found.extend(programmes)
    for ev in events.values():
        found.extend(_quality_reasons(ev, start, steps_per_hour, cfg.unit, meter_offset))
    scan = baseline_scan(
        a,
        weeks=weeks,
        steps_per_hour=steps_per_hour,
        rel_floor=cfg.rel_floor,
        outdoor_temp_c=outdoor_temp_c,  # the heating term is fitted from the scan's medians
        quantum=quantum,
        tail_quantile=cfg.tail_quantile,
        tail_divisor=cfg.tail_divisor,
        hour_tail_divisor=cfg.hour_tail_divisor,
        out=z_out,
        bridged_gaps=cfg.bridged_gaps,
    )
    z = scan.z
    if cfg.local_median_steps > 0:
        z = _local_median_z(a, cfg.local_median_steps, quantum, steps_per_day=24 * steps_per_hour)
    peaks = spikes_and_drops(
        a, z, start=start, steps_per_hour=steps_per_hour, weeks=weeks, config=cfg,
        meter_offset=meter_offset,
    )  # fmt: skip
    if cfg.check_holidays:
        peaks = without_holiday_drops(peaks, start, steps_per_hour, holidays)
    if cfg.restart_boosts and cfg.check_weekends and scan.heating is not None:
        peaks = without_restart_boosts(
            peaks, heating=scan.heating, closed_day=closed[:: 24 * steps_per_hour],
            day_hours=cfg.day_hours, steps_per_hour=steps_per_hour, meter_offset=meter_offset,
        )  # fmt: skip
    found.extend(peaks)
    found.extend(
        schedule_anomalies(
            a,
            start=start,
            steps_per_hour=steps_per_hour,
            holidays=holidays,
            heating=scan.heating,
            quantum=quantum,
            config=cfg,
            mean_use=mean_daily(scan.daily_expected) / (24 * steps_per_hour),
            meter_offset=meter_offset,
            sun_w_m2=sun_w_m2,
        )
    )
    if scan.heating is None or cfg.reads_level:
        return _Slice(found, scan.daily_residual, scan.daily_expected, None)
    if not cfg.daily_weather_model:
        # The CUSUM reads the hour-of-week baseline's days; the heating term serves the
        # two-sided test of ended shifts (``two_sided_min_share``).
        return _Slice(found, scan.daily_residual, scan.daily_expected, scan.heating)
    model = _DayModel.of(
        a, scan.heating, cfg, start=start, steps_per_hour=steps_per_hour, holidays=holidays,
        sun_w_m2=sun_w_m2, felt=felt,
    )  # fmt: skip
    assert model is not None  # a heating term makes one
    observed, features = model.inputs()
    expected = trailing_weather_fit(observed, features, skip=model.skip)
    base = None
    if cfg.base_day_shifts:
        day_starts = np.arange(0, a.shape[1], 24 * steps_per_hour)
        days = no_heating_days(scan.heating, day_starts, a.shape[1]) & ~model.skip
        reference = base_day_reference(observed, days)
        base = (observed - reference, reference)
    return _Slice(found, observed - expected, expected, scan.heating, base)


class _Slice(NamedTuple):
    """What :func:`_scan_slice` found, and what the level shifts read: the ``residual``
    and ``expected`` use of each day, the ``heating`` term the baseline scan fitted (for
    the daily weather model's regressors; None for levels) and, with
    ``base_day_shifts``, the days without heating's ``base`` residual and reference
    (:func:`~processing.weather_model.base_day_reference`)."""

    found: list[Anomaly]
    residual: FloatArray
    expected: FloatArray
    heating: HeatingTerm | None
    base: tuple[FloatArray, FloatArray] | None = None


def _joined_base_days(
    slices: Sequence[_Slice], x: FloatArray, steps_per_day: int
) -> tuple[FloatArray, FloatArray] | None:
    """The slices' days without heating as (residual, reference), the days not over left
    out as the weather model's are; None without them."""
    bases = [part.base for part in slices if part.base is not None]
    if len(bases) < len(slices):
        return None
    residual = np.concatenate([r for r, _ in bases])
    reference = np.concatenate([e for _, e in bases])
    _drop_days_not_over(residual, reference, x, steps_per_day)
    return residual, reference


def _chunk_shifts(
    residual: FloatArray,
    expected: FloatArray,
    base: tuple[FloatArray, FloatArray] | None,
    found: Sequence[Anomaly],
    *,
    start: date,
    config: DetectorConfig,
    parts: int,
    meter_offset: int,
) -> list[Anomaly]:
    """The level shifts and drifts of a chunk's daily ``residual`` (``expected`` use), in
    ``parts`` slices at once; then those of its days without heating (``base``: residual
    and reference) that neither these nor ``found`` hold."""
    out = _sliced_shifts(
        residual, expected, start=start, config=config, parts=parts, meter_offset=meter_offset
    )
    if base is not None:
        out += base_day_shifts(
            *base, [*found, *out], start=start, config=config, parts=parts,
            meter_offset=meter_offset,
        )  # fmt: skip
    return out


def _sliced_shifts(
    residual: FloatArray,
    expected: FloatArray,
    *,
    start: date,
    config: DetectorConfig,
    parts: int,
    meter_offset: int,
    sigma_floor: FloatArray | None = None,
) -> list[Anomaly]:
    """:func:`~processing.shifts.level_shifts` over ``parts`` slices of meters at once."""
    shifts = _in_row_slices(
        residual.shape[0],
        parts,
        lambda lo, hi: level_shifts(
            residual[lo:hi], start=start, daily_expected=expected[lo:hi], config=config,
            meter_offset=meter_offset + lo,
            sigma_floor=None if sigma_floor is None else sigma_floor[lo:hi],
        ),
    )  # fmt: skip
    return [an for part in shifts for an in part]


# The upper quartile of |x| is 1.150 σ for a normal x (the median, 0.674 σ, gives the MAD's
# 1.4826): the days without heating's σ is at least this quartile's.
BASE_DAY_QUARTILE: Final = 1.150


def _quartile_sigma(residual: FloatArray) -> FloatArray:
    """Each row's σ from the upper quartile of its |departures from its median| (NaN
    left out; 0 for a row without any), shape (meters,): ``np.nanpercentile``'s linear
    quantile from one sort of the rows (its own walks the rows one by one in Python)."""
    dev = np.sort(np.abs(residual - nan_median(residual)[:, np.newaxis]), axis=1)  # NaN last
    last = np.maximum(np.count_nonzero(~np.isnan(dev), axis=1) - 1, 0)
    at = 0.75 * last
    lo = np.floor(at).astype(np.intp)
    below = np.take_along_axis(dev, lo[:, np.newaxis], 1)[:, 0]
    above = np.take_along_axis(dev, np.minimum(lo + 1, last)[:, np.newaxis], 1)[:, 0]
    sigma: FloatArray = np.nan_to_num(below + (at - lo) * (above - below)) / BASE_DAY_QUARTILE
    return sigma


# A change the days without heating show is reported unless the weather model's CUSUM
# reports one on the meter within this many days of it.
BASE_DAY_OVERLAP_DAYS: Final = 3


def base_day_shifts(
    residual: FloatArray,
    reference: FloatArray,
    found: Sequence[Anomaly],
    *,
    start: date,
    config: DetectorConfig,
    parts: int = 1,
    meter_offset: int = 0,
) -> list[Anomaly]:
    """Level shifts and drifts of the days without heating (``residual`` against their
    ``reference``, :func:`~processing.weather_model.base_day_reference`) that no level
    shift or drift among ``found`` has within :data:`BASE_DAY_OVERLAP_DAYS` on the meter.

    The CUSUM is ``config``'s, each day's σ at least :data:`BASE_DAY_SIGMA_SHARE` of the
    reference (a school's hot water is the same few quanta every open day, its MAD 0) and
    the σ the upper quartile of the meter's |departures| makes (``BASE_DAY_QUARTILE``): a
    home whose days without heating take two levels, 113.0 or 79.7 kWh, has a MAD of 0
    against the upper one. The size rules made for the weather model's days (the spread
    of days of like use, a share of the mean day) are off: these days are alike, and small
    by nature.
    """
    cfg = dataclasses.replace(config, ended_shift_by_use=False, shift_min_mean_share=0.0)
    floor = np.fmax(BASE_DAY_SIGMA_SHARE * np.abs(reference), _quartile_sigma(residual)[:, None])
    shifts = _sliced_shifts(
        residual, reference, start=start, config=cfg, parts=parts, meter_offset=meter_offset,
        sigma_floor=floor,
    )  # fmt: skip
    held = _spans_by_meter(found, ("level_shift", "drift"))
    slack = BASE_DAY_OVERLAP_DAYS
    return [
        dataclasses.replace(an, reason=f"{an.reason}, on days without heating")
        for an in shifts
        if not any(lo - slack <= an.end and an.start <= hi + slack
                   for lo, hi in held.get(an.meter_index, ()))
    ]  # fmt: skip


# Days either side of an ended level shift that its two-sided fit reads (see
# ``DetectorConfig.two_sided_min_share``): the trailing fit's own four weeks.
TWO_SIDED_WINDOW_DAYS: Final = 28
TWO_SIDED_MIN_DAYS: Final = 10  # fewer days read around an event: it is not tested
# The two-sided fit is made again without the days its first fit misses by more than this
# many robust σ (twenty-second session, year scans, mean precision: +0.0038 / +0.0027 /
# +0.0020 on seeds 300–315 / 316–331 / 332–347, no label lost; at 3 σ +0.0039 / +0.0034 /
# +0.0029, one level shift and one schedule label lost; at 5 σ +0.0031 / +0.0021).
TWO_SIDED_TRIM_SIGMA: Final = 4.0


@dataclass(slots=True, frozen=True)
class _DayModel:
    """What the daily weather model (:mod:`processing.weather_model`) reads of a chunk:
    its series ``x`` (meters, steps), each meter's ``heating`` term, ``sun_w_m2``, the
    ``felt`` weather whose degree-days it reads and, for buildings that close, the
    ``closed`` days (weekends and holidays), neither fitted nor expected: a boiler at its
    setback follows the cold from another balance point, by little. Days' use and
    regressors are built on demand for the meters asked: the two-sided test reads only
    those with an ended shift, and a whole chunk of homes' (meters, days, p) regressors is
    a hundred megabytes.
    """

    x: FloatArray
    heating: HeatingTerm
    steps_per_hour: int
    bridged_gaps: bool
    sun_w_m2: FloatArray | None
    closed: BoolArray | None
    felt: FeltWeatherOnDemand | None = None  # without it, the outdoor air's degree-days

    @classmethod
    def of(
        cls,
        x: FloatArray,
        heating: HeatingTerm | None,
        cfg: DetectorConfig,
        *,
        start: datetime,
        steps_per_hour: int,
        holidays: Sequence[date],
        sun_w_m2: FloatArray | None,
        felt: FeltWeatherOnDemand | None,
    ) -> _DayModel | None:
        """The model of ``x`` (``start`` its first step's local midnight) under ``cfg``;
        None without a heating term."""
        if heating is None:
            return None
        closed = _closed_days(
            x.shape[1], cfg, start=start, steps_per_hour=steps_per_hour, holidays=holidays
        )
        return cls(x, heating, steps_per_hour, cfg.bridged_gaps, sun_w_m2, closed, felt)

    @property
    def skip(self) -> BoolArray:
        """Days neither fitted nor expected, shape (days,)."""
        if self.closed is None:
            return np.zeros(-(-self.x.shape[1] // (24 * self.steps_per_hour)), dtype=bool)
        return self.closed

    def inputs(
        self, rows: IntArray | None = None, *, sun_term: bool = True
    ) -> tuple[FloatArray, FloatArray]:
        """Daily use (rows, days) of the meters ``rows`` (all by default), each day ending
        at the meter's last reading, and their regressors (rows, days, p); without
        ``sun_term``, the sun column is 0."""
        x, term = self.x, self.heating
        if rows is not None:
            x = x[rows]
            term = dataclasses.replace(
                term, slope=term.slope[rows], base_index=term.base_index[rows]
            )
        steps = x.shape[1]
        day_starts = np.arange(0, steps, 24 * self.steps_per_hour)
        until = reading_until(x)
        observed = daily_use(x, day_starts, bridged_gaps=self.bridged_gaps, until=until)
        felt_dd = None
        if self.felt is not None:
            felt = self.felt.get()
            choice = felt.choose(observed, skip=self.closed, until=until)
            felt_dd = felt.meters_degree_days(choice, until)
        features = daily_features(
            term, day_starts, steps, steps_per_hour=self.steps_per_hour,
            sun_w_m2=self.sun_w_m2, closed=self.closed, until=until, felt_degree_days=felt_dd,
        )  # fmt: skip
        if not sun_term:
            features[:, :, SUN] = 0.0
        return observed, features


def _closed_days(
    steps: int,
    cfg: DetectorConfig,
    *,
    start: datetime,
    steps_per_hour: int,
    holidays: Sequence[date],
) -> BoolArray | None:
    """Weekends and holidays of buildings that close (``check_weekends``), shape (days,):
    only open days are fitted and expected; None for the others."""
    if not cfg.check_weekends:
        return None
    days = np.arange(-(-steps // (24 * steps_per_hour)))
    weekend, holiday = weekend_and_holiday(days, start.date(), holidays)
    return np.asarray(weekend | holiday, dtype=bool)


def _joined_terms(terms: Sequence[HeatingTerm | None]) -> HeatingTerm | None:
    """One heating term of slices of meters, in order (their weather is the same); None
    when a slice has none."""
    present = [t for t in terms if t is not None]
    if not present or len(present) < len(terms):
        return None
    return dataclasses.replace(
        present[0],
        slope=np.concatenate([t.slope for t in present]),
        base_index=np.concatenate([t.base_index for t in present]),
    )


def _departs_too_little(
    found: Sequence[Anomaly], model: _DayModel | None, *, meter_offset: int, min_share: float
) -> BoolArray:
    """Which of ``found`` are ended level shifts or drifts whose two-sided departure
    (:func:`_two_sided_share`) is under ``min_share``; none without a ``model`` or with
    ``min_share`` 0 (see ``DetectorConfig.two_sided_min_share``)."""
    if model is None or min_share <= 0:
        return np.zeros(len(found), dtype=bool)
    return np.asarray(_two_sided_share(found, model, meter_offset) < min_share, dtype=bool)


def _two_sided_share(found: Sequence[Anomaly], model: _DayModel, meter_offset: int) -> FloatArray:
    """For each level shift or drift of ``found`` over before its meter's last two days,
    the share by which its days' use departs, in its direction, from a least-squares fit
    of ``model`` on the ``TWO_SIDED_WINDOW_DAYS`` read days before and after it (the days
    of the meter's other level shifts and drifts left out, then those the fit misses by
    more than ``TWO_SIDED_TRIM_SIGMA``); +inf for every other event, and for one with
    fewer than ``TWO_SIDED_MIN_DAYS`` such days around it, a side read but all other
    shifts' days, or none read within it (not tested)."""
    out = np.full(len(found), np.inf)
    pick = [i for i, an in enumerate(found) if an.kind in ("level_shift", "drift")]
    if not pick:
        return out
    rows = np.asarray([found[i].meter_index - meter_offset for i in pick], dtype=np.int64)
    sub, where = np.unique(rows, return_inverse=True)  # the event rows, once each
    # The felt degree-days carry the sun. A sun coefficient of its own, fitted on a few
    # weeks either side, takes up a shift that came with a sunny spell (a home 40 % up from
    # the first day of a sunny week read 4 % over such a fit, 41 % without it).
    y, f = model.inputs(sub, sun_term=model.felt is None)
    read = ~np.isnan(y) & ~model.skip[np.newaxis, :]
    n_days = y.shape[1]
    lo = np.asarray([found[i].start for i in pick], dtype=np.int64)
    hi = np.asarray([found[i].end for i in pick], dtype=np.int64)
    # Days of the meter's other shifts are no reference: a trailing baseline that learnt a
    # shift's level reads the days after it as a change back (the shift's mirror).
    free = read & ~_covered(read.shape, where, lo, hi)
    ended = hi < reading_until(np.where(read, y, np.nan))[where] - 1
    if not ended.any():
        return out
    idx = np.asarray(pick, dtype=np.int64)[ended]
    where, lo, hi = where[ended], lo[ended], hi[ended]
    w = TWO_SIDED_WINDOW_DAYS
    cols = np.concatenate(
        (lo[:, np.newaxis] - w + np.arange(w), hi[:, np.newaxis] + np.arange(w)), axis=1
    )
    inside = (cols >= 0) & (cols < n_days)
    cols = np.clip(cols, 0, n_days - 1)
    weight = (inside & free[where[:, np.newaxis], cols]).astype(np.float64)
    yv = np.where(weight > 0, y[where[:, np.newaxis], cols], 0.0)
    xv = f[where[:, np.newaxis], cols] * weight[:, :, np.newaxis]
    beta = event_least_squares(xv, yv)
    # Fitted again without the days the first fit leaves far out: a fault nobody reported
    # (a week of extra baseload in the first weeks read) pulls a least-squares fit as
    # another shift's days would.
    free_weight = weight
    weight = _untrimmed(weight, yv, yv - np.einsum("eip,ep->ei", xv, beta))
    yv = np.where(weight > 0, yv, 0.0)
    xv = xv * weight[..., np.newaxis]
    beta = event_least_squares(xv, yv)
    # The weeks after read against a fit of the weeks before alone: a change that lasts
    # (a heat pump fitted, a new household) departs there as in the event itself.
    before = (np.arange(2 * w) < w)[np.newaxis, :]
    beta_before = event_least_squares(
        np.where(before[..., np.newaxis], xv, 0.0), np.where(before, yv, 0.0)
    )
    after = np.where(before, 0.0, weight)
    used_after = np.einsum("eip,ep->e", xv * after[..., np.newaxis], beta_before)
    seen_after = (yv * after).sum(axis=1)
    # The event's own days: sums of use and regressors over its read days.
    fr = np.where(read[:, :, np.newaxis], f, 0.0)
    cum_f = np.concatenate((np.zeros((sub.size, 1, f.shape[2])), np.cumsum(fr, axis=1)), axis=1)
    days = SegmentMeans(np.where(read, y, np.nan))
    used = np.einsum("ep,ep->e", cum_f[where, hi] - cum_f[where, lo], beta)
    seen = days.total[where, hi] - days.total[where, lo]
    sign = np.asarray([1.0 if found[i].observed > found[i].expected else -1.0 for i in idx])
    with np.errstate(invalid="ignore", divide="ignore"):
        share = sign * (seen - used) / np.abs(used)
        share_after = sign * (seen_after - used_after) / np.abs(used_after)
    tested = (weight.sum(axis=1) >= TWO_SIDED_MIN_DAYS) & (
        days.count[where, hi] > days.count[where, lo]
    )
    # A side read but covered by other shifts is not tested on the other side alone: a fit
    # of late spring extrapolates to June's days wildly.
    read_days = inside & read[where[:, np.newaxis], cols]
    for side in (slice(0, w), slice(w, 2 * w)):
        lost = (read_days[:, side].sum(axis=1) >= TWO_SIDED_MIN_DAYS / 2) & (
            free_weight[:, side].sum(axis=1) < TWO_SIDED_MIN_DAYS / 2
        )
        tested &= ~lost
    # A change that lasts is as large after as in the event: its two-sided share is read
    # as the departure after it (measured before it) when that is the larger.
    known_before = weight[:, :w].sum(axis=1) >= TWO_SIDED_MIN_DAYS / 2
    share = np.where(known_before, np.fmax(share, share_after), share)
    out[idx] = np.where(tested & np.isfinite(share), share, np.inf)
    return out


def _covered(shape: tuple[int, ...], rows: IntArray, lo: IntArray, hi: IntArray) -> BoolArray:
    """A (rows, days) mask of ``shape``, True on days ``lo:hi`` of each of ``rows``."""
    mask = np.zeros(shape, dtype=bool)
    first, last = np.clip(lo, 0, shape[1]), np.clip(hi, 0, shape[1])
    days, _ = segment_index(first, last)
    mask[np.repeat(rows, last - first), days] = True
    return mask


def _untrimmed(weight: FloatArray, used: FloatArray, resid: FloatArray) -> FloatArray:
    """``weight`` (events, days) without the days whose residual departs from the event's
    median residual by more than ``TWO_SIDED_TRIM_SIGMA`` robust σ: 1.4826 MAD of its
    weighted days, at least 1 % of their mean use ``used`` (a fit that is all but exact
    trims nothing)."""
    on = weight > 0
    med, mad = nan_median_mad(np.where(on, resid, np.nan))
    dev = np.abs(resid - med[:, np.newaxis])
    with np.errstate(invalid="ignore", divide="ignore"):  # an event without a day read
        floor = 0.01 * (np.abs(used) * on).sum(axis=1) / on.sum(axis=1)
    sigma = np.fmax(MAD_TO_SIGMA * mad, floor)[:, np.newaxis]
    keep = on & (dev <= TWO_SIDED_TRIM_SIGMA * sigma)
    return np.where(keep, weight, 0.0)


def _fleet_departure(
    residual: FloatArray, expected: FloatArray, te: FloatArray | None, steps_per_hour: int
) -> list[npt.NDArray[np.intp]]:
    """Moves each group's common departure from ``residual`` to ``expected`` in place; the
    groups are the meters that respond to the weather alike (unheated, or heated by a like
    share of their use; one group without a temperature). What a group did together that
    day (the weather the model missed, a school holiday) is no fault of one building.
    (Rooms are left alone by the caller: a heatwave warms each by its own inertia, and the
    fleet's median made more false shifts.)"""
    groups = [np.arange(residual.shape[0])]
    if te is not None:
        groups = heating_groups(expected, _daily_degree_days(te, expected.shape[1], steps_per_hour))
    for g in groups:
        residual[g], expected[g] = remove_common_departure(residual[g], expected[g])
    return groups


def _common_in_groups(
    found: Sequence[Anomaly],
    groups: Sequence[npt.NDArray[np.intp]],
    steps: int,
    *,
    meter_offset: int,
    steps_per_hour: int,
    config: CommonCauseConfig,
    warmup_steps: int,
) -> BoolArray:
    """:func:`~processing.fleet.common_cause` within each group of rows (meters that
    respond to the weather alike), and for the hour-level kinds over all rows as well: a
    mask over ``found``."""
    kw: dict[str, Any] = {
        "steps_per_hour": steps_per_hour,
        "config": config,
        "warmup_steps": warmup_steps,
    }
    meters = sum(g.size for g in groups)
    group_of = np.zeros(meters, dtype=np.intp)
    for i, g in enumerate(groups):
        group_of[g] = i
    member = group_of[np.asarray([an.meter_index - meter_offset for an in found], dtype=np.intp)]
    common = np.zeros(len(found), dtype=bool)
    for i, g in enumerate(groups):
        sel = np.flatnonzero(member == i)
        mine = [found[j] for j in sel.tolist()]
        common[sel] = common_cause(mine, g.size, steps, **kw)
    if len(groups) > 1:
        # A cold morning's spikes and nights strike heated and unheated meters alike.
        whole = common_cause(found, meters, steps, **kw)
        common |= whole & ~np.isin([an.kind for an in found], list(DAY_KINDS))
    return common


def _daily_degree_days(te: FloatArray, days: int, steps_per_hour: int) -> FloatArray:
    """Mean heating degrees below 18 °C of each day [K] (NaN for a day without readings)."""
    day = 24 * steps_per_hour
    t = np.full(days * day, np.nan)
    t[: min(te.size, t.size)] = te[: t.size]
    dd = np.maximum(18.0 - t.reshape(days, day), 0.0)  # NaN stays NaN
    ok = ~np.isnan(dd)
    count = ok.sum(axis=1)
    total = np.where(ok, dd, 0.0).sum(axis=1)
    mean: FloatArray = np.divide(total, count, out=np.full(days, np.nan), where=count > 0)
    return mean


MIN_METERS_PER_THREAD: Final = 50  # below this a thread costs more than it saves


def _in_row_slices(rows: int, parts: int, task: Callable[[int, int], _T]) -> list[_T]:
    """``task(lo, hi)`` over ``parts`` slices of ``rows`` rows at once, in order. NumPy
    releases the GIL in its loops, so the slices run on separate cores. Each slice numbers
    its meters from its first row: rebuilding tens of thousands of anomalies afterwards
    would hold the GIL."""
    if parts <= 1:
        return [task(0, rows)]
    bounds = np.linspace(0, rows, parts + 1).astype(np.int64).tolist()
    with ThreadPoolExecutor(max_workers=parts) as pool:
        futures = [pool.submit(task, lo, hi) for lo, hi in itertools.pairwise(bounds)]
        return [future.result() for future in futures]


_QUALITY_TEXT: Final = {
    "negative": "Negative consumption",
    "outage": "No data",
    "zero_run": "Zero consumption",
    "flatline": "Constant readings within rounding (stuck register or sensor?)",
}


def _quality_reasons(
    ev: AnomalyEvents, start: datetime, steps_per_hour: int, unit: str, meter_offset: int = 0
) -> list[Anomaly]:
    head = _QUALITY_TEXT.get(ev.kind, ev.kind)

    def reason(ev: EventRow) -> str:
        t0 = step_time(ev.start, start, steps_per_hour)
        hours = (ev.end - ev.start) / steps_per_hour
        value = f", value {ev.observed:.3g} {unit}" if np.isfinite(ev.observed) else ""
        return f"{head} for {hours:g} h from {t0:%Y-%m-%d %H:%M}{value}"

    return dataclasses.replace(ev, meter_index=ev.meter_index + meter_offset).to_anomalies(reason)
