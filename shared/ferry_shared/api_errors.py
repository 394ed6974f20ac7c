"""JSON errors for every Ferry HTTP API: ``{"reason": …, "message": …}`` with a status.

:class:`ErrorBody` is that answer's model and :func:`error_responses` lists, for a
route's OpenAPI ``responses=``, the error statuses it can give. A 422 for a malformed
request names each field and its rule and repeats at most a short, escaped piece of the
offending value (``ferry_shared.api_fields.shown``), never the whole of it.
"""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from ferry_shared.api_fields import shown

_MESSAGES = {
    400: "the request cannot be read",
    401: "no valid bearer token (Authorization: Bearer <token>)",
    403: "the caller may not do this",
    404: "what the request names does not exist",
    409: "the request clashes with the current state",
    422: "the request is malformed or invalid",
    503: "the change raced another writer or a dependency is unavailable; retry (Retry-After)",
}
MAX_ERRORS = 10
"""How many field errors a 422 lists."""


class ErrorBody(BaseModel):
    """Every error answer: ``reason`` for programs, ``message`` for people."""

    reason: str
    message: str


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses=`` of a route that can answer ``statuses`` with :class:`ErrorBody`."""
    return {status: {"model": ErrorBody, "description": _MESSAGES[status]} for status in statuses}


class ApiError(Exception):
    """An API failure: HTTP status, machine-readable reason, message for people."""

    def __init__(self, status: int, reason: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message
        self.headers = headers


def _describe(errors: list[Any]) -> str:
    parts = []
    for error in errors[:MAX_ERRORS]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        what = str(error.get("msg", "invalid"))
        value = error.get("input")
        if isinstance(value, str) and error.get("type") != "value_error":  # a value_error shows its own
            what = f"{what} (got {shown(value)})"
        parts.append(f"{where}: {what}" if where else what)
    if len(errors) > MAX_ERRORS:
        parts.append(f"and {len(errors) - MAX_ERRORS} more")
    return "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    """Answer ApiError, request validation errors and HTTP errors as JSON reason/message."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        body = {"reason": error.reason, "message": error.message}
        return JSONResponse(body, status_code=error.status, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        message = f"the request is malformed: {_describe(list(error.errors()))}"
        return JSONResponse({"reason": "malformed_request", "message": message}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        reason = "not_found" if error.status_code == 404 else "http_error"
        return JSONResponse({"reason": reason, "message": str(error.detail)}, status_code=error.status_code)
