"""How long a run of flagged steps must be before chance alone makes one rarely: the budget
of chance runs a year shared by the outage, zero-run and stuck-sensor rules."""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from processing.events import _point_runs

FloatArray = npt.NDArray[np.float64]


# The chance runs a rule accepts are counted per this many steps (a year of hourly readings),
# however long the scanned window: the service scans eight weeks every day, and a budget per
# window let it report six times as many chance outages over a year as one scan of the year
# (bench.accuracy's service replay, eighth session: 114 false outages against 21, seed 300).
FALSE_RUN_SPAN: Final = 8760


def unlikely_run(rate: FloatArray, false_runs: float) -> FloatArray:
    """Shortest ``L`` whose chance runs, ``n·rate^L`` in ``n`` steps of independent events of
    probability ``rate``, number at most ``false_runs`` per :data:`FALSE_RUN_SPAN` steps."""
    return np.asarray(np.ceil(np.log(false_runs / FALSE_RUN_SPAN) / np.log(rate)), dtype=np.float64)


def chance_run_length(
    points: npt.NDArray[np.intp], shape: tuple[int, int], false_runs: float
) -> FloatArray:
    """Per meter, the shortest run of the flagged steps ``points`` (flat indexes, ascending)
    that its own runs, started at a rate ``g`` per step (counted from run starts, so one long
    run does not raise it), leave by chance at most ``false_runs`` times (see
    :func:`processing.quality.outages`)."""
    m, n = shape
    starts = np.bincount(_point_runs(points, n)[0], minlength=m)
    g = np.clip(starts / max(n, 1), 1e-6, 0.5)
    return unlikely_run(g, false_runs)
