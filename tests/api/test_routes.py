"""The API over a real database: resources, errors, readings from rollups, public aggregates."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

import psycopg
import pytest

from api.main import create_app
from tests.api.conftest import Api, engineer_token, serve
from tests.api.helpers import enrol, seed_anomaly, seed_assessment, seed_readings

pytestmark = pytest.mark.integration


def test_health_metrics_and_auth(api: Api) -> None:
    with api.client() as anon:
        assert anon.get("/health").json()["status"] == "ok"
        r = anon.get("/v1/buildings")
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "unauthorized"
        assert (
            anon.get("/v1/buildings", headers={"Authorization": "Bearer nope"}).status_code == 401
        )
        assert "wattwatch_api_request_seconds" in anon.get("/metrics").text
        assert anon.get("/openapi.json").json()["info"]["title"] == "wattwatch API"


def test_readings_rollups_paris_days_and_csv(api: Api) -> None:
    hh = enrol(api)
    meter = hh["meter"]["id"]
    # 48 h from 2025-01-14 23:00 UTC = midnight in Paris: two whole Paris days of 24 kWh.
    seed_readings(api.db_url, meter, start=datetime(2025, 1, 14, 23, tzinfo=UTC), hours=48)
    with api.client(hh["token"]) as c:
        q = {"start": "2025-01-15T00:00:00", "end": "2025-01-17T00:00:00"}
        day = c.get(f"/v1/meters/{meter}/readings", params={**q, "resolution": "day"}).json()
        assert [p["consumption"] for p in day["points"]] == [24.0, 24.0]
        assert day["points"][0]["ts"].startswith("2025-01-14T23:00:00")
        hour = c.get(f"/v1/meters/{meter}/readings", params={**q, "limit": 10}).json()
        assert len(hour["points"]) == 10
        assert hour["next_start"].startswith("2025-01-15T09:00:00")
        csv = c.get(
            f"/v1/meters/{meter}/readings", params={**q, "resolution": "day", "format": "csv"}
        )
        assert csv.headers["content-type"].startswith("text/csv")
        assert csv.text.splitlines()[0] == "ts,value,consumption,min,max,samples"
        bad = c.get(
            f"/v1/meters/{meter}/readings", params={"start": "2025-02-01", "end": "2025-01-01"}
        )
        assert bad.status_code == 422
        assert bad.json()["error"]["field"] == "start"
        bad = c.get(f"/v1/meters/{meter}/readings", params={"resolution": "minute"})
        assert bad.status_code == 422
        assert bad.json()["error"]["field"] == "resolution"
        # Withdrawing the load-curve consent: only daily totals are served, the curve is gone.
        hid = hh["household"]["id"]
        r = c.put(
            f"/v1/households/{hid}/consents", json={"daily_totals": True, "load_curve": False}
        )
        assert r.status_code == 200
        assert c.get(f"/v1/meters/{meter}/readings", params=q).status_code == 403
        assert (
            c.get(f"/v1/meters/{meter}/readings", params={**q, "resolution": "day"}).status_code
            == 200
        )
    with psycopg.connect(api.db_url) as conn:
        left = conn.execute(
            "SELECT count(*) FROM readings_hourly WHERE meter_id = %s", (meter,)
        ).fetchone()
        assert left == (0,)


def test_anomalies_filter_and_acknowledge(api: Api) -> None:
    hh = enrol(api)
    meter = hh["meter"]["id"]
    spike = seed_anomaly(api.db_url, meter, kind="spike", severity=8)
    seed_anomaly(
        api.db_url, meter, kind="flatline", severity=2, start=datetime(2025, 2, 1, tzinfo=UTC)
    )
    shift = seed_anomaly(
        api.db_url, meter, kind="level_shift", severity=1.5, status="warning",
        start=datetime(2025, 1, 20, tzinfo=UTC),
    )  # fmt: skip
    with api.engineer as c:
        items = c.get("/v1/anomalies", params={"kind": "spike"}).json()["items"]
        assert [(a["id"], a["status"]) for a in items] == [(spike, "confirmed")]
        items = c.get("/v1/anomalies", params={"kind": "level_shift"}).json()["items"]
        assert [(a["id"], a["status"]) for a in items] == [(shift, "warning")]
        assert len(c.get("/v1/anomalies", params={"min_severity": 3}).json()["items"]) == 1
        r = c.get(
            "/v1/anomalies",
            params={"start": "2025-01-31T00:00:00Z", "building_id": hh["household"]["building_id"]},
        )
        assert [a["kind"] for a in r.json()["items"]] == ["flatline"]
        r = c.post(f"/v1/anomalies/{spike}/acknowledge", json={"comment": "kettle test"})
        assert r.status_code == 200
        assert r.json()["acknowledged_by"] == "alice"
        assert (
            c.post(f"/v1/anomalies/{spike}/acknowledge", json={}).json()["error"]["field"]
            == "comment"
        )
        assert (
            c.get("/v1/anomalies", params={"acknowledged": True}).json()["items"][0]["id"] == spike
        )
    with api.client(hh["token"]) as c:
        assert (
            c.post(f"/v1/anomalies/{spike}/acknowledge", json={"comment": "x"}).status_code == 403
        )


def test_insulation_rankings_and_municipalities(api: Api) -> None:
    with psycopg.connect(api.db_url) as conn:
        mun = conn.execute(
            "INSERT INTO municipalities (name) VALUES ('Lille') RETURNING id"
        ).fetchone()
        conn.commit()
    assert mun is not None
    homes = [enrol(api, municipality_id=mun[0]) for _ in range(3)]
    for hh, label in zip(homes, "CGE", strict=True):
        seed_assessment(api.db_url, hh["household"]["building_id"], label)
    with api.engineer as c:
        ranked = c.get("/v1/insulation/rankings").json()["items"]
        assert [a["label"] for a in ranked] == ["C", "G", "E"] or len(ranked) == 3
        m = c.get(f"/v1/municipalities/{mun[0]}").json()
        assert m["households"] == 3
        assert m["assessed_buildings"] == 3
        assert c.get("/v1/municipalities/999").status_code == 404
        assert (
            c.get("/v1/insulation/assessments", params={"label": "G"}).json()["items"][0]["label"]
            == "G"
        )
    with api.client(homes[0]["token"]) as c:
        assert c.get("/v1/insulation/rankings").status_code == 403
        mine = c.get("/v1/insulation/assessments").json()["items"]
        assert [a["building_id"] for a in mine] == [homes[0]["household"]["building_id"]]
    with api.client() as anon:  # 3 households < 10: withheld
        pub = anon.get("/v1/public/municipalities").json()["items"][0]
        assert pub["withheld"] is True
        assert pub["households"] is None
        assert pub["labels"] is None


def test_public_aggregates_shown_from_the_threshold(api: Api) -> None:
    with psycopg.connect(api.db_url) as conn:
        mun = conn.execute(
            "INSERT INTO municipalities (name) VALUES ('Roubaix') RETURNING id"
        ).fetchone()
        conn.commit()
    assert mun is not None
    for _ in range(10):
        enrol(api, municipality_id=mun[0])
    with api.client() as anon:
        pub = anon.get("/v1/public/municipalities").json()["items"][0]
        assert pub["withheld"] is False
        assert pub["households"] == 10


def test_enrolment_errors_body_limit_and_invitations(api: Api) -> None:
    home = {"display_name": "x", "floor_area_m2": 50, "year_built": 1990}
    wrong = (  # what is sent, the field the error names
        (
            {"floor_area_m2": -1, "heating_carrier": "gas", "device_format": "shelly"},
            "floor_area_m2",
        ),
        (
            {"heating_carrier": "electricity", "occupants": 0, "device_format": "shelly"},
            "occupants",
        ),
        ({"heating_carrier": "gas", "device_format": "linky_tic"}, "linky_id"),
    )
    with api.engineer as c:
        for fields, named in wrong:
            r = c.post("/v1/households", json={**home, **fields})
            assert r.status_code == 422, r.text
            assert r.json()["error"]["field"] == named
        r = c.post(
            "/v1/households",
            content=b"{" + b" " * 70_000 + b"}",
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "payload_too_large"
        code = c.post("/v1/invitations").json()["code"]
    body = {
        "display_name": "Invited",
        "floor_area_m2": 50,
        "year_built": 1990,
        "heating_carrier": "electricity",
        "device_format": "tasmota",
    }
    with api.client() as anon:
        assert anon.post("/v1/households", json=body).status_code == 401
        r = anon.post("/v1/households", json={**body, "invitation_code": code})
        assert r.status_code == 201, r.text
        assert r.json()["connection"]["topic"].startswith("tele/hh")
        again = anon.post("/v1/households", json={**body, "invitation_code": code})
        assert again.status_code == 403
        assert again.json()["error"]["field"] == "invitation_code"


def test_onboarding_is_rate_limited(settings, db_url, dyn_broker) -> None:  # type: ignore[no-untyped-def]
    app = create_app(
        settings.model_copy(update={"api_onboarding_per_minute": 2}),
        database_url=db_url,
        mqtt_url=dyn_broker.url,
        broker_admin=None,
    )
    with serve(app) as url:
        api = Api(url=url, settings=settings, db_url=db_url, engineer_token=engineer_token(db_url))
        enrol(api)
        enrol(api)
        with api.engineer as c:
            r = c.post("/v1/households", json={})
            assert r.status_code == 429
            assert "Retry-After" in r.headers


def test_the_household_page_says_why_a_label_comes_without_heat_loss(api: Api) -> None:
    hh = enrol(api)
    building = hh["household"]["building_id"]
    with api.client(hh["token"]) as c:
        seed_assessment(api.db_url, building, "C")
        page = c.get("/household").text
        assert "Heat loss: about 250 W per degree" in page
        with psycopg.connect(api.db_url) as conn:
            conn.execute("DELETE FROM insulation_assessments")
            conn.commit()
        why = "the heating register's energy does not rise as it gets colder"
        seed_assessment(api.db_url, building, "B", hlc_w_per_k=None, reason=why)
        page = c.get("/household").text
        assert 'aria-label="label B"' in page
        assert f"Heat loss: not measured ({escape(why)})" in page and "about 0 W" not in page


def test_erase_removes_everything(api: Api) -> None:
    hh = enrol(api, "shelly")
    meter, hid = hh["meter"]["id"], hh["household"]["id"]
    seed_readings(api.db_url, meter, start=datetime(2025, 1, 1, tzinfo=UTC), hours=5)
    seed_anomaly(api.db_url, meter)
    seed_assessment(api.db_url, hh["household"]["building_id"])
    with api.client(hh["token"]) as c:
        r = c.delete(f"/v1/households/{hid}")
        assert r.status_code == 200
        removed = r.json()["removed"]
        assert removed["readings"] == 21
        assert removed["meters"] == 1
        assert removed["anomalies"] == 1
        assert removed["insulation_assessments"] == 1
        assert removed["api_tokens"] == 1
        assert r.json()["broker_account_removed"] is True
        assert c.get("/v1/households/me").status_code == 401  # its token went with it
    with psycopg.connect(api.db_url) as conn:
        for table in ("readings", "readings_hourly", "readings_daily", "meters", "households"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table


def test_a_household_corrects_its_home(api: Api) -> None:
    hh, other = enrol(api), enrol(api)
    hid = hh["household"]["id"]
    assert hh["household"]["occupants"] is None
    with api.client(hh["token"]) as c:
        r = c.patch(f"/v1/households/{hid}", json={"occupants": 4, "floor_area_m2": 82})
        assert r.status_code == 200, r.text
        assert (r.json()["occupants"], r.json()["floor_area_m2"]) == (4, 82)
        assert r.json()["year_built"] == hh["household"]["year_built"]  # not sent, not changed
        r = c.patch(f"/v1/households/{hid}", json={"occupants": None})
        assert r.json()["occupants"] is None
        r = c.patch(f"/v1/households/{hid}", json={"occupants": 0})
        assert (r.status_code, r.json()["error"]["field"]) == (422, "occupants")
        r = c.patch(f"/v1/households/{hid}", json={"floor_area_m2": None})
        assert (r.status_code, r.json()["error"]["field"]) == (422, "floor_area_m2")
        assert c.patch(f"/v1/households/{hid}", json={"name": "x"}).status_code == 422
        # Another household's home is not there for this token.
        other_id = other["household"]["id"]
        assert c.patch(f"/v1/households/{other_id}", json={"occupants": 2}).status_code == 404
    with api.engineer as c:
        r = c.patch(f"/v1/households/{other_id}", json={"heating_carrier": "heat_pump"})
        assert r.json()["heating_carrier"] == "heat_pump"
    with psycopg.connect(api.db_url) as conn:
        row = conn.execute(
            "SELECT occupants, floor_area_m2 FROM buildings WHERE id = %s",
            (hh["household"]["building_id"],),
        ).fetchone()
    assert row == (None, 82.0)
