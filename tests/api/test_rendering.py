"""The hot endpoints' pre-built JSON: the same bytes the documented models would produce."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api.models import Anomaly, PageOf, Point, Readings
from storage import api_reads
from tests.api.conftest import Api
from tests.api.helpers import enrol, seed_anomaly, seed_readings


def test_storage_columns_are_the_models_fields() -> None:
    assert tuple(Point.model_fields) == api_reads.POINT_COLUMNS
    assert tuple(Anomaly.model_fields) == api_reads.ANOMALY_COLUMNS


@pytest.mark.integration
def test_bodies_equal_the_validated_models(api: Api) -> None:
    hh = enrol(api)
    meter = hh["meter"]["id"]
    seed_readings(api.db_url, meter, start=datetime(2025, 1, 14, 23, tzinfo=UTC), hours=30)
    seed_anomaly(api.db_url, meter)
    with api.client(hh["token"]) as c:
        for resolution in ("raw", "hour", "day", "week", "month"):
            r = c.get(
                f"/v1/meters/{meter}/readings",
                params={"start": "2025-01-15T00:00:00", "end": "2025-01-17T00:00:00",
                        "resolution": resolution, "limit": 5},
            )  # fmt: skip
            assert r.status_code == 200, resolution
            assert r.headers["content-type"] == "application/json"
            assert Readings.model_validate_json(r.content).model_dump_json().encode() == r.content
        r = c.get("/v1/anomalies")
        assert r.status_code == 200
        assert len(r.json()["items"]) == 1
        page = PageOf[Anomaly].model_validate_json(r.content)
        assert page.model_dump_json().encode() == r.content
