"""HTTP access to the planner and inventory APIs, with errors a person can act on."""

import os
from dataclasses import dataclass
from typing import Any

import httpx

PLANNER_URL_ENV = "FERRY_PLANNER_URL"
INVENTORY_URL_ENV = "FERRY_INVENTORY_URL"
DEFAULT_PLANNER_URL = "http://127.0.0.1:8081"
DEFAULT_INVENTORY_URL = "http://127.0.0.1:8082"


class CliError(Exception):
    """A failure shown to the user as one ``error: …`` line (exit 1), without a traceback."""


class UnreachableError(CliError):
    """The service did not answer at all (refused, reset, timed out); trying again may help."""


@dataclass(frozen=True)
class Endpoints:
    planner: str
    inventory: str

    @classmethod
    def from_environment(cls) -> "Endpoints":
        return cls(
            planner=os.environ.get(PLANNER_URL_ENV, DEFAULT_PLANNER_URL).rstrip("/"),
            inventory=os.environ.get(INVENTORY_URL_ENV, DEFAULT_INVENTORY_URL).rstrip("/"),
        )


class ApiClient:
    """JSON calls to one Ferry service."""

    def __init__(self, base_url: str, service: str, env_var: str) -> None:
        self._base = base_url
        self._service = service
        self._env_var = env_var

    def url(self, path: str) -> str:
        """The full URL of API path ``path`` (``/migrations``)."""
        return f"{self._base}/api/v1{path}"

    def _unreachable(self, error: Exception) -> UnreachableError:
        """The one-line error for a service that did not answer."""
        return UnreachableError(
            f"cannot reach the {self._service} at {self._base} ({type(error).__name__}); "
            f"is it running? Point ${self._env_var} at it"
        )

    def request(self, method: str, path: str, body: object | None = None, **params: Any) -> Any:
        query = {k: v for k, v in params.items() if v is not None}
        try:
            response = httpx.request(method, self.url(path), json=body, params=query, timeout=30.0)
        except httpx.HTTPError as error:
            raise self._unreachable(error) from error
        if response.status_code >= 400:
            raise CliError(error_text(response))
        try:
            return response.json() if response.content else None
        except ValueError as error:
            raise CliError(f"the {self._service} at {self._base} answered {path} with something not JSON") from error

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, **params)

    def post(self, path: str, body: object) -> Any:
        return self.request("POST", path, body)

    def delete(self, path: str) -> None:
        self.request("DELETE", path)


def error_text(response: httpx.Response) -> str:
    """One line from an API error answer: its message and reason, or the status and body."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    if isinstance(body, dict) and "message" in body:
        return f"{body['message']} ({body.get('reason', response.status_code)})"
    return f"HTTP {response.status_code}: {body}"


def planner() -> ApiClient:
    return ApiClient(Endpoints.from_environment().planner, "planner", PLANNER_URL_ENV)


def inventory() -> ApiClient:
    return ApiClient(Endpoints.from_environment().inventory, "inventory service", INVENTORY_URL_ENV)
