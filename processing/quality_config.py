"""Thresholds of the data-quality rules (:class:`QualityConfig`): the rules themselves are
in :mod:`processing.quality` and, for stuck registers and sensors, :mod:`processing.flatlines`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class QualityConfig:
    """Thresholds of the data-quality rules, in steps of the analysed series.

    Attributes
    ----------
    outage_steps : int
        Shortest NaN run reported as an outage [steps]; shorter gaps are common and are
        bridged by the consumers of the data.
    outage_false_runs : float
        Chance runs of the meter's own transmission losses accepted per meter and
        :data:`~processing.chance_runs.FALSE_RUN_SPAN` steps (a year of hours): a lossy
        link needs a longer gap before it is an outage (see
        :func:`~processing.quality.outages`) [-]. At 0.1 a city's meters made a
        three-hour "outage" of chance losses every ten meter-years, 10–20 false a seed in
        bench.accuracy; at 0.03 (eleventh session, seeds 300–303) precision +0.010 /
        +0.006 / +0.004 / +0.004, every outage label still found (0.01: one lost on 301).
    zero_steps : int
        Run of exact zeros always long enough to report [steps] (24 h at hourly steps).
    zero_min_steps, zero_false_runs : int, float
        A shorter run, down to ``zero_min_steps``, is reported when the meter's own zero
        runs make one that long unlikely: at most ``zero_false_runs`` such runs by chance
        a year (as ``outage_false_runs``; 0: ``zero_steps`` only). A home's
        register never reads zero for hours (the fridge, the standby), a gas register
        idles at zero a few hours most nights.
    zero_open_share : float
        With the hours a building that closes is open (``quality_scan(open_hours=...)``),
        a zero run must hold at least this share of its steps in them [-]: a school's gas
        on a mild weekend, Friday evening to Monday morning, is the building idle, not a
        register stopped (bench.accuracy, eleventh session, seeds 300–303: 3–21 false zero
        runs a seed gone, precision +0.005 / +0.011 / +0.002 / +0.007, every zero-run
        label still found; the same at 0.25, a label lost on 300–302 at 0.5).
    flatline_steps : int
        Shortest run of (near-)constant non-zero values reported as a stuck sensor [steps]
        (6 h at hourly steps).
    flatline_rel_tol : float
        Spread allowed within a flat window, relative to its level [-]: reading-time jitter
        of ±30 s makes a constant hourly flow read ±0.8 % per step.
    flatline_quanta : float
        Spread allowed within a flat window in register quanta (rounding) [-].
    flatline_contrast : float
        A flat window counts only when the meter's typical spread over the same length,
        in the surrounding four weeks, is this many times the allowed spread [-]: a gas
        register idling in summer or a thermostat-held room is flat by nature.
    flatline_day_steps : int
        A second, longer window, tested alike against the meter's own windows of that
        length (0: off) [steps]. A summer gas home reads 3–4 quanta an hour for hours on end
        as a stuck register does, so its 6-step windows are flat by nature; over a day its
        hot-water draws spread it out, and a stuck one stays flat.
    flatline_merge_gap : int
        Flat runs separated by at most this many steps (a gap and the bridged reading
        after it) form one event [steps].
    flatline_event_steps : int
        Shortest merged flat event reported [steps] (0: ``flatline_steps``). Gas and heat
        registers in steady flow read flat for 6–10 h most days; a stuck one stays flat.
    flatline_index_tol : float
        A flat event must hold ``flatline_event_steps`` steps in a row (``flatline_steps``
        when that is 0) over which the register's index, the running sum of the use, stays
        on a straight line within this share of a step's use plus ``flatline_quanta`` quanta
        (0: off) [-]. A stuck sensor feeds the register one rate, so only rounding and the
        reading times (±30 s in an hour: 1/60 of an hour's use from one reading to the next)
        move the index off its line; steady real use within ``flatline_rel_tol`` an hour
        wanders off it. A gap's catch-up reading puts the index back on the line, so the
        test spans gaps (bench.accuracy, twelfth session, seeds 300–303: precision +0.029 /
        +0.028 / +0.025 / +0.026, false flat events 54 → 14 on 300, every flatline label
        still found).
    flatline_min_quanta : float
        A flat window's level must be at least this many register quanta: a register
        idling at one quantum per step, or at one and two by turns, reads "flat" by
        rounding alone [-]. (3 until the seventh session; with the day-long windows and the
        idle level no longer spared, 1.5 found 0.03–0.08 more stuck registers of summer gas
        homes at the same precision and false alarms: bench.accuracy.)
    flatline_day_min_quanta : float
        The same for the day-long windows (``flatline_day_steps``) [-]: a day of a home's
        own use is never within a quantum an hour; a flow stuck at half a quantum to one
        and a half is, all day. Year scans of seeds 300–315 (twentieth session): 2 more
        flatlines found, precision −0.0001, none more on the clean twins (0.25: 2 more false
        on the seeds, none more found).
    flatline_habit_days, flatline_habit_need : int
        A flat event is the meter's routine, not a fault, when its first hours were as flat
        at the same level on at least ``flatline_habit_need`` of the ``flatline_habit_days``
        previous days (0: off) [days].
    flatline_peer_share, flatline_peer_need : float, int
        A flat episode is the meter's way when at least ``flatline_peer_need`` other flat
        episodes of the meter a year (fewer in a shorter window, at least two; see
        :func:`~processing.flatlines.peers_needed`), at the same level and at least
        ``flatline_peer_share`` as long, look just like it (0: off) [-]: a home's boiler
        holding a setback on mild nights is flat for 10–15 h at the same few kWh night after
        night, a stuck register once.
    flatline_busy_steps, flatline_busy_ratio : int, float
        A flat event with at least ``flatline_busy_steps`` steps on open days (not
        ``closed``, see :func:`~processing.quality.quality_scan`) at which the meter usually reads
        ``flatline_busy_ratio`` × its flat level or more (their hour-of-week median over
        the four weeks before, above the flat tolerance) is a stuck register, whatever
        the peer and habit rules say (0: off) [steps], [-]. A school stuck at its Sunday
        level through Monday and Tuesday looks like one more weekend to them (bench.accuracy,
        tenth session, seeds 300–303: flatlines +0.018 / +0.028 / 0 / +0.018, precision
        unchanged; with closed days counted, bridge days and weekends after a colder
        month read as busy: precision 0 to −0.005).
    flatline_idle_ratio : float
        A window as flat as the meter usually is at that hour of week (which the contrast
        rule lets pass) is still stuck when it reads ``flatline_idle_ratio`` × the meter's
        usual level then or more (plus the contrast × a mean's rounding), and that usual
        level is above one quantum (0: off) [-]. Buildings that close idle flat at a
        standby of their own at night; their register stuck at the day's use reads it all
        night through (the rule for an idle level of zero is always on).
    flatline_exact : bool
        Sensors that report the value itself (temperatures) repeat it exactly when stuck:
        use :func:`~processing.flatlines.repeat_runs` instead of the near-flat test.
    flatline_false_runs : float
        With ``flatline_exact``: chance runs accepted per meter and
        :data:`~processing.chance_runs.FALSE_RUN_SPAN` steps [-].
    flatline_spread_gaps : bool
        On a register whose first reading after a gap carries the gap's energy
        (``quality_scan(bridged=True)``), a gap of up to ``flatline_merge_gap`` steps inside
        a flat run takes, with the reading after it, that reading's share of their steps
        (:func:`~processing.flatlines._spread_catch_up`). Else a stuck flow's lost reading
        breaks its run with a double step, and a meter losing 3 % of its readings has a gap
        in half its day-long windows (``flatline_day_steps``). Year scans of seeds 300–315
        (twentieth session): flatlines 0.938 → 0.953 (20 labels found, 2 lost), mean
        precision −0.001, 13 more flatlines on the 16 clean twins (292); schedule −0.003,
        one label, a night use ``fleet.shared_nights`` now calls the fleet's (night uses
        within a stuck register are the flatline's, and the chance of a cluster it weighs
        came down with them). Off for offices' and schools' electricity
        (``pipeline.QUALITY_BY_KIND``): their nights and weekends idle flat by nature, and
        pieces joined over a lost reading no longer match the meter's other idle runs
        (``flatline_peer_share``); precision −0.006 with them.
    check_negative : bool
        Report negative values; off for temperatures, which have no natural zero (an
        outdoor sensor reads below zero every frost).
    max_gap : int
        Runs separated by at most this many steps are merged [steps].
    """

    outage_steps: int = 3
    outage_false_runs: float = 0.03
    zero_steps: int = 24
    zero_min_steps: int = 3
    zero_false_runs: float = 0.1
    zero_open_share: float = 0.1
    flatline_steps: int = 6
    flatline_rel_tol: float = 0.04
    flatline_quanta: float = 1.0
    flatline_contrast: float = 3.0
    flatline_day_steps: int = 24
    flatline_merge_gap: int = 2
    flatline_event_steps: int = 10
    flatline_index_tol: float = 1.0 / 60.0
    flatline_min_quanta: float = 1.5
    flatline_day_min_quanta: float = 0.5
    flatline_habit_days: int = 14
    flatline_habit_need: int = 3
    flatline_peer_share: float = 0.7
    flatline_peer_need: int = 3
    flatline_busy_steps: int = 18
    flatline_busy_ratio: float = 2.0
    flatline_idle_ratio: float = 0.0
    flatline_exact: bool = False
    flatline_false_runs: float = 0.02
    flatline_spread_gaps: bool = True
    check_negative: bool = True
    max_gap: int = 0

    def __post_init__(self) -> None:
        # Named here rather than met inside the scan (an operator sets these:
        # WATTWATCH_PROCESSING_QUALITY).
        if self.flatline_steps < 2:
            raise ValueError(f"flatline_steps: must be 2 or more, got {self.flatline_steps}")
