"""Ground truth in the database lines up with the registered buildings and meters."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
from numpy.testing import assert_allclose

from simulators.city import simulate_city
from simulators.devices import plan_devices
from simulators.register import register_city, write_truth_rows
from storage import sim_truth

pytestmark = pytest.mark.integration


def test_truth_rows_reference_registered_buildings_and_meters(conn: psycopg.Connection) -> None:
    city = simulate_city(
        buildings=12, start="2025-01-06", days=14, seed=3, anomaly_rate=40.0, grid_feeders=1
    )
    plan = plan_devices(city, None, seed=3)
    reg = register_city(conn, city, plan)
    run = write_truth_rows(conn, city, plan, reg)
    conn.commit()
    assert sim_truth.latest_run(conn, plan.prefix) == run

    rows = sim_truth.read_buildings(conn, run)
    assert [r["building_id"] for r in rows] == reg.building_id.tolist()
    assert_allclose([r["hlc_w_per_k"] for r in rows], city.truth.hlc_w_per_k)
    assert [r["dpe_class"] for r in rows] == city.truth.dpe_class.tolist()
    names = conn.execute(
        "SELECT b.name FROM sim_buildings s JOIN buildings b ON b.id = s.building_id"
        " WHERE run_id = %s ORDER BY s.building_index",
        (run,),
    ).fetchall()
    assert [n[0] for n in names] == [f"{plan.prefix}-b{i:06d}" for i in range(12)]

    labels = sim_truth.read_anomalies(conn, run)
    assert len(labels) == len(city.anomalies) + len(city.grid_events) > 0
    # Each label sits on the meter registered for the simulated row it was injected into.
    primary = plan.primary_channel("meters")
    expected = sorted(
        (int(reg.meter_id[primary[int(m)]]), str(k))
        for m, k in zip(city.anomalies.meter, city.anomalies.kind, strict=True)
    )
    got = sorted((a.meter_id, a.kind) for a in labels if a.source == "meter")
    assert got == expected
    owners = dict(conn.execute("SELECT id, building_id FROM meters").fetchall())
    for a in labels:
        assert a.meter_id in owners
        assert a.end_ts >= a.start_ts


def test_registration_is_idempotent(conn: psycopg.Connection) -> None:
    city = simulate_city(buildings=4, start="2025-01-06", days=2, seed=5, grid_feeders=1)
    plan = plan_devices(city, None, seed=5)
    first = register_city(conn, city, plan)
    second = register_city(conn, city, plan)
    assert np.array_equal(first.building_id, second.building_id)
    assert np.array_equal(first.meter_id, second.meter_id)
    assert conn.execute("SELECT count(*) FROM meters").fetchone() == (len(plan.channels),)
