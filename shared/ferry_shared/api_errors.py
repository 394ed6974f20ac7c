"""JSON errors for every Ferry HTTP API: ``{"reason": …, "message": …}`` with a status."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException


class ApiError(Exception):
    """An API failure: HTTP status, machine-readable reason, message for people."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


def _describe(errors: list[Any]) -> str:
    parts = []
    for error in errors:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg", "invalid")))
    return "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    """Answer ApiError, request validation errors and HTTP errors as JSON reason/message."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return JSONResponse({"reason": error.reason, "message": error.message}, status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        message = f"the request is malformed: {_describe(list(error.errors()))}"
        return JSONResponse({"reason": "malformed_request", "message": message}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        reason = "not_found" if error.status_code == 404 else "http_error"
        return JSONResponse({"reason": reason, "message": str(error.detail)}, status_code=error.status_code)
