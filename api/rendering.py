"""JSON bodies of the hot read endpoints, built once from storage tuples.

FastAPI would validate a returned model against ``response_model`` and then serialise it: two
passes of pydantic per item on top of building the model. These endpoints know their rows
already match the documented model (tests check the columns), so they serialise plain dicts
with pydantic-core, once, and keep ``response_model`` for the OpenAPI schema only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from fastapi.responses import Response
from pydantic_core import to_json


def records(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Rows as JSON objects keyed by ``columns`` (in that order)."""
    return [dict(zip(columns, row, strict=True)) for row in rows]


def json_response(body: dict[str, Any], *, status_code: int = 200) -> Response:
    """``body`` serialised as pydantic would (ISO 8601 times, ``Z`` for UTC)."""
    return Response(to_json(body), status_code=status_code, media_type="application/json")
