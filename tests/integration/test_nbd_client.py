"""The transfer service's NBD client against real servers: qemu-nbd and nbdkit.

Each test starts its own server process on a free loopback port (or a Unix socket) with
its own directory; nbdkit filters stand in for awkward servers (slow, failing, strict
about block sizes, without write-zeroes, plain newstyle).
"""

import asyncio
import hashlib
import os
import random
import shutil
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ferry_peers.ports import free_port
from ferry_peers.processes import ManagedProcess
from ferry_shared.pki import Authority, IssuedCertificate
from ferry_testpeers.waiting import eventually
from ferry_transfer.adapters.nbd import (
    NbdClient,
    NbdConnectionError,
    NbdError,
    NbdHandshakeError,
    NbdTls,
    NbdTlsError,
    client_context,
)

MiB = 1024 * 1024
EXPORT_SIZE = 64 * MiB

if not (shutil.which("qemu-nbd") and shutil.which("nbdkit")):
    pytest.fail("qemu-nbd and nbdkit are missing: run scripts/install-debs.sh (make peers does)", pytrace=False)


@dataclass
class NbdServer:
    process: ManagedProcess
    export_name: str
    port: int = 0
    unix_path: Path | None = None
    image: Path | None = None

    @property
    def address(self) -> str:
        return str(self.unix_path) if self.unix_path is not None else f"127.0.0.1:{self.port}"

    def connect(self, **options: Any) -> AbstractAsyncContextManager[NbdClient]:
        if self.unix_path is not None:
            return NbdClient.connect(unix_path=self.unix_path, export_name=self.export_name, **options)
        return NbdClient.connect(host="127.0.0.1", port=self.port, export_name=self.export_name, **options)


def accepting(server: NbdServer) -> bool | None:
    family = socket.AF_UNIX if server.unix_path is not None else socket.AF_INET
    target: str | tuple[str, int] = str(server.unix_path) if server.unix_path else ("127.0.0.1", server.port)
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(target)
        except OSError:
            return None
    return True


ServerFactory = Callable[..., NbdServer]


@pytest.fixture
def servers() -> Iterator[list[NbdServer]]:
    started: list[NbdServer] = []
    yield started
    for server in started:
        server.process.stop()


@pytest.fixture
def qemu_nbd(servers: list[NbdServer], tmp_path: Path) -> ServerFactory:
    """Start ``qemu-nbd`` on a new sparse raw file: ``qemu_nbd("-r", unix=True, size=...)``."""

    def start(*extra: str, unix: bool = False, size: int = EXPORT_SIZE) -> NbdServer:
        directory = tmp_path / f"qemu-nbd-{len(servers)}"
        directory.mkdir()
        image = directory / "disk.raw"
        with image.open("wb") as file:
            file.truncate(size)
        listen = ["-k", str(directory / "nbd.sock")] if unix else ["-b", "127.0.0.1", "-p", str(free_port())]
        argv = ["qemu-nbd", "-f", "raw", "-x", "export", *listen, "--persistent", "--shared=8", *extra, str(image)]
        server = NbdServer(
            ManagedProcess("qemu-nbd", argv, directory / "qemu-nbd.log"),
            "export",
            port=0 if unix else int(listen[-1]),
            unix_path=directory / "nbd.sock" if unix else None,
            image=image,
        )
        servers.append(server)
        server.process.wait_until(lambda: accepting(server), timeout=20, what="accepting connections")
        return server

    return start


@pytest.fixture
def nbdkit(servers: list[NbdServer], tmp_path: Path) -> ServerFactory:
    """Start ``nbdkit`` with a plugin and filters: ``nbdkit("--filter=delay", "memory", "64M", "delay-write=1")``."""

    def start(*args: str) -> NbdServer:
        directory = tmp_path / f"nbdkit-{len(servers)}"
        directory.mkdir()
        port = free_port()
        argv = ["nbdkit", "--foreground", "--exit-with-parent", "-i", "127.0.0.1", "-p", str(port), *args]
        server = NbdServer(ManagedProcess("nbdkit", argv, directory / "nbdkit.log"), "", port=port)
        servers.append(server)
        server.process.wait_until(lambda: accepting(server), timeout=20, what="accepting connections")
        return server

    return start


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def allocated_bytes(path: Path) -> int:
    return os.stat(path).st_blocks * 512


