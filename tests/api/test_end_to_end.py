"""Done-when: enrol → the device publishes with its new credentials → a real Ingestor stores
the readings → the household page (real headless Chromium) shows them; revoke cuts it off."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import sync_playwright

from ingest.routing import Router
from ingest.service import Ingestor
from storage.rollups import refresh_rollups
from tests.api.conftest import Api
from tests.api.helpers import enrol
from tests.api.mqtt_probe import Probe
from wattwatch.settings import Settings
from wattwatch.stack.dynsec import DynsecAdmin, ingestor_grant, new_password
from wattwatch.stack.mosquitto import EmbeddedMosquitto

pytestmark = pytest.mark.integration
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def wait_until(check, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


@pytest.fixture
def ingestor(settings: Settings, db_url: str, dyn_broker: EmbeddedMosquitto) -> Iterator[Ingestor]:
    """A real Ingestor logging in with its own dynamic-security role."""
    custom = settings.model_copy(
        update={
            "ingest_client_id": "ingest-e2e",
            "ingest_share_group": "e2e",
            "ingest_metrics_port": 0,
            "ingest_auto_register": False,
            "ingest_flush_interval_s": 0.2,
        }
    )
    password = new_password()
    filters = [r.topic_filter for r in Router(custom.ingest_topics).routes]
    DynsecAdmin(dyn_broker.admin_url).ensure_account(
        username="ingest-e2e", password=password, grant=ingestor_grant("e2e", filters)
    )
    url = f"mqtt://ingest-e2e:{password}@127.0.0.1:{dyn_broker.port}"
    ing = Ingestor(custom, database_url=db_url, mqtt_url=url, status_file=None)
    thread = threading.Thread(target=ing.run, daemon=True)
    thread.start()
    wait_until(ing.consumer._subscribed.is_set)
    yield ing
    ing.stop.set()
    thread.join(10)


def shelly_status(ts: datetime, total_wh: float) -> bytes:
    return json.dumps(
        {
            "src": "x",
            "method": "NotifyStatus",
            "params": {"ts": ts.timestamp(), "switch:0": {"id": 0, "aenergy": {"total": total_wh}}},
        }
    ).encode()


def test_enrol_publish_ingest_and_see_it(
    api: Api, dyn_broker: EmbeddedMosquitto, ingestor: Ingestor
) -> None:
    hh = enrol(api, "shelly", display_name="Flat 12, rue Nationale", occupants=3)
    assert hh["household"]["occupants"] == 3
    conn_info, meter = hh["connection"], hh["meter"]["id"]
    assert conn_info["port"] == dyn_broker.port
    device = Probe(
        dyn_broker.port,
        username=conn_info["username"],
        password=hh["mqtt_password"],
        client_id=conn_info["client_id"],
    )
    assert device.accepted
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(days=3)
    steps = 3 * 24 * 4
    for i in range(steps + 1):  # 15-minute index, 0.5 kWh an hour
        device.publish(
            conn_info["topic"],
            shelly_status(start + timedelta(minutes=15 * i), 100_000 + 125.0 * i),
        )
    with psycopg.connect(api.db_url, autocommit=True) as conn:
        wait_until(
            lambda: (
                conn.execute(
                    "SELECT count(*) FROM readings WHERE meter_id = %s", (meter,)
                ).fetchone()
                == (steps + 1,)
            )
        )
        refresh_rollups(conn)
        conn.commit()
    with api.client(hh["token"]) as c:
        day = c.get(
            f"/v1/meters/{meter}/readings",
            params={"resolution": "day", "start": (start - timedelta(days=1)).isoformat()},
        )
        assert sum(p["consumption"] or 0 for p in day.json()["points"]) == pytest.approx(36.0)
        devices = c.get(f"/v1/households/{hh['household']['id']}/devices").json()
        assert devices[0]["connected"] is True

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 900, "height": 1400})
        page.goto(f"{api.url}/household")
        page.get_by_label("Your household token").fill(hh["token"])
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Flat 12, rue Nationale: my home's energy").wait_for()
        chart = page.get_by_role("img", name="Electricity per day", exact=False)
        assert "total 36.0 kWh" in (chart.get_attribute("aria-label") or "")
        assert page.get_by_text("connected", exact=True).count() == 1
        assert page.get_by_text(conn_info["topic"]).count() == 1
        page.screenshot(path=str(ARTIFACTS / "household-page.png"), full_page=True)
        # Consent switch: withdraw the load curve through the page.
        page.get_by_label("Keep and show my hourly load curve", exact=False).uncheck()
        page.get_by_role("button", name="Save my choices").click()
        page.get_by_role("heading", name="My consents").wait_for()
        assert not page.get_by_label("Keep and show my hourly load curve", exact=False).is_checked()
        browser.close()
    with api.client(hh["token"]) as c:
        r = c.get(f"/v1/meters/{meter}/readings", params={"resolution": "hour"})
        assert r.status_code == 403
        # Revoke: the broker disconnects the device at once and refuses it afterwards.
        assert c.post(f"/v1/households/{hh['household']['id']}/broker/revoke").status_code == 204
    wait_until(lambda: device.disconnected is not None, 5)
    again = Probe(
        dyn_broker.port,
        username=conn_info["username"],
        password=hh["mqtt_password"],
        client_id=conn_info["client_id"],
    )
    assert not again.accepted
    again.close()
    device.close()
