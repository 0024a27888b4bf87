"""Consumption anomaly detectors: spikes/drops from robust z, schedule misuse, CUSUM level shifts.

Each detector returns :class:`~processing.events.Anomaly` objects with a sentence a person can read.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final, TypeVar

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from processing.baseline import (
    BLANK_WEEKS,
    HOURS_PER_WEEK,
    MAD_TO_SIGMA,
    HeatingTerm,
    baseline_scan,
    median_at,
    nan_median,
    nan_median_mad,
)
from processing.events import (
    DAY_KINDS,
    Anomaly,
    AnomalyEvents,
    EventRow,
    ReasonFn,
    _events_of_points,
    describe_step,
    events_from_mask,
    mask_runs,
    segment_index,
    step_time,
)
from processing.fleet import (
    CommonCauseConfig,
    common_cause,
    heating_groups,
    remove_common_departure,
)
from processing.quality import QualityConfig, quality_scan, register_quantum
from processing.rooms import inertial_daily, weather_explained
from processing.weather_model import (
    daily_features,
    daily_use,
    event_least_squares,
    reading_until,
    trailing_weather_fit,
)

LOG = logging.getLogger(__name__)
_T = TypeVar("_T")
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(slots=True, frozen=True)
class DetectorConfig:
    """Thresholds of the consumption detectors for one kind of meter.

    Attributes
    ----------
    z_threshold : float
        |robust z| above which a step is a spike (or a drop) [-].
    max_gap : int
        Flagged steps separated by at most this many steps form one event [steps].
    night_hours : tuple of int
        Local night window ``(start, end)`` [h]; 23–05 wraps midnight.
    schedule_ratio : float
        A night/weekend/holiday window is flagged when its mean exceeds
        ``schedule_ratio × typical night level + schedule_margin`` [-].
    schedule_margin : float
        Absolute margin above the typical night level [unit per step].
    check_nights, check_weekends, check_holidays : bool
        Which schedule windows apply to this kind of meter (offices and schools close at
        weekends; homes do not).
    reference_weeks : int
        Length of the periods over which the typical night level is taken [weeks].
    cusum_k : float
        CUSUM allowance, half the shift to detect [σ of daily residuals].
    cusum_k_share : float
        The allowance is at least this share of each day's expected use [-]: half the
        smallest shift worth an alarm (0.1: the issue's 20 %). A steady meter's σ is a few
        percent of its use, and a model a few percent off for weeks (sun, the season
        turning) otherwise adds up to an alarm. 0 for sensors that read a level.
    cusum_h : float
        CUSUM decision threshold [σ].
    recent_h_share : float
        An excursion still above this share of ``cusum_h`` on the meter's last two days
        is reported already [-] (1: no earlier). A shift that began two days ago has had
        two days to add up: 0.75 found 3–6 more of a city's 51–65 shifts within two days
        of their start (bench.accuracy, ninth session; 2–8 more as the service runs). One
        that then fades short of h stays a report of the service; a scan of a longer period
        does not report it (the lower threshold holds on the last two days only).
    drift_ratio : float
        A CUSUM event whose first-third mean residual is below ``drift_ratio`` × its
        last-third mean is called a drift rather than a level shift [-].
    unit : str
        Unit of the analysed series, written in reasons.
    reads_level : bool
        The readings are a level (a temperature), not an amount per step: reasons give
        differences rather than ratios, and day values are means rather than sums.
    level_shifts : bool
        Look for level shifts and drifts (the CUSUM on daily residuals). Off for outdoor
        thermometers: their days follow the weather, and a week warmer than the four
        before is no fault (bench.accuracy, twelfth session: the weather station's sensor
        made 3–5 of the 8–16 false thermometer level shifts and drifts a seed; precision
        +0.004 / +0.003 / +0.002 / +0.004 on seeds 300–303, no label lost).
    z_single : float
        A spike or drop of a single step needs |z| above this; events of two or more
        steps need ``z_threshold`` [-]. Appliance peaks last one step, stuck or runaway
        loads several.
    large_z, large_multiple : float
        With ``large_z`` > 0, a spike that misses the thresholds above is still reported
        when its peak is above ``large_z`` σ and above the expected use by at least
        ``large_multiple`` × the meter's mean use per step [-], [-]. A gas home's reheat
        hours make its scale wide at the hours a fault is most costly: 17 kWh in a June
        hour at 7.6 σ is no boiler's habit (bench.accuracy, tenth session, homes' heating:
        4 σ and 3 × found 0.021–0.047 more spikes ≥ 5 σ on seeds 300–303 for 0–0.002 less
        precision; 2.5 × then 0 / +0.007 / +0.008 / 0 more, precision within 0.001, the
        service's −0.001 / −0.002 on 300 / 301).
    tail_quantile, tail_divisor, hour_tail_divisor : float
        Noise floors of the spike scale from the meter's own residual tail, over four weeks
        and at each hour of the day (see :func:`~processing.baseline.baseline_scan`);
        ``tail_quantile`` 0 turns both off, ``hour_tail_divisor`` 0 the hourly one. A
        home's cooking peaks and a boiler's morning start set the floor at their own
        hours, not at 3 am: the whole tail over 4 and each hour's over 2.5 found 0.04–0.10
        more spikes ≥ 5 σ than the whole tail over 2, at the same precision
        (bench.accuracy, ninth session).
    rel_floor : float
        Floor of the spike scale proportional to the expected value [-] (0 for
        temperatures, which have no natural zero).
    local_median_steps : int
        When > 0, spikes and drops are measured against a centred running median of this
        many steps instead of the hour-of-week baseline (temperature sensors: a room does
        not change by 5 K within an hour and back) [steps].
    bridged_gaps : bool
        The series comes from a register whose first reading after a gap covers the gap:
        a spike there must hold once the missing steps' expected use is taken off (see
        ``_bridged_peak``), and daily sums and window means take the readings as they are.
    day_hours : tuple of int
        Local daytime window ``(start, end)`` of weekends and holidays [h].
    schedule_z : float
        A night (or closed day) is flagged when its mean exceeds the meter's typical level
        for that period, corrected for degree-hours, by this many robust σ [-].
    min_nights : int
        Consecutive flagged nights needed for a night-use event (closed days: one) [-].
    long_run_z, long_run_nights : float, int
        With ``long_run_nights`` > 0, nights this many in a row above ``long_run_z`` σ are
        flagged as well (0: off): heating left on for a week is under the nights' own
        spread each night but rarely that many nights running by chance.
    temperature_term : bool
        Correct the hour-of-week baseline with a per-meter degree-hour slope, at the
        meter's own balance temperature (:func:`~processing.baseline.fit_heating_term`), when an
        outdoor temperature is given (heating meters).
    two_sided_min_share : float
        For energy meters with a temperature term, a level shift or drift whose alarm
        cleared before the meter's last two days is not reported unless its days' use
        departs, in its direction, by at least this share from a fit of the daily weather
        model (:mod:`processing.weather_model`) on the ``TWO_SIDED_WINDOW_DAYS`` days either
        side of it, the event's own days left out, or the days after it depart by as much
        from a fit of the days before alone (a change that lasts) (0: off) [-]. A trailing
        fit extrapolates at the heating season's turns: a home that heats a little earlier
        in autumn, or stops a little earlier in spring, than its last four weeks predict
        departs from them by 20–40 % for weeks; the weeks after the event know the turn,
        and a step in use (``x·(1 + m)``) departs from them as from the weeks before. 0.1
        is the allowance (``cusum_k_share``), half the smallest shift the issue scores.
        Ongoing shifts are not tested, so the service reports as early as before
        (bench.accuracy's year scan, thirteenth session, chosen on seeds 300–303 and
        checked on 304–307: precision +0.015 / +0.013 / +0.010 / +0.012 and +0.015 /
        +0.016 / +0.012 / +0.013, no label of a scored kind lost; without the lasting-change
        rule twice that, but 14–15 % of permanent shifts of ±25–30 % injected into the clean
        city were lost, 0–2 % with it; 0.15 gained +0.005 to +0.018 more).
    schedule_min_share : float
        A flagged night or closed day must also exceed its expected level by this share
        of the meter's mean use per step [-]: a few tens of watt-hours above a very steady
        baseload are many σ but nothing an engineer can act on.
    cusum_local_days : int
        With > 0, the CUSUM's σ of each day is at least that of this many days two weeks
        earlier (see :func:`cusum`); 0 keeps one σ for the whole window.
    daily_weather_model : bool
        Level shifts compare each day with a fit of the trailing weeks' days on degree-days,
        the previous day's, sunshine and, for buildings that close (``check_weekends``),
        the morning after a closed day, their closed days left out
        (:mod:`processing.weather_model`), instead of the hour-of-week baseline's day,
        which heating meters' days depart from by runs of several percent (needs the
        outdoor temperature; sunshine when given).
    closed_routine_events, closed_routine_days : int
        A closed day flagged as used is the building's routine, not a fault, when at
        least ``closed_routine_events`` other flagged closed days of the meter lie within
        ``closed_routine_days`` days of it (0: off) [-], [days]: a building that heats
        every winter Sunday at 1.5–2 × what its weekends of like weather predict was
        reported Sunday after Sunday, while heating left on for a weekend is a one-off
        (bench.accuracy, eleventh session, seeds 300–303, after that session's two
        common-cause changes: precision +0.009 / +0.006 / +0.020 / +0.019; with them,
        weekend-use detections 41 / 40 / 52 / 53 → 18 / 18 / 17 / 18, and schedule −1
        label on 303, 0.862: a holiday heated on a cold Sunday, which the fleet's now
        rarer weekend use makes common).
    weather_step_share : float
        For series that read a level (rooms), a level shift or drift is not reported when
        a fit of the days around it on the smoothed outdoor temperature and sun puts less
        than this share of its departure in a step at its onset
        (:func:`~processing.rooms.weather_explained`; needs an outdoor temperature) (0:
        off) [-].
    common_cause : CommonCauseConfig
        When events that start together on many meters of the kind are the fleet's (the
        weather, a holiday), not each building's: they are not reported.
    shift_min_rel, shift_min_days : float, int
        With both > 0, a level shift or drift is reported only when some run of
        ``shift_min_days`` days starting within the event moves the daily use by at least
        ``shift_min_rel`` of the expected (temperature-corrected) use, in the event's
        direction [-], [days]. Off by default: on the simulated city it costs more
        level-shift recall than it saves false alarms (see ``_sustained_change``).
    shift_min_mean_share : float
        A level shift or drift is reported only when its change of the daily use
        (observed − expected) is at least this share of the meter's mean expected day over
        the window (0: off) [-]: as ``schedule_min_share`` for nights, a change too small to
        matter to the building's bill. A school's gas in May departs from a model fitted on
        April's heating by a few kilowatt-hours a day for weeks, which is a large share of a
        day heated by little but a small one of its mean day.
    ended_shift_min_days : int
        A level shift or drift whose alarm cleared before the meter's last two days is
        reported only when it lasted this long, onset to peak [days] (0: off). Days the
        weather model missed (a cloudy spell in September, the first cold snap) make
        excursions of one or two days; the level changes the issue scores last three or
        more, and one still going at the end of the data is kept, so the service and the
        "found within 2 days" scan report as early as before (bench.accuracy, eighth
        session: precision +0.005 to +0.024).
    ended_shift_by_use : bool
        A level shift or drift whose alarm cleared before the meter's last two days must
        also pass ``cusum_h`` when each day is read against the spread of the meter's days
        of like expected use (:func:`spread_by_use`), never less than the whole series'
        (False: off). A heating meter's winter days depart from the weather model by more
        kilowatt-hours than its summer days, and the year's one σ let a mild spell in
        January add up to a shift. Ongoing alarms are kept as they are, so the service
        reports as early as before (bench.accuracy, eleventh session, seeds 300–303, on
        the heating meters: precision +0.039 / +0.025 / +0.022 / +0.028, level shifts on
        300 −2 labels, 0.937, the others and found within 2 days unchanged; the service's
        precision and false alarms within 0.003, one shift on 300 reported later; then on
        homes' electricity, offices and schools too, whose electrically heated homes wander
        alike: +0.002 / +0.007 / 0 / +0.006, no label lost). The same σ in the CUSUM
        itself gained as much but lost early finds, −0.016 to −0.048, and a level shift on
        303: a slower CUSUM had not cleared an earlier excursion when a shift came.
    """

    z_threshold: float = 5.0
    max_gap: int = 1
    night_hours: tuple[int, int] = (23, 5)
    schedule_ratio: float = 1.5
    schedule_margin: float = 0.0
    check_nights: bool = True
    check_weekends: bool = True
    check_holidays: bool = True
    reference_weeks: int = 4
    cusum_k: float = 0.5
    cusum_k_share: float = 0.1
    cusum_h: float = 5.0
    recent_h_share: float = 0.75
    cusum_local_days: int = 0
    drift_ratio: float = 0.5
    unit: str = "kWh"
    reads_level: bool = False
    level_shifts: bool = True
    z_single: float = 7.0
    large_z: float = 0.0
    large_multiple: float = 3.0
    tail_quantile: float = 0.98
    tail_divisor: float = 4.0
    hour_tail_divisor: float = 2.5
    rel_floor: float = 0.05
    local_median_steps: int = 0
    bridged_gaps: bool = True
    day_hours: tuple[int, int] = (7, 19)
    schedule_z: float = 7.0
    min_nights: int = 2
    long_run_z: float = 0.0
    long_run_nights: int = 0
    temperature_term: bool = True
    shift_min_rel: float = 0.0
    shift_min_days: int = 0
    shift_min_mean_share: float = 0.0
    ended_shift_min_days: int = 3
    ended_shift_by_use: bool = True
    two_sided_min_share: float = 0.1
    schedule_min_share: float = 0.2
    closed_routine_events: int = 2
    closed_routine_days: int = 56
    daily_weather_model: bool = False
    weather_step_share: float = 0.0
    common_cause: CommonCauseConfig = dataclasses.field(default_factory=CommonCauseConfig)


# Homes (and whatever is open every day) are in use at weekends and on holidays: only their
# nights are checked. Heat and gas meters respond to the weather: larger swings before a spike
# (a single step needs 8 σ there, 7 elsewhere: 7 on heating meters as well found 0.01–0.03
# more spikes for 0.003–0.009 less precision; bench.accuracy, seventh session).
_OPEN_DAILY: Final = DetectorConfig(check_weekends=False, check_holidays=False)
# A home's heating meter is checked at night only, against nights of like weather and
# sunshine. Its nights depart from those by ≈ 19 % night after night, so heating left on
# (+30–100 % of the mean hour) is 1–3 σ a night: it is four nights in a row above 1.25 σ.
# Three at 2.5 σ (eighth session) beside four at 1.5 σ (ninth) were right less often: the
# three nights were most of the false night use, cold snaps the weather model reads late
# (bench.accuracy's year scans, fifteenth session, seeds 300–315: precision +0.007, one
# heating-at-night label lost and 2 baseload increases more found; at 1 σ +0.007 with 3 and
# 9 more, but 6 runs of four chance nights over 40 clean synthetic gas homes, 1 at
# 1.25 σ; three at 3.5 σ beside four at 1 σ +0.000; five nights +0.011 but 14 lost).
# Spikes of two steps or more at 5 σ (6 before the seventh session: 0.01–0.04 fewer
# found, the same precision); a single hour at 9 σ, as a home's electricity, or by its
# size (``large_z``): 8 σ was 0.004 less precise for one spike label more (fifteenth
# session, seeds 300–315; 10 σ +0.006 and 3 fewer).
# An ended level shift must have lasted four days, onset to peak (three elsewhere): the
# homes' gas and heat shifts of three days were false 111 times of 167 and matched 2
# level-shift labels (seeds 300–315, seventeenth session: precision +0.005, the level
# shifts found the same; 4 drifts, 2 efficiency losses and 1 heating-at-night label fewer;
# five days: +0.007, 4 level shifts lost).
_HOME_HEATING: Final = dataclasses.replace(
    _OPEN_DAILY, z_threshold=5.0, z_single=9.0, schedule_z=1.25, min_nights=4,
    daily_weather_model=True, cusum_h=7.0, large_z=4.0, large_multiple=2.5,
    ended_shift_min_days=4,
)  # fmt: skip
# Buildings that close: their open days against the weather; 12 σ is about a day's use over
# the allowance at that model's σ (8 found as many shifts on three seeds of four, for
# 0.010–0.015 lower precision: bench.accuracy, sixth session).
# A closed day used is their routine with one other within six weeks (two within eight for
# the others): a closing gas or heat meter's weekend use was right one time in five, the
# same few buildings on cold weekends (bench.accuracy's year scans, fourteenth session,
# seeds 300–315: precision +0.000 to +0.014, mean +0.004, no label lost; within eight
# weeks +0.005, a holiday heated lost on 309; within four +0.003).
# Their nights: three in a row at 6 σ, or four at 1.5 σ. Two at 6 σ were right one time in
# three (gas: 48 true, 109 false over seeds 300–315); now 41 / 28, heat 30 / 44 → 27 / 18
# (bench.accuracy's year scans, fifteenth session: precision +0.006, 2 heating-at-night
# and 1 heated-holiday labels lost; three nights alone lost 7; four at 1 or 2 σ: 1 fewer
# or 1 more lost, precision 0.001 lower or higher).
# A level shift must move the day's use by a fifth of the meter's mean day: those under 0.2
# were false 60 times of 64 and matched no level-shift label; most are weeks of spring or
# summer days that a fit on the heating weeks before reads a few kWh off (seeds 300–315,
# seventeenth session: precision +0.004; a drift, an efficiency loss and, through the
# cross-kind common-cause test, a home's gas level shift fewer; 0.3: +0.005, a closing gas
# level shift lost as well).
_CLOSING_HEATING: Final = DetectorConfig(
    z_threshold=6.0, z_single=8.0, cusum_h=12.0, daily_weather_model=True, schedule_z=6.0,
    min_nights=3, long_run_z=1.5, long_run_nights=4, closed_routine_events=1,
    closed_routine_days=42, shift_min_mean_share=0.2,
)  # fmt: skip
# A home's electricity (its heating too, when electric): nights four in a row at 1.5 σ
# (three at 4 σ before the fifteenth session, two at 7 σ before the eighth, whose false
# night use was mostly homes' autumn and spring). Four at 4 σ beside four at 1.5 σ as
# well: the same (bench.accuracy's year scans, fifteenth session, seeds 300–315: precision
# +0.003, 8 more heating-at-night labels found; 1 and 1.25 σ the same, 2 σ 3 fewer; five
# nights lost 4).
# A single hour needs 9 σ, or 4 σ and 4 × the home's mean hour over the expected (see
# ``large_z``): its false spikes were single hours at 7–9 σ, three or four times the
# expected hour at the evening and morning peaks, a kettle or an oven; an off-peak water
# heater at 4 am widens that hour's scale as reheat does a boiler's (bench.accuracy's year
# scans, fifteenth session, seeds 300–315, against 7 σ or 4 σ and 6 × the mean: precision
# +0.009, 3 more spikes found; 8 σ and 4 × +0.006, 7 more; 9 σ and 4.5 × +0.012, 5 fewer;
# 9 σ and 3 × −0.022, 22 more; 8 σ alone +0.011, 15 fewer).
_HOME_ELECTRICITY: Final = dataclasses.replace(
    _OPEN_DAILY, schedule_z=1.5, min_nights=4, z_single=9.0, large_z=4.0, large_multiple=4.0
)
DETECTOR_CONFIGS: Final = {
    "household": _HOME_ELECTRICITY,
    "office": DetectorConfig(),
    "school": DetectorConfig(),
    "heat": _CLOSING_HEATING,
    "gas": _CLOSING_HEATING,
    "household_heat": _HOME_HEATING,
    "household_gas": _HOME_HEATING,
}
# Temperature sensors: quality rules, spikes against a running median, level shifts.
TEMPERATURE_DETECTOR: Final = DetectorConfig(
    cusum_k_share=0.0,
    cusum_h=8.0,
    check_nights=False,
    check_weekends=False,
    check_holidays=False,
    unit="°C",
    reads_level=True,
    rel_floor=0.0,
    tail_quantile=0.0,
    local_median_steps=9,
    z_single=5.0,
    temperature_term=False,
    cusum_local_days=28,
    bridged_gaps=False,
    ended_shift_by_use=False,  # not measured on thermometers
    # Year scans of seeds 300–315 (sixteenth session): mean precision 0.796 → 0.802, 8 sensor
    # offsets and 2 drifts fewer found of the 53 before (0.4 / 0.6: 0.802 / 0.802; the fit
    # without the sun 0.800).
    weather_step_share=0.5,
)


# Outdoor thermometers (a weather station): quality rules and spikes only.
OUTDOOR_TEMPERATURE_DETECTOR: Final = dataclasses.replace(TEMPERATURE_DETECTOR, level_shifts=False)


def config_for(kind: str) -> DetectorConfig:
    """Detector thresholds of a meter kind (see ``DETECTOR_CONFIGS``)."""
    try:
        return DETECTOR_CONFIGS[kind]
    except KeyError:
        known = ", ".join(sorted(DETECTOR_CONFIGS))
        raise ValueError(f"kind: unknown meter kind {kind!r}; known: {known}") from None


def _as_matrix(x: npt.ArrayLike, name: str) -> FloatArray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[np.newaxis, :]
    if a.ndim != 2:
        raise ValueError(f"{name}: expected shape (meters, steps), got {a.shape}")
    return a


# --- spikes and drops ---------------------------------------------------------------------


def spikes_and_drops(
    x: npt.ArrayLike,
    z: npt.ArrayLike,
    *,
    start: datetime,
    steps_per_hour: int = 1,
    weeks: int = 4,
    config: DetectorConfig | None = None,
    meter_offset: int = 0,
) -> list[Anomaly]:
    """Steps far above (spike) or below (drop) the hour-of-week baseline.

    Parameters
    ----------
    x : array_like, shape (meters, steps)
        Consumption per step [``config.unit``].
    z : array_like, shape (meters, steps)
        Robust z from :func:`~processing.baseline.baseline_scan` [-].
    start : datetime
        Local wall-clock time of step 0, for the reasons.
    steps_per_hour, weeks : int
        As used for ``z``; the expected value at each event's peak is recomputed from them.
    config : DetectorConfig, optional
    meter_offset : int
        Added to every anomaly's ``meter_index``: the row of ``x[0]`` in a larger matrix
        scanned in slices.

    Returns
    -------
    list of Anomaly
        Kinds ``"spike"`` and ``"drop"``; severity is the peak |z|.
    """
    cfg = config if config is not None else DetectorConfig()
    a = _as_matrix(x, "x")
    zz = _as_matrix(z, "z")
    if zz.shape != a.shape:
        raise ValueError(f"z: expected shape {a.shape}, got {zz.shape}")
    out: list[Anomaly] = []
    large = cfg.large_z > 0
    above, below = _beyond(zz, min(cfg.z_threshold, cfg.large_z) if large else cfg.z_threshold)
    for kind, points in (("spike", above), ("drop", below)):
        ev = _events_of_points(
            points, zz.shape, kind=kind, score=zz, observed=a, max_gap=cfg.max_gap
        )
        # One step over the persistent threshold is an ordinary peak; it must clear the
        # single-step threshold, several steps in a row need only the lower one.
        large_here = large and kind == "spike"
        ev = ev.select(_clears_z(ev, cfg) | (large_here & (ev.severity > cfg.large_z)))
        if not len(ev):
            continue
        expected = median_at(a, ev.meter_index, ev.peak, weeks=weeks, steps_per_hour=steps_per_hour)
        ev = dataclasses.replace(ev, expected=expected)
        if large_here:
            keep = _clears_z(ev, cfg)
            rest = ~keep
            keep[rest] = _large(
                a, ev.meter_index[rest], ev.peak[rest], ev.expected[rest], cfg.large_multiple
            )
            ev = ev.select(keep)
        if kind == "spike" and cfg.bridged_gaps:
            bridged = _bridged_peak(a, ev, cfg, weeks=weeks, steps_per_hour=steps_per_hour)
            ev = ev.select(~bridged)
        ev = dataclasses.replace(ev, meter_index=ev.meter_index + meter_offset)
        reason = _spike_reason(start, steps_per_hour, cfg.unit, level=cfg.reads_level)
        out.extend(ev.to_anomalies(reason))
    return out


def _clears_z(ev: AnomalyEvents, cfg: DetectorConfig) -> BoolArray:
    """Events of two steps or more above ``z_threshold``, or of any length above
    ``z_single``."""
    several = (ev.end - ev.start >= 2) & (ev.severity > cfg.z_threshold)
    return np.asarray(several | (ev.severity > cfg.z_single), dtype=bool)


def _large(
    a: FloatArray, rows: IntArray, peak: IntArray, expected: FloatArray, multiple: float
) -> BoolArray:
    """Whether each peak exceeds its expected use by ``multiple`` × the meter's mean use per
    step (the mean of its row of ``a``)."""
    meters, at = np.unique(rows, return_inverse=True)
    read = a[meters]
    mean = np.nansum(np.abs(read), axis=1) / np.maximum((~np.isnan(read)).sum(axis=1), 1)
    return np.asarray(a[rows, peak] - expected >= multiple * mean[at], dtype=bool)


def _beyond(
    z: FloatArray, threshold: float, block_meters: int = 64
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Flat indexes (ascending) of ``z > threshold`` and of ``z < −threshold``, a block of
    meters at a time: each block is read once for both, into one reused mask, without two
    masks of the whole matrix."""
    m, n = z.shape
    mask = np.empty((min(block_meters, m), n), dtype=bool)
    above, below = [], []
    for i in range(0, m, block_meters):
        zb = z[i : i + block_meters]
        part = mask[: len(zb)]
        above.append(np.flatnonzero(np.greater(zb, threshold, out=part)) + i * n)
        below.append(np.flatnonzero(np.less(zb, -threshold, out=part)) + i * n)
    none = np.zeros(0, dtype=np.intp)
    return (np.concatenate(above), np.concatenate(below)) if above else (none, none)