# Handshake


async def test_handshake_with_qemu_nbd_reports_size_flags_and_block_sizes(qemu_nbd: ServerFactory) -> None:
    server = qemu_nbd()
    async with server.connect() as nbd:
        assert nbd.size == EXPORT_SIZE
        assert nbd.structured_replies
        assert not nbd.read_only
        assert (nbd.can_flush, nbd.can_fua, nbd.can_trim, nbd.can_write_zeroes) == (True, True, True, True)
        assert nbd.can_multi_conn  # qemu-nbd offers multi-conn only with --shared > 1
        assert (nbd.block_sizes.minimum, nbd.block_sizes.preferred, nbd.block_sizes.maximum) == (1, 4096, 32 * MiB)
        assert nbd.max_payload == 32 * MiB


async def test_handshake_over_a_unix_socket(qemu_nbd: ServerFactory) -> None:
    server = qemu_nbd(unix=True, size=8 * MiB)
    async with server.connect() as nbd:
        assert nbd.size == 8 * MiB
        await nbd.pwrite(0, b"over a unix socket")
        assert await nbd.pread(0, 18) == b"over a unix socket"


async def test_handshake_with_nbdkit_uses_default_block_sizes(nbdkit: ServerFactory) -> None:
    server = nbdkit("memory", "64M")
    async with server.connect() as nbd:
        assert nbd.size == EXPORT_SIZE
        assert nbd.structured_replies
        assert nbd.can_write_zeroes and nbd.can_multi_conn
        assert (nbd.block_sizes.minimum, nbd.block_sizes.preferred, nbd.block_sizes.maximum) == (1, 4096, 32 * MiB)


async def test_unknown_export_is_refused_by_name(qemu_nbd: ServerFactory) -> None:
    server = qemu_nbd()
    with pytest.raises(NbdHandshakeError, match=r"no export named 'missing'"):
        await NbdClient.open(host="127.0.0.1", port=server.port, export_name="missing")
    async with server.connect() as nbd:  # the refusal did not upset the server
        assert nbd.size == EXPORT_SIZE


async def test_plain_newstyle_server_is_reached_with_export_name(nbdkit: ServerFactory) -> None:
    # --mask-handshake=0 hides FIXED_NEWSTYLE and NO_ZEROES: only NBD_OPT_EXPORT_NAME is
    # possible, and the server sends 124 bytes of zeroes after the export's size and flags.
    server = nbdkit("--mask-handshake=0", "memory", "64M")
    async with server.connect() as nbd:
        assert nbd.size == EXPORT_SIZE
        assert not nbd.structured_replies
        await nbd.pwrite(MiB, b"plain newstyle")
        assert await nbd.pread(MiB, 14) == b"plain newstyle"


async def test_connection_refused_names_the_address() -> None:
    port = free_port()
    with pytest.raises(NbdConnectionError, match=rf"127\.0\.0\.1:{port}"):
        await NbdClient.open(host="127.0.0.1", port=port)


# Reads and writes


@pytest.mark.parametrize("structured_replies", [True, False], ids=["structured", "simple"])
async def test_random_writes_read_back_byte_exact_from_qemu_nbd(
    qemu_nbd: ServerFactory, structured_replies: bool
) -> None:
    server = qemu_nbd()
    rng = random.Random(7)
    expected = bytearray(EXPORT_SIZE)
    async with server.connect(structured_replies=structured_replies) as nbd:
        assert nbd.structured_replies == structured_replies
        for _ in range(200):
            length = rng.randrange(1, 300_000)
            offset = rng.randrange(0, EXPORT_SIZE - length)
            data = rng.randbytes(length)
            expected[offset : offset + length] = data
            await nbd.pwrite(offset, data)
        for _ in range(50):
            length = rng.randrange(1, 2 * MiB)
            offset = rng.randrange(0, EXPORT_SIZE - length)
            assert await nbd.pread(offset, length) == expected[offset : offset + length]
        assert sha256(await nbd.pread(0, EXPORT_SIZE)) == sha256(bytes(expected))  # data and holes together
        await nbd.flush()
    assert server.image is not None
    assert sha256(server.image.read_bytes()) == sha256(bytes(expected))


