"""The FastAPI application: built from the settings in ``create_app`` (never at import), with
the database pool opened in the lifespan. ``run`` serves it with uvicorn (`wattwatch api`)."""

from __future__ import annotations

import logging
import multiprocessing as mp
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from api import errors, page
from api.broker import BrokerAccounts, device_endpoint
from api.deps import AppState
from api.middleware import BodyLimit, Metrics
from api.ratelimit import RateLimiter
from api.routes import anomalies, buildings, health, households, insulation, meters
from api.routes import municipalities as munis
from wattwatch.logs import setup_logging
from wattwatch.settings import Settings
from wattwatch.stack.mosquitto import EmbeddedMosquitto
from wattwatch.stack.stack import Stack

log = logging.getLogger("wattwatch.api")

DESCRIPTION = """
wattwatch's HTTP API, for the metropolitan energy service's **engineers**, for **volunteer
households** and for the **public**.

* Engineers: `Authorization: Bearer wwe_…` (from `wattwatch token create --engineer NAME`).
* Households: `Authorization: Bearer wwh_…` (given once at enrolment); a household only ever
  sees its own objects — anything else answers exactly like a missing object (404).
* Public: `/v1/public/…` and `/health` need no token; figures covering fewer households than
  the threshold (10 by default) are withheld.

Errors always have the body `{"error": {"status", "code", "message", "field"}}`. Lists take
`limit` and `offset`. Times are UTC unless they carry an offset; a time without offset in a
query means Europe/Paris, and days, weeks and months are Paris calendar periods.
"""


def broker_admin_url(settings: Settings, mqtt_url: str) -> str | None:
    """The dynamic-security admin: the setting, else the embedded broker's generated one."""
    if settings.api_broker_admin_url:
        return settings.api_broker_admin_url
    if settings.embedded_broker:
        embedded = EmbeddedMosquitto(
            root=settings.state_dir / "mosquitto", port=settings.mqtt_port, auth="dynsec"
        )
        if embedded.admin_password_file.exists():
            return embedded.admin_url
    return None


def create_app(
    settings: Settings, *, database_url: str, mqtt_url: str, broker_admin: str | None = None
) -> FastAPI:
    """The application. ``broker_admin``: dynamic-security admin URL, None = no accounts."""
    metrics_registry = CollectorRegistry()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
            database_url,
            min_size=min(2, settings.api_pool_size),
            max_size=settings.api_pool_size,
            kwargs={"autocommit": True, "application_name": "wattwatch-api"},
            open=False,
        )
        await pool.open(wait=True, timeout=10)
        host, port = device_endpoint(
            mqtt_url, settings.api_device_mqtt_host, settings.api_device_mqtt_port
        )
        app.state.wattwatch = AppState(
            settings=settings,
            pool=pool,
            broker=BrokerAccounts(broker_admin, device_host=host, device_port=port),
            onboarding_limiter=RateLimiter(limit=settings.api_onboarding_per_minute),
        )
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(
        title="wattwatch API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.metrics_registry = metrics_registry  # read by /metrics
    errors.install(app)
    for module in (health, munis, buildings, meters, anomalies, insulation):
        app.include_router(module.router)
    app.include_router(munis.public_router)
    app.include_router(households.invitations_router)
    app.include_router(households.router)
    app.include_router(page.router)
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(Metrics, registry=metrics_registry)
    return app


def run(settings: Settings) -> None:
    """Serve until interrupted (`wattwatch api`)."""
    setup_logging(settings.log_level)
    stack = Stack(settings)
    mqtt_url = stack.mqtt_url()
    admin = broker_admin_url(settings, mqtt_url)
    if admin is None:
        log.warning("no broker admin (dynamic security): households get no MQTT credentials")
    serve(
        settings,
        database_url=stack.database_url(),
        mqtt_url=mqtt_url,
        broker_admin=admin,
        host=settings.api_host,
        port=settings.api_port,
        workers=settings.api_workers,
    )


def serve(
    settings: Settings,
    *,
    database_url: str,
    mqtt_url: str,
    broker_admin: str | None = None,
    host: str,
    port: int,
    workers: int = 1,
    log_level: str = "warning",
) -> None:
    """Serve ``create_app`` on host:port with ``workers`` processes sharing one socket.

    Each worker is its own interpreter (its own GIL) and builds its own app, so its own pool
    of ``settings.api_pool_size`` connections in its lifespan. Workers are spawned, never
    forked: a forked child would inherit the parent's event loop and threads.
    """
    if workers <= 1:
        app = create_app(
            settings, database_url=database_url, mqtt_url=mqtt_url, broker_admin=broker_admin
        )
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
        return
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP
    # (the default 0 does not), and without it Nagle + delayed ACK add ~40 ms per response.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    # SIGTERM must reach the finally below, which stops the workers (else they are orphaned).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    spec = _Worker(settings, database_url, mqtt_url, broker_admin, log_level)
    spawn = mp.get_context("spawn")
    procs = [spawn.Process(target=spec.run, args=(sock,)) for _ in range(workers)]
    for proc in procs:
        proc.start()
    try:
        for proc in procs:
            proc.join()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.join(10)
        sock.close()


@dataclass(frozen=True, slots=True)
class _Worker:
    """What a worker process needs to build its app (pickled to the spawned process)."""

    settings: Settings
    database_url: str
    mqtt_url: str
    broker_admin: str | None
    log_level: str

    def run(self, sock: socket.socket) -> None:
        app = create_app(
            self.settings,
            database_url=self.database_url,
            mqtt_url=self.mqtt_url,
            broker_admin=self.broker_admin,
        )
        config = uvicorn.Config(app, log_level=self.log_level, access_log=False)
        uvicorn.Server(config).run(sockets=[sock])