# Longest gap before a peak that is checked for bridging [steps]: outages of two or three
# days are common, and the reading after one carries all of it (a week covers them).
BRIDGE_LOOKBACK: Final = 168


def _bridged_peak(
    a: FloatArray, ev: AnomalyEvents, cfg: DetectorConfig, *, weeks: int, steps_per_hour: int
) -> BoolArray:
    """Spike events whose peak is the first reading after a gap of ``k`` steps and no longer
    clears the thresholds once the ``k`` missing steps' expected use is taken off it.

    A register's reading after a gap carries the energy of the whole gap (the rollups and
    :func:`~processing.consumption.interval_consumption` bridge it), so a lost reading
    makes the next one look twice as large; what exceeds the expected use of the peak and
    of each missing step (their own hour-of-week medians: a gap over the morning peak
    carries the morning's use) is still unexplained. The event's own z gives its scale:
    ``scale = (x − expected)/z``.
    """
    rows, peak = ev.meter_index, ev.peak
    # Only a peak right after a missing step can carry a gap: the week looked back over is
    # gathered for those alone (a few in a hundred).
    after_gap = np.flatnonzero((peak > 0) & np.isnan(a[rows, np.maximum(peak - 1, 0)]))
    back = peak[after_gap, np.newaxis] - np.arange(1, BRIDGE_LOOKBACK + 1)[np.newaxis, :]
    before = np.where(back >= 0, a[rows[after_gap, np.newaxis], np.maximum(back, 0)], 0.0)
    gap = np.zeros(len(ev), dtype=np.int64)
    gap[after_gap] = np.cumprod(np.isnan(before), axis=1).sum(axis=1)  # NaN steps before it
    event = np.repeat(np.arange(len(ev)), gap)
    step, _ = segment_index(peak - gap, peak)  # the missing steps of each event
    missing = median_at(a, rows[event], step, weeks=weeks, steps_per_hour=steps_per_hour)
    # A missing step without history is taken at the peak's expectation.
    missing = np.where(np.isnan(missing), ev.expected[event], missing)
    carried = np.bincount(event, weights=missing, minlength=len(ev))
    x = a[rows, peak]
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = (x - ev.expected) / ev.severity
        shared = (x - ev.expected - carried) / scale
    single = ev.end - ev.start < 2
    need = np.where(single, cfg.z_single, cfg.z_threshold)
    return np.asarray((gap > 0) & ~(shared > need), dtype=bool)


