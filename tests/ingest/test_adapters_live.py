"""Every adapter's data-folder cases, published through the real broker to a real ingestor:
valid cases become exactly their rows, bad cases become one dead letter each with their bytes."""

from __future__ import annotations

import itertools
import json
import math
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from ingest.adapters.registry import ADAPTERS
from ingest.service import Ingestor
from storage.meters import register_meter
from tests.ingest.publisher import Publisher
from tests.ingest.test_service import wait_until
from wattwatch.settings import Settings
from wattwatch.stack.mosquitto import EmbeddedMosquitto

pytestmark = pytest.mark.integration

CASES = Path(__file__).parent / "adapters" / "cases"
RECEIVED_AT = datetime(2024, 1, 5, 11, 0, 30, tzinfo=UTC)  # what the offline cases assume
_ids = itertools.count()


def cases(fmt: str) -> list[tuple[str, str, bytes, object]]:
    out = []
    for case in sorted(p for p in (CASES / fmt).iterdir() if p.is_dir()):
        (payload,) = [p for p in case.iterdir() if p.name.startswith("payload.")]
        expected = json.loads((case / "expected.json").read_text())
        out.append(
            (case.name, (case / "topic.txt").read_text().strip(), payload.read_bytes(), expected)
        )
    return out


@pytest.fixture
def run_ingestor(settings: Settings, db_url: str, broker: EmbeddedMosquitto) -> Iterator[object]:
    running: list[tuple[Ingestor, threading.Thread]] = []

    def start(fmt: str) -> Ingestor:
        custom = settings.model_copy(
            update={
                "ingest_client_id": f"live-{fmt}-{next(_ids)}",
                "ingest_share_group": f"live{next(_ids)}",
                "ingest_metrics_port": 0,
                "ingest_flush_interval_s": 0.1,
                "ingest_topics": {fmt: "#"},  # this test's topics reach this adapter only
            }
        )
        ing = Ingestor(custom, database_url=db_url, mqtt_url=broker.url, status_file=None)
        thread = threading.Thread(target=ing.run, daemon=True)
        thread.start()
        wait_until(ing.consumer._subscribed.is_set)
        running.append((ing, thread))
        return ing

    yield start
    for ing, thread in running:
        ing.stop.set()
        thread.join(10)


@pytest.mark.parametrize("fmt", sorted(ADAPTERS))
def test_cases_through_the_broker(
    fmt: str,
    run_ingestor,
    broker: EmbeddedMosquitto,
    conn: psycopg.Connection,  # type: ignore[no-untyped-def]
) -> None:
    all_cases = cases(fmt)
    good = [c for c in all_cases if isinstance(c[3], list)]
    bad = [c for c in all_cases if isinstance(c[3], dict)]
    # Readings that do not say what they measure (ESPHome states, SenML without a known
    # quantity) need their meter registered first, as an engineer or the API would.
    for _, topic, payload, _ in good:
        for r in ADAPTERS[fmt](topic, payload, RECEIVED_AT):
            if r.quantity is None or r.unit is None:
                register_meter(
                    conn, device_format=fmt, device_id=r.device_id, channel=r.channel,
                    quantity="gas" if r.unit == "m3" else "electricity", unit=r.unit or "W",
                    cumulative=r.cumulative,
                )  # fmt: skip
    conn.commit()
    ingestor = run_ingestor(fmt)
    published_at = datetime.now(UTC)
    pub = Publisher(broker.url, client_id=f"live-pub-{next(_ids)}")
    for _, topic, payload, _ in good + bad:
        pub.publish(topic, payload)
    pub.close()
    wait_until(lambda: ingestor.totals.messages == len(good) + len(bad))
    conn.commit()

    stored = {
        (d, c, ts): v
        for d, c, ts, v in conn.execute(
            "SELECT m.device_id, m.channel, r.ts, r.value FROM readings r"
            " JOIN meters m ON m.id = r.meter_id WHERE m.device_format = %s",
            (fmt,),
        )
    }
    # Cases without a device clock (or with SenML relative times) are stamped relative to
    # their arrival: offline that was RECEIVED_AT, here it is the publishing time.
    absolute: dict[tuple[str, str, datetime], float] = {}
    relative: list[tuple[str, str, timedelta, float]] = []
    parse = ADAPTERS[fmt]
    for _, topic, payload, _ in good:
        # A reading whose time moves with the arrival time is stamped relative to arrival.
        here = parse(topic, payload, RECEIVED_AT)
        later = parse(topic, payload, RECEIVED_AT + timedelta(days=3))
        for r, r_later in zip(here, later, strict=True):
            if r.ts == r_later.ts:
                absolute.setdefault((r.device_id, r.channel, r.ts), r.value)
            else:
                relative.append((r.device_id, r.channel, r.ts - RECEIVED_AT, r.value))
    for key, value in absolute.items():
        assert math.isclose(stored.pop(key), value, rel_tol=1e-9, abs_tol=1e-9), key
    window = (published_at - timedelta(seconds=1), datetime.now(UTC) + timedelta(seconds=1))
    for device, channel, offset, value in relative:
        match = next(
            (k for k, v in stored.items()
            if k[:2] == (device, channel) and window[0] <= k[2] - offset <= window[1]
            and math.isclose(v, value, rel_tol=1e-9, abs_tol=1e-9)),
            None,
        )  # fmt: skip
        assert match is not None, (device, channel, offset, value)
        del stored[match]
    assert stored == {}  # nothing more than the cases' readings

    dead = conn.execute("SELECT topic, payload, reason FROM dead_letters ORDER BY id").fetchall()
    assert [bytes(p) for _, p, _ in dead] == [payload for _, _, payload, _ in bad]
    for (_, _, reason), (name, _, _, expected) in zip(dead, bad, strict=True):
        assert expected["error"] in reason, name  # type: ignore[index]
