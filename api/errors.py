"""One error body for every failure: ``{"error": {"status", "code", "message", "field"}}``.

Handlers translate FastAPI's and Starlette's exceptions at the boundary, so a 404 of an
unknown path, of a missing object and of somebody else's object read the same.
"""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


class ErrorDetail(BaseModel):
    status: int = Field(examples=[404])
    code: str = Field(examples=["not_found"])
    message: str = Field(examples=["meter 42 not found"])
    field: str | None = Field(None, description="The input at fault, when there is one.")


class ErrorBody(BaseModel):
    error: ErrorDetail


class ApiError(Exception):
    """An error the API answers on purpose."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers


def not_found(what: str, ident: object) -> ApiError:
    """The one answer for "does not exist" and "not yours" (no hint which)."""
    return ApiError(404, f"{what} {ident} not found")


def error_response(
    status: int,
    message: str,
    *,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(
        error=ErrorDetail(
            status=status, code=_CODES.get(status, "error"), message=message, field=field
        )
    )
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = (
        [str(p) for p in loc[1:]]
        if loc and loc[0] in ("body", "query", "path", "header")
        else [str(p) for p in loc]
    )
    return ".".join(parts) or "body"


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, field=exc.field, headers=exc.headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if not errors:
        return error_response(422, "invalid input")
    first = errors[0]
    field = _field_name(tuple(first.get("loc", ())))
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return error_response(422, f"{field}: {message}", field=field)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "error"
    return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))


async def _data_error(_request: Request, exc: Exception) -> JSONResponse:
    # SQLSTATE class 22: a value the database cannot hold (out of range, underflow…) that
    # got past the models' bounds: the client's input, not a server fault.
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid value"
    return error_response(422, f"invalid value: {first}")


def install(app: FastAPI) -> None:
    app.add_exception_handler(psycopg.errors.DataError, _data_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer."""
    return {s: {"model": ErrorBody, "description": _CODES.get(s, "error")} for s in statuses}
