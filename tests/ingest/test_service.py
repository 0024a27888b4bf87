"""The ingestor end to end: real broker, real database, exactly the rows published."""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from prometheus_client import generate_latest

from ingest.service import Ingestor
from storage.meters import create_building, register_meter
from tests.ingest.publisher import Publisher
from wattwatch.settings import Settings

pytestmark = pytest.mark.integration

_ids = itertools.count()


def wait_until(check: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.fixture
def ingestor(settings: Settings, db_url: str, broker) -> Iterator[Ingestor]:  # type: ignore[no-untyped-def]
    custom = settings.model_copy(
        update={
            "ingest_client_id": f"test-ingest-{next(_ids)}",
            "ingest_share_group": f"g{next(_ids)}",
            "ingest_metrics_port": 0,
        }
    )
    ing = Ingestor(custom, database_url=db_url, mqtt_url=broker.url, status_file=None)
    thread = threading.Thread(target=ing.run, daemon=True)
    thread.start()
    wait_until(ing.consumer._subscribed.is_set)
    yield ing
    ing.stop.set()
    thread.join(10)
    assert not thread.is_alive()


def own_json(device: str, ts: datetime, value: float) -> bytes:
    return json.dumps(
        {
            "device": device,
            "ts": ts.isoformat(),
            "readings": [
                {"channel": "energy", "value": value, "unit": "kWh",
                 "quantity": "electricity", "cumulative": True}
            ],
        }
    ).encode()  # fmt: skip


def count(conn: psycopg.Connection, table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def test_published_readings_arrive_once(
    ingestor: Ingestor, broker, conn: psycopg.Connection
) -> None:  # type: ignore[no-untyped-def]
    start = datetime(2025, 1, 1, tzinfo=UTC)
    pub = Publisher(broker.url, client_id=f"pub-{next(_ids)}")
    for i in range(500):
        pub.publish(
            f"wattwatch/dev-{i % 5}", own_json(f"dev-{i % 5}", start + timedelta(minutes=i), i)
        )
    # The same 100 again: redeliveries and replays must be absorbed.
    for i in range(100):
        pub.publish(
            f"wattwatch/dev-{i % 5}", own_json(f"dev-{i % 5}", start + timedelta(minutes=i), i)
        )
    pub.close()
    wait_until(lambda: ingestor.totals.messages == 600)
    conn.commit()
    assert count(conn, "readings") == 500
    assert count(conn, "meters") == 5
    assert ingestor.totals.duplicates == 100
    assert count(conn, "dead_letters") == 0
    # The Operations dashboard's per-minute log saw every message.
    logged = conn.execute("SELECT sum(messages), sum(readings_written) FROM ingest_stats")
    assert logged.fetchone() == (600, 500)


def test_bad_payloads_are_dead_lettered_with_their_bytes(
    ingestor: Ingestor,
    broker,
    conn: psycopg.Connection,  # type: ignore[no-untyped-def]
) -> None:
    pub = Publisher(broker.url, client_id=f"pub-{next(_ids)}")
    bad = [
        ("wattwatch/x", b"{not json"),
        ("wattwatch/x", b"\xff\xfe\x00garbage"),
        (
            "wattwatch/x",
            json.dumps(
                {"device": "x", "readings": [{"channel": "e", "value": "NaN", "unit": "kWh"}]}
            ).encode(),
        ),
        ("wattwatch/x", b"x" * (70 * 1024)),
        ("nobody/listens/here/but/wattwatch", b"1"),
    ]
    good_ts = datetime(2025, 2, 1, tzinfo=UTC)
    pub.publish("wattwatch/ok", own_json("ok", good_ts, 1.0))
    for topic, payload in bad[:4]:
        pub.publish(topic, payload)
    pub.close()
    wait_until(lambda: ingestor.totals.messages == 5)
    conn.commit()
    rows = conn.execute("SELECT topic, payload, reason FROM dead_letters ORDER BY id").fetchall()
    assert [bytes(r[1]) for r in rows] == [p for _, p in bad[:4]]
    assert all(r[2] for r in rows)
    assert "exceeds" in rows[3][2]
    assert count(conn, "readings") == 1


def test_grid_voltage_outside_en50160_is_an_anomaly_at_ingest(
    ingestor: Ingestor,
    broker,
    conn: psycopg.Connection,  # type: ignore[no-untyped-def]
) -> None:
    pub = Publisher(broker.url, client_id=f"pub-{next(_ids)}")
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    for i, volts in enumerate([231.0, 190.0, 185.0, 232.0]):
        payload = json.dumps({"device": "feeder-1", "ts": (t0 + timedelta(minutes=i)).isoformat(),
                              "readings": [{"channel": "u1", "value": volts, "unit": "V",
                                            "quantity": "grid_voltage"}]}).encode()  # fmt: skip
        pub.publish("wattwatch/feeder-1", payload)
    pub.close()
    wait_until(lambda: ingestor.totals.messages == 4)
    conn.commit()
    rows = conn.execute("SELECT kind, start_ts, end_ts, observed, source FROM anomalies").fetchall()
    assert len(rows) == 1  # two consecutive low readings are one event
    kind, start, end, observed, source = rows[0]
    assert (kind, source) == ("voltage_low", "ingest")
    assert start == t0 + timedelta(minutes=1)
    assert end == t0 + timedelta(minutes=2)
    assert observed == 185.0


def test_mixed_stream_gives_exactly_the_valid_rows_and_one_dead_letter_per_bad_message(
    ingestor: Ingestor,
    broker,  # type: ignore[no-untyped-def]
    conn: psycopg.Connection,
) -> None:
    rng = random.Random(7)
    start = datetime(2025, 3, 1, tzinfo=UTC)

    def reading(value: object, unit: str = "kWh", ts: datetime = start) -> bytes:
        return json.dumps(
            {"device": "mix-1", "ts": ts.isoformat(),
             "readings": [{"channel": "energy", "value": value, "unit": unit,
                           "quantity": "electricity", "cumulative": True}]}
        ).encode()  # fmt: skip

    corruptions = [
        lambda p: p[: len(p) // 2],  # truncated JSON
        lambda p: b"\xff" + p,  # invalid UTF-8
        lambda p: reading(float("nan")),  # NaN
        lambda p: reading(float("inf")),  # Infinity
        lambda p: reading(5.0, unit="furlongs"),  # unknown unit
        lambda p: reading("five"),  # wrong type
        lambda p: reading(1e300),  # absurd magnitude
        lambda p: reading(5.0, ts=datetime(2099, 1, 1, tzinfo=UTC)),  # far in the future
        lambda p: b"[]",  # not an object
    ]
    good = bad = 0
    pub = Publisher(broker.url, client_id=f"pub-{next(_ids)}")
    for i in range(2000):
        payload = own_json("mix-1", start + timedelta(minutes=i), 1000.0 + i)
        if rng.random() < 0.2:
            pub.publish("wattwatch/mix-1", rng.choice(corruptions)(payload))
            bad += 1
        else:
            pub.publish("wattwatch/mix-1", payload)
            good += 1
    pub.close()
    wait_until(lambda: ingestor.totals.messages == 2000)
    conn.commit()
    assert count(conn, "readings") == good
    assert count(conn, "dead_letters") == bad
    assert ingestor.totals.dead_letters == bad
    reasons = conn.execute("SELECT count(DISTINCT reason) FROM dead_letters").fetchone()
    assert reasons is not None
    assert reasons[0] >= 5  # each kind of damage is named, not lumped together


def test_unknown_devices_are_refused_when_auto_registration_is_off(
    settings: Settings,
    db_url: str,
    broker,  # type: ignore[no-untyped-def]
    conn: psycopg.Connection,
) -> None:
    enrolled = register_meter(conn, device_format="own_json", device_id="enrolled",
                              channel="energy", quantity="electricity", unit="kWh",
                              cumulative=True)  # fmt: skip
    conn.commit()
    custom = settings.model_copy(
        update={"ingest_client_id": f"strict-{next(_ids)}", "ingest_share_group": f"g{next(_ids)}",
                "ingest_metrics_port": 0, "ingest_auto_register": False}
    )  # fmt: skip
    ing = Ingestor(custom, database_url=db_url, mqtt_url=broker.url, status_file=None)
    thread = threading.Thread(target=ing.run, daemon=True)
    thread.start()
    wait_until(ing.consumer._subscribed.is_set)
    ts = datetime(2025, 5, 1, tzinfo=UTC)
    pub = Publisher(broker.url, client_id=f"pub-{next(_ids)}")
    pub.publish("wattwatch/enrolled", own_json("enrolled", ts, 5.0))
    pub.publish("wattwatch/stranger", own_json("stranger", ts, 7.0))
    pub.close()
    wait_until(lambda: ing.totals.messages == 2)
    ing.stop.set()
    thread.join(10)
    conn.commit()
    assert conn.execute("SELECT meter_id, value FROM readings").fetchall() == [(enrolled.id, 5.0)]
    (reason,) = conn.execute("SELECT reason FROM dead_letters").fetchone() or ("",)
    assert "enrol it first" in reason
    assert count(conn, "meters") == 1
    # The same counts are exported to Prometheus.
    metrics = generate_latest(ing.metrics.registry).decode()
    assert 'wattwatch_ingest_dead_letters_total{reason="unknown_device"} 1.0' in metrics
    assert "wattwatch_ingest_readings_written_total 1.0" in metrics


def test_a_household_device_cannot_claim_another_households_meter(
    ingestor: Ingestor,
    broker,  # type: ignore[no-untyped-def]
    conn: psycopg.Connection,
) -> None:
    # Two households with Linky meters; the TIC payload names its meter (ADCO) itself.
    ids = []
    for adco in ("111111111111", "222222222222"):
        building = create_building(conn, name=f"home {adco}", is_household=True)
        ids.append(
            register_meter(conn, device_format="linky_tic", device_id=adco, channel="BASE",
                           quantity="electricity", unit="kWh", cumulative=True,
                           building_id=building).id
        )  # fmt: skip
    conn.commit()
    ingestor.registry.reload(ingestor._lookup)  # type: ignore[arg-type]

    def tic(adco: str, wh: int) -> bytes:
        return json.dumps({"ADCO": {"raw": adco, "value": int(adco)},
                           "BASE": {"raw": f"{wh:09d}", "value": wh}}).encode()  # fmt: skip

    pub = Publisher(broker.url, client_id=f"pub-{next(_ids)}")
    pub.publish("teleinfo/111111111111", tic("111111111111", 1000))  # its own: stored
    pub.publish("teleinfo/111111111111", tic("222222222222", 9999))  # claims the other's meter
    pub.close()
    wait_until(lambda: ingestor.totals.messages == 2)
    conn.commit()
    assert conn.execute("SELECT meter_id, value FROM readings").fetchall() == [(ids[0], 1.0)]
    (reason,) = conn.execute("SELECT reason FROM dead_letters").fetchone() or ("",)
    assert "not its own" in reason
