"""The budget of chance runs: how long a run must be before chance makes one rarely."""

import numpy as np

from processing.chance_runs import FALSE_RUN_SPAN, chance_run_length, unlikely_run


def test_an_unlikely_run_is_the_shortest_within_the_budget_of_chance_runs():
    rate = np.array([0.5, 0.1, 0.01])
    length = unlikely_run(rate, 0.02)
    assert (FALSE_RUN_SPAN * rate**length <= 0.02).all()
    assert (FALSE_RUN_SPAN * rate ** (length - 1) > 0.02).all()
    # A larger budget never asks for a longer run.
    assert (unlikely_run(rate, 1.0) <= length).all()


def test_a_meter_s_runs_are_counted_once_each_however_long():
    n = 1000
    busy = np.zeros((2, n), dtype=bool)
    busy[0, ::10] = True  # 100 runs of one step
    busy[1, :100] = True  # one run of 100 steps
    got = chance_run_length(np.flatnonzero(busy), busy.shape, 0.02)
    assert got[0] == unlikely_run(np.array([0.1]), 0.02)[0]
    assert got[1] == unlikely_run(np.array([0.001]), 0.02)[0]
    assert got[0] > got[1]