def _spike_reason(start: datetime, steps_per_hour: int, unit: str, *, level: bool) -> ReasonFn:
    # Naive wall-clock times repeat every week: each hour of week is written once per call
    # (formatting a datetime took half of the reason's time, thousands of spikes per chunk).
    week = HOURS_PER_WEEK * steps_per_hour
    labels: dict[int, str] = {}

    def reason(ev: EventRow) -> str:
        slot = ev.peak % week
        when = labels.get(slot)
        if when is None:
            when = labels[slot] = describe_step(slot, start, steps_per_hour)
        vals = f"expected {ev.expected:.3g} {unit}, saw {ev.observed:.3g} {unit}"
        if level and math.isfinite(ev.expected):
            off = ev.observed - ev.expected
            side = "above" if off > 0 else "below"
            return f"Reading {abs(off):.3g} {unit} {side} the usual for {when} ({vals})"
        if ev.expected > 0 and math.isfinite(ev.expected):
            ratio = ev.observed / ev.expected
            size = f"{ratio:.1f}× the usual" if ratio >= 1 else f"{ratio:.0%} of the usual"
            return f"Consumption {size} for {when} ({vals})"
        return f"Consumption unusual for {when} ({vals}, robust z {ev.severity:.1f})"

    return reason


# --- schedule: nights, weekends, holidays --------------------------------------------------


