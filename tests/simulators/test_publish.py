"""Publishing a small city through the real broker to a real ingestor: exactly the rows."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC

import numpy as np
import psycopg
import pytest

from ingest.adapters.registry import DEFAULT_TOPICS
from ingest.service import Ingestor
from simulators.backfill import expected_rows
from simulators.city import simulate_city
from simulators.devices import FORMAT_CHANNELS, NO_CLOCK_FORMATS, plan_devices
from simulators.publish import Faults, MqttPublisher, publish_city
from simulators.register import register_city, write_truth_rows
from storage.dead_letters import count_dead_letters
from wattwatch.settings import Settings

pytestmark = pytest.mark.integration
_ids = itertools.count()
# Rounding of the devices' own payloads, per registered unit.
_ATOL = {"kWh": 1.1e-3, "m3": 1.1e-3, "W": 0.51, "VA": 0.51, "degC": 1e-3, "V": 1e-3,
         "Hz": 1e-3, "pu": 1e-3, "W/m2": 1e-3}  # fmt: skip


def wait_until(check: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.fixture
def start_ingestor(
    settings: Settings,
    db_url: str,
    broker,  # type: ignore[no-untyped-def]
) -> Iterator[Callable[[], Ingestor]]:
    """Starts a real ingestor once the test has registered its meters (it loads them then)."""
    started: list[tuple[Ingestor, threading.Thread]] = []

    def start() -> Ingestor:
        ing, thread = _start(settings, db_url, broker.url)
        started.append((ing, thread))
        return ing

    yield start
    for ing, thread in started:
        ing.stop.set()
        thread.join(10)
        assert not thread.is_alive()


def _start(settings: Settings, db_url: str, url: str) -> tuple[Ingestor, threading.Thread]:
    custom = settings.model_copy(
        update={
            "ingest_client_id": f"test-sim-ingest-{next(_ids)}",
            "ingest_share_group": f"sim{next(_ids)}",
            "ingest_metrics_port": 0,
            "ingest_auto_register": False,  # every meter must come from the registration
            "ingest_topics": {**DEFAULT_TOPICS, "dsmr": "+/json"},
        }
    )
    ing = Ingestor(custom, database_url=db_url, mqtt_url=url, status_file=None)
    thread = threading.Thread(target=ing.run, daemon=True)
    thread.start()
    wait_until(ing.consumer._subscribed.is_set)
    return ing, thread


def test_published_city_arrives_exactly_with_faults(
    start_ingestor: Callable[[], Ingestor],
    broker,  # type: ignore[no-untyped-def]
    conn: psycopg.Connection,
) -> None:
    city = simulate_city(buildings=5, start="2025-01-06", days=3, seed=7, grid_feeders=1)
    plan = plan_devices(city, dict.fromkeys(FORMAT_CHANNELS, 1.0), seed=7)
    assert len({d.format for d in plan.devices}) >= 5
    reg = register_city(conn, city, plan)
    write_truth_rows(conn, city, plan, reg)
    conn.commit()
    ingestor = start_ingestor()

    faults = Faults(offline_devices=2, offline_hours=12, duplicate_rate=0.05, malformed_rate=0.02)
    publisher = MqttPublisher(broker.url, client_id=f"sim-pub-{next(_ids)}", window=500)
    stats = publish_city(city, plan, publisher, faults=faults, seed=7)
    publisher.close()
    assert stats.acknowledged == stats.sent
    assert stats.backlog_messages > 0 and stats.duplicates > 0
    assert sum(stats.malformed.values()) > 0
    wait_until(lambda: ingestor.totals.messages >= stats.sent)
    conn.commit()

    expected: dict[int, dict[object, float]] = {}
    for m, ts, v in expected_rows(city, plan, reg.meter_id):
        for mi, t, x in zip(m.tolist(), ts.tolist(), v.tolist(), strict=True):
            expected.setdefault(mi, {})[t.replace(tzinfo=UTC)] = x
    stored: dict[int, dict[object, float]] = {}
    for mi, t, x in conn.execute("SELECT meter_id, ts, value FROM readings"):
        stored.setdefault(mi, {})[t] = x
    clockless = {
        int(reg.meter_id[i])
        for i, c in enumerate(plan.channels)
        if plan.devices[c.device].format in NO_CLOCK_FORMATS
    }
    units = {int(reg.meter_id[i]): c.unit for i, c in enumerate(plan.channels)}
    reasons = conn.execute(
        "SELECT reason, count(*) FROM dead_letters GROUP BY 1 LIMIT 5"
    ).fetchall()
    assert sum(map(len, stored.values())) == sum(map(len, expected.values())), reasons
    for meter, rows in expected.items():
        got = stored.get(meter, {})
        assert len(got) == len(rows), meter
        if meter in clockless:  # stamped on arrival
            continue
        assert got.keys() == rows.keys(), meter
        keys = sorted(rows)
        np.testing.assert_allclose(
            [got[k] for k in keys], [rows[k] for k in keys], atol=_ATOL[units[meter]], rtol=0
        )
    assert count_dead_letters(conn) == sum(stats.malformed.values())
    assert ingestor.totals.duplicates >= stats.duplicates


def test_stop_flushes_and_reports(broker) -> None:  # type: ignore[no-untyped-def]
    city = simulate_city(buildings=3, start="2025-01-06", days=2, seed=1, grid_feeders=1)
    plan = plan_devices(city, None, seed=1)
    stop = threading.Event()
    publisher = MqttPublisher(broker.url, client_id=f"sim-pub-{next(_ids)}")

    def on_step(hour: int, _stats: object) -> None:
        if hour == 4:
            stop.set()

    stats = publish_city(city, plan, publisher, stop=stop, on_step=on_step, seconds_per_hour=0.01)
    publisher.close()
    assert stats.interrupted and stats.steps == 5
    assert stats.acknowledged == stats.sent > 0
    assert "interrupted" in stats.summary()
