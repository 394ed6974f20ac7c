"""HTTP access to the planner and inventory APIs, with errors a person can act on.

Every request carries the API token (``Authorization: Bearer``): ``$FERRY_TOKEN``, else the
token file (``$FERRY_API_TOKEN_FILE``, else ``$XDG_CONFIG_HOME/ferry/token``).
"""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ferry_shared.api_auth.local_token import TokenFileError, default_token_file, read_token_file
from ferry_shared.credentials import Secret

PLANNER_URL_ENV = "FERRY_PLANNER_URL"
INVENTORY_URL_ENV = "FERRY_INVENTORY_URL"
DEFAULT_PLANNER_URL = "http://127.0.0.1:8081"
DEFAULT_INVENTORY_URL = "http://127.0.0.1:8082"
TOKEN_ENV = "FERRY_TOKEN"
TOKEN_FILE_ENV = "FERRY_API_TOKEN_FILE"


class CliError(Exception):
    """A failure shown to the user as one ``error: …`` line (exit 1), without a traceback."""


class UnreachableError(CliError):
    """The service did not answer at all (refused, reset, timed out); trying again may help."""


class AnsweredError(CliError):
    """The service answered with an error: the one line to show, and the answer's HTTP
    ``status``, ``reason`` and ``message`` for a command that says more about some of them."""

    def __init__(self, line: str, status: int, reason: str, message: str) -> None:
        super().__init__(line)
        self.status, self.reason, self.message = status, reason, message


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


def token_file() -> Path:
    """Where the CLI looks for the API token when ``$FERRY_TOKEN`` is unset."""
    named = os.environ.get(TOKEN_FILE_ENV)
    return Path(named) if named else default_token_file()


def token_from_environment() -> Secret | None:
    """``$FERRY_TOKEN``, else the token file's token; None when there is neither."""
    if token := os.environ.get(TOKEN_ENV, "").strip():
        return Secret(token)
    path = token_file()
    if not path.exists():
        return None
    try:
        return read_token_file(path)
    except TokenFileError as error:
        raise CliError(str(error)) from None


class ApiClient:
    """JSON calls to one Ferry service, with ``token`` (by default the environment's, see the module)."""

    def __init__(self, base_url: str, service: str, env_var: str, token: Secret | None = None) -> None:
        self._base = base_url
        self._service = service
        self._env_var = env_var
        self._token = token

    def headers(self) -> dict[str, str]:
        """The headers every request to the service carries (its credentials)."""
        token = self._token or token_from_environment()
        return {"Authorization": f"Bearer {token.reveal()}"} if token else {}

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
            response = httpx.request(
                method, self.url(path), json=body, params=query, headers=self.headers(), timeout=30.0
            )
        except httpx.HTTPError as error:
            raise self._unreachable(error) from error
        if response.status_code >= 400:
            line = refusal_text(response, self._service) or error_text(response)
            reason, message = error_fields(response)
            raise AnsweredError(line, response.status_code, reason, message)
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


def error_fields(response: httpx.Response) -> tuple[str, str]:
    """The ``reason`` and ``message`` of an API error answer ("" for what it lacks)."""
    try:
        body = response.json()
    except ValueError:
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    return str(body.get("reason", "")), str(body.get("message", ""))


def refusal_text(response: httpx.Response, service: str) -> str | None:
    """The one line for a 401 or a 403 that says what to do about it (None for other answers)."""
    if response.status_code not in (401, 403):
        return None
    try:
        body = response.json()
        message = str(body.get("message", "")) if isinstance(body, dict) else ""
    except ValueError:
        message = ""
    if response.status_code == 403:
        refused = message or f"the {service} refused this"
        return f"forbidden: {refused}; ask your Ferry administrator to bind it to you"
    if os.environ.get(TOKEN_ENV, "").strip():
        where = f"${TOKEN_ENV} is set but the {service} does not accept it"
    elif token_file().exists():
        where = f"the token in {token_file()} is not accepted by the {service}"
    else:
        where = f"no token: ${TOKEN_ENV} is unset and {token_file()} does not exist"
    return (
        f"not logged in ({where}): set ${TOKEN_ENV} (in a cluster: `kubectl create token <service-account>`) "
        f"or ${TOKEN_FILE_ENV} (the local stack's token file)"
    )


def planner() -> ApiClient:
    return ApiClient(Endpoints.from_environment().planner, "planner", PLANNER_URL_ENV)


def inventory() -> ApiClient:
    return ApiClient(Endpoints.from_environment().inventory, "inventory service", INVENTORY_URL_ENV)