def _step_calendar(
    n: int, start: datetime, steps_per_hour: int
) -> tuple[npt.NDArray[np.float64], IntArray]:
    """Local hour of day [h] and day index since ``start``'s date of every step."""
    hours = start.hour + start.minute / 60 + np.arange(n) / steps_per_hour
    day = np.floor_divide(hours, 24).astype(np.int64)
    return hours - 24 * day, day


def _weekend_and_holiday(
    day: IntArray, first: date, holidays: Sequence[date]
) -> tuple[BoolArray, BoolArray]:
    """Whether each day (its index since ``first``, e.g. from :func:`_step_calendar`) is
    a Saturday or Sunday, and whether it is a public holiday."""
    weekend = (first.weekday() + day) % 7 >= 5
    off = [(d - first).days for d in holidays]
    return np.asarray(weekend, dtype=bool), np.asarray(np.isin(day, off), dtype=bool)


def _closed_steps(
    n: int, start: datetime, steps_per_hour: int, holidays: Sequence[date]
) -> BoolArray:
    """Steps of Saturdays, Sundays and public holidays (local days from ``start``)."""
    _, day = _step_calendar(n, start, steps_per_hour)
    weekend, holiday = _weekend_and_holiday(day, start.date(), holidays)
    return weekend | holiday


