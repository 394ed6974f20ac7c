"""The local API token (``ferry demo``, local runs): one random token in a 0600 file.

The service makes the file at start when it does not exist (atomically: a temporary
file linked into place, so an existing token is never replaced and a reader never sees
half a token); the CLI reads the same file. Whoever holds the token may do everything.
"""

import hmac
import os
import secrets
import stat
import uuid
from pathlib import Path
from typing import Final

from ferry_shared.api_auth.ports import AccessCheck, Caller, Decision
from ferry_shared.credentials import Secret

TOKEN_BYTES: Final = 32
LOCAL_USER: Final = Caller(user="ferry-local", groups=("ferry:local-token",))


class TokenFileError(Exception):
    """The token file cannot be used (unreadable, empty, or readable by others)."""


def default_token_file() -> Path:
    """``$XDG_CONFIG_HOME/ferry/token`` (``~/.config/ferry/token`` when it is unset)."""
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "ferry" / "token"


def read_token_file(path: Path) -> Secret:
    """The token in ``path``; refuses a file that others may read or that holds no token."""
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except OSError as error:
        raise TokenFileError(f"cannot read the API token file {path}: {error.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise TokenFileError(f"the API token file {path} is readable by others (mode {mode & 0o777:o}); chmod 600 it")
    if not text:
        raise TokenFileError(f"the API token file {path} is empty; delete it and restart the service to make a new one")
    return Secret(text)


def ensure_token_file(path: Path) -> Secret:
    """The token in ``path``, made first (random, mode 0600) if the file does not exist."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        draft = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_urlsafe(TOKEN_BYTES) + "\n")
                file.flush()
                os.fsync(file.fileno())
            os.link(draft, path)  # fails if another process made it meanwhile: theirs is kept
        except FileExistsError:
            pass
        finally:
            draft.unlink(missing_ok=True)
    return read_token_file(path)


class LocalTokenAuthenticator:
    """The holder of the one local token is :data:`LOCAL_USER`, who may do everything."""

    mode = "token"

    def __init__(self, token: Secret) -> None:
        self._token = token.reveal().encode()

    async def authenticate(self, token: Secret) -> Caller | None:
        return LOCAL_USER if hmac.compare_digest(token.reveal().encode(), self._token) else None

    async def authorize(self, caller: Caller, check: AccessCheck) -> Decision:
        return Decision(allowed=caller == LOCAL_USER)