@pytest.mark.parametrize("structured_replies", [True, False], ids=["structured", "simple"])
async def test_random_writes_read_back_byte_exact_from_nbdkit(nbdkit: ServerFactory, structured_replies: bool) -> None:
    server = nbdkit("memory", "64M")
    rng = random.Random(11)
    expected = bytearray(EXPORT_SIZE)
    async with server.connect(structured_replies=structured_replies) as nbd:
        for _ in range(200):
            length = rng.randrange(1, 300_000)
            offset = rng.randrange(0, EXPORT_SIZE - length)
            data = rng.randbytes(length)
            expected[offset : offset + length] = data
            await nbd.pwrite(offset, data, fua=rng.random() < 0.1)  # one at a time: they overlap
        assert sha256(await nbd.pread(0, EXPORT_SIZE)) == sha256(bytes(expected))


async def test_64_pipelined_writes_land_byte_exact(qemu_nbd: ServerFactory) -> None:
    server = qemu_nbd()
    chunk = MiB
    blocks = [random.Random(n).randbytes(chunk) for n in range(64)]
    async with server.connect(max_in_flight=64) as nbd:
        await asyncio.gather(*(nbd.pwrite(n * chunk, block) for n, block in enumerate(blocks)))
        await nbd.flush()
    assert server.image is not None
    assert sha256(server.image.read_bytes()) == sha256(b"".join(blocks))


async def test_64_requests_are_in_flight_on_one_connection_at_once(nbdkit: ServerFactory) -> None:
    server = nbdkit("--filter=delay", "memory", "64M", "delay-write=300ms")
    async with server.connect(max_in_flight=64) as nbd:
        writes = [asyncio.create_task(nbd.pwrite(n * 65536, bytes([n]) * 65536)) for n in range(64)]
        await eventually(lambda: nbd.in_flight == 64, timeout=5, what="64 writes in flight")
        async with asyncio.timeout(20):
            await asyncio.gather(*writes)
        assert nbd.in_flight == 0
        data = await nbd.pread(0, 64 * 65536)
        assert all(data[n * 65536 : (n + 1) * 65536] == bytes([n]) * 65536 for n in range(64))


async def test_writes_wait_for_a_free_slot(nbdkit: ServerFactory) -> None:
    server = nbdkit("--filter=delay", "memory", "64M", "delay-write=200ms")
    async with server.connect(max_in_flight=4) as nbd:
        writes = [asyncio.create_task(nbd.pwrite(n * 4096, b"x" * 4096)) for n in range(12)]
        await eventually(lambda: nbd.in_flight == 4, timeout=5, what="four writes in flight")
        samples: list[int] = []

        def all_done_sampling_in_flight() -> bool:
            samples.append(nbd.in_flight)
            return all(write.done() for write in writes)

        await eventually(all_done_sampling_in_flight, timeout=20, what="all writes to finish", interval=0.01)
        await asyncio.gather(*writes)
        assert max(samples) == 4


# Zeroes, trim, flush


async def test_write_zeroes_punches_a_hole_in_qemu_nbds_raw_file(qemu_nbd: ServerFactory) -> None:
    server = qemu_nbd("--discard=unmap")  # qemu-nbd's default --discard=ignore never deallocates
    assert server.image is not None
    async with server.connect() as nbd:
        await nbd.pwrite(0, random.Random(1).randbytes(16 * MiB))
        await nbd.flush()
        assert allocated_bytes(server.image) >= 16 * MiB

        await nbd.write_zeroes(0, 8 * MiB)
        await nbd.write_zeroes(8 * MiB, 8 * MiB, no_hole=True)
        await nbd.flush()
        assert await nbd.pread(0, 16 * MiB) == bytes(16 * MiB)
    # The first half was deallocated, the no_hole half stays allocated. (Not SEEK_DATA: on
    # tmpfs, qemu's punch-then-fallocate leaves allocated pages that SEEK_DATA calls a hole.)
    assert 8 * MiB <= allocated_bytes(server.image) < 12 * MiB


