"""The ``nats`` credentials backend's sealing: the keyring file, the AES-GCM envelope bound
to its provider, and the planner's re-encryption under a new key (rotation), over a small
in-memory KV bucket."""

import base64
import json
from pathlib import Path
from typing import cast

import pytest
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue

from ferry_shared.credential_stores.envelope import open_envelope, parse, seal
from ferry_shared.credential_stores.keyring import Keyring, KeyringError, new_key_line
from ferry_shared.credential_stores.kv_store import EncryptedKvStore
from ferry_shared.credentials import CREDENTIALS_UNREADABLE, CredentialsUnreadableError, Secret

PASSWORD = "Tr0ub4dor&3-unit"


class FakeEntry:
    def __init__(self, key: str, value: bytes, revision: int) -> None:
        self.key, self.value, self.revision = key, value, revision


class FakeKv:
    """The few KeyValue calls the store makes, with revisions."""

    def __init__(self) -> None:
        self.entries: dict[str, FakeEntry] = {}
        self.revision = 0

    async def put(self, key: str, value: bytes) -> int:
        self.revision += 1
        self.entries[key] = FakeEntry(key, value, self.revision)
        return self.revision

    async def get(self, key: str) -> FakeEntry:
        if key not in self.entries:
            raise KeyNotFoundError
        return self.entries[key]

    async def update(self, key: str, value: bytes, last: int) -> int:
        if self.entries[key].revision != last:
            raise KeyWrongLastSequenceError
        return await self.put(key, value)

    async def keys(self) -> list[str]:
        if not self.entries:
            raise NoKeysError
        return list(self.entries)

    async def purge(self, key: str) -> bool:
        self.entries.pop(key, None)
        return True


def keyring(*ids: str) -> Keyring:
    return Keyring.parse("".join(new_key_line(key_id) for key_id in ids))


def store(kv: FakeKv, ring: Keyring) -> EncryptedKvStore:
    return EncryptedKvStore(cast(KeyValue, kv), ring)


def test_a_sealed_secret_opens_for_its_provider_and_shows_no_plaintext() -> None:
    ring = keyring("k1")
    sealed = seal(ring, "vcenter", Secret(PASSWORD))
    assert PASSWORD.encode() not in sealed
    assert base64.b64encode(PASSWORD.encode()) not in sealed
    document = json.loads(sealed)
    assert document["format"] == "ferry.dev/credential/v1" and document["key"] == "k1"
    envelope = parse(sealed)
    assert envelope is not None
    assert open_envelope(ring, "vcenter", envelope).reveal() == PASSWORD
    assert seal(ring, "vcenter", Secret(PASSWORD)) != sealed, "every sealing takes a fresh nonce"


def test_a_secret_sealed_for_one_provider_does_not_open_for_another() -> None:
    ring = keyring("k1")
    envelope = parse(seal(ring, "vcenter-a", Secret(PASSWORD)))
    assert envelope is not None
    with pytest.raises(CredentialsUnreadableError) as raised:
        open_envelope(ring, "vcenter-b", envelope)
    assert raised.value.code == CREDENTIALS_UNREADABLE
    assert "vcenter-b" in raised.value.message and PASSWORD not in str(raised.value)


def test_a_tampered_envelope_does_not_open() -> None:
    ring = keyring("k1")
    document = json.loads(seal(ring, "vcenter", Secret(PASSWORD)))
    sealed = bytearray(base64.b64decode(document["sealed"]))
    sealed[0] ^= 0x01
    document["sealed"] = base64.b64encode(bytes(sealed)).decode()
    envelope = parse(json.dumps(document).encode())
    assert envelope is not None
    with pytest.raises(CredentialsUnreadableError, match="altered"):
        open_envelope(ring, "vcenter", envelope)


def test_a_key_id_missing_from_the_keyring_is_named_in_the_error() -> None:
    envelope = parse(seal(keyring("old"), "vcenter", Secret(PASSWORD)))
    assert envelope is not None
    with pytest.raises(CredentialsUnreadableError, match="key 'old', which is not in the secrets key file"):
        open_envelope(keyring("new"), "vcenter", envelope)


