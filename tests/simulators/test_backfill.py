"""Direct backfill into the real TimescaleDB: every non-NaN value once, the same for one seed."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import psycopg
import pytest

from ingest.adapters.registry import ADAPTERS
from simulators.backfill import backfill, expected_rows
from simulators.city import simulate_city
from simulators.devices import FORMAT_CHANNELS, plan_devices
from simulators.payloads import encode
from simulators.publish import MALFORMED_KINDS, malformed
from simulators.register import register_city
from tests.fixtures.servers import fresh_database
from wattwatch.errors import PayloadError

pytestmark = pytest.mark.integration
MIX = dict.fromkeys(FORMAT_CHANNELS, 1.0)


def _backfilled(url: str, seed: int) -> tuple[int, list[tuple[str, str, object, float]]]:
    city = simulate_city(buildings=8, start="2025-01-06", days=10, seed=seed, grid_feeders=1)
    plan = plan_devices(city, MIX, seed=seed)
    with psycopg.connect(url) as conn:
        reg = register_city(conn, city, plan)
        conn.commit()
        stats = backfill(conn, city, plan, reg.meter_id, block_steps=48)
        n_expected = sum(m.size for m, _, _ in expected_rows(city, plan, reg.meter_id))
        assert stats.rows == stats.inserted == n_expected
        again = backfill(conn, city, plan, reg.meter_id)
        assert (again.rows, again.inserted) == (n_expected, 0)
        rows = conn.execute(
            "SELECT m.device_id, m.channel, r.ts, r.value FROM readings r"
            " JOIN meters m ON m.id = r.meter_id ORDER BY 1, 2, 3"
        ).fetchall()
        # The weather station's irradiance arrives as its own meter (the ARX solar term).
        ghi = conn.execute(
            "SELECT m.unit, count(*), max(r.value) FROM readings r JOIN meters m"
            " ON m.id = r.meter_id WHERE m.quantity = 'irradiance' GROUP BY 1"
        ).fetchall()
        assert [(u, n) for u, n, _ in ghi] == [("W/m2", city.meters.values.shape[1])]
        assert 100 < ghi[0][2] < 1100
    non_nan = int(np.isfinite(city.meters.values).sum() + np.isfinite(city.grid.values).sum())
    derived = sum(c.derived_power for c in plan.channels)
    assert derived > 0 and n_expected > non_nan  # index channels plus their power channels
    return n_expected, rows


def test_direct_backfill_counts_and_same_seed_same_rows(pg) -> None:  # type: ignore[no-untyped-def]
    n1, rows1 = _backfilled(fresh_database(pg), seed=11)
    _, rows2 = _backfilled(fresh_database(pg), seed=11)
    assert len(rows1) == n1
    assert rows1 == rows2


def test_index_channels_carry_every_non_nan_value() -> None:
    city = simulate_city(buildings=6, start="2025-01-06", days=3, seed=2, grid_feeders=1)
    plan = plan_devices(city, MIX, seed=2)
    ids = np.arange(len(plan.channels))
    index_channels = [i for i, c in enumerate(plan.channels) if not c.derived_power]
    got = sum(int(np.isin(m, index_channels).sum()) for m, _, _ in expected_rows(city, plan, ids))
    assert got == int(np.isfinite(city.meters.values).sum() + np.isfinite(city.grid.values).sum())


@pytest.mark.parametrize("fmt", sorted(FORMAT_CHANNELS))
def test_every_malformed_kind_is_refused_by_its_adapter(fmt: str) -> None:

    ts = datetime(2025, 1, 6, 1, tzinfo=UTC)
    quantity = next(iter(FORMAT_CHANNELS[fmt]))
    values = {spec[0]: 12.5 for spec in FORMAT_CHANNELS[fmt][quantity]}
    device = "021234567890" if fmt == "linky_tic" else "dev-1"
    topic, good = encode(fmt, device, ts, values)[0]
    assert ADAPTERS[fmt](topic, good, ts)
    for kind in MALFORMED_KINDS:
        bad = malformed(kind, fmt, good)
        if kind == "oversize":
            assert len(bad) > 64 * 1024  # refused by size before parsing
            continue
        with pytest.raises(PayloadError):
            ADAPTERS[fmt](topic, bad, ts)
