"""The bus refuses what an identity may not do, against a real nats-server."""

import asyncio
from pathlib import Path

import nats.errors
import pytest
from nats.aio.msg import Msg

from ferry_peers.nats_server import NatsServer
from ferry_shared import subjects
from ferry_shared.bus.connection import NatsAuthenticationError, connect
from ferry_shared.bus.permissions import ADMIN, inbox_prefix
from ferry_shared.bus.topology import ensure_kv, ensure_topology
from ferry_shared.migrations import CleanupVm, CopyRange
from ferry_shared.pki import Authority

pytestmark = pytest.mark.nats


async def test_a_client_without_an_identity_is_refused(nats_server: NatsServer) -> None:
    with pytest.raises(NatsAuthenticationError, match="FERRY_NATS_CREDS_FILE"):
        await connect(nats_server.url, name="anonymous", ca_file=nats_server.security.nats_ca_file)


async def test_a_plain_text_client_is_refused(nats_server: NatsServer) -> None:
    host, port = nats_server.url.removeprefix("tls://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    info = await reader.readline()
    assert b'"tls_required":true' in info
    writer.write(b'CONNECT {"verbose":false}\r\nPING\r\n')
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    assert b"PONG" not in answer


async def test_a_client_trusting_another_ca_is_refused(nats_server: NatsServer, tmp_path: Path) -> None:
    other = tmp_path / "other-ca.pem"
    other.write_bytes(Authority.create("another CA").cert_pem)
    options = {**nats_server.connect_options(ADMIN), "ca_file": other}
    with pytest.raises(NatsAuthenticationError, match="CERTIFICATE_VERIFY_FAILED"):
        await asyncio.wait_for(connect(nats_server.url, name="wrong-ca", **options), timeout=10)


async def _published_is_refused(nats_server: NatsServer, identity: str, subject: str) -> None:
    admin = await connect(nats_server.url, name="admin", **nats_server.connect_options(ADMIN))
    await ensure_topology(admin.jetstream())
    before = (await admin.jetstream().stream_info(subjects.COMMANDS_STREAM)).state.messages
    client = await connect(nats_server.url, name=identity, **nats_server.connect_options(identity))
    try:
        with pytest.raises((nats.errors.Error, TimeoutError)):
            await client.jetstream().publish(subject, b"{}", timeout=2)
        after = (await admin.jetstream().stream_info(subjects.COMMANDS_STREAM)).state.messages
        assert after == before
    finally:
        await client.close()
        await admin.close()


async def test_the_transfer_cannot_command_the_writer(nats_server: NatsServer) -> None:
    await _published_is_refused(nats_server, subjects.TRANSFER, CleanupVm.subject)


@pytest.mark.parametrize("identity", [subjects.PLANNER, subjects.INVENTORY, subjects.KUBEVIRT_WRITER])
async def test_only_the_transfer_sends_copy_ranges(nats_server: NatsServer, identity: str) -> None:
    await _published_is_refused(nats_server, identity, CopyRange.subject)


async def test_a_kv_value_is_not_stored_in_plain_text(nats_server: NatsServer) -> None:
    admin = await connect(nats_server.url, name="admin", **nats_server.connect_options(ADMIN))
    kv = await admin.jetstream().create_key_value(bucket="cipher_check")
    marker = b"a-value-that-must-not-be-readable-on-disk"
    await kv.put("key", marker)
    await admin.drain()
    files = [path for path in nats_server.store_dir.rglob("*") if path.is_file()]
    assert files
    assert not any(marker in path.read_bytes() for path in files)


async def test_the_transfer_cannot_reach_the_credentials_bucket(nats_server: NatsServer) -> None:
    admin = await connect(nats_server.url, name="admin", **nats_server.connect_options(ADMIN))
    await (await ensure_kv(admin.jetstream(), subjects.CREDENTIALS_BUCKET)).put("vc", b"password")
    transfer = await connect(nats_server.url, name="transfer", **nats_server.connect_options(subjects.TRANSFER))
    received: list[bytes] = []
    try:
        with pytest.raises((nats.errors.Error, TimeoutError)):
            await transfer.jetstream().key_value(subjects.CREDENTIALS_BUCKET)
        with pytest.raises((nats.errors.Error, TimeoutError)):
            await transfer.jetstream().get_last_msg(
                f"KV_{subjects.CREDENTIALS_BUCKET}", f"$KV.{subjects.CREDENTIALS_BUCKET}.vc"
            )

        async def collect(msg: Msg) -> None:
            received.append(msg.data)

        arrived = asyncio.Event()

        async def sentinel(msg: Msg) -> None:
            arrived.set()

        await transfer.subscribe(f"$KV.{subjects.CREDENTIALS_BUCKET}.>", cb=collect)
        sentinel_subject = f"{inbox_prefix(subjects.TRANSFER)}.sentinel"
        await transfer.subscribe(sentinel_subject, cb=sentinel)
        await transfer.flush()
        await (await ensure_kv(admin.jetstream(), subjects.CREDENTIALS_BUCKET)).put("vc", b"password-2")
        await admin.publish(sentinel_subject, b"after the put")  # delivered in order after the put's message
        await asyncio.wait_for(arrived.wait(), timeout=10)
        assert received == []
    finally:
        await transfer.close()
        await admin.close()
