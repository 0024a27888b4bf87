"""Thresholds of the consumption detectors, per kind of meter (:class:`DetectorConfig`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from processing.fleet import CommonCauseConfig
from processing.overrides import replaced
from processing.quality_config import QualityConfig


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
    warning_h_share : float
        An excursion above this share of ``cusum_h`` on the meter's last two days, and
        under ``recent_h_share`` of it, is a warning [-] (0: none, the default; see
        ``WARNING_H_SHARE`` for energy meters): the service stores it
        with that status, confirms it once the sum passes the alarm's threshold and
        withdraws it when a later run no longer sees it (``storage.results``). Two days
        of a 20 % shift are often under the alarm's evidence: a meter's σ a day is a tenth
        of its use or more, and the allowance (``cusum_k_share``) takes half of it.
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
        loads several. Two spike steps in a row whose z add up to √2 ``z_single`` are a
        spike too (``spikes.PAIR_FLOOR``).
    large_z, large_multiple : float
        With ``large_z`` > 0, a spike that misses the thresholds above is still reported
        when its peak is above ``large_z`` σ and above the expected use by at least
        ``large_multiple`` × the meter's mean use per step over the scanned window (a year
        in bench.accuracy's year scans, eight weeks in the service, where a winter's mean
        holds the heating and the rule passes fewer spikes: docs/benchmarks.md,
        twenty-seventh session) [-], [-]. A gas home's reheat
        hours make its scale wide at the hours a fault is most costly: 17 kWh in a June
        hour at 7.6 σ is no boiler's habit (bench.accuracy, tenth session, homes' heating:
        4 σ and 3 × found 0.021–0.047 more spikes ≥ 5 σ on seeds 300–303 for 0–0.002 less
        precision; 2.5 × then 0 / +0.007 / +0.008 / 0 more, precision within 0.001, the
        service's −0.001 / −0.002 on 300 / 301).
    run_step_z, run_multiple : float
        With ``run_step_z`` > 0, two steps or more in a row, each above ``run_step_z`` σ and
        above its expected use by ``run_multiple`` × the meter's mean use per step (as
        ``large_multiple``), are a spike when their z together, Σz/√k, clear ``z_threshold``
        (0: off) [-], [-]. A home running a heater for two or three hours reads 3–4 σ and
        three times its mean hour above the usual each hour: no hour is a spike alone, nor
        is the pair by ``spikes.PAIR_FLOOR``.
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
        ``spikes._bridged_peak``), and daily sums and window means take the readings as they are.
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
        city were lost, 0–2 % with it; 0.15 gained +0.005 to +0.018 more). The fit leaves
        out the days of the meter's other level shifts and drifts: after a shift ends, a
        trailing baseline that learnt its level reads the normal days as a shift back (its
        mirror), which a fit on the shift's days confirms. An event one of whose sides is
        all such days is not tested (one side's fit extrapolates the other's season).
        The fit is made again without the days its first fit misses by more than
        ``TWO_SIDED_TRIM_SIGMA`` robust σ: a fault nobody reported pulls it as well.
        Twenty-second session, year scans, mean precision on seeds 300–315 / 316–331 /
        332–347: 0.8079 / 0.8062 / 0.7905 → 0.8113 / 0.8086 / 0.7929 with the other
        shifts' days left out, → 0.8152 / 0.8112 / 0.7949 with the second fit as well;
        level shifts found 0.8936 / 0.8923 / 0.8827 → 0.8925 / 0.8923 / 0.8809. On those
        cleaner fits, 0.1 → 0.13: 0.8152 / 0.8112 / 0.7949 → 0.8191 / 0.8161 / 0.7979, no
        label lost on any set (0.12: +0.0024 / +0.0035 / +0.0018; 0.14: +0.0058 / +0.0066 /
        +0.0043 and a level shift lost; 0.15: +0.0073 / +0.0074 / +0.0049 and 3 level
        shifts and a schedule label lost). Chosen on all three sets.
    schedule_min_share : float
        A flagged night or closed day must also exceed its expected level by this share
        of the meter's mean use per step [-]: a few tens of watt-hours above a very steady
        baseload are many σ but nothing an engineer can act on.
    cusum_local_days : int
        With > 0, the CUSUM's σ of each day is at least that of this many days two weeks
        earlier (see :func:`~processing.shifts.cusum`); 0 keeps one σ for the whole window.
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
    closed_setback_share : float
        A closed day flagged as used is the building holding its setback when its
        daytime use is under this share of its open days' daytime use over the two weeks
        before (0: off) [-]: a closed heating system keeps the building from cooling below
        its setback, from the first cold weekend on, at a fraction of an open day's
        heating; heating left on for the weekend reads near an open day's use.
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
        level-shift recall than it saves false alarms (see ``shifts._sustained_change``).
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
    restart_boosts : bool
        A building that closes (``check_weekends``) and has a heating term: its spikes at
        the restart after a weekend or a holiday that the cold of the closed days explains
        are not reported (``spikes.without_restart_boosts``; False: off).
    ended_shift_by_use : bool
        A level shift or drift whose alarm cleared before the meter's last two days must
        also pass ``cusum_h`` when each day is read against the spread of the meter's days
        of like expected use (``shifts.spread_by_use``), never less than the whole series'
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
    base_day_shifts : bool
        With ``daily_weather_model``: a second CUSUM reads each day without heating
        against the days without heating of the four weeks before it
        (:func:`~processing.weather_model.base_day_reference`), its σ at least
        :data:`BASE_DAY_SIGMA_SHARE` of that use and the upper quartile of the days'
        departures, and reports the level shifts the first
        one has not (see :func:`~processing.detectors.base_day_shifts`). A school's summer
        hot water, the same 12.8 kWh each open day, went to 19.5 for two weeks, and the
        weather model, whose year's σ is the winter's, read nothing (bench.accuracy's year
        scans, twenty-ninth session: 113 of the 150 level shifts of closing gas and heat
        meters were missed).
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
    warning_h_share: float = 0.0
    cusum_local_days: int = 0
    drift_ratio: float = 0.5
    unit: str = "kWh"
    reads_level: bool = False
    level_shifts: bool = True
    z_single: float = 7.0
    large_z: float = 0.0
    large_multiple: float = 3.0
    run_step_z: float = 0.0
    run_multiple: float = 2.5
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
    base_day_shifts: bool = False
    two_sided_min_share: float = 0.13
    schedule_min_share: float = 0.2
    restart_boosts: bool = True
    closed_routine_events: int = 2
    closed_routine_days: int = 56
    closed_setback_share: float = 0.0
    daily_weather_model: bool = False
    weather_step_share: float = 0.0
    common_cause: CommonCauseConfig = dataclasses.field(default_factory=CommonCauseConfig)

    def __post_init__(self) -> None:
        # What the scan cannot work with, named here rather than met deep inside it (an
        # operator sets these: WATTWATCH_PROCESSING_DETECTORS).
        if self.reference_weeks < 1:
            raise ValueError(f"reference_weeks: must be 1 or more, got {self.reference_weeks}")
        if not 0.0 <= self.tail_quantile < 1.0:
            raise ValueError(f"tail_quantile: must lie in [0, 1), got {self.tail_quantile}")
        if not self.tail_divisor > 0:  # hour_tail_divisor 0 turns the hourly floor off
            raise ValueError(f"tail_divisor: must be more than 0, got {self.tail_divisor}")
        width = self.local_median_steps
        if width < 0 or (width > 0 and width % 2 == 0):
            raise ValueError(
                "local_median_steps: must be 0 (off) or an odd number of steps (a centred "
                f"window), got {width}"
            )


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
# Runs of two hours or more at 3 σ and 2.5 × the home's mean hour above the usual each
# (``run_step_z``), as a home's electricity: chosen on the year scans of seeds 316–331
# (twenty-seventh session; spikes 0.9428 → 0.9480, 15 of 21 more spike reports right,
# precision −0.0002), then checked on 300–315 (0.9521 → 0.9556), 332–347 (0.9461 → 0.9507)
# and 348–363 (0.9462 → 0.9501), precision −0.0004 / −0.0001 / −0.0003. At 2.5 σ: 18 of 41
# right on 316–331; with the steps at ``large_multiple`` (4 × for electricity): none.
HOME_RUN_STEP_Z: Final = 3.0
_HOME_HEATING: Final = dataclasses.replace(
    _OPEN_DAILY, z_threshold=5.0, z_single=9.0, schedule_z=1.25, min_nights=4,
    daily_weather_model=True, cusum_h=7.0, large_z=4.0, large_multiple=2.5,
    ended_shift_min_days=4, run_step_z=HOME_RUN_STEP_Z, base_day_shifts=True,
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
# A closed day used under a quarter of the open days' daytime use is the setback held: of
# the false weekend use of closing gas and heat meters (32 year scans), 210 of 234 were
# Sundays after the building had cooled to its setback on Saturday, at about a quarter of
# the open days' use (median), against 1.5 × for the right ones (twenty-third session,
# year scans: precision +0.0049 / +0.0030 / +0.0044 on seeds 300–315 / 316–331 / 332–347,
# no label lost; 0.2: +0.0036 / +0.0023 / +0.0031; 0.3 lost a heated holiday on 300–315).
_CLOSING_HEATING: Final = DetectorConfig(
    z_threshold=6.0, z_single=8.0, cusum_h=12.0, daily_weather_model=True, schedule_z=6.0,
    min_nights=3, long_run_z=1.5, long_run_nights=4, closed_routine_events=1,
    closed_routine_days=42, shift_min_mean_share=0.2, closed_setback_share=0.25,
    base_day_shifts=True,
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
    _OPEN_DAILY, schedule_z=1.5, min_nights=4, z_single=9.0, large_z=4.0, large_multiple=4.0,
    run_step_z=HOME_RUN_STEP_Z,
)  # fmt: skip
# Energy meters warn of a level shift at a fifth of h on their last two days: its
# allowance (``cusum_k_share``) keeps a meter whose σ is a few percent of its use from
# warning of noise, which residuals of pure noise at 0.5 σ would a fifth of the days.
# Found within 2 days (bench.accuracy's cut, seeds 300–315, whole days read): 0.710 →
# 0.861; false finds at the same cuts on the clean cities 1.6 % → 4.4 %. At 0.1: 0.881
# and 5.7 %.
WARNING_H_SHARE: Final = 0.2
# The σ of a day without heating is at least this share of the days without heating
# before it (``base_day_shifts``): a building's hot water is read in whole quanta, day
# after day the same, and its MAD is 0.
BASE_DAY_SIGMA_SHARE: Final = 0.05
DETECTOR_CONFIGS: Final = {
    kind: dataclasses.replace(cfg, warning_h_share=WARNING_H_SHARE)
    for kind, cfg in {
        "household": _HOME_ELECTRICITY,
        "office": DetectorConfig(),
        "school": DetectorConfig(),
        "heat": _CLOSING_HEATING,
        "gas": _CLOSING_HEATING,
        "household_heat": _HOME_HEATING,
        "household_gas": _HOME_HEATING,
    }.items()
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
    """Built-in detector thresholds of a meter kind (see ``BUILT_IN_CONFIGS``)."""
    try:
        return BUILT_IN_CONFIGS[kind]
    except KeyError:
        known = ", ".join(sorted(BUILT_IN_CONFIGS))
        raise ValueError(f"kind: unknown meter kind {kind!r}; known: {known}") from None


# Every kind's built-in thresholds, the sensors' included: what an operator's overrides
# (``WATTWATCH_PROCESSING_DETECTORS``, see :func:`tuned_configs`) start from.
BUILT_IN_CONFIGS: Final = {
    **DETECTOR_CONFIGS,
    "temperature": TEMPERATURE_DETECTOR,
    "outdoor_temperature": OUTDOOR_TEMPERATURE_DETECTOR,
}


def tuned_configs(overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, DetectorConfig]:
    """The built-in thresholds of each kind named in ``overrides``, with those fields replaced.

    ``overrides`` maps a kind (a key of ``BUILT_IN_CONFIGS``) to fields of
    :class:`DetectorConfig` and their values, e.g. ``{"school": {"z_single": 8.0}}``;
    ``common_cause`` takes a mapping of :class:`~processing.fleet.CommonCauseConfig`'s fields.

    Raises
    ------
    ValueError
        Naming ``kind.field`` for an unknown kind, an unknown field or a value of the wrong
        type (an integer where a whole number is expected, true or false for a switch…).
    """
    return {
        kind: replaced(BUILT_IN_CONFIGS[kind], fields, kind)
        for kind, fields in _by_known_kind(overrides)
    }


def tuned_quality(overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Data-quality thresholds per kind (``WATTWATCH_PROCESSING_QUALITY``): for each kind
    named, the fields of :class:`~processing.quality_config.QualityConfig` it sets, checked
    and typed. They apply last, over the run's thresholds and the kind's own
    (``pipeline.QUALITY_BY_KIND``).

    Raises
    ------
    ValueError
        As :func:`tuned_configs` does.
    """
    out = {}
    for kind, fields in _by_known_kind(overrides):
        tuned = replaced(QualityConfig(), fields, kind)  # its own rules too, kind.field named
        out[kind] = {name: getattr(tuned, name) for name in fields}
    return out


def _by_known_kind(overrides: Any) -> list[tuple[str, Any]]:
    """The (kind, fields) pairs of ``overrides``, every kind one of ``BUILT_IN_CONFIGS``."""
    if not isinstance(overrides, Mapping):
        raise ValueError(f"expected a table of meter kinds, got {overrides!r}")
    for kind in overrides:
        if kind not in BUILT_IN_CONFIGS:
            raise ValueError(f"{kind}: unknown meter kind; known: {', '.join(BUILT_IN_CONFIGS)}")
    return list(overrides.items())
