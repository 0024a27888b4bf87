"""Ground truth of simulated runs: ``sim_runs``, ``sim_buildings``, ``sim_anomalies``."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg.rows import class_row

# Columns of sim_buildings after (run_id, building_id, building_index), in table order.
TRUTH_COLUMNS = (
    "hlc_w_per_k",
    "tau_h",
    "balance_temp_c",
    "setpoint_mean_c",
    "gains_mean_w",
    "annual_heating_need_kwh",
    "heating_simulated_kwh",
    "heating_normalised_kwh",
    "seasonal_efficiency",
    "meter_efficiency",
    "final_energy_kwh_per_m2",
    "dpe_class",
)


@dataclass(frozen=True, slots=True)
class SimAnomaly:
    """One injected anomaly, on a registered meter."""

    run_id: int
    meter_id: int
    source: str
    start_ts: datetime
    end_ts: datetime
    kind: str
    magnitude: float


def create_run(
    conn: psycopg.Connection, *, seed: int, device_prefix: str, settings: Mapping[str, object]
) -> int:
    """Record a simulation run; returns its id."""
    row = conn.execute(
        "INSERT INTO sim_runs (seed, device_prefix, settings) VALUES (%s, %s, %s) RETURNING id",
        (seed, device_prefix, json.dumps(settings, sort_keys=True, default=str)),
    ).fetchone()
    assert row is not None
    return int(row[0])


def latest_run(conn: psycopg.Connection, device_prefix: str | None = None) -> int | None:
    """Id of the newest run (of one device prefix), or None."""
    if device_prefix is None:
        row = conn.execute("SELECT max(id) FROM sim_runs").fetchone()
    else:
        row = conn.execute(
            "SELECT max(id) FROM sim_runs WHERE device_prefix = %s", (device_prefix,)
        ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def building_ids_by_name(conn: psycopg.Connection, names: Sequence[str]) -> dict[str, int]:
    """Ids of the buildings with these names (the first one of a name)."""
    rows = conn.execute(
        "SELECT name, min(id) FROM buildings WHERE name = ANY(%s) GROUP BY name", (list(names),)
    ).fetchall()
    return {str(name): int(i) for name, i in rows}


def write_buildings(
    conn: psycopg.Connection,
    run_id: int,
    building_id: npt.ArrayLike,
    columns: Mapping[str, npt.ArrayLike],
) -> int:
    """Write one truth row per building; ``columns`` holds every name of ``TRUTH_COLUMNS``.

    NaN becomes NULL. Returns the rows written.
    """
    ids = np.asarray(building_id, dtype=np.int64)
    missing = [c for c in TRUTH_COLUMNS if c not in columns]
    if missing:
        raise ValueError(f"columns: missing {', '.join(missing)}")
    data = [np.asarray(columns[c]).tolist() for c in TRUTH_COLUMNS]
    fields = ", ".join(("run_id", "building_id", "building_index", *TRUTH_COLUMNS))
    with conn.cursor() as cur, cur.copy(f"COPY sim_buildings ({fields}) FROM STDIN") as copy:
        for index, values in enumerate(zip(*data, strict=True)):
            copy.write_row((run_id, int(ids[index]), index, *map(_null_nan, values)))
    return int(ids.size)


def write_anomalies(
    conn: psycopg.Connection,
    run_id: int,
    *,
    meter_id: npt.ArrayLike,
    source: str,
    start: npt.ArrayLike,
    end: npt.ArrayLike,
    kind: npt.ArrayLike,
    magnitude: npt.ArrayLike,
) -> int:
    """Write labelled anomalies (``start``/``end`` datetime64, UTC); returns the rows written."""
    m = np.asarray(meter_id, dtype=np.int64).tolist()
    s = np.asarray(start, dtype="datetime64[us]").astype(object).tolist()
    e = np.asarray(end, dtype="datetime64[us]").astype(object).tolist()
    k = np.asarray(kind).astype(str).tolist()
    g = np.asarray(magnitude, dtype=np.float64).tolist()
    fields = "run_id, meter_id, source, start_ts, end_ts, kind, magnitude"
    with conn.cursor() as cur, cur.copy(f"COPY sim_anomalies ({fields}) FROM STDIN") as copy:
        for row in zip(m, s, e, k, g, strict=True):
            copy.write_row((run_id, row[0], source, f"{row[1].isoformat()}Z",
                            f"{row[2].isoformat()}Z", row[3], row[4]))  # fmt: skip
    return len(m)


def read_buildings(conn: psycopg.Connection, run_id: int) -> list[dict[str, object]]:
    """Truth rows of a run, ordered by building index, as column → value."""
    cur = conn.execute(
        "SELECT * FROM sim_buildings WHERE run_id = %s ORDER BY building_index", (run_id,)
    )
    names = [d.name for d in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur]


def read_anomalies(conn: psycopg.Connection, run_id: int) -> list[SimAnomaly]:
    """Labelled anomalies of a run, by meter then start."""
    with conn.cursor(row_factory=class_row(SimAnomaly)) as cur:
        cur.execute(
            "SELECT run_id, meter_id, source, start_ts, end_ts, kind, magnitude"
            " FROM sim_anomalies WHERE run_id = %s ORDER BY meter_id, start_ts, kind",
            (run_id,),
        )
        return cur.fetchall()


def _null_nan(value: object) -> object:
    return None if isinstance(value, float) and math.isnan(value) else value