def _without_holiday_drops(
    found: list[Anomaly], start: datetime, steps_per_hour: int, holidays: Sequence[date]
) -> list[Anomaly]:
    """``found`` (``start`` local midnight) without the drops that begin on a public
    holiday: the hour-of-week baseline expects a working day there, and a building that
    closes is closed. (All 37 false drops of schools and offices on the year scans of seeds
    300–315 fell on 15 August, Whit Monday or Christmas, sixteenth session.)"""
    if not holidays:
        return found
    day = np.asarray([an.start // (24 * steps_per_hour) for an in found], dtype=np.int64)
    _, holiday = _weekend_and_holiday(day, start.date(), holidays)
    return [
        an for an, h in zip(found, holiday.tolist(), strict=True) if not (h and an.kind == "drop")
    ]


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


def _hour_mask(hour: FloatArray, window: tuple[int, int]) -> BoolArray:
    lo, hi = window
    if lo > hi:
        return np.asarray((hour >= lo) | (hour < hi))
    return np.asarray((hour >= lo) & (hour < hi))


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
    a = _as_matrix(x, "x")
    m, n = a.shape
    hour, day = _step_calendar(n, start, steps_per_hour)
    period_days = 7 * cfg.reference_weeks
    n_periods = int(day[-1]) // period_days + 1 if n else 1
    q = (
        np.zeros((m, 1))
        if quantum is None
        else np.asarray(quantum, dtype=np.float64).reshape(-1, 1)
    )
    weekend, is_holiday = _weekend_and_holiday(day, start.date(), holidays)

    windows: list[tuple[str, BoolArray, int]] = []
    if cfg.check_nights:
        windows.append(("night_use", _hour_mask(hour, cfg.night_hours), cfg.min_nights))
    closed = np.zeros(n, dtype=bool)
    if cfg.check_weekends:
        closed |= weekend
    if cfg.check_holidays:
        closed |= is_holiday
    if closed.any():
        windows.append(("closed", _hour_mask(hour, cfg.day_hours) & closed, 1))

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
            rows, first, stop = _without_routine(rows, first, stop, day[w_start[first]], cfg)
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
) -> str:
    t0 = step_time(step, start, steps_per_hour)
    label = {"night_use": "Night use", "weekend_use": "Weekend use"}.get(kind, "Holiday use")
    ratio = observed / expected if expected > 0 else np.nan
    size = f"{ratio:.1f}× the usual level" if np.isfinite(ratio) else "above a zero usual level"
    return (
        f"{label} from {t0:%a %Y-%m-%d %H:%M} ({length / steps_per_hour:g} h): "
        f"{observed:.3g} {unit}/h on average, {size} ({expected:.3g} {unit}/h for the "
        f"season and weather) — heating or baseload left on?"
    )


# --- CUSUM on daily residuals --------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class Cusum:
    """Two-sided CUSUM statistics over days.

    Attributes
    ----------
    upper, lower : ndarray, shape (meters, days)
        Upward and downward cumulative sums [σ]; never negative.
    sigma : ndarray, shape (meters,)
        Robust σ of the daily residuals used to standardise them [residual unit].
    center : ndarray, shape (meters,)
        Median daily residual removed first [residual unit].
    z : ndarray, shape (meters, days)
        The standardised residuals the sums add up [σ]; NaN where a day has none.
    """

    upper: FloatArray
    lower: FloatArray
    sigma: FloatArray
    center: FloatArray
    z: FloatArray


LOCAL_SCALE_LAG_DAYS: Final = 14  # a shift of up to two weeks does not widen its own scale


def _lagged_scale(dev: FloatArray, days: int, lag: int) -> FloatArray:
    """σ of each day from the mean |deviation| of the ``days`` days ending ``lag`` days
    before it (1.2533·mean |x| is σ for a normal x); 0 where fewer than half are valid."""
    seg = _SegmentMeans(np.abs(dev))
    n = dev.shape[1]
    hi = np.clip(np.arange(n) - lag, 0, n)
    lo = np.clip(hi - days, 0, n)
    t, c = seg.total[:, hi] - seg.total[:, lo], seg.count[:, hi] - seg.count[:, lo]
    scale: FloatArray = 1.2533 * np.divide(t, c, out=np.zeros_like(t), where=c >= days / 2)
    return scale


def _alarm_days(stat: FloatArray, cfg: DetectorConfig, days_read: IntArray) -> BoolArray:
    """Days a CUSUM ``stat`` is in alarm: above ``cusum_h``, or above ``recent_h_share`` of
    it on each meter's last two days read."""
    recent = np.arange(stat.shape[1])[np.newaxis, :] >= (days_read - 2)[:, np.newaxis]
    early = (stat > cfg.recent_h_share * cfg.cusum_h) & recent
    return np.asarray((stat > cfg.cusum_h) | early, dtype=bool)


def spread_by_use(deviation: npt.ArrayLike, expected: npt.ArrayLike) -> FloatArray:
    """Robust σ of each day's residual as a line in its expected use, shape (meters, days).

    Each meter's days are split at its median expected use (days without a residual left
    out); the line passes through each half's σ (1.4826 × the median |deviation|) at the
    half's median expected use, rising or flat (a slope below zero is taken as zero).
    ``deviation`` is the residual less its centre. NaN where a meter has too few days.
    """
    dev = _as_matrix(deviation, "deviation")
    e = np.where(np.isnan(dev), np.nan, _as_matrix(expected, "expected"))
    half = e > nan_median(e)[:, np.newaxis]
    high = np.where(half, np.abs(dev), np.nan), np.where(half, e, np.nan)
    low = np.where(half | np.isnan(e), np.nan, np.abs(dev)), np.where(half, np.nan, e)
    s_low, s_high = (MAD_TO_SIGMA * nan_median(part[0]) for part in (low, high))
    e_low, e_high = (nan_median(part[1]) for part in (low, high))
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.maximum(np.nan_to_num((s_high - s_low) / (e_high - e_low)), 0.0)
    spread: FloatArray = s_low[:, np.newaxis] + slope[:, np.newaxis] * (
        np.asarray(expected, dtype=np.float64) - e_low[:, np.newaxis]
    )
    return spread


def cusum(
    daily_residual: npt.ArrayLike,
    *,
    k: float = 0.5,
    local_days: int = 0,
    k_floor: npt.ArrayLike | None = None,
    expected: npt.ArrayLike | None = None,
) -> Cusum:
    """Two-sided tabular CUSUM of standardised daily residuals, with no loop over days.

    Parameters
    ----------
    daily_residual : array_like, shape (meters, days)
        Observed minus expected per day [unit·day]; NaN days add no evidence.
    k : float
        Allowance [σ].
    local_days : int
        With > 0, each day's σ is at least that of the ``local_days`` days ending
        ``LOCAL_SCALE_LAG_DAYS`` before it: a room free-floating in summer swings by kelvins
        from day to day, one held by its thermostat in winter by tenths.
    k_floor : array_like, optional, shape (meters, days)
        Smallest allowance of each day in residual units (e.g. a share of the expected
        use); the day's allowance is the larger of this and ``k`` σ.
    expected : array_like, optional, shape (meters, days)
        Expected use of each day: its σ is at least the spread of days of like expected
        use (:func:`spread_by_use`).

    Returns
    -------
    Cusum

    Notes
    -----
    ``S_t = max(0, S_{t−1} + y_t − k)`` equals ``C_t − min(0, min_{j≤t} C_j)`` with
    ``C = cumsum(y − k)`` (Lindley), so the recursion is a cumulative sum and a running
    minimum. Residuals are centred on their median and scaled by 1.4826·MAD, both robust to
    a shift affecting fewer than half of the days.
    """
    r = _as_matrix(daily_residual, "daily_residual")
    center, mad = nan_median_mad(r)
    sigma = 1.4826 * mad
    dev = r - center[:, np.newaxis]
    scale = np.broadcast_to(sigma[:, np.newaxis], r.shape)
    if local_days > 0:
        scale = np.maximum(scale, _lagged_scale(dev, local_days, LOCAL_SCALE_LAG_DAYS))
    if expected is not None:
        scale = np.fmax(scale, spread_by_use(dev, _as_matrix(expected, "expected")))
    # Each step writes into an array of the step before where it can: a fresh (meters, days)
    # array costs about as much in page faults as the arithmetic on it.
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.divide(dev, scale, out=dev)
    np.copyto(y, np.nan, where=~np.isfinite(y))
    allowance: float | FloatArray = k
    if k_floor is not None:
        floor = np.abs(np.asarray(k_floor, dtype=np.float64))
        with np.errstate(invalid="ignore", divide="ignore"):
            np.divide(floor, scale, out=floor)
        allowance = np.maximum(k, np.nan_to_num(floor, copy=False, posinf=0.0), out=floor)

    def one_side(v: FloatArray, c: FloatArray) -> FloatArray:
        """The sums of ``v`` (``c`` may be ``v`` itself, overwritten)."""
        gaps = np.isnan(v)
        np.subtract(v, allowance, out=c)
        np.copyto(c, 0.0, where=gaps)
        np.cumsum(c, axis=1, out=c)
        run_min = np.minimum(c, 0.0)
        np.minimum.accumulate(run_min, axis=1, out=run_min)
        return np.subtract(c, run_min, out=run_min)

    upper = one_side(y, np.empty_like(y))
    lower = one_side(np.negative(y), np.empty_like(y))
    return Cusum(upper=upper, lower=lower, sigma=sigma, center=center, z=y)


class _SegmentMeans:
    """NaN-ignoring means of ``a[row, lo:hi]`` for many segments at once, via cumulative sums."""

    def __init__(self, a: FloatArray) -> None:
        gaps = np.isnan(a)
        m, n = a.shape
        # Summed in place behind a column of zeros: no copies of the matrix to concatenate.
        self.total = np.zeros((m, n + 1))
        total = self.total[:, 1:]
        np.copyto(total, a)
        np.copyto(total, 0.0, where=gaps)
        np.cumsum(total, axis=1, out=total)
        self.count = np.zeros((m, n + 1))
        count = self.count[:, 1:]
        np.logical_not(gaps, out=count)
        np.cumsum(count, axis=1, out=count)

    def __call__(self, rows: IntArray, lo: IntArray, hi: IntArray) -> FloatArray:
        n = self.count[rows, hi] - self.count[rows, lo]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean: FloatArray = np.where(
                n > 0, (self.total[rows, hi] - self.total[rows, lo]) / n, np.nan
            )
        return mean


def level_shifts(
    daily_residual: npt.ArrayLike,
    *,
    start: date,
    daily_expected: npt.ArrayLike | None = None,
    config: DetectorConfig | None = None,
    meter_offset: int = 0,
) -> list[Anomaly]:
    """Level shifts and drifts in daily residuals, with the onset of each.

    Parameters
    ----------
    daily_residual : array_like, shape (meters, days)
        Observed minus expected per day [unit/day], e.g. ``BaselineScan.daily_residual``.
    start : date
        Local date of day 0.
    daily_expected : array_like, optional, shape (meters, days)
        Expected daily use [unit/day], to state the change in percent and to floor the
        allowance (``cusum_k_share``).
    config : DetectorConfig, optional
        ``cusum_k``, ``cusum_k_share``, ``cusum_h``, ``drift_ratio`` and ``unit``.
    meter_offset : int
        Added to every anomaly's ``meter_index``: the row of ``daily_residual[0]`` in a
        larger matrix scanned in slices.

    Returns
    -------
    list of Anomaly
        Kinds ``"level_shift"`` or ``"drift"``; ``start`` is the estimated onset day (the day
        after the CUSUM last left zero before the alarm), ``end`` the day after the alarm
        cleared; severity is the peak CUSUM [σ]; expected/observed are mean daily values
        over the event [unit/day].
    """
    cfg = config if config is not None else DetectorConfig()
    r = _as_matrix(daily_residual, "daily_residual")
    exp_daily = (
        np.zeros_like(r) if daily_expected is None else _as_matrix(daily_expected, "daily_expected")
    )
    k_floor = None
    if daily_expected is not None and cfg.cusum_k_share > 0:
        k_floor = cfg.cusum_k_share * exp_daily
    cs = cusum(r, k=cfg.cusum_k, local_days=cfg.cusum_local_days, k_floor=k_floor)
    by_use = (
        _sums_by_use(r, exp_daily, k_floor, cs, cfg)
        if cfg.ended_shift_by_use and daily_expected is not None
        else None
    )
    out: list[Anomaly] = []
    seg_mean = _SegmentMeans(r)
    seg_exp = _SegmentMeans(exp_daily)
    # The meter's mean expected day, for ``shift_min_mean_share``.
    mean_day = (
        _mean_daily(exp_daily)
        if cfg.shift_min_mean_share > 0 and daily_expected is not None
        else None
    )
    dates: dict[int, str] = {}  # onset day → its date written out, once per day
    days_read = reading_until(r)  # one past each meter's last day with a residual
    for direction, stat in (("up", cs.upper), ("down", cs.lower)):
        ev = events_from_mask(_alarm_days(stat, cfg, days_read), kind="level_shift", score=stat)
        if not len(ev):
            continue
        rows, end = ev.meter_index, ev.end
        onset = _last_zero(stat, rows, ev.start) + 1
        # One CUSUM excursion that dips under h and rises again is one change: its alarms
        # share the onset (events are sorted by meter, then start).
        head = np.flatnonzero(np.diff(rows * (r.shape[1] + 1) + onset, prepend=-1) != 0)
        severity = np.maximum.reduceat(ev.severity, head)
        alarm = ev.start[head]
        rows, onset, alarm_end = rows[head], onset[head], np.maximum.reduceat(end, head)
        # The event ends at the excursion's peak: past it the days add no evidence (the
        # shift ended, or the trailing baseline has learnt the new level), and the sum
        # draining at k a day would stretch it over weeks, on a heating meter months.
        end = _last_argmax(stat, rows, onset, alarm_end) + 1
        # A second change within the alarm of a first, as the sum drained.
        rows, onset, alarm, alarm_end, end, severity = _with_rearmed(
            stat, (rows, onset, alarm, alarm_end, end, severity), REARM_H_SHARE * cfg.cusum_h
        )
        # The sum leaves zero at the first day above the allowance, often well before a
        # step when the model ran a little off: the onset is refitted as a step.
        onset = _step_onset(cs.z if direction == "up" else -cs.z, rows, onset, alarm + 1)
        wide = None if by_use is None else by_use[0 if direction == "up" else 1]
        keep = _kept_excursions(
            wide, rows=rows, onset=onset, end=end, alarm_end=alarm_end, days_read=days_read,
            cfg=cfg,
        )  # fmt: skip
        rows, onset, end, severity = rows[keep], onset[keep], end[keep], severity[keep]
        # Size against the weeks before the onset: the robust centre of the whole series is
        # pulled towards the new level when the shift covers many days.
        ref = seg_mean(rows, np.maximum(onset - 28, 0), onset)
        ref = np.where(np.isnan(ref), cs.center[rows], ref)
        shift = np.nan_to_num(seg_mean(rows, onset, end) - ref)
        third = np.maximum((end - onset) // 3, 1)
        first = seg_mean(rows, onset, onset + third) - ref
        last = seg_mean(rows, end - third, end) - ref
        sign = 1.0 if direction == "up" else -1.0
        drift = sign * first < cfg.drift_ratio * sign * last
        exp = seg_exp(rows, onset, end)
        obs = exp + shift
        keep = _large_enough(
            cfg, r, exp_daily, mean_day, sign=sign, rows=rows, onset=onset, end=end, shift=shift
        )
        if not keep.all():
            rows, onset, end, severity = rows[keep], onset[keep], end[keep], severity[keep]
            exp, obs, shift, drift = exp[keep], obs[keep], shift[keep], drift[keep]
        for m_i, on, e, sev, ex, ob, sh, is_drift in zip(
            rows.tolist(),
            onset.tolist(),
            end.tolist(),
            severity.tolist(),
            exp.tolist(),
            obs.tolist(),
            shift.tolist(),
            drift.tolist(),
            strict=True,
        ):
            when = dates.get(on)
            if when is None:
                when = dates[on] = f"{start + timedelta(days=on):%Y-%m-%d}"
            text = _shift_reason(
                cfg, direction, when, shift=sh, expected=ex, observed=ob, is_drift=is_drift
            )
            kind = "drift" if is_drift else "level_shift"
            out.append(Anomaly(m_i + meter_offset, on, e, kind, sev, ex, ob, text))
    return out


def _large_enough(
    cfg: DetectorConfig,
    residual: FloatArray,
    expected: FloatArray,
    mean_day: FloatArray | None,
    *,
    sign: float,
    rows: IntArray,
    onset: IntArray,
    end: IntArray,
    shift: FloatArray,
) -> BoolArray:
    """Which level shifts (rows, onset, end, mean daily ``shift``; ``sign`` their
    direction) pass the size floors: ``shift_min_rel`` over ``shift_min_days`` and
    ``shift_min_mean_share`` of the meter's ``mean_day`` (None: off)."""
    keep = np.ones(rows.size, dtype=bool)
    if cfg.shift_min_rel > 0 and cfg.shift_min_days > 0:
        sustained = _sustained_change(
            sign * residual, expected, rows, onset, end, days=cfg.shift_min_days
        )
        keep &= sustained >= cfg.shift_min_rel
    if mean_day is not None:
        keep &= np.abs(shift) >= cfg.shift_min_mean_share * mean_day[rows]
    return keep


def _sums_by_use(
    r: FloatArray, expected: FloatArray, k_floor: FloatArray | None, cs: Cusum, cfg: DetectorConfig
) -> tuple[FloatArray, FloatArray]:
    """Upper and lower CUSUM of ``r`` against the spread of days of like expected use (see
    ``ended_shift_by_use``), as ``cs`` was summed otherwise. Only the meters whose ``cs``
    passes ``cfg.cusum_h`` somewhere can have an excursion that is over, the only kind
    this tests: they alone are summed again (every step is per meter), the others read 0.
    """
    rows = np.flatnonzero(((cs.upper > cfg.cusum_h) | (cs.lower > cfg.cusum_h)).any(axis=1))
    upper, lower = np.zeros_like(r), np.zeros_like(r)
    if rows.size:
        sub = cusum(
            r[rows], k=cfg.cusum_k, local_days=cfg.cusum_local_days,
            k_floor=None if k_floor is None else k_floor[rows], expected=expected[rows],
        )  # fmt: skip
        upper[rows], lower[rows] = sub.upper, sub.lower
    return upper, lower


def _kept_excursions(
    by_use: FloatArray | None,
    *,
    rows: IntArray,
    onset: IntArray,
    end: IntArray,
    alarm_end: IntArray,
    days_read: IntArray,
    cfg: DetectorConfig,
) -> BoolArray:
    """Which CUSUM excursions (rows, onset, end at the peak, end of the alarm) are level
    changes. One whose alarm still holds on the meter's last day or the day before (a
    short last day can dip under h) may be the start of one and is kept. One over must
    have lasted ``cfg.ended_shift_min_days`` (days the weather model missed make
    excursions of one or two) and, with ``by_use`` (the CUSUM against the spread of days
    of like expected use, see ``ended_shift_by_use``), pass ``cfg.cusum_h`` on it too."""
    ongoing = alarm_end >= days_read[rows] - 1
    keep = np.ones(rows.size, dtype=bool)
    if cfg.ended_shift_min_days > 0:
        keep &= end - onset >= cfg.ended_shift_min_days
    if by_use is not None:
        stop = np.maximum(alarm_end, onset + 1)
        cols, offsets = segment_index(onset, stop)
        at = np.nan_to_num(by_use[np.repeat(rows, stop - onset), cols])
        keep &= np.maximum.reduceat(at, offsets) > cfg.cusum_h
    return np.asarray(ongoing | keep, dtype=bool)


def _shift_reason(
    cfg: DetectorConfig,
    direction: str,
    when: str,
    *,
    shift: float,
    expected: float,
    observed: float,
    is_drift: bool,
) -> str:
    change = "gradual drift" if is_drift else "level shift"
    if cfg.reads_level:
        return (
            f"Daily mean {direction} by {abs(shift):.2g} {cfg.unit} since {when} "
            f"(expected {expected:.3g}, saw {observed:.3g} {cfg.unit}); {change}"
        )
    pct = f" ({shift / expected:+.0%})" if expected > 0 else ""
    return (
        f"Daily consumption {direction} by {abs(shift):.3g} {cfg.unit}/day{pct} "
        f"since {when} (expected {expected:.3g}, saw {observed:.3g} {cfg.unit}/day); {change}"
    )


def _last_zero(stat: FloatArray, rows: IntArray, cols: IntArray) -> IntArray:
    """Column of the last zero of ``stat[row, : col + 1]`` for each pair, −1 if none: a
    search among the zeros' flat indexes rather than a running maximum over the matrix."""
    n = stat.shape[1]
    zeros = np.flatnonzero(stat == 0.0)
    at = np.searchsorted(zeros, rows * n + cols, side="right") - 1
    flat = zeros[np.maximum(at, 0)] if zeros.size else np.zeros_like(at)
    found = (at >= 0) & (flat // n == rows)
    last: IntArray = np.where(found, flat - rows * n, -1)
    return last


ONSET_SLACK_DAYS: Final = 3  # a CUSUM onset lands within a few days of the real step


# An excursion's sum drains at the allowance a day once its change is over, so a second
# change on the meter within weeks rose from that sum, not from zero, and was one alarm
# with the first, which ends at its peak: the second was never reported (seed 301, meter
# 357: −28 % on days 290–302, −50 % on days 320–328). Restarted at the peak, the sum is
# its rise from the lowest point since. A second look within an alarm needs twice h
# (bench.accuracy's year scans, sixteenth session, seeds 300–315: 6 more level shifts
# found at 1, 1.5 or 2 × h; mean precision −0.005 / −0.002 / −0.001).
REARM_H_SHARE: Final = 2.0


def _with_rearmed(
    stat: FloatArray,
    excursions: tuple[IntArray, IntArray, IntArray, IntArray, IntArray, FloatArray],
    h: float,
) -> tuple[IntArray, IntArray, IntArray, IntArray, IntArray, FloatArray]:
    """``excursions`` of the CUSUM ``stat`` (rows, onset, first alarm day, alarm end, end
    after the peak, severity) and after them the excursions that start again after a peak
    within the alarm: the sum restarted at the peak is the sum less its running minimum
    since the peak; where that passes ``h``, a change began the day after the lowest
    point. Such an excursion ends after its own peak; its severity is that peak."""
    rows, _, _, alarm_end, end, _ = excursions
    lo = end - 1  # the peak
    pick = np.flatnonzero(alarm_end - lo >= 2)
    if pick.size == 0:
        return excursions
    n, lo, r = alarm_end[pick] - lo[pick], lo[pick], rows[pick]
    offs = np.arange(int(n.max()))[np.newaxis, :]
    cols = np.minimum(lo[:, np.newaxis] + offs, stat.shape[1] - 1)
    s = np.where(offs < n[:, np.newaxis], stat[r[:, np.newaxis], cols], np.inf)
    low = np.minimum.accumulate(s, axis=1)
    rise = np.where(np.isfinite(s), s - low, 0.0)
    again = (rise > h).any(axis=1)
    if not again.any():
        return excursions
    s, low, rise, n, lo, r = s[again], low[again], rise[again], n[again], lo[again], r[again]
    first = np.argmax(rise > h, axis=1)[:, np.newaxis]
    trough = _last_true((offs <= first) & (s == np.take_along_axis(low, first, axis=1)))
    later = np.where(offs < first, -np.inf, rise)
    top = later.max(axis=1)
    peak = _last_true(later == top[:, np.newaxis])
    more = (r, lo + trough + 1, lo + first[:, 0], lo + n, lo + peak + 1)
    rows, onset, alarm, alarm_end, end = (
        np.concatenate((a, b)) for a, b in zip(excursions[:5], more, strict=True)
    )
    return rows, onset, alarm, alarm_end, end, np.concatenate((excursions[5], top))


def _last_true(mask: BoolArray) -> IntArray:
    """Column of the last True of each row of ``mask`` (every row holds one)."""
    return np.asarray(mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1), dtype=np.int64)


def _last_argmax(a: FloatArray, rows: IntArray, lo: IntArray, hi: IntArray) -> IntArray:
    """Column of the last maximum of ``a[row, lo:hi]`` for each segment (none empty)."""
    cols, offsets = segment_index(lo, hi)
    v = a[np.repeat(rows, hi - lo), cols]
    top = np.repeat(np.maximum.reduceat(v, offsets), hi - lo)
    at: IntArray = np.maximum.reduceat(np.where(v == top, cols, -1), offsets)
    return at


def _step_onset(z: FloatArray, rows: IntArray, lo: IntArray, hi: IntArray) -> IntArray:
    """First day of the suffix of ``z[row, lo:hi]`` (standardised residuals up to the
    alarm, in the shift's direction) with the largest ``sum / sqrt(days)``: the step that
    best explains the excursion, where the CUSUM's last zero is biased early by any run of
    small positive residuals before it."""
    n = hi - lo
    cols, offsets = segment_index(lo, hi)
    v = np.nan_to_num(z[np.repeat(rows, n), cols])
    run = np.cumsum(v)
    suffix = np.repeat(run[offsets + n - 1], n) - (run - v)  # sum from each day to the end
    score = suffix / np.sqrt(np.repeat(hi, n) - cols)
    top = np.repeat(np.maximum.reduceat(score, offsets), n)
    big = np.iinfo(np.int64).max
    at: IntArray = np.minimum.reduceat(np.where(score == top, cols, big), offsets)
    return at


def _sustained_change(
    r: FloatArray,
    expected: FloatArray,
    rows: IntArray,
    onset: IntArray,
    end: IntArray,
    *,
    days: int,
) -> FloatArray:
    """Largest, over the windows of ``days`` days starting in ``[onset, end)`` and at most
    ``ONSET_SLACK_DAYS`` after the onset, of the window's residual relative to its expected
    use [-]; NaN when none is valid.

    Pass the residual times the event's sign (+1 up, −1 down). It is against the
    trailing-weeks (temperature-corrected) baseline, which absorbs a lasting shift within
    two or three weeks: the evidence is in the first days.
    """
    res_mean, exp_mean = _SegmentMeans(r), _SegmentMeans(expected)
    n = r.shape[1]
    out = np.full(rows.size, np.nan)
    for i, (m_i, lo, hi) in enumerate(
        zip(rows.tolist(), onset.tolist(), end.tolist(), strict=True)
    ):
        # Only windows starting near the onset: within a long excursion of a noisy meter
        # some window always deviates; a real step shows right where the sum left zero.
        first = np.arange(lo, max(min(hi, lo + ONSET_SLACK_DAYS + 1, n - days + 1), lo + 1))
        first = first[first + days <= n]
        if first.size == 0:
            continue
        row = np.full(first.size, m_i, dtype=np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = res_mean(row, first, first + days) / np.abs(exp_mean(row, first, first + days))
        rel = rel[np.isfinite(rel)]
        if rel.size:
            out[i] = rel.max()
    return out


# --- full scan -----------------------------------------------------------------------------


# A thermometer's spike scale at each hour of the day: the |residual| of this rank from the
# top over the days, at least this many (one percent of a year's: a spike or two at that
# hour in eight weeks does not set its own floor).
LOCAL_TAIL_SHARE: Final = 0.01
LOCAL_TAIL_MIN_RANK: Final = 3
POOLED_SHARE: Final = 0.5


def _pooled_tail(resid: FloatArray, floor: FloatArray) -> FloatArray:
    """The 99th percentile of each row's |resid|, at least ``floor``, as a column."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a row of gaps: no quantile
        tail = np.nanquantile(np.abs(resid), 0.99, axis=1, keepdims=True)
    return np.asarray(np.maximum(floor, np.nan_to_num(tail)), dtype=np.float64)


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
        rank = max(LOCAL_TAIL_MIN_RANK, round(LOCAL_TAIL_SHARE * days))
        by_hour = np.nan_to_num(np.abs(resid[:, : days * steps_per_day]))
        by_hour = by_hour.reshape(m, days, steps_per_day)
        tail = np.partition(by_hour, days - rank, axis=1)[:, days - rank, :]
        pooled = _pooled_tail(resid, floor)
        # At least half the whole series' tail: a smooth room read in 0.1 K steps has an
        # hour's tail of 0, and a spike's neighbours, whose running median it moved by a
        # few tenths, would be spikes too.
        scale = np.tile(np.maximum(tail, POOLED_SHARE * pooled), days + 1)[:, :n]
        # Within half a window of either end the median sees one side only (an evening
        # setback in the last hours reads as a drop): the whole series' tail there, as before.
        for edge in (slice(0, half), slice(max(n - half, 0), n)):
            np.maximum(scale[:, edge], pooled, out=scale[:, edge])
    else:
        scale = _pooled_tail(resid, floor)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(resid / np.where(scale > 0, scale, np.nan), dtype=np.float64)


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
    ``meter_index`` (the row of ``x[0]`` in a larger matrix).
    """
    cfg = config if config is not None else DetectorConfig()
    a = _as_matrix(x, "x")
    if (start.hour, start.minute) != (0, 0):
        raise ValueError(f"start: must be local midnight for daily residuals, got {start}")
    if threads < 1:
        raise ValueError(f"threads: must be >= 1, got {threads}")
    te: FloatArray | None = None
    if outdoor_temp_c is not None and cfg.temperature_term:
        te = np.asarray(outdoor_temp_c, dtype=np.float64)
        if te.shape != (a.shape[1],):
            raise ValueError(f"outdoor_temp_c: expected shape ({a.shape[1]},), got {te.shape}")
    sun: FloatArray | None = None
    # Every meter with a heating term: an electrically heated home's nights follow the sun
    # as a gas boiler's do (bench.accuracy, seventh session: false night use on the clean
    # city −7 to −26 %).
    if sun_w_m2 is not None and te is not None:
        sun = np.asarray(sun_w_m2, dtype=np.float64)
        if sun.shape != (a.shape[1],):
            raise ValueError(f"sun_w_m2: expected shape ({a.shape[1]},), got {sun.shape}")
    parts = min(threads, a.shape[0] // MIN_METERS_PER_THREAD)
    kw: dict[str, Any] = {
        "start": start, "steps_per_hour": steps_per_hour, "weeks": weeks,
        "holidays": holidays, "outdoor_temp_c": te, "sun_w_m2": sun, "config": cfg,
        "quality": quality,
    }  # fmt: skip
    slices = _in_row_slices(
        a.shape[0],
        parts,
        lambda lo, hi: _scan_slice(
            a[lo:hi], z_out=None if z_out is None else z_out[lo:hi],
            meter_offset=meter_offset + lo, **kw,
        ),
    )  # fmt: skip
    found = [an for part, _, _, _ in slices for an in part]
    residual = np.concatenate([r for _, r, _, _ in slices])
    expected = np.concatenate([e for _, _, e, _ in slices])
    terms = [t for _, _, _, t in slices]
    day_model = _DayModel.of(
        a, _joined_terms(terms), cfg, start=start, steps_per_hour=steps_per_hour,
        holidays=holidays, sun_w_m2=sun,
    )  # fmt: skip
    groups = [np.arange(a.shape[0])]
    if cfg.reads_level:
        # A day's level is its mean (the CUSUM is scale-free: the same events).
        residual, expected = residual / (24 * steps_per_hour), expected / (24 * steps_per_hour)
    else:
        groups = _fleet_departure(residual, expected, te, steps_per_hour)
    unreliable = _holiday_blind_days(start.date(), residual.shape[1], holidays, weeks)
    if unreliable.any():
        residual[:, unreliable] = np.nan
    if cfg.level_shifts:
        shifts = _in_row_slices(
            a.shape[0],
            parts,
            lambda lo, hi: level_shifts(
                residual[lo:hi], start=start.date(), daily_expected=expected[lo:hi],
                config=cfg, meter_offset=meter_offset + lo,
            ),
        )  # fmt: skip
        found.extend(an for part in shifts for an in part)
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


def _without_flat_schedule(found: list[Anomaly]) -> list[Anomaly]:
    """``found`` without the night, weekend and holiday use within a flatline of the same
    meter: a register stuck above its night level is reported as stuck."""
    stuck: dict[int, list[tuple[int, int]]] = {}
    for an in found:
        if an.kind == "flatline":
            stuck.setdefault(an.meter_index, []).append((an.start, an.end))
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
    config: DetectorConfig,
    quality: QualityConfig | None,
    z_out: FloatArray | None,
    meter_offset: int,
) -> tuple[list[Anomaly], FloatArray, FloatArray, HeatingTerm | None]:
    """The detectors that look at one meter at a time; plus the daily residuals and
    expected use for the level shifts, and the heating term the baseline scan fitted (for
    the daily weather model's regressors; None for levels). ``outdoor_temp_c`` is given
    only to meters whose config has a temperature term (checked by :func:`anomaly_scan`)."""
    cfg = config
    quantum = register_quantum(a)
    found: list[Anomaly] = []
    closed = _closed_steps(a.shape[1], start, steps_per_hour, holidays)
    open_hours = None
    if cfg.check_weekends:  # a building that closes
        open_hours = ~closed & _hour_mask(
            _step_calendar(a.shape[1], start, steps_per_hour)[0], cfg.day_hours
        )
    for ev in quality_scan(
        a, quality, quantum=quantum, closed=closed, open_hours=open_hours
    ).values():
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
        peaks = _without_holiday_drops(peaks, start, steps_per_hour, holidays)
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
            mean_use=_mean_daily(scan.daily_expected) / (24 * steps_per_hour),
            meter_offset=meter_offset,
            sun_w_m2=sun_w_m2,
        )
    )
    if scan.heating is None or cfg.reads_level:
        return found, scan.daily_residual, scan.daily_expected, None
    if not cfg.daily_weather_model:
        # The CUSUM reads the hour-of-week baseline's days; the heating term serves the
        # two-sided test of ended shifts (``two_sided_min_share``).
        return found, scan.daily_residual, scan.daily_expected, scan.heating
    model = _DayModel.of(
        a, scan.heating, cfg, start=start, steps_per_hour=steps_per_hour, holidays=holidays,
        sun_w_m2=sun_w_m2,
    )  # fmt: skip
    assert model is not None  # a heating term makes one
    observed, features = model.inputs()
    expected = trailing_weather_fit(observed, features, skip=model.skip)
    return found, observed - expected, expected, scan.heating


# Days either side of an ended level shift that its two-sided fit reads (see
# ``DetectorConfig.two_sided_min_share``): the trailing fit's own four weeks.
TWO_SIDED_WINDOW_DAYS: Final = 28
TWO_SIDED_MIN_DAYS: Final = 10  # fewer days read around an event: it is not tested


@dataclass(slots=True, frozen=True)
class _DayModel:
    """What the daily weather model (:mod:`processing.weather_model`) reads of a chunk:
    its series ``x`` (meters, steps), each meter's ``heating`` term, ``sun_w_m2`` and, for
    buildings that close, the ``closed`` days (weekends and holidays), neither fitted nor
    expected: a boiler at its setback follows the cold from another balance point, by
    little. Days' use and regressors are built on demand for the meters asked: the
    two-sided test reads only those with an ended shift, and a whole chunk of homes'
    (meters, days, p) regressors is a hundred megabytes.
    """

    x: FloatArray
    heating: HeatingTerm
    steps_per_hour: int
    bridged_gaps: bool
    sun_w_m2: FloatArray | None
    closed: BoolArray | None

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
    ) -> _DayModel | None:
        """The model of ``x`` (``start`` its first step's local midnight) under ``cfg``;
        None without a heating term."""
        if heating is None:
            return None
        closed = _closed_days(
            x.shape[1], cfg, start=start, steps_per_hour=steps_per_hour, holidays=holidays
        )
        return cls(x, heating, steps_per_hour, cfg.bridged_gaps, sun_w_m2, closed)

    @property
    def skip(self) -> BoolArray:
        """Days neither fitted nor expected, shape (days,)."""
        if self.closed is None:
            return np.zeros(-(-self.x.shape[1] // (24 * self.steps_per_hour)), dtype=bool)
        return self.closed

    def inputs(self, rows: IntArray | None = None) -> tuple[FloatArray, FloatArray]:
        """Daily use (rows, days) of the meters ``rows`` (all by default), each day ending
        at the meter's last reading, and their regressors (rows, days, p)."""
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
        features = daily_features(
            term, day_starts, steps, steps_per_hour=self.steps_per_hour,
            sun_w_m2=self.sun_w_m2, closed=self.closed, until=until,
        )  # fmt: skip
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
    weekend, holiday = _weekend_and_holiday(days, start.date(), holidays)
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
    of ``model`` on the ``TWO_SIDED_WINDOW_DAYS`` read days before and after it; +inf for
    every other event, and for one with fewer than ``TWO_SIDED_MIN_DAYS`` days around it or
    none read within it (not tested)."""
    out = np.full(len(found), np.inf)
    pick = [i for i, an in enumerate(found) if an.kind in ("level_shift", "drift")]
    if not pick:
        return out
    rows = np.asarray([found[i].meter_index - meter_offset for i in pick], dtype=np.int64)
    sub, where = np.unique(rows, return_inverse=True)  # the event rows, once each
    y, f = model.inputs(sub)
    read = ~np.isnan(y) & ~model.skip[np.newaxis, :]
    n_days = y.shape[1]
    lo = np.asarray([found[i].start for i in pick], dtype=np.int64)
    hi = np.asarray([found[i].end for i in pick], dtype=np.int64)
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
    weight = (inside & read[where[:, np.newaxis], cols]).astype(np.float64)
    yv = np.where(weight > 0, y[where[:, np.newaxis], cols], 0.0)
    xv = f[where[:, np.newaxis], cols] * weight[:, :, np.newaxis]
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
    days = _SegmentMeans(np.where(read, y, np.nan))
    used = np.einsum("ep,ep->e", cum_f[where, hi] - cum_f[where, lo], beta)
    seen = days.total[where, hi] - days.total[where, lo]
    sign = np.asarray([1.0 if found[i].observed > found[i].expected else -1.0 for i in idx])
    with np.errstate(invalid="ignore", divide="ignore"):
        share = sign * (seen - used) / np.abs(used)
        share_after = sign * (seen_after - used_after) / np.abs(used_after)
    tested = (weight.sum(axis=1) >= TWO_SIDED_MIN_DAYS) & (
        days.count[where, hi] > days.count[where, lo]
    )
    # A change that lasts is as large after as in the event: its two-sided share is read
    # as the departure after it (measured before it) when that is the larger.
    known_before = weight[:, :w].sum(axis=1) >= TWO_SIDED_MIN_DAYS / 2
    share = np.where(known_before, np.fmax(share, share_after), share)
    out[idx] = np.where(tested & np.isfinite(share), share, np.inf)
    return out


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


def _holiday_blind_days(first: date, days: int, holidays: Sequence[date], weeks: int) -> BoolArray:
    """Days whose daily residual says nothing about the meter's level: public holidays (the
    hour-of-week baseline expects a working day) and days whose reference weeks hold at
    least half holidays on the same weekday (May's Thursdays in France: the median of the
    four previous Thursdays falls halfway to the closed-day level)."""
    holiday = np.zeros(days + 7 * weeks, dtype=bool)  # padded: index 7·weeks is day 0
    off = np.asarray([d.toordinal() - first.toordinal() for d in holidays], dtype=np.int64)
    off = off[(off >= -7 * weeks) & (off < days)]
    holiday[off + 7 * weeks] = True
    lagged = np.zeros(days, dtype=np.int64)  # holidays among each day's reference weekdays
    for j in range(1, weeks + 1):
        lagged += holiday[7 * (weeks - j) : 7 * (weeks - j) + days]
    return np.asarray(holiday[7 * weeks :] | (2 * lagged >= weeks), dtype=bool)


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


def _mean_daily(daily: FloatArray) -> FloatArray:
    """NaN-ignoring mean over the days of each meter (NaN for a meter without one)."""
    ok = ~np.isnan(daily)
    count = ok.sum(axis=1)
    total = np.where(ok, daily, 0.0).sum(axis=1)
    mean: FloatArray = np.divide(total, count, out=np.full(total.shape, np.nan), where=count > 0)
    return mean


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
