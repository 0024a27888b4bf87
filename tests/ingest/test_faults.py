"""Faults on the no-loss path: the ingestor is SIGKILLed three times and PostgreSQL restarts once
while 100,000 QoS 1 readings flow; the table must equal the published set exactly."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ingest.service import Ingestor
from storage.dead_letters import count_dead_letters
from storage.readings import count_readings, fetch_device_readings
from tests.fixtures.servers import (
    fresh_database,
    make_shared_tmpdir,
    running_mosquitto,
    running_postgres,
)
from tests.ingest.publisher import Publisher
from wattwatch.settings import Settings
from wattwatch.stack.mosquitto import EmbeddedMosquitto
from wattwatch.stack.postgres import EmbeddedPostgres

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEVICES = 50
MESSAGES = 20_000
RECORDS_PER_MESSAGE = 5  # 100,000 readings
T0 = 1_735_689_600  # 2025-01-01T00:00:00Z


def pack(message_no: int) -> tuple[str, bytes, list[tuple[str, int, float]]]:
    """A SenML pack of five power readings of one device, and the rows it must become."""
    device = f"meter-{message_no % DEVICES}"
    base_t = T0 + (message_no // DEVICES) * 60 * RECORDS_PER_MESSAGE
    records: list[dict[str, object]] = []
    expected = []
    for k in range(RECORDS_PER_MESSAGE):
        value = float(message_no * RECORDS_PER_MESSAGE + k)
        record: dict[str, object] = {"n": "power", "u": "W", "v": value, "t": k * 60}
        if k == 0:
            record.update(bn=f"urn:dev:{device}:", bt=base_t)
        records.append(record)
        expected.append((f"urn:dev:{device}", base_t + k * 60, value))
    return f"senml/{device}", json.dumps(records).encode(), expected


@pytest.fixture
def servers() -> Iterator[tuple[EmbeddedPostgres, EmbeddedMosquitto]]:
    # Servers of this test's own: it restarts PostgreSQL, which other tests must not feel.
    with running_postgres() as pg, running_mosquitto() as broker:
        yield pg, broker


class IngestProcess:
    """`wattwatch ingest` as a real process, killable with SIGKILL."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.status_file = Path(env["WATTWATCH_STATE_DIR"]) / "run" / "ingest.status.json"
        self.duplicates_seen = 0
        self.redelivered_seen = 0

    def start(self) -> None:
        self.status_file.unlink(missing_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "wattwatch", "ingest"], env=self.env, stdout=out, stderr=out
            )
        deadline = time.monotonic() + 30
        while not self.status_file.exists():
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            assert time.monotonic() < deadline, "ingestor did not connect"
            time.sleep(0.05)

    def totals(self) -> dict[str, int]:
        try:
            return dict(json.loads(self.status_file.read_text()))
        except (OSError, ValueError):
            return {}

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._add_totals()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
            self._add_totals()

    def _add_totals(self) -> None:
        # Rewritten after every commit, so a killed process's file is at most one batch stale.
        totals = self.totals()
        self.duplicates_seen += int(totals.get("duplicates", 0))
        self.redelivered_seen += int(totals.get("redelivered", 0))


def count_rows(url: str) -> int:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            return count_readings(conn)
    except psycopg.OperationalError:
        return -1  # restarting


