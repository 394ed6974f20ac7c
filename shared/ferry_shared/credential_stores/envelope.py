"""The sealed form of a provider secret in the ``nats`` backend: AES-256-GCM under a
keyring key, with the provider's name as associated data, so a ciphertext copied to
another provider's key in the bucket does not open. Pure.

The envelope is JSON, versioned by its ``format``::

    {"format": "ferry.dev/credential/v1", "key": "<key id>", "nonce": "<b64>", "sealed": "<b64>"}

``nonce`` is 96 random bits per sealing; ``sealed`` is the ciphertext with its tag.
"""

import base64
import binascii
import json
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ferry_shared.credential_stores.keyring import Keyring
from ferry_shared.credentials import CredentialsUnreadableError, Secret

FORMAT = "ferry.dev/credential/v1"
NONCE_BYTES = 12


@dataclass(frozen=True)
class Envelope:
    """A parsed envelope (still sealed)."""

    key_id: str
    nonce: bytes
    sealed: bytes


def _associated_data(provider: str) -> bytes:
    return f"{FORMAT}\nprovider={provider}".encode()


def seal(keyring: Keyring, provider: str, secret: Secret) -> bytes:
    """``secret`` encrypted under the keyring's newest key, bound to ``provider``."""
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(keyring.keys[keyring.newest]).encrypt(nonce, secret.reveal().encode(), _associated_data(provider))
    document = {
        "format": FORMAT,
        "key": keyring.newest,
        "nonce": base64.b64encode(nonce).decode(),
        "sealed": base64.b64encode(sealed).decode(),
    }
    return json.dumps(document, separators=(",", ":")).encode()


def parse(data: bytes) -> Envelope | None:
    """The envelope in ``data``; None when ``data`` is not one (a plaintext value stored
    by a version of Ferry that did not encrypt)."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        return None
    try:
        return Envelope(
            key_id=str(document["key"]),
            nonce=base64.b64decode(document["nonce"], validate=True),
            sealed=base64.b64decode(document["sealed"], validate=True),
        )
    except (KeyError, TypeError, binascii.Error):
        return Envelope(key_id=str(document.get("key", "")), nonce=b"", sealed=b"")  # fails to open, clearly


def open_envelope(keyring: Keyring, provider: str, envelope: Envelope) -> Secret:
    """The secret in ``envelope``; raises :class:`CredentialsUnreadableError` when the key is
    not in the keyring or the envelope does not open for ``provider``."""
    key = keyring.key(envelope.key_id)
    if key is None:
        raise CredentialsUnreadableError(
            provider,
            f"it is encrypted with key '{envelope.key_id}', which is not in the secrets key file "
            f"(its keys: {', '.join(sorted(keyring.keys))}); restore that key or store the secret again "
            "with `ferry provider update`",
        )
    if len(envelope.nonce) != NONCE_BYTES:
        raise CredentialsUnreadableError(provider, "the stored envelope is malformed")
    try:
        plain = AESGCM(key).decrypt(envelope.nonce, envelope.sealed, _associated_data(provider))
    except InvalidTag:
        raise CredentialsUnreadableError(
            provider, f"it does not decrypt with key '{envelope.key_id}' (altered, or stored for another provider)"
        ) from None
    try:
        return Secret(plain.decode())
    except UnicodeDecodeError:
        raise CredentialsUnreadableError(provider, "the decrypted value is not UTF-8 text") from None