async def test_write_zeroes_without_server_support_writes_zero_buffers(nbdkit: ServerFactory) -> None:
    server = nbdkit("--filter=nozero", "memory", "64M", "zeromode=none")
    async with server.connect() as nbd:
        assert not nbd.can_write_zeroes
        await nbd.pwrite(0, b"\xff" * (5 * MiB))
        await nbd.write_zeroes(4096, 5 * MiB - 8192)
        data = await nbd.pread(0, 5 * MiB)
    assert data == b"\xff" * 4096 + bytes(5 * MiB - 8192) + b"\xff" * 4096


async def test_trim_and_fua_writes_on_qemu_nbd(qemu_nbd: ServerFactory) -> None:
    server = qemu_nbd("--discard=unmap")
    assert server.image is not None
    async with server.connect() as nbd:
        await nbd.pwrite(0, b"\x01" * (4 * MiB), fua=True)
        await nbd.trim(0, 4 * MiB, fua=True)
        await nbd.flush()
    assert allocated_bytes(server.image) < MiB


# Block sizes


async def test_requests_above_the_maximum_block_size_are_split(nbdkit: ServerFactory) -> None:
    # With the error policy the server fails (EINVAL) any request over 64 KiB or not
    # aligned to 512 bytes, so success means the client split and aligned.
    server = nbdkit(
        "--filter=blocksize-policy",
        "memory",
        "64M",
        "blocksize-minimum=512",
        "blocksize-preferred=4096",
        "blocksize-maximum=64K",
        "blocksize-error-policy=error",
    )
    data = random.Random(3).randbytes(3 * MiB + 512)
    async with server.connect() as nbd:
        assert (nbd.block_sizes.minimum, nbd.block_sizes.maximum, nbd.max_payload) == (512, 65536, 65536)
        await nbd.pwrite(1024, data)
        assert await nbd.pread(1024, len(data)) == data
        with pytest.raises(NbdError) as unaligned:
            await nbd.pwrite(100, b"unaligned")
        assert unaligned.value.name == "EINVAL"


async def test_writes_larger_than_qemu_nbds_32_mib_limit_are_split(qemu_nbd: ServerFactory) -> None:
    server = qemu_nbd(size=96 * MiB)
    data = random.Random(5).randbytes(80 * MiB)
    async with server.connect() as nbd:
        await nbd.pwrite(4096, data)
        assert sha256(await nbd.pread(4096, len(data))) == sha256(data)


# Errors


@pytest.mark.parametrize("structured_replies", [True, False], ids=["structured", "simple"])
@pytest.mark.parametrize("kind", ["qemu-nbd", "nbdkit"])
async def test_read_past_the_end_fails_only_that_request(
    qemu_nbd: ServerFactory, nbdkit: ServerFactory, kind: str, structured_replies: bool
) -> None:
    server = qemu_nbd() if kind == "qemu-nbd" else nbdkit("memory", "64M")
    async with server.connect(structured_replies=structured_replies) as nbd:
        await nbd.pwrite(0, b"still here")
        with pytest.raises(NbdError) as past_end:
            await nbd.pread(nbd.size - 4096, 8192)
        assert past_end.value.name == "EINVAL"
        assert await nbd.pread(0, 10) == b"still here"


@pytest.mark.parametrize("structured_replies", [True, False], ids=["structured", "simple"])
async def test_server_side_io_error_fails_only_that_request(
    nbdkit: ServerFactory, tmp_path: Path, structured_replies: bool
) -> None:
    trigger = tmp_path / "fail-reads"
    server = nbdkit(
        "--filter=error", "memory", "64M", "error-pread=EIO", "error-pread-rate=100%", f"error-file={trigger}"
    )
    async with server.connect(structured_replies=structured_replies) as nbd:
        await nbd.pwrite(0, b"data")
        trigger.touch()
        results = await asyncio.gather(*(nbd.pread(n * 4096, 4096) for n in range(8)), return_exceptions=True)
        assert all(isinstance(result, NbdError) and result.name == "EIO" for result in results), results
        trigger.unlink()
        assert await nbd.pread(0, 4) == b"data"


