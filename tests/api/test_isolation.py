"""Households A ≠ B: neither the broker nor the API lets A reach B's data, and "not yours"
answers exactly like "does not exist"."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.api.conftest import Api
from tests.api.helpers import enrol, seed_anomaly, seed_assessment
from tests.api.mqtt_probe import Probe, settle
from wattwatch.stack.mosquitto import EmbeddedMosquitto

pytestmark = pytest.mark.integration

FORMATS = ("shelly", "tasmota", "zigbee2mqtt", "own_json")


def probe(broker: EmbeddedMosquitto, hh: dict[str, Any], client_id: str | None = None) -> Probe:
    user = hh["household"]["mqtt_username"]
    return Probe(
        broker.port, username=user, password=hh["mqtt_password"], client_id=client_id or user
    )


def routes_for(b: dict[str, Any], anomaly: int) -> list[tuple[str, str, dict[str, Any] | None]]:
    hid, bid, mid = b["household"]["id"], b["household"]["building_id"], b["meter"]["id"]
    return [
        ("GET", f"/v1/households/{hid}", None),
        ("GET", f"/v1/households/{hid}/devices", None),
        ("PUT", f"/v1/households/{hid}/consents", {"daily_totals": False, "load_curve": False}),
        ("POST", f"/v1/households/{hid}/broker/revoke", None),
        ("DELETE", f"/v1/households/{hid}", None),
        ("GET", f"/v1/buildings/{bid}", None),
        ("GET", f"/v1/meters/{mid}", None),
        ("GET", f"/v1/meters/{mid}/readings", None),
        ("GET", f"/v1/anomalies/{anomaly}", None),
        ("POST", f"/v1/anomalies/{anomaly}/acknowledge", {"comment": "mine now"}),
        ("GET", f"/v1/insulation/assessments/{bid}", None),
    ]


def not_found_body(path: str) -> dict[str, Any]:
    """The body a missing object gets (checked below against really missing ids)."""
    parts = path.strip("/").split("/")
    what = {
        "households": "household",
        "buildings": "building",
        "meters": "meter",
        "anomalies": "anomaly",
        "assessments": "assessment of building",
    }
    ident, kind = (parts[2], parts[1]) if parts[1] != "insulation" else (parts[3], parts[2])
    return {
        "error": {
            "status": 404,
            "code": "not_found",
            "message": f"{what[kind]} {ident} not found",
            "field": None,
        }
    }


def test_broker_and_api_isolation(api: Api, dyn_broker: EmbeddedMosquitto) -> None:
    homes = [enrol(api, fmt) for fmt in FORMATS]
    anomalies = {h["household"]["id"]: seed_anomaly(api.db_url, h["meter"]["id"]) for h in homes}
    for h in homes:
        seed_assessment(api.db_url, h["household"]["building_id"])
    probes = {h["household"]["id"]: probe(dyn_broker, h) for h in homes}
    try:
        assert all(p.accepted for p in probes.values())
        for p, h in zip(probes.values(), homes, strict=True):  # each watches its own topic
            assert p.subscribe(h["connection"]["topic"])
        for a, b in itertools.permutations(homes, 2):
            pa, pb = probes[a["household"]["id"]], probes[b["household"]["id"]]
            b_topic = b["connection"]["topic"]
            # A cannot subscribe to B's topic nor to everything.
            assert not pa.subscribe(b_topic)
            assert not pa.subscribe("#")
            # A publishes on B's topic: B (subscribed there) receives nothing.
            before_b = len(pb.messages)
            pa.publish(b_topic, b"from A")
            # B publishes on its own topic: only B receives it, A does not.
            before_a = len(pa.messages)
            pb.publish(b_topic, b"from B")
            settle(0.15)
            assert pb.messages[before_b:] == [(b_topic, b"from B")]
            assert pa.messages[before_a:] == []
            # A cannot take over B's client id (B stays connected).
            thief = probe(dyn_broker, a, client_id=b["household"]["mqtt_username"])
            assert not thief.accepted
            thief.close()
            assert pb.disconnected is None
    finally:
        for p in probes.values():
            p.close()

    missing = {"household": 99999, "building": 99999, "meter": 99999}
    for a, b in itertools.permutations(homes, 2):
        with api.client(a["token"]) as c:
            for method, path, body in routes_for(b, anomalies[b["household"]["id"]]):
                r = c.request(method, path, json=body)
                assert r.status_code == 404, (method, path, r.text)
                assert r.json() == not_found_body(path), (method, path)
            own = {x["id"] for x in c.get("/v1/meters").json()["items"]}
            assert own == {a["meter"]["id"]}
            assert {x["id"] for x in c.get("/v1/anomalies").json()["items"]} == {
                anomalies[a["household"]["id"]]
            }
            assert [x["id"] for x in c.get("/v1/buildings").json()["items"]] == [
                a["household"]["building_id"]
            ]
            r = c.get("/v1/meters", params={"building_id": b["household"]["building_id"]})
            assert r.json()["items"] == []
    # A missing object answers the same body shape as somebody else's.
    with api.client(homes[0]["token"]) as c:
        for what, ident in missing.items():
            path = f"/v1/{what}s/{ident}"
            assert c.get(path).json() == not_found_body(path)
    # No token: 401 on every route.
    with api.client() as anon:
        for method, path, body in routes_for(homes[1], anomalies[homes[1]["household"]["id"]]):
            assert anon.request(method, path, json=body).status_code == 401, path
    # B's data is untouched by A's attempts.
    with api.client(homes[1]["token"]) as c:
        me = c.get("/v1/households/me").json()
        assert me["consents"] == {"daily_totals": True, "load_curve": True}
        assert c.get(f"/v1/anomalies/{anomalies[me['id']]}").json()["acknowledged_at"] is None