def test_the_last_key_of_the_file_encrypts(tmp_path: Path) -> None:
    path = tmp_path / "keyring"
    path.write_text("# comment\n\n" + new_key_line("k1") + new_key_line("k2"))
    ring = Keyring.load(path)
    assert ring.newest == "k2" and set(ring.keys) == {"k1", "k2"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "holds no key"),
        ("k1 " + base64.b64encode(bytes(32)).decode(), "is not '<key-id>:<base64 key>'"),
        ("k1:not base64!", "is not valid base64"),
        ("k1:" + base64.b64encode(bytes(16)).decode(), "is 16 bytes; AES-256 keys are 32"),
        (new_key_line("k1") + new_key_line("k1"), "repeats key id 'k1'"),
    ],
)
def test_a_malformed_keyring_is_a_clear_error_that_quotes_no_key(text: str, message: str) -> None:
    with pytest.raises(KeyringError, match=message) as raised:
        Keyring.parse(text)
    assert raised.value.code == "secrets_key_invalid"
    assert base64.b64encode(bytes(32)).decode() not in str(raised.value)


def test_a_missing_or_unset_key_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KeyringError, match="does not exist"):
        Keyring.load(tmp_path / "absent")
    with pytest.raises(KeyringError, match="FERRY_SECRETS_KEY_FILE is not set"):
        Keyring.load(None)


async def test_the_store_keeps_only_ciphertext_and_purges_on_delete() -> None:
    kv = FakeKv()
    credentials = store(kv, keyring("k1"))
    await credentials.put("vcenter", Secret(PASSWORD))
    assert PASSWORD.encode() not in kv.entries["vcenter"].value
    assert await credentials.get("vcenter") == Secret(PASSWORD)
    await credentials.delete("vcenter")
    assert "vcenter" not in kv.entries
    assert await credentials.get("vcenter") is None


async def test_a_value_moved_to_another_providers_key_is_unreadable() -> None:
    kv = FakeKv()
    credentials = store(kv, keyring("k1"))
    await credentials.put("a", Secret(PASSWORD))
    await kv.put("b", kv.entries["a"].value)
    with pytest.raises(CredentialsUnreadableError, match="provider 'b'"):
        await credentials.get("b")


async def test_rotation_seals_every_secret_under_the_new_key_so_the_old_one_can_go(tmp_path: Path) -> None:
    old_line, new_line = new_key_line("k1"), new_key_line("k2")
    kv = FakeKv()
    await store(kv, Keyring.parse(old_line)).put("vcenter", Secret(PASSWORD))
    await store(kv, Keyring.parse(old_line)).put("cluster", Secret("kubeconfig text"))
    await kv.put("legacy", b"stored in plaintext by an earlier version")

    rotated = store(kv, Keyring.parse(old_line + new_line))  # a new key appended, the planner restarted
    assert await rotated.reseal_all() == 3
    assert {json.loads(entry.value)["key"] for entry in kv.entries.values()} == {"k2"}
    assert await rotated.reseal_all() == 0, "a second start has nothing left to do"

    only_new = store(kv, Keyring.parse(new_line))  # the old key removed
    assert await only_new.get("vcenter") == Secret(PASSWORD)
    assert await only_new.get("cluster") == Secret("kubeconfig text")
    assert await only_new.get("legacy") == Secret("stored in plaintext by an earlier version")
    with pytest.raises(CredentialsUnreadableError, match="key 'k2'"):
        await store(kv, Keyring.parse(old_line)).get("vcenter")


async def test_rotation_leaves_a_secret_no_key_opens_and_readers_refuse_plaintext() -> None:
    kv = FakeKv()
    await store(kv, keyring("lost")).put("vcenter", Secret(PASSWORD))
    await kv.put("legacy", b"plain")
    reader = store(kv, keyring("k1"))
    with pytest.raises(CredentialsUnreadableError, match="stored unencrypted"):
        await reader.get("legacy")
    assert await reader.reseal_all() == 1  # the plaintext one; the one sealed with the lost key stays
    assert json.loads(kv.entries["vcenter"].value)["key"] == "lost"