async def test_eshutdown_from_the_server_stops_new_requests(nbdkit: ServerFactory, tmp_path: Path) -> None:
    trigger = tmp_path / "shut-down"
    server = nbdkit(
        "--filter=error", "memory", "64M", "error-pread=ESHUTDOWN", "error-pread-rate=1", f"error-pread-file={trigger}"
    )
    async with server.connect() as nbd:
        await nbd.pread(0, 4096)
        trigger.touch()
        with pytest.raises(NbdError) as shutdown:
            await nbd.pread(0, 4096)
        assert shutdown.value.name == "ESHUTDOWN"
        with pytest.raises(NbdConnectionError, match="shutting down"):
            await nbd.pread(0, 4096)


async def test_read_only_export_refuses_writes_with_eperm(qemu_nbd: ServerFactory) -> None:
    server = qemu_nbd("-r")
    async with server.connect() as nbd:
        assert nbd.read_only
        for refused in (nbd.pwrite(0, b"no"), nbd.write_zeroes(0, 4096), nbd.trim(0, 4096)):
            with pytest.raises(NbdError) as error:
                await refused
            assert error.value.name == "EPERM"
        assert await nbd.pread(0, 4096) == bytes(4096)


async def test_killed_server_fails_outstanding_requests_promptly(nbdkit: ServerFactory) -> None:
    server = nbdkit("--filter=delay", "memory", "64M", "delay-write=60")
    async with server.connect() as nbd:
        writes = [asyncio.create_task(nbd.pwrite(n * 4096, b"w" * 4096)) for n in range(8)]
        await eventually(lambda: nbd.in_flight == 8, timeout=5, what="eight writes in flight")
        server.process.kill()
        started = time.monotonic()
        async with asyncio.timeout(5):
            results = await asyncio.gather(*writes, return_exceptions=True)
        assert time.monotonic() - started < 2
        for result in results:
            assert isinstance(result, NbdConnectionError), result
            assert server.address in str(result)
        with pytest.raises(NbdConnectionError, match="unusable"):
            await nbd.pread(0, 4096)


async def test_killing_qemu_nbd_mid_stream_fails_every_writer(qemu_nbd: ServerFactory) -> None:
    server = qemu_nbd()
    chunk = random.Random(9).randbytes(MiB)
    written = 0

    async def keep_writing(nbd: NbdClient, slot: int) -> None:
        nonlocal written
        while True:
            await nbd.pwrite((slot * MiB) % EXPORT_SIZE, chunk)
            written += len(chunk)

    async with server.connect(max_in_flight=16) as nbd:
        writers = [asyncio.create_task(keep_writing(nbd, slot)) for slot in range(16)]
        await eventually(lambda: written >= 64 * MiB, timeout=20, what="64 MiB written")
        server.process.kill()
        async with asyncio.timeout(5):
            results = await asyncio.gather(*writers, return_exceptions=True)
    assert all(isinstance(result, NbdConnectionError) for result in results), results


async def test_disconnect_waits_for_outstanding_requests_then_refuses_new_ones(nbdkit: ServerFactory) -> None:
    server = nbdkit("--filter=delay", "memory", "64M", "delay-write=200ms")
    async with server.connect() as nbd:
        pending = [asyncio.create_task(nbd.pwrite(n * MiB, bytes(MiB))) for n in range(8)]
        await eventually(lambda: nbd.in_flight == 8, timeout=5, what="eight writes in flight")
        async with asyncio.timeout(10):
            await nbd.disconnect()
        assert all(task.done() and task.exception() is None for task in pending)
        with pytest.raises(NbdConnectionError, match="closed"):
            await nbd.pread(0, 1)


