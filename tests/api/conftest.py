"""API fixtures: a dynamic-security Mosquitto, the API served by uvicorn on a free port, tokens."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from psycopg import AsyncConnection

from api.main import create_app
from storage.tokens import create_engineer_token
from tests.fixtures.servers import make_shared_tmpdir
from wattwatch.settings import Settings
from wattwatch.stack.mosquitto import EmbeddedMosquitto
from wattwatch.stack.system import free_port


@pytest.fixture(scope="session")
def dyn_broker() -> Iterator[EmbeddedMosquitto]:
    """A Mosquitto with the dynamic-security plugin and no anonymous access."""
    root = make_shared_tmpdir("wattwatch-test-dynsec-")
    broker = EmbeddedMosquitto(root=root / "mosquitto", port=free_port(), auth="dynsec")
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Api:
    url: str
    settings: Settings
    db_url: str
    engineer_token: str

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    @property
    def engineer(self) -> httpx.Client:
        return self.client(self.engineer_token)


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # a thread cannot take signals
        pass


def engineer_token(db_url: str, name: str = "alice") -> str:
    async def create() -> str:
        async with await AsyncConnection.connect(db_url, autocommit=True) as conn:
            return await create_engineer_token(conn, name)

    return asyncio.run(create())


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free loopback port; yields its base URL."""
    port = free_port()
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def make_settings(settings: Settings, **overrides: Any) -> Settings:
    return settings.model_copy(update=overrides)


@pytest.fixture
def api(settings: Settings, db_url: str, dyn_broker: EmbeddedMosquitto) -> Iterator[Api]:
    """The API on this test's database, creating broker accounts on the dynsec broker."""
    app = create_app(
        settings, database_url=db_url, mqtt_url=dyn_broker.url, broker_admin=dyn_broker.admin_url
    )
    with serve(app) as url:
        yield Api(url=url, settings=settings, db_url=db_url, engineer_token=engineer_token(db_url))
