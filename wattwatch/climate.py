"""The site's climate normals, shared by the simulator's weather and processing's checks of the
weather station (Lille-Lesquin-like monthly means)."""

from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

# Monthly normal air temperature [°C], Lille-Lesquin-like (Jan 3.6 … Jul 18.6).
MONTHLY_NORMAL_C: Final = (3.6, 4.4, 7.6, 10.3, 13.8, 16.7, 18.6, 18.5, 16.0, 12.2, 7.7, 4.6)
_MONTH_MID_DOY: Final = (
    15.5,
    45.0,
    74.5,
    105.0,
    135.5,
    166.0,
    196.5,
    227.5,
    258.0,
    288.5,
    319.0,
    349.5,
)


def normal_daily_temp_c(day_of_year: npt.ArrayLike) -> FloatArray:
    """Climate-normal daily mean temperature on a (fractional) day of year [°C].

    Periodic linear interpolation between mid-month normals of ``MONTHLY_NORMAL_C``; day 0
    is 1 January 00:00.
    """
    doy = np.asarray(day_of_year, dtype=np.float64)
    mid = np.asarray(_MONTH_MID_DOY)
    normals = np.asarray(MONTHLY_NORMAL_C)
    days = np.r_[mid - 365.0, mid, mid + 365.0]
    return np.asarray(np.interp(doy % 365.0, days, np.tile(normals, 3)), dtype=np.float64)