# ── TLS (NBD_OPT_STARTTLS) with client certificates, as Ferry's disk sinks require ─────


@dataclass(frozen=True)
class TlsSetup:
    authority: Authority
    server_args: tuple[str, ...]
    client: NbdTls


def client_files(directory: Path, authority: Authority, issued: IssuedCertificate) -> ssl.SSLContext:
    directory.mkdir()
    for name, data in (("ca.pem", authority.cert_pem), ("cert.pem", issued.cert_pem), ("key.pem", issued.key_pem)):
        (directory / name).write_bytes(data)
    return client_context(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")


@pytest.fixture
def tls(tmp_path: Path) -> TlsSetup:
    """A CA, qemu-nbd's server credentials for ``sink.test`` (verify-peer on), a client identity."""
    authority = Authority.create("test NBD CA")
    server = authority.issue("sink", server_names=["sink.test"])
    creds = tmp_path / "server-creds"
    creds.mkdir()
    files = {"ca-cert.pem": authority.cert_pem, "server-cert.pem": server.cert_pem, "server-key.pem": server.key_pem}
    for name, data in files.items():
        (creds / name).write_bytes(data)
    args = ("--object", f"tls-creds-x509,id=tls0,dir={creds},endpoint=server,verify-peer=on", "--tls-creds=tls0")
    client = client_files(tmp_path / "client", authority, authority.issue("transfer", client=True))
    return TlsSetup(authority, args, NbdTls(client, "sink.test"))


async def test_tls_with_a_client_certificate_from_the_ca_reads_and_writes(
    qemu_nbd: ServerFactory, tls: TlsSetup
) -> None:
    server = qemu_nbd(*tls.server_args)
    payload = os.urandom(256 * 1024)
    async with server.connect(tls=tls.client) as nbd:
        assert nbd.size == EXPORT_SIZE and nbd.structured_replies
        await nbd.pwrite(MiB, payload)
        await nbd.flush()
        assert await nbd.pread(MiB, len(payload)) == payload
    assert server.image is not None
    with server.image.open("rb") as image:
        image.seek(MiB)
        assert image.read(len(payload)) == payload


async def test_a_tls_only_server_refuses_a_plain_client(qemu_nbd: ServerFactory, tls: TlsSetup) -> None:
    server = qemu_nbd(*tls.server_args)
    with pytest.raises(NbdTlsError, match="requires TLS, and this client was not given TLS credentials"):
        async with server.connect():
            pass


async def test_a_client_certificate_from_another_ca_is_refused(
    qemu_nbd: ServerFactory, tls: TlsSetup, tmp_path: Path
) -> None:
    server = qemu_nbd(*tls.server_args)
    impostor = Authority.create("someone else's CA")
    context = client_files(tmp_path / "impostor", tls.authority, impostor.issue("intruder", client=True))
    with pytest.raises(NbdTlsError, match="did not accept this client's certificate"):
        async with server.connect(tls=NbdTls(context, "sink.test")):
            pass
    assert server.image is not None and not any(server.image.read_bytes()[: 64 * 1024])


async def test_a_server_certificate_for_another_name_or_another_ca_is_refused(
    qemu_nbd: ServerFactory, tls: TlsSetup, tmp_path: Path
) -> None:
    server = qemu_nbd(*tls.server_args)
    with pytest.raises(NbdTlsError, match="CERTIFICATE_VERIFY_FAILED"):
        async with server.connect(tls=NbdTls(tls.client.context, "another-sink.test")):
            pass
    other = Authority.create("another CA")
    context = client_files(tmp_path / "other-ca", other, other.issue("transfer", client=True))
    with pytest.raises(NbdTlsError, match="CERTIFICATE_VERIFY_FAILED"):
        async with server.connect(tls=NbdTls(context, "sink.test")):
            pass


async def test_a_server_without_tls_is_refused_when_tls_is_asked(qemu_nbd: ServerFactory, tls: TlsSetup) -> None:
    server = qemu_nbd()
    with pytest.raises(NbdTlsError, match="does not offer TLS"):
        async with server.connect(tls=tls.client):
            pass
