"""The keyring of the ``nats`` credentials backend: named 256-bit AES keys read from a file
kept outside NATS (``FERRY_SECRETS_KEY_FILE``).

The file has one key a line, ``<key-id>:<base64 of 32 bytes>``; blank lines and lines
starting with ``#`` are ignored. The last key is the newest: it encrypts, every key
decrypts. A key is made with ``ferry_shared.credential_stores.keyring.new_key_line`` or
``echo "k2:$(head -c 32 /dev/urandom | base64)"``. Every fault of the file is a
:class:`KeyringError` that says what to fix and never quotes a key.
"""

import base64
import binascii
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from ferry_shared.errors import FerryError

KEY_BYTES = 32
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
SECRETS_KEY_INVALID = "secrets_key_invalid"


class KeyringError(FerryError):
    """The keyring file is missing, unreadable or malformed (a startup error)."""

    def __init__(self, message: str) -> None:
        super().__init__(SECRETS_KEY_INVALID, message)


@dataclass(frozen=True)
class Keyring:
    """Keys by id, and the id of the newest (the encrypting) key."""

    keys: dict[str, bytes]
    newest: str

    def key(self, key_id: str) -> bytes | None:
        return self.keys.get(key_id)

    @classmethod
    def parse(cls, text: str, *, source: str = "the keyring") -> "Keyring":
        keys: dict[str, bytes] = {}
        newest = ""
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            key_id, colon, encoded = line.partition(":")
            key_id = key_id.strip()
            if not colon or not KEY_ID_PATTERN.fullmatch(key_id):
                raise KeyringError(
                    f"line {number} of {source} is not '<key-id>:<base64 key>' "
                    "(key ids are 1-64 letters, digits, '.', '_' or '-')"
                )
            if key_id in keys:
                raise KeyringError(f"line {number} of {source} repeats key id '{key_id}'")
            try:
                key = base64.b64decode(encoded.strip(), validate=True)
            except binascii.Error:
                raise KeyringError(f"key '{key_id}' (line {number} of {source}) is not valid base64") from None
            if len(key) != KEY_BYTES:
                raise KeyringError(
                    f"key '{key_id}' (line {number} of {source}) is {len(key)} bytes; AES-256 keys are {KEY_BYTES}"
                )
            keys[key_id] = key
            newest = key_id
        if not keys:
            raise KeyringError(f"{source} holds no key; add a line '<key-id>:<base64 of 32 random bytes>'")
        return cls(keys=keys, newest=newest)

    @classmethod
    def load(cls, path: Path | None) -> "Keyring":
        """Read the keyring file at ``path``; raises :class:`KeyringError`."""
        if path is None:
            raise KeyringError(
                "FERRY_SECRETS_KEY_FILE is not set: the 'nats' credentials backend encrypts provider secrets "
                "with keys from that file (see docs/security.md), or set FERRY_CREDENTIALS_BACKEND=kubernetes"
            )
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise KeyringError(f"the secrets key file {path} (FERRY_SECRETS_KEY_FILE) does not exist") from None
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "it is not UTF-8 text"
            raise KeyringError(
                f"the secrets key file {path} (FERRY_SECRETS_KEY_FILE) cannot be read: {reason}"
            ) from None
        return cls.parse(text, source=f"the secrets key file {path}")


def new_key_line(key_id: str) -> str:
    """A keyring line holding a fresh random key named ``key_id``."""
    if not KEY_ID_PATTERN.fullmatch(key_id):
        raise ValueError(f"'{key_id}' is not a valid key id")
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()}\n"