def wait_rows_above(url: str, n: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while count_rows(url) <= n:
        assert time.monotonic() < deadline, f"rows stuck at or below {n}"
        time.sleep(0.1)


def assert_stored_exactly(url: str, expected: set[tuple[str, int, float]]) -> None:
    """The readings table holds the published set: nothing lost, nothing duplicated or
    invented, and no dead letter."""
    with psycopg.connect(url) as conn:
        stored = fetch_device_readings(conn)
        dead = count_dead_letters(conn)
    assert len(stored) == len(set(stored))  # no duplicate rows
    assert set(stored) == expected  # nothing lost, nothing invented
    assert dead == 0


def test_sigkill_and_database_restart_lose_and_duplicate_nothing(
    servers: tuple[EmbeddedPostgres, EmbeddedMosquitto],
) -> None:
    pg, broker = servers
    url = fresh_database(pg)
    state = make_shared_tmpdir("wattwatch-test-faults-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATTWATCH_")}
    env.update(
        WATTWATCH_DATABASE_URL=url,
        WATTWATCH_MQTT_URL=broker.url,
        WATTWATCH_STATE_DIR=str(state),
        WATTWATCH_INGEST_METRICS_PORT="0",
        WATTWATCH_INGEST_BATCH_SIZE="500",
        WATTWATCH_INGEST_FLUSH_INTERVAL_S="0.2",
        WATTWATCH_INGEST_CLIENT_ID="fault-test-ingest",
    )
    ingest = IngestProcess(env, state / "ingest.log")
    ingest.start()  # creates the persistent session and its subscription

    expected: set[tuple[str, int, float]] = set()
    messages = []
    for i in range(MESSAGES):
        topic, payload, rows = pack(i)
        messages.append((topic, payload))
        expected.update(rows)
    pub = Publisher(broker.url, client_id="fault-test-publisher")
    publishing = threading.Thread(target=pub.publish_many, args=(messages,))
    publishing.start()
    try:
        for kill in range(3):
            wait_rows_above(url, 15_000 * (kill + 1) - 1)
            ingest.kill()
            time.sleep(0.5)  # the broker queues for the dead session meanwhile
            ingest.start()
            if kill == 1:
                wait_rows_above(url, count_rows(url) + 1000)
                pg.restart()
        publishing.join(300)
        pub.close()
        deadline = time.monotonic() + 180
        while count_rows(url) < len(expected):
            assert time.monotonic() < deadline, f"only {count_rows(url)} of {len(expected)} rows"
            time.sleep(0.2)
        time.sleep(1.0)  # anything still in flight would show up as an extra row now
    finally:
        ingest.stop()
        shutil.rmtree(state, ignore_errors=True)

    assert_stored_exactly(url, expected)
    print(
        f"\n{len(expected)} readings published in {MESSAGES} QoS 1 messages; 3 SIGKILLs and one "
        f"PostgreSQL restart; 0 lost, 0 duplicated; {ingest.redelivered_seen} messages "
        f"redelivered by the broker, {ingest.duplicates_seen} already-committed readings "
        "among them absorbed by ON CONFLICT"
    )
    assert ingest.redelivered_seen > 0  # the redelivery path really ran


def test_broker_restart_is_survived_with_nothing_lost(
    servers: tuple[EmbeddedPostgres, EmbeddedMosquitto],
) -> None:
    # The batch loop runs paho's network loop itself, so reconnecting is its own job.
    pg, broker = servers
    url = fresh_database(pg)
    state = make_shared_tmpdir("wattwatch-test-broker-restart-")
    settings = Settings(
        database_url=url, mqtt_url=broker.url, state_dir=state, ingest_metrics_port=0,
        ingest_client_id="broker-restart-ingest", ingest_flush_interval_s=0.2,
    )  # fmt: skip
    ingestor = Ingestor(settings, database_url=url, mqtt_url=broker.url, status_file=None)
    thread = threading.Thread(target=ingestor.run, daemon=True)
    thread.start()
    expected: set[tuple[str, int, float]] = set()

    def wait_subscribed() -> None:
        deadline = time.monotonic() + 30
        while not ingestor.consumer._subscribed.is_set():
            assert time.monotonic() < deadline, "ingestor did not subscribe"
            time.sleep(0.05)

    try:
        wait_subscribed()
        for first, last in ((0, 2000), (2000, 4000)):
            pub = Publisher(broker.url, client_id=f"broker-restart-publisher-{first}")
            for i in range(first, last):
                topic, payload, rows = pack(i)
                pub.publish(topic, payload)
                expected.update(rows)
            pub.close()
            if first == 0:
                wait_rows_above(url, 0)
                broker.stop()  # mid-stream: what was sent and not acknowledged comes again
                time.sleep(1.0)
                broker.start()
                # Mosquitto drops what a share group without a connected member is sent.
                wait_subscribed()
        wait_rows_above(url, len(expected) - 1)
        time.sleep(0.5)
    finally:
        ingestor.stop.set()
        thread.join(30)
        shutil.rmtree(state, ignore_errors=True)
    assert not thread.is_alive()
    assert_stored_exactly(url, expected)
