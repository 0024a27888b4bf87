"""Aligned (meters, steps) matrices and per-building daily series read out of TimescaleDB.

Binary COPY streams rows that numpy reads with ``np.frombuffer``: no Python object per
reading, and meters come in chunks so the memory held is one chunk's matrix. Hourly rollups
come as fixed-width rows ``(meter, hour, value)`` read with a single ``np.frombuffer``; the raw
and daily paths stream one row per meter carrying two arrays (step indexes, values).

The heap of ``readings_hourly`` is in the rollup job's insertion order, not primary-key order
(after a bulk refresh, hash-aggregate order), so a meter's readings sit on about as many pages
as it has hours. Walking the primary key meter by meter
touches one page per reading (about 450,000 page reads per 500-meter chunk at 10,000 meters,
far beyond shared_buffers); a bitmap scan reads each page that holds the chunk's rows once.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
import psycopg

from processing.consumption import interval_consumption

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

Source = Literal["rollup", "raw"]

HOUR: Final = timedelta(hours=1)
DEFAULT_CHUNK_METERS: Final = 500
# Gas registers in m³ are turned into kWh with the Lille network's coefficient (conversion
# coefficient × higher heating value); every other heating register is already in kWh.
GAS_KWH_PER_M3: Final = 11.2
# Quantities whose register measures what heats the building, by preference.
HEATING_QUANTITIES: Final = ("heat", "gas")
_ELECTRIC_CARRIERS: Final = ("electricity", "heat_pump")

_SIGNATURE: Final = b"PGCOPY\n\xff\r\n\x00"
_HEADER_FIXED: Final = len(_SIGNATURE) + 8  # signature, flags, header-extension length
_ARRAY_HEADER: Final = 20  # ndim, has-null flag, element oid, dimension, lower bound
_I4: Final = np.dtype([("len", ">i4"), ("v", ">i4")])
_F8: Final = np.dtype([("len", ">i4"), ("v", ">f8")])


class CopyFormatError(ValueError):
    """The binary COPY stream did not have the shape this module asked the server for."""


# --- binary COPY of per-meter arrays --------------------------------------------------------


def _array_values(field: memoryview, dtype: np.dtype[np.void]) -> npt.NDArray[np.generic]:
    """Elements of a one-dimensional binary array without NULLs (empty arrays have ndim 0)."""
    ndim = struct.unpack_from(">i", field, 0)[0]
    if ndim == 0:
        return np.zeros(0, dtype=dtype["v"])
    if ndim != 1:
        raise CopyFormatError(f"expected a one-dimensional array, got {ndim} dimensions")
    rec = np.frombuffer(field, dtype=dtype, offset=_ARRAY_HEADER)
    return rec["v"]


def _copy_rows(
    conn: psycopg.Connection, query: str, params: dict[str, object]
) -> Iterator[tuple[int, npt.NDArray[np.int32], FloatArray]]:
    """Rows ``(int4 key, int4[] steps, float8[] values)`` of a binary COPY, as numpy arrays.

    A ``bytearray`` collects the stream and whole rows are cut from it, so the parser does
    not rely on the server sending one message per row.
    """
    buf = bytearray()
    pos = 0
    header_done = False
    with conn.cursor() as cur, cur.copy(query, params) as copy:
        for data in copy:
            buf += data
            if not header_done:
                if len(buf) < _HEADER_FIXED:
                    continue
                if bytes(buf[: len(_SIGNATURE)]) != _SIGNATURE:
                    raise CopyFormatError("not a binary COPY stream")
                ext = struct.unpack_from(">I", buf, len(_SIGNATURE) + 4)[0]
                pos = _HEADER_FIXED + ext
                header_done = True
            while len(buf) - pos >= 2:
                nfields = struct.unpack_from(">h", buf, pos)[0]
                if nfields == -1:  # trailer
                    pos += 2
                    break
                if nfields != 3:
                    raise CopyFormatError(f"expected 3 columns per row, got {nfields}")
                # Walk the three length words; stop if the row is not complete yet.
                p = pos + 2
                spans = []
                for _ in range(3):
                    if len(buf) - p < 4:
                        break
                    n = struct.unpack_from(">i", buf, p)[0]
                    if n < 0:
                        raise CopyFormatError("unexpected NULL column")
                    spans.append((p + 4, p + 4 + n))
                    p += 4 + n
                if len(spans) < 3 or p > len(buf):
                    break
                view = memoryview(buf)
                key = struct.unpack_from(">i", buf, spans[0][0])[0]
                steps = _array_values(view[spans[1][0] : spans[1][1]], _I4).astype(np.int32)
                values = _array_values(view[spans[2][0] : spans[2][1]], _F8).astype(np.float64)
                view.release()
                yield key, steps, values
                pos = p
            if pos:
                del buf[:pos]
                pos = 0


def _scatter(
    conn: psycopg.Connection, query: str, params: dict[str, object], shape: tuple[int, int]
) -> FloatArray:
    out = np.full(shape, np.nan)
    for row, steps, values in _copy_rows(conn, query, params):
        keep = (steps >= 0) & (steps < shape[1])
        out[row, steps[keep]] = values[keep]
    return out


# --- binary COPY of fixed-width rows -------------------------------------------------------

# A row ``(int4 key, timestamptz, float8 value)``: field count, then length word and value.
_ROW_TS_F8: Final = np.dtype(
    [
        ("nfields", ">i2"),
        ("key_len", ">i4"),
        ("key", ">i4"),
        ("ts_len", ">i4"),
        ("ts", ">i8"),
        ("value_len", ">i4"),
        ("value", ">f8"),
    ]
)
_PG_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)
_BITMAP_WORK_MEM: Final = "64MB"


def _copy_fixed(
    conn: psycopg.Connection, query: str, params: dict[str, object], dtype: np.dtype[np.void]
) -> npt.NDArray[np.void]:
    """Every row of a binary COPY whose rows all have ``dtype``'s layout, as one record array.

    The whole stream is collected and read with a single ``np.frombuffer``: no row is parsed
    in Python.
    """
    with conn.cursor() as cur:
        # Room for an exact bitmap (one entry per heap page), so the bitmap scan does not turn
        # lossy and recheck every row of most pages; local to the transaction, put back after.
        previous = cur.execute(
            "SELECT current_setting('work_mem'), set_config('work_mem', %s, true)",
            (_BITMAP_WORK_MEM,),
        ).fetchone()
        with cur.copy(query, params) as copy:
            data = bytearray()
            for block in copy:
                data += block
        if previous is not None:
            cur.execute("SELECT set_config('work_mem', %s, true)", (previous[0],))
    if len(data) < _HEADER_FIXED or data[: len(_SIGNATURE)] != _SIGNATURE:
        raise CopyFormatError("not a binary COPY stream")
    pos = _HEADER_FIXED + struct.unpack_from(">I", data, len(_SIGNATURE) + 4)[0]
    body = len(data) - pos - 2
    if body < 0 or body % dtype.itemsize or data[-2:] != b"\xff\xff":
        raise CopyFormatError(f"expected rows of {dtype.itemsize} bytes and a trailer")
    rows = np.frombuffer(data, dtype=dtype, count=body // dtype.itemsize, offset=pos)
    names = dtype.names or ()
    if rows.size and (rows["nfields"] != len(names) // 2).any():
        raise CopyFormatError(f"expected {len(names) // 2} columns per row")
    for name in names[1::2]:
        if rows.size and (rows[name] != dtype[name[:-4]].itemsize).any():
            raise CopyFormatError(f"unexpected NULL or width in column {name[:-4]!r}")
    return rows


# --- meters ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MeterInfo:
    """Meters to analyse, as parallel arrays of shape (meters,).

    Attributes
    ----------
    meter_id, building_id : ndarray of int64 (building −1 for none).
    quantity, unit : ndarray of str.
    cumulative : ndarray of bool — an index, whose matrix holds consumption per step.
    use : ndarray of str — the building's use ("" without a building).
    """

    meter_id: IntArray
    building_id: IntArray
    quantity: npt.NDArray[np.str_]
    unit: npt.NDArray[np.str_]
    cumulative: npt.NDArray[np.bool_]
    use: npt.NDArray[np.str_]

    def __len__(self) -> int:
        return int(self.meter_id.size)

    def select(self, index: npt.ArrayLike) -> MeterInfo:
        """The meters selected by a boolean or integer index."""
        i = np.asarray(index)
        return MeterInfo(
            self.meter_id[i],
            self.building_id[i],
            self.quantity[i],
            self.unit[i],
            self.cumulative[i],
            self.use[i],
        )


def load_meter_info(
    conn: psycopg.Connection,
    *,
    meter_ids: Sequence[int] | None = None,
    id_range: tuple[int, int] | None = None,
    quantities: Sequence[str] | None = None,
) -> MeterInfo:
    """Meters by id list, id range ``[lo, hi]`` and/or quantity, ordered by id."""
    where = ["true"]
    params: dict[str, object] = {}
    if meter_ids is not None:
        where.append("m.id = ANY(%(ids)s)")
        params["ids"] = [int(i) for i in meter_ids]
    if id_range is not None:
        where.append("m.id BETWEEN %(lo)s AND %(hi)s")
        params["lo"], params["hi"] = id_range
    if quantities is not None:
        where.append("m.quantity = ANY(%(quantities)s)")
        params["quantities"] = list(quantities)
    rows = conn.execute(
        "SELECT m.id, coalesce(m.building_id, -1), m.quantity, m.unit, m.cumulative,"
        " coalesce(b.use, '') FROM meters m LEFT JOIN buildings b ON b.id = m.building_id"
        f" WHERE {' AND '.join(where)} ORDER BY m.id",
        params,
    ).fetchall()
    cols: list[tuple[object, ...]] = list(zip(*rows, strict=True)) if rows else [()] * 6
    return MeterInfo(
        meter_id=np.asarray(cols[0], dtype=np.int64),
        building_id=np.asarray(cols[1], dtype=np.int64),
        quantity=np.asarray(cols[2], dtype="<U24"),
        unit=np.asarray(cols[3], dtype="<U8"),
        cumulative=np.asarray(cols[4], dtype=bool),
        use=np.asarray(cols[5], dtype="<U24"),
    )


# --- hourly (or any step) matrices ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Matrix:
    """Meters × regular time steps; NaN where no data.

    Attributes
    ----------
    meter_id : ndarray of int64, shape (meters,)
    start : datetime
        Start of step 0 (timezone-aware) — steps are ``[start + k·step, start + (k+1)·step)``.
    step : timedelta
    values : ndarray, shape (meters, steps)
        Consumption in the step for cumulative meters [meter unit], mean for the others.
    """

    meter_id: IntArray
    start: datetime
    step: timedelta
    values: FloatArray

    @property
    def steps(self) -> int:
        return int(self.values.shape[1])

    def step_start(self, k: int) -> datetime:
        """Start of step ``k``."""
        return self.start + k * self.step


# One plain row per reading, with no sort and no array to build on the server. ``= ANY``
# lets the planner read the chunk's rows with a bitmap scan, each heap page once and in
# physical order, instead of one random page per reading through the primary key (the heap
# is not in (meter_id, hour) order: see the module notes). The hour goes out as the raw binary
# timestamptz (µs since 2000-01-01), whose step numpy computes exactly; NULLs become NaN so
# every row has the same width.
_ROLLUP_QUERY: Final = """
COPY (
  SELECT h.meter_id,
         h.hour,
         coalesce(CASE WHEN m.cumulative THEN h.consumption ELSE h.mean END, 'NaN'::float8)
  FROM readings_hourly h
  JOIN meters m ON m.id = h.meter_id
  WHERE h.meter_id = ANY(%(ids)s::int4[])
    AND h.hour >= %(start)s::timestamptz AND h.hour < %(end)s::timestamptz
) TO STDOUT (FORMAT BINARY)
"""

# A cumulative reading closes the interval before it, so it is bucketed 1 µs earlier and the
# last index of each bucket is kept; instantaneous readings are averaged in their bucket.
_RAW_QUERY: Final = """
COPY (
  SELECT ord::int4 - 1,
         array_agg(floor(extract(epoch FROM bucket - %(start)s::timestamptz)
                         / %(step_s)s)::int4 ORDER BY bucket),
         array_agg(v ORDER BY bucket)
  FROM (
    SELECT k.ord,
           time_bucket(%(step)s::interval,
                       CASE WHEN m.cumulative THEN r.ts - interval '1 microsecond' ELSE r.ts END,
                       %(start)s::timestamptz) AS bucket,
           CASE WHEN m.cumulative THEN last(r.value, r.ts) ELSE avg(r.value) END AS v
    FROM unnest(%(ids)s::int4[]) WITH ORDINALITY AS k(id, ord)
    JOIN meters m ON m.id = k.id
    JOIN readings r ON r.meter_id = k.id
    WHERE r.ts > %(start)s::timestamptz AND r.ts <= %(end)s::timestamptz
    GROUP BY k.ord, 2, m.cumulative
  ) b
  WHERE bucket < %(end)s::timestamptz
  GROUP BY ord
) TO STDOUT (FORMAT BINARY)
"""


def load_matrix(
    conn: psycopg.Connection,
    meters: MeterInfo,
    *,
    start: datetime,
    end: datetime,
    source: Source = "rollup",
    step: timedelta = HOUR,
) -> Matrix:
    """One matrix of the given meters over ``[start, end)``.

    Parameters
    ----------
    meters : MeterInfo
        Rows of the matrix, in this order.
    start, end : datetime
        Timezone-aware; with ``source="rollup"`` both on the hour.
    source : {"rollup", "raw"}
        ``rollup``: ``readings_hourly`` (``consumption`` of cumulative meters, ``mean`` of
        the others), hourly only. ``raw``: ``readings`` bucketed with ``time_bucket`` at
        ``step`` — mean of instantaneous meters, and for cumulative meters the difference of
        the last index of consecutive buckets (resets counted from zero, and the first
        bucket after a gap carrying the gap's energy, as the rollups do).
    step : timedelta
        Bucket width (``raw`` only).

    Returns
    -------
    Matrix
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start, end: must be timezone-aware")
    if end <= start:
        raise ValueError(f"end: must be after start ({start}), got {end}")
    ids = meters.meter_id.tolist()
    if source == "rollup":
        if step != HOUR:
            raise ValueError(f"step: the rollups are hourly, got {step}")
        n = -(-int((end - start).total_seconds()) // 3600)
        unique, row_of = np.unique(meters.meter_id, return_inverse=True)
        params: dict[str, object] = {"ids": unique.tolist(), "start": start, "end": end}
        rows = _copy_fixed(conn, _ROLLUP_QUERY, params, _ROW_TS_F8)
        # Exact integer steps: µs since the server's epoch, floored to whole hours from start.
        start_us = (start - _PG_EPOCH) // _US
        steps = (rows["ts"].astype(np.int64) - start_us) // (HOUR // _US)
        keep = (steps >= 0) & (steps < n)
        by_id = np.full((unique.size, n), np.nan)
        index = np.searchsorted(unique, rows["key"].astype(np.int64))
        by_id[index[keep], steps[keep]] = rows["value"][keep]
        values: FloatArray = by_id[row_of.reshape(-1)]
        return Matrix(meters.meter_id.copy(), start, step, values)
    if source != "raw":
        raise ValueError(f"source: expected 'rollup' or 'raw', got {source!r}")
    step_s = step.total_seconds()
    if step_s <= 0:
        raise ValueError(f"step: must be positive, got {step}")
    n = -(-int((end - start).total_seconds()) // int(step_s))
    # One bucket more on the left: the index before the window gives its first difference.
    lo = start - step
    params = {"ids": ids, "start": lo, "end": end, "step": step, "step_s": step_s}
    raw = _scatter(conn, _RAW_QUERY, params, (len(ids), n + 1))
    cum = meters.cumulative
    values = raw[:, 1:].copy()
    if cum.any():
        values[cum] = interval_consumption(raw[cum], bridge_gaps=True)[0][:, 1:]
    return Matrix(meters.meter_id.copy(), start, step, values)


def iter_matrices(
    conn: psycopg.Connection,
    meters: MeterInfo,
    *,
    start: datetime,
    end: datetime,
    source: Source = "rollup",
    step: timedelta = HOUR,
    chunk_meters: int = DEFAULT_CHUNK_METERS,
) -> Iterator[tuple[MeterInfo, Matrix]]:
    """Matrices of consecutive chunks of ``chunk_meters`` meters (memory stays one chunk)."""
    for chunk in meter_chunks(meters, chunk_meters):
        yield chunk, load_matrix(conn, chunk, start=start, end=end, source=source, step=step)


def meter_chunks(meters: MeterInfo, chunk_meters: int) -> list[MeterInfo]:
    """``meters`` cut into consecutive chunks of ``chunk_meters`` (the last may be smaller)."""
    if chunk_meters < 1:
        raise ValueError(f"chunk_meters: must be >= 1, got {chunk_meters}")
    return [
        meters.select(np.arange(i, min(i + chunk_meters, len(meters))))
        for i in range(0, len(meters), chunk_meters)
    ]


def load_hourly_mean(
    conn: psycopg.Connection,
    quantity: str,
    *,
    start: datetime,
    end: datetime,
    meter_id: int | None = None,
) -> FloatArray | None:
    """Hourly series of one quantity over ``[start, end)``, the mean of the meters that read
    it each hour (NaN where none does): the city's weather stations or irradiance meters,
    or only ``meter_id``. None when no meter measures it."""
    meters = load_meter_info(
        conn, meter_ids=None if meter_id is None else [meter_id], quantities=[quantity]
    )
    if len(meters) == 0:
        return None
    return _nanmean_rows(load_matrix(conn, meters, start=start, end=end).values)


# --- daily series per building ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BuildingDaily:
    """Daily heating energy and outdoor temperature of buildings, plus what labels them.

    Arrays have shape (buildings,) or (buildings, days); days are Europe/Paris dates from
    ``first_day``.

    Attributes
    ----------
    building_id : ndarray of int64
    heating_meter_id : ndarray of int64 — the register summed for heating (−1: none).
    heating_quantity : ndarray of str — "heat", "gas" or "electricity" ("" without a meter).
    heating_kwh : ndarray (buildings, days) — energy of the heating register [kWh/d].
    outdoor_temp_c : ndarray (buildings, days) — daily mean outdoor temperature [°C].
    floor_area_m2, heating_efficiency, normal_hdd : ndarray of float (NaN unknown).
    year_built, municipality_id : ndarray of int64 (−1 unknown).
    use, heating_carrier : ndarray of str.
    solar_w_per_m2 : ndarray (days,) or None — daily mean global horizontal irradiance of the
        city's irradiance meters [W/m²]; None without one.
    occupants : ndarray of float or None — persons living in a home, as its household
        declared them (NaN unknown).
    """

    first_day: date
    building_id: IntArray
    heating_meter_id: IntArray
    heating_quantity: npt.NDArray[np.str_]
    heating_kwh: FloatArray
    outdoor_temp_c: FloatArray
    floor_area_m2: FloatArray
    heating_efficiency: FloatArray
    normal_hdd: FloatArray
    year_built: IntArray
    municipality_id: IntArray
    use: npt.NDArray[np.str_]
    heating_carrier: npt.NDArray[np.str_]
    solar_w_per_m2: FloatArray | None = None
    occupants: FloatArray | None = None

    def __len__(self) -> int:
        return int(self.building_id.size)

    @property
    def days(self) -> int:
        return int(self.heating_kwh.shape[1])


# Each building's heating register: a heat meter, else a gas meter, else (electric heating or
# unknown carrier) the whole-building electricity register, whose baseload the change-point
# model absorbs. Lowest id wins among equals.
_BUILDINGS: Final = """
SELECT b.id, coalesce(hm.id, -1), coalesce(hm.quantity, ''), coalesce(hm.factor, 1.0),
       coalesce(b.floor_area_m2, 'NaN'), coalesce(b.heating_efficiency, 'NaN'),
       coalesce(mu.normal_hdd, 'NaN'), coalesce(b.year_built, -1),
       coalesce(b.municipality_id, -1), b.use, coalesce(b.heating_carrier, ''),
       coalesce(b.occupants::float8, 'NaN')
FROM buildings b
LEFT JOIN municipalities mu ON mu.id = b.municipality_id
LEFT JOIN LATERAL (
  SELECT m.id, m.quantity, CASE WHEN m.unit = 'm3' THEN %(gas_kwh_per_m3)s ELSE 1.0 END AS factor
  FROM meters m
  WHERE m.building_id = b.id AND m.cumulative AND m.unit IN ('kWh', 'm3')
    AND (m.quantity IN ('heat', 'gas')
         OR (m.quantity = 'electricity'
             AND coalesce(b.heating_carrier, 'electricity') IN ('electricity', 'heat_pump')))
  ORDER BY CASE m.quantity WHEN 'heat' THEN 0 WHEN 'gas' THEN 1 ELSE 2 END, m.id
  LIMIT 1
) hm ON true
WHERE (%(ids)s::bigint[] IS NULL OR b.id = ANY(%(ids)s::bigint[]))
ORDER BY b.id
"""

_DAILY_QUERY: Final = """
COPY (
  SELECT k.ord::int4 - 1,
         array_agg((d.day - %(first)s::date)::int4 ORDER BY d.day),
         array_agg(coalesce(CASE WHEN %(field)s = 'consumption' THEN d.consumption
                                 ELSE d.mean END, 'NaN'::float8) ORDER BY d.day)
  FROM unnest(%(ids)s::int4[]) WITH ORDINALITY AS k(id, ord)
  JOIN readings_daily d ON d.meter_id = k.id
  WHERE d.day >= %(first)s::date AND d.day < %(stop)s::date
  GROUP BY k.ord
) TO STDOUT (FORMAT BINARY)
"""

_OUTDOOR_METERS: Final = """
SELECT m.id, coalesce(b.municipality_id, -1)
FROM meters m LEFT JOIN buildings b ON b.id = m.building_id
WHERE m.quantity = 'outdoor_temperature' ORDER BY m.id
"""


def load_daily(
    conn: psycopg.Connection,
    meter_ids: Sequence[int],
    *,
    first_day: date,
    stop_day: date,
    field: Literal["consumption", "mean"],
) -> FloatArray:
    """``readings_daily`` of meters over ``[first_day, stop_day)``, shape (meters, days)."""
    ids = [int(i) for i in meter_ids]
    n = (stop_day - first_day).days
    if n <= 0:
        raise ValueError(f"stop_day: must be after first_day ({first_day}), got {stop_day}")
    params: dict[str, object] = {"ids": ids, "first": first_day, "stop": stop_day, "field": field}
    return _scatter(conn, _DAILY_QUERY, params, (len(ids), n))


def load_building_daily(
    conn: psycopg.Connection,
    *,
    first_day: date,
    stop_day: date,
    building_ids: Sequence[int] | None = None,
    outdoor_meter_id: int | None = None,
) -> BuildingDaily:
    """Daily heating energy [kWh/d] and outdoor temperature [°C] of buildings.

    Outdoor temperature: the configured ``outdoor_meter_id`` for every building; otherwise
    the mean of the outdoor-temperature meters of the building's municipality (meters of
    buildings there), falling back to the mean of every outdoor-temperature meter (a city
    weather station has no building).
    """
    rows = conn.execute(
        _BUILDINGS,
        {
            "ids": None if building_ids is None else [int(i) for i in building_ids],
            "gas_kwh_per_m3": GAS_KWH_PER_M3,
        },
    ).fetchall()
    cols: list[tuple[object, ...]] = list(zip(*rows, strict=True)) if rows else [()] * 12
    b_id = np.asarray(cols[0], dtype=np.int64)
    h_meter = np.asarray(cols[1], dtype=np.int64)
    factor = np.asarray(cols[3], dtype=np.float64)
    muni = np.asarray(cols[8], dtype=np.int64)
    n_days = (stop_day - first_day).days
    heating = np.full((b_id.size, n_days), np.nan)
    has = h_meter >= 0
    if has.any():
        heating[has] = load_daily(
            conn, h_meter[has].tolist(), first_day=first_day, stop_day=stop_day,
            field="consumption",
        ) * factor[has, np.newaxis]  # fmt: skip
    te = _outdoor(conn, muni, first_day, stop_day, outdoor_meter_id)
    sun = load_meter_info(conn, quantities=["irradiance"]).meter_id.tolist()
    solar = None
    if sun:
        solar = _nanmean_rows(
            load_daily(conn, sun, first_day=first_day, stop_day=stop_day, field="mean")
        )
    return BuildingDaily(
        first_day=first_day,
        building_id=b_id,
        heating_meter_id=h_meter,
        heating_quantity=np.asarray(cols[2], dtype="<U16"),
        heating_kwh=heating,
        outdoor_temp_c=te,
        floor_area_m2=np.asarray(cols[4], dtype=np.float64),
        heating_efficiency=np.asarray(cols[5], dtype=np.float64),
        normal_hdd=np.asarray(cols[6], dtype=np.float64),
        year_built=np.asarray(cols[7], dtype=np.int64),
        municipality_id=muni,
        use=np.asarray(cols[9], dtype="<U24"),
        heating_carrier=np.asarray(cols[10], dtype="<U16"),
        solar_w_per_m2=solar,
        occupants=np.asarray(cols[11], dtype=np.float64),
    )


def _outdoor(
    conn: psycopg.Connection,
    municipality: IntArray,
    first_day: date,
    stop_day: date,
    outdoor_meter_id: int | None,
) -> FloatArray:
    n_days = (stop_day - first_day).days
    m = municipality.size
    if outdoor_meter_id is not None:
        te = load_daily(
            conn, [outdoor_meter_id], first_day=first_day, stop_day=stop_day, field="mean"
        )
        return np.broadcast_to(te, (m, n_days)).copy()
    rows = conn.execute(_OUTDOOR_METERS).fetchall()
    if not rows:
        return np.full((m, n_days), np.nan)
    ids = np.asarray([r[0] for r in rows], dtype=np.int64)
    muni_of = np.asarray([r[1] for r in rows], dtype=np.int64)
    temps = load_daily(conn, ids.tolist(), first_day=first_day, stop_day=stop_day, field="mean")
    city = _nanmean_rows(temps)
    out = np.broadcast_to(city, (m, n_days)).copy()
    # Few municipalities carry a sensor: one NaN-mean per municipality that has one.
    for code in np.unique(muni_of[muni_of >= 0]).tolist():
        local = _nanmean_rows(temps[muni_of == code])
        rows_b = municipality == code
        out[rows_b] = np.where(np.isnan(local), city, local)
    return out


def _nanmean_rows(a: FloatArray) -> FloatArray:
    ok = ~np.isnan(a)
    count = ok.sum(axis=0)
    total = np.where(ok, a, 0.0).sum(axis=0)
    mean: FloatArray = np.divide(total, count, out=np.full(total.shape, np.nan), where=count > 0)
    return mean


# --- counter resets recorded by the rollups -------------------------------------------------


@dataclass(frozen=True, slots=True)
class CounterResets:
    """Counter resets of cumulative meters (``meter_events``), as parallel arrays."""

    meter_id: IntArray
    ts: list[datetime]
    value_before: FloatArray
    value_after: FloatArray

    def __len__(self) -> int:
        return int(self.meter_id.size)


def load_counter_resets(
    conn: psycopg.Connection, meter_ids: Sequence[int], *, start: datetime, end: datetime
) -> CounterResets:
    """Resets the rollup job recorded for these meters in ``[start, end)`` (a few rows)."""
    rows = conn.execute(
        "SELECT meter_id, ts, coalesce(value_before, 'NaN'), coalesce(value_after, 'NaN')"
        " FROM meter_events WHERE kind = 'counter_reset' AND meter_id = ANY(%s)"
        " AND ts >= %s AND ts < %s ORDER BY meter_id, ts",
        ([int(i) for i in meter_ids], start, end),
    ).fetchall()
    return CounterResets(
        meter_id=np.asarray([r[0] for r in rows], dtype=np.int64),
        ts=[r[1] for r in rows],
        value_before=np.asarray([r[2] for r in rows], dtype=np.float64),
        value_after=np.asarray([r[3] for r in rows], dtype=np.float64),
    )
