"""Climate normals shared by the simulator and processing."""

import numpy as np
from numpy.testing import assert_allclose

from wattwatch.climate import MONTHLY_NORMAL_C, normal_daily_temp_c


def test_mid_month_days_give_the_monthly_normals_and_the_year_wraps():
    mid = np.array(
        [15.5, 45.0, 74.5, 105.0, 135.5, 166.0, 196.5, 227.5, 258.0, 288.5, 319.0, 349.5]
    )
    assert_allclose(normal_daily_temp_c(mid), MONTHLY_NORMAL_C)
    # 31 December and 1 January lie between December's and January's normals.
    new_year = normal_daily_temp_c(np.array([364.9, 0.1]))
    assert np.all((new_year > min(MONTHLY_NORMAL_C[0], MONTHLY_NORMAL_C[11])) & (new_year < 4.6))
    assert_allclose(new_year[0], new_year[1], atol=0.02)
