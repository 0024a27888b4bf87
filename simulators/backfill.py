"""Direct backfill: the rows the devices would have published, COPYed straight into TimescaleDB.

Same device plan and timestamps as ``simulators.publish``, so a backfilled city and a published
one store the same rows (formats without a clock apart, and within each device's rounding).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import psycopg

from simulators.city import City, MeterSeries
from simulators.devices import DevicePlan, channel_values, device_ts
from storage.bulk import write_arrays

DEFAULT_BLOCK_STEPS: Final = 24 * 7  # one week of hourly steps per transaction


@dataclass(slots=True)
class BackfillStats:
    rows: int = 0  # non-NaN values staged
    inserted: int = 0  # rows not stored before


def expected_rows(
    city: City,
    plan: DevicePlan,
    meter_id: npt.ArrayLike,
    *,
    block_steps: int = DEFAULT_BLOCK_STEPS,
) -> Iterator[tuple[npt.NDArray[np.int32], npt.NDArray[np.datetime64], npt.NDArray[np.float64]]]:
    """``(meter_id, ts, value)`` arrays, block by block, NaN values dropped.

    ``meter_id`` maps each ``plan.channels`` entry to its database id.
    """
    ids = np.asarray(meter_id, dtype=np.int32)
    for name, series in (("meters", city.meters), ("grid", city.grid)):
        channels = plan.series_channels(name)
        if channels.size == 0:
            continue
        device_of = np.asarray([plan.channels[c].device for c in channels], dtype=np.int64)
        devices, row_of = np.unique(device_of, return_inverse=True)
        steps = block_steps if name == "meters" else block_steps * _per_hour(series)
        for start in range(0, series.ts.size, steps):
            stop = min(start + steps, series.ts.size)
            values = channel_values(plan, series, channels, start, stop)
            ts = device_ts(plan, series, devices, start, stop)[row_of]
            keep = np.isfinite(values)
            m = np.broadcast_to(ids[channels][:, None], values.shape)
            yield m[keep], ts[keep], values[keep]


def backfill(
    conn: psycopg.Connection,
    city: City,
    plan: DevicePlan,
    meter_id: npt.ArrayLike,
    *,
    block_steps: int = DEFAULT_BLOCK_STEPS,
    on_block: Callable[[BackfillStats], None] | None = None,
) -> BackfillStats:
    """Write every reading of ``city`` and commit block by block (memory stays bounded)."""
    stats = BackfillStats()
    for m, ts, v in expected_rows(city, plan, meter_id, block_steps=block_steps):
        staged, inserted = write_arrays(conn, m, ts, v)
        conn.commit()
        stats.rows += staged
        stats.inserted += inserted
        if on_block is not None:
            on_block(stats)
    return stats


def _per_hour(series: MeterSeries) -> int:
    if series.ts.size < 2:
        return 1
    step_s = int((series.ts[1] - series.ts[0]) / np.timedelta64(1, "s"))
    return max(3600 // step_s, 1)
