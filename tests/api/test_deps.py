"""The token cache: how long a revoked token may still be served, and what is never cached."""

from __future__ import annotations

import time

import psycopg
import pytest

from api.deps import CallerCache
from api.main import create_app
from storage.tokens import Caller
from tests.api.conftest import Api, engineer_token, serve
from tests.api.helpers import enrol


def test_cache_entries_expire_and_households_are_forgotten() -> None:
    now = [100.0]
    cache = CallerCache(ttl_s=5, max_size=2, clock=lambda: now[0])
    engineer, household = Caller(1, "alice", None), Caller(2, None, 7)
    cache.put(b"e", engineer)
    cache.put(b"h", household)
    assert cache.get(b"e") == engineer
    cache.forget_household(7)
    assert cache.get(b"h") is None
    now[0] += 5
    assert cache.get(b"e") is None
    cache.put(b"a", engineer)
    cache.put(b"b", engineer)
    cache.put(b"c", engineer)  # over max_size: starts afresh
    assert [cache.get(k) for k in (b"a", b"b", b"c")] == [None, None, engineer]


@pytest.mark.integration
def test_revoked_token_refused_within_the_ttl(settings, db_url, dyn_broker) -> None:  # type: ignore[no-untyped-def]
    app = create_app(settings, database_url=db_url, mqtt_url=dyn_broker.url)
    with serve(app) as url:
        app.state.wattwatch.callers = CallerCache(ttl_s=0.3)
        api = Api(url=url, settings=settings, db_url=db_url, engineer_token=engineer_token(db_url))
        with api.engineer as c:
            assert c.get("/v1/anomalies").status_code == 200
            with psycopg.connect(db_url, autocommit=True) as conn:
                conn.execute("UPDATE api_tokens SET revoked_at = now()")
            time.sleep(0.4)
            assert c.get("/v1/anomalies").status_code == 401
            assert c.get("/v1/anomalies").status_code == 401  # refusals are never cached


@pytest.mark.integration
def test_erased_household_token_refused_at_once(api: Api) -> None:
    hh = enrol(api)
    with api.client(hh["token"]) as c:
        assert c.get("/v1/households/me").status_code == 200  # cached now
        assert c.delete(f"/v1/households/{hh['household']['id']}").status_code == 200
        assert c.get("/v1/households/me").status_code == 401
