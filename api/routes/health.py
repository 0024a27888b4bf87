"""Liveness for `wattwatch status` and load balancers, and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import Conn, State
from api.models import Health
from storage.api_reads import database_ok

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, summary="Is the API able to answer?")
async def health(conn: Conn, state: State) -> Health:
    ok = await database_ok(conn)
    return Health(
        status="ok" if ok else "degraded", database=ok, broker_accounts=state.broker.enabled
    )


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics of the API (request counts and latencies per route)",
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    registry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
