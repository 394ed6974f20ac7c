"""The local API token file (made once, 0600, never clobbered), the review cache's bounds,
and the CLI's token lookup and its one-line answers to 401 and 403."""

import stat
import threading
from pathlib import Path

import httpx
import pytest

from ferry_cli.client import ApiClient, CliError, refusal_text, token_from_environment
from ferry_cli.follow.http_planner import HttpChangeFeed
from ferry_peers.security import LocalSecurity
from ferry_shared.api_auth.cache import TtlCache, digest
from ferry_shared.api_auth.local_token import (
    LOCAL_USER,
    LocalTokenAuthenticator,
    TokenFileError,
    default_token_file,
    ensure_token_file,
)
from ferry_shared.api_auth.ports import AccessCheck
from ferry_shared.credentials import Secret


def test_the_token_file_is_made_once_with_mode_0600_in_a_0700_folder(tmp_path: Path) -> None:
    path = tmp_path / "config" / "ferry" / "token"
    token = ensure_token_file(path)
    assert len(token.reveal()) >= 43  # 32 random bytes, URL-safe base64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert ensure_token_file(path) == token, "an existing token is kept"
    assert [p.name for p in path.parent.iterdir()] == ["token"], "no draft is left behind"


def test_processes_racing_to_make_the_token_all_get_the_same_one(tmp_path: Path) -> None:
    path = tmp_path / "token"
    found: list[Secret] = []
    threads = [threading.Thread(target=lambda: found.append(ensure_token_file(path))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(found)) == 1 and len(found) == 8


def test_a_token_file_others_can_read_or_an_empty_one_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("something\n")
    path.chmod(0o644)
    with pytest.raises(TokenFileError, match="readable by others"):
        ensure_token_file(path)
    path.write_text("")
    path.chmod(0o600)
    with pytest.raises(TokenFileError, match="empty"):
        ensure_token_file(path)


def test_the_default_token_file_is_in_the_users_config_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_token_file() == tmp_path / "ferry" / "token"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert default_token_file() == Path.home() / ".config" / "ferry" / "token"


async def test_only_the_local_token_authenticates_and_it_may_do_everything(tmp_path: Path) -> None:
    token = ensure_token_file(tmp_path / "token")
    authenticator = LocalTokenAuthenticator(token)
    assert await authenticator.authenticate(token) == LOCAL_USER
    assert await authenticator.authenticate(Secret(token.reveal()[:-1])) is None
    assert (await authenticator.authorize(LOCAL_USER, AccessCheck("create", "providers"))).allowed


def test_cached_answers_last_at_most_ten_seconds_and_the_cache_is_bounded() -> None:
    now = [0.0]
    cache: TtlCache[str] = TtlCache(clock=lambda: now[0], size=2)
    cache.put(digest("token-a"), "alice")
    now[0] = 9.99
    assert cache.get(digest("token-a")) == (True, "alice")
    now[0] = 10.0
    assert cache.get(digest("token-a")) == (False, None)
    for key in ("a", "b", "c"):
        cache.put(key, key)
    assert cache.get("a") == (False, None) and cache.get("c") == (True, "c")
    with pytest.raises(ValueError, match="at most 10"):
        TtlCache(ttl=11)
    assert "token-a" not in digest("token-a")


def test_the_local_bundle_gives_services_and_clients_the_same_token_file(tmp_path: Path) -> None:
    security = LocalSecurity.create(tmp_path / "security")
    path = security.api_token_file
    planner = security.service_env("planner")
    assert planner["FERRY_API_AUTH"] == "token" and planner["FERRY_API_TOKEN_FILE"] == str(path)
    assert "FERRY_API_TOKEN_FILE" not in security.service_env("transfer")
    assert security.client_env()["FERRY_API_TOKEN_FILE"] == str(path)
    again = LocalSecurity.create(tmp_path / "security")
    assert again.api_headers() == security.api_headers() == {"Authorization": f"Bearer {path.read_text().strip()}"}


def test_the_cli_reads_ferry_token_first_then_the_token_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FERRY_TOKEN", raising=False)
    monkeypatch.setenv("FERRY_API_TOKEN_FILE", str(tmp_path / "token"))
    assert token_from_environment() is None
    assert ApiClient("http://x", "planner", "FERRY_PLANNER_URL").headers() == {}
    from_file = ensure_token_file(tmp_path / "token")
    assert ApiClient("http://x", "planner", "FERRY_PLANNER_URL").headers() == {
        "Authorization": f"Bearer {from_file.reveal()}"
    }
    monkeypatch.setenv("FERRY_TOKEN", "from-the-environment")
    assert token_from_environment() == Secret("from-the-environment")
    (tmp_path / "token").chmod(0o644)
    monkeypatch.delenv("FERRY_TOKEN")
    with pytest.raises(CliError, match="readable by others"):
        token_from_environment()


def _answer(status: int, message: str) -> httpx.Response:
    reason = "unauthenticated" if status == 401 else "forbidden"
    return httpx.Response(status, json={"reason": reason, "message": message})


def test_401_and_403_become_one_line_that_says_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FERRY_TOKEN", raising=False)
    monkeypatch.setenv("FERRY_API_TOKEN_FILE", str(tmp_path / "token"))
    missing = refusal_text(_answer(401, "a bearer token is required"), "planner")
    assert missing is not None and "\n" not in missing
    assert missing.startswith("not logged in (no token: $FERRY_TOKEN is unset and ")
    assert str(tmp_path / "token") in missing and "kubectl create token" in missing
    monkeypatch.setenv("FERRY_TOKEN", "stale")
    assert "$FERRY_TOKEN is set but the planner does not accept it" in (refusal_text(_answer(401, ""), "planner") or "")
    message = "user bob may not create migrations; the ferry-operator role allows it"
    assert refusal_text(_answer(403, message), "planner") == (
        f"forbidden: {message}; ask your Ferry administrator to bind it to you"
    )
    assert refusal_text(httpx.Response(404, json={}), "planner") is None


def test_the_event_stream_sends_the_token_and_explains_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERRY_TOKEN", "t0ken")
    seen: list[str] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization", ""))
        return _answer(403, "user bob may not list migrations; the ferry-viewer role allows it")

    feed = HttpChangeFeed(ApiClient("http://planner.test", "planner", "FERRY_PLANNER_URL"),
                          transport=httpx.MockTransport(refuse))  # fmt: skip
    with pytest.raises(CliError, match=r"^forbidden: user bob may not list migrations"), feed.open():
        pass
    assert seen == ["Bearer t0ken"]
