"""Matrices from TimescaleDB: binary COPY into numpy, rollup and raw paths, daily series."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import psycopg
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from storage.matrices import (
    _copy_rows,
    _scatter,
    iter_matrices,
    load_building_daily,
    load_hourly_mean,
    load_matrix,
    load_meter_info,
    meter_chunks,
)
from storage.meters import create_building, create_municipality, register_meter
from storage.readings import write_readings
from storage.rollups import refresh_rollups

T0 = datetime(2025, 1, 6, tzinfo=UTC)  # a Monday, 01:00 in Paris
HOURS = 72


def _meter(conn: psycopg.Connection, name: str, quantity: str, *, cumulative: bool, **kw: object):
    unit = "kWh" if cumulative else "degC"
    return register_meter(
        conn, device_format="own_json", device_id=name, channel="", quantity=quantity,
        unit=unit, cumulative=cumulative, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.fixture
def series(conn: psycopg.Connection) -> dict[str, object]:
    """An index with a gap and a counter reset, and a temperature sensor, both hourly."""
    muni = create_municipality(conn, "Lille", normal_hdd=2500)
    bid = create_building(
        conn, name="b1", municipality_id=muni, floor_area_m2=100, heating_carrier="gas",
        heating_efficiency=0.9,
    )  # fmt: skip
    gas = _meter(conn, "gas1", "gas", cumulative=True, building_id=bid)
    temp = _meter(conn, "t1", "outdoor_temperature", cumulative=False, building_id=bid)
    use = 1.0 + 0.5 * np.sin(np.arange(HOURS) / 3.0)  # kWh used in hour k (k-th hour from T0)
    index = 1000.0 + np.cumsum(use)
    index[40:] -= index[39]  # the counter restarts from zero after hour 39
    rows = [(gas.id, T0, 1000.0)]
    rows += [
        (gas.id, T0 + timedelta(hours=k + 1), float(index[k])) for k in range(HOURS) if k != 20
    ]
    te = 5.0 + np.cos(np.arange(HOURS) / 5.0)
    rows += [(temp.id, T0 + timedelta(hours=k, minutes=30), float(te[k])) for k in range(HOURS)]
    write_readings(conn, rows)
    refresh_rollups(conn)
    conn.commit()
    expected = use.copy()
    # The reading closing hour 20 is missing: the next one carries both hours (as the rollups
    # compute deltas between consecutive stored readings).
    expected[21] += expected[20]
    expected[20] = np.nan
    expected[40] = index[40]  # after a reset, consumption is the new value
    return {"gas": gas.id, "temp": temp.id, "use": expected, "te": te, "building": bid}


def test_rollup_matrix_is_aligned_with_nan_gaps(
    conn: psycopg.Connection, series: dict[str, object]
) -> None:
    meters = load_meter_info(conn, meter_ids=[series["temp"], series["gas"]])  # type: ignore[list-item]
    assert meters.meter_id.tolist() == sorted([series["gas"], series["temp"]])  # type: ignore[type-var]
    m = load_matrix(conn, meters, start=T0 - timedelta(hours=2), end=T0 + timedelta(hours=HOURS))
    assert m.values.shape == (2, HOURS + 2)
    gas_row = int(np.flatnonzero(meters.meter_id == series["gas"])[0])
    temp_row = 1 - gas_row
    assert np.isnan(m.values[:, :2]).all()
    assert_allclose(m.values[gas_row, 2:], series["use"], rtol=1e-12)  # type: ignore[arg-type]
    assert_allclose(m.values[temp_row, 2:], series["te"], rtol=1e-12)  # type: ignore[arg-type]


def test_raw_matrix_matches_the_rollups(
    conn: psycopg.Connection, series: dict[str, object]
) -> None:
    meters = load_meter_info(conn)
    kw = {"start": T0 + timedelta(hours=1), "end": T0 + timedelta(hours=HOURS)}
    rollup = load_matrix(conn, meters, **kw)  # type: ignore[arg-type]
    raw = load_matrix(conn, meters, source="raw", **kw)  # type: ignore[arg-type]
    assert_allclose(raw.values, rollup.values, rtol=1e-12)
    six = load_matrix(conn, meters, source="raw", step=timedelta(hours=6), **kw)  # type: ignore[arg-type]
    assert six.values.shape == (2, 12)


def test_hourly_mean_averages_the_meters_that_read_each_hour(
    conn: psycopg.Connection, series: dict[str, object]
) -> None:
    second = _meter(conn, "t2", "outdoor_temperature", cumulative=False)
    # A second station 2 K warmer that reads only the first 10 hours.
    write_readings(
        conn, [(second.id, T0 + timedelta(hours=k, minutes=30), float(series["te"][k]) + 2.0)  # type: ignore[index]
               for k in range(10)],
    )  # fmt: skip
    refresh_rollups(conn)
    end = T0 + timedelta(hours=HOURS)
    te: np.ndarray = series["te"]  # type: ignore[assignment]
    mean = load_hourly_mean(conn, "outdoor_temperature", start=T0, end=end)
    assert mean is not None
    assert_allclose(mean[:10], te[:10] + 1.0, rtol=1e-12)
    assert_allclose(mean[10:], te[10:], rtol=1e-12)
    one = load_hourly_mean(conn, "outdoor_temperature", start=T0, end=end, meter_id=second.id)
    assert one is not None and np.isnan(one[10:]).all()
    assert_allclose(one[:10], te[:10] + 2.0, rtol=1e-12)
    assert load_hourly_mean(conn, "irradiance", start=T0, end=end) is None


def test_chunks_cover_every_meter_once(conn: psycopg.Connection, series: dict[str, object]) -> None:
    meters = load_meter_info(conn)
    chunks = list(iter_matrices(conn, meters, start=T0, end=T0 + timedelta(days=1), chunk_meters=1))
    assert [c.meter_id.tolist() for c, _ in chunks] == [[i] for i in meters.meter_id.tolist()]
    assert all(m.values.shape == (1, 24) for _, m in chunks)


def test_meter_chunks_are_consecutive_and_the_last_takes_the_rest(
    conn: psycopg.Connection, series: dict[str, object]
) -> None:
    meters = load_meter_info(conn)
    ids = meters.meter_id.tolist()
    assert [c.meter_id.tolist() for c in meter_chunks(meters, len(ids) - 1)] == [ids[:-1], ids[-1:]]
    assert [c.meter_id.tolist() for c in meter_chunks(meters, len(ids) + 5)] == [ids]
    with pytest.raises(ValueError, match="chunk_meters"):
        meter_chunks(meters, 0)


# The rollup query before the fixed-width rows: one row per meter with two sorted arrays.
_ARRAY_ROLLUP_QUERY = """
COPY (
  SELECT k.ord::int4 - 1,
         array_agg(floor(extract(epoch FROM h.hour - %(start)s::timestamptz) / 3600)::int4
                   ORDER BY h.hour),
         array_agg(coalesce(CASE WHEN m.cumulative THEN h.consumption ELSE h.mean END,
                            'NaN'::float8) ORDER BY h.hour)
  FROM unnest(%(ids)s::int4[]) WITH ORDINALITY AS k(id, ord)
  JOIN meters m ON m.id = k.id
  JOIN readings_hourly h ON h.meter_id = k.id
  WHERE h.hour >= %(start)s::timestamptz AND h.hour < %(end)s::timestamptz
  GROUP BY k.ord
) TO STDOUT (FORMAT BINARY)
"""


def test_fixed_width_rollup_rows_equal_the_array_path(
    conn: psycopg.Connection, series: dict[str, object]
) -> None:
    empty = _meter(conn, "e1", "electricity", cumulative=True)  # a meter without readings
    conn.commit()
    meters = load_meter_info(conn)
    order = np.array([2, 0, 1])  # rows in a different order than the ids
    meters = meters.select(order[: len(meters)])
    assert empty.id in meters.meter_id.tolist()
    windows = [
        (T0 - timedelta(hours=5), T0 + timedelta(hours=HOURS + 3)),
        (T0 + timedelta(hours=7), T0 + timedelta(hours=30)),
        (T0 + timedelta(hours=7), T0 + timedelta(hours=30, minutes=20)),  # ragged end
        (T0 + timedelta(hours=HOURS + 10), T0 + timedelta(hours=HOURS + 20)),  # no data
    ]
    for start, end in windows:
        got = load_matrix(conn, meters, start=start, end=end)
        n = -(-int((end - start).total_seconds()) // 3600)
        params = {"ids": meters.meter_id.tolist(), "start": start, "end": end}
        want = _scatter(conn, _ARRAY_ROLLUP_QUERY, params, (len(meters), n))
        assert got.values.shape == want.shape
        assert_array_equal(got.values, want)
    assert np.isfinite(load_matrix(conn, meters, start=T0, end=T0 + timedelta(hours=HOURS))
                       .values).any()  # fmt: skip


def test_rollup_read_leaves_work_mem_as_it_was(
    conn: psycopg.Connection, series: dict[str, object]
) -> None:
    conn.execute("SET work_mem = '5MB'")
    load_matrix(conn, load_meter_info(conn), start=T0, end=T0 + timedelta(hours=HOURS))
    assert conn.execute("SHOW work_mem").fetchone() == ("5MB",)


def test_copy_parser_reads_many_rows_and_empty_arrays(conn: psycopg.Connection) -> None:
    query = (
        "COPY (SELECT g::int4, array_agg(s::int4 ORDER BY s), array_agg(s * 0.5 ORDER BY s)"
        " FROM generate_series(0, 2999) g, generate_series(0, g % 7) s GROUP BY g"
        " UNION ALL SELECT -1, '{}'::int4[], '{}'::float8[]) TO STDOUT (FORMAT BINARY)"
    )
    rows = list(_copy_rows(conn, query, {}))
    assert len(rows) == 3001
    by_key = {k: (s, v) for k, s, v in rows}
    s, v = by_key[13]
    assert_array_equal(s, np.arange(13 % 7 + 1))
    assert_allclose(v, 0.5 * np.arange(13 % 7 + 1))
    assert by_key[-1][0].size == 0


def test_building_daily_heating_and_municipal_outdoor_temperature(
    conn: psycopg.Connection, series: dict[str, object]
) -> None:
    daily = load_building_daily(conn, first_day=date(2025, 1, 6), stop_day=date(2025, 1, 9))
    assert daily.building_id.tolist() == [series["building"]]
    assert daily.heating_quantity.tolist() == ["gas"]
    assert daily.heating_kwh.shape == (1, 3)
    got = conn.execute(
        "SELECT consumption, day FROM readings_daily WHERE meter_id = %s ORDER BY day",
        (series["gas"],),
    ).fetchall()
    want = {d: c for c, d in got}
    assert_allclose(daily.heating_kwh[0, 1], want[date(2025, 1, 7)], rtol=1e-12)
    mean_te = conn.execute(
        "SELECT mean FROM readings_daily WHERE meter_id = %s AND day = '2025-01-07'",
        (series["temp"],),
    ).fetchone()
    assert mean_te is not None
    assert_allclose(daily.outdoor_temp_c[0, 1], mean_te[0], rtol=1e-12)
    assert_allclose(daily.heating_efficiency, [0.9], rtol=1e-6)
    assert daily.occupants is not None and np.isnan(daily.occupants).tolist() == [True]
    conn.execute("UPDATE buildings SET occupants = 4 WHERE id = %s", (series["building"],))
    daily = load_building_daily(conn, first_day=date(2025, 1, 6), stop_day=date(2025, 1, 9))
    assert daily.occupants is not None and daily.occupants.tolist() == [4.0]
