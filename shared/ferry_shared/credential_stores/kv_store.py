"""The ``nats`` credentials backend: each provider's secret sealed (see :mod:`.envelope`)
before it is put in the ``ferry_credentials`` KV bucket under the provider's name, so the
bucket, the JetStream block files and every NATS replica hold only ciphertext.

:meth:`EncryptedKvStore.reseal_all` is the rotation: the planner calls it at start, and it
seals again, under the keyring's newest key, every secret sealed under an older key (and
any plaintext value an earlier version of Ferry stored). A deleted provider's secret is
purged from the bucket (no history kept).
"""

import logging

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue

from ferry_shared.credential_stores.envelope import open_envelope, parse, seal
from ferry_shared.credential_stores.keyring import Keyring
from ferry_shared.credentials import CredentialsUnreadableError, Secret

log = logging.getLogger(__name__)


class EncryptedKvStore:
    """A :class:`~ferry_shared.credentials.CredentialStore` over a KV bucket, AES-GCM sealed."""

    def __init__(self, kv: KeyValue, keyring: Keyring) -> None:
        self._kv = kv
        self._keyring = keyring

    async def put(self, provider: str, secret: Secret) -> None:
        await self._kv.put(provider, seal(self._keyring, provider, secret))

    async def get(self, provider: str) -> Secret | None:
        try:
            entry = await self._kv.get(provider)
        except KeyNotFoundError:
            return None
        if not entry.value:
            return None
        envelope = parse(entry.value)
        if envelope is None:
            raise CredentialsUnreadableError(
                provider,
                "it is stored unencrypted; restart the planner (which encrypts it) or store it again "
                "with `ferry provider update`",
            )
        return open_envelope(self._keyring, provider, envelope)

    async def delete(self, provider: str) -> None:
        await self._kv.purge(provider)

    async def reseal_all(self) -> int:
        """Seal again under the newest key every stored secret that is not sealed under it
        (or not sealed at all); returns how many were. A secret that no key of the keyring
        opens is left as it is (and logged, without its value): its provider reports
        ``credentials_unreadable`` until it is added again."""
        try:
            providers = await self._kv.keys()
        except NoKeysError:
            return 0
        resealed = 0
        for provider in providers:
            try:
                entry = await self._kv.get(provider)
            except KeyNotFoundError:
                continue
            if not entry.value or entry.revision is None:
                continue
            envelope = parse(entry.value)
            if envelope is not None and envelope.key_id == self._keyring.newest:
                continue
            try:
                secret = open_envelope(self._keyring, provider, envelope) if envelope else Secret(entry.value.decode())
            except (CredentialsUnreadableError, UnicodeDecodeError) as error:
                log.error("cannot re-encrypt: %s", error if isinstance(error, CredentialsUnreadableError) else provider)
                continue
            try:
                await self._kv.update(provider, seal(self._keyring, provider, secret), last=entry.revision)
            except KeyWrongLastSequenceError:
                continue  # written meanwhile (by a planner that seals with the newest key)
            resealed += 1
        if resealed:
            log.info("re-encrypted %d provider secret(s) under key '%s'", resealed, self._keyring.newest)
        return resealed
