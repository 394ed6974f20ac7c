"""DatastoreReader against ferry-vcsim's datastore endpoint: exact bytes, trust, failures and connections.

The simulator serves a deterministic flat file (``path_on_disk`` is the reference); its
control API injects HTTP faults, caps each connection's bandwidth and counts connections.
"""

import asyncio
import http.server
import ssl
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pyVim.connect import Disconnect, SmartConnect

from ferry_peers.vcsim import Vcsim
from ferry_testpeers.plugin import VcsimFactory
from ferry_testpeers.waiting import async_wait_for
from ferry_transfer.adapters.datastore import DatastoreReader, flat_file_url
from ferry_transfer.domain.errors import SourceReadError

pytestmark = pytest.mark.vsphere

MiB = 1024 * 1024
SIZE = 8 * MiB
MODEL = {
    "datacenters": [
        {
            "name": "DC0",
            "datastores": [{"name": "LocalDS_0"}],
            "clusters": [{"name": "C0", "hosts": [{"name": "H0"}]}],
            "vms": [{"name": "dense", "disks": [{"capacity": SIZE, "content": {"kind": "random", "seed": 5}}]}],
        }
    ]
}
WRONG_PIN = ":".join(["AB"] * 32)


@dataclass
class Datastore:
    simulator: Vcsim
    cookie: str
    url: str
    content: bytes

    @property
    def cookie_value(self) -> str:
        return self.cookie.split(";", 1)[0].split("=", 1)[1].strip('"')

    def reader(self, url: str | None = None, **options: Any) -> DatastoreReader:
        options.setdefault("ca_bundle", self.simulator.certificate_path)
        return DatastoreReader(url or self.url, session_cookie=self.cookie, **options)

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        answer = httpx.request(method, f"{self.simulator.control_url}{path}", json=body, timeout=10)
        answer.raise_for_status()
        return answer.json()

    def folder_connections(self) -> int:
        return int(self.control("GET", "/stats")["folder_connections"])

    def bytes_sent(self) -> int:
        return int(self.control("GET", "/stats")["folder_bytes_sent"])

    def assert_secret_free(self, error: BaseException) -> None:
        """Neither the error, nor its causes, nor its traceback text show the session cookie."""
        text = "".join(traceback.format_exception(error)) + repr(error) + repr(error.__cause__)
        assert self.cookie_value not in text


@pytest.fixture
def datastore(vcsim_factory: VcsimFactory) -> Iterator[Datastore]:
    simulator = vcsim_factory(model=MODEL)
    host, port = simulator.host.split(":")
    context = ssl.create_default_context(cafile=str(simulator.certificate_path))
    si = SmartConnect(host=host, port=int(port), user=simulator.username, pwd=simulator.password, sslContext=context)
    try:
        info = httpx.get(f"{simulator.control_url}/vms/dense").json()["disks"][0]
        url = flat_file_url(simulator.host, info["file"], "DC0")
        yield Datastore(simulator, si._stub.cookie, url, Path(info["path_on_disk"]).read_bytes())
    finally:
        Disconnect(si)
        si._stub.DropConnections()


ODD_RANGES = [(0, 1), (1, 4095), (12345, 3 * MiB + 7), (5 * MiB + 3, MiB), (SIZE - 777, 777), (SIZE - 1, 1)]


async def test_ranges_at_odd_offsets_and_lengths_are_exact_on_a_few_keep_alive_connections(
    datastore: Datastore,
) -> None:
    before = datastore.folder_connections()
    async with datastore.reader(connections=2) as reader:
        bodies = await asyncio.gather(*(reader.read(offset, length) for offset, length in ODD_RANGES * 2))
        buffers = [bytearray(length) for _, length in ODD_RANGES]
        await asyncio.gather(*(reader.read_into(o, b) for (o, _), b in zip(ODD_RANGES, buffers, strict=True)))
    for (offset, length), body in zip(ODD_RANGES * 2, bodies, strict=True):
        assert type(body) is bytes
        assert body == datastore.content[offset : offset + length]
    for (offset, length), buffer in zip(ODD_RANGES, buffers, strict=True):
        assert buffer == datastore.content[offset : offset + length]
    assert 1 <= datastore.folder_connections() - before <= 2  # 18 reads, at most 2 connections, kept alive


async def test_a_range_beyond_the_end_of_the_disk_is_a_clear_permanent_error(datastore: Datastore) -> None:
    async with datastore.reader() as reader:
        with pytest.raises(SourceReadError) as caught:
            await reader.read(SIZE, 4096)
    assert caught.value.status == 416 and not caught.value.retryable
    assert "beyond the end of the file" in caught.value.message


async def test_a_pinned_thumbprint_is_checked_before_reading(datastore: Datastore) -> None:
    unverified = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    async with datastore.reader(ssl_context=unverified, pinned_thumbprint=WRONG_PIN) as reader:
        with pytest.raises(SourceReadError) as caught:
            await reader.read(0, 4096)
    error = caught.value
    assert error.code == "thumbprint_mismatch" and not error.retryable
    assert datastore.simulator.thumbprint_sha256 in error.message and WRONG_PIN in error.message
    datastore.assert_secret_free(error)
    pinned = datastore.simulator.thumbprint_sha256
    async with datastore.reader(ssl_context=unverified, pinned_thumbprint=pinned) as reader:
        assert await reader.read(100, 200) == datastore.content[100:300]


async def test_an_untrusted_certificate_is_a_permanent_error(datastore: Datastore) -> None:
    async with datastore.reader(ca_bundle=None) as reader:  # the system's CAs do not know the simulator's
        with pytest.raises(SourceReadError) as caught:
            await reader.read(0, 4096)
    assert caught.value.code == "certificate_untrusted" and not caught.value.retryable


async def test_a_missing_disk_is_disk_not_found(datastore: Datastore) -> None:
    missing = flat_file_url(datastore.simulator.host, "[LocalDS_0] dense/nothing.vmdk", "DC0")
    async with datastore.reader(missing) as reader:
        with pytest.raises(SourceReadError) as caught:
            await reader.read(0, 4096)
    error = caught.value
    assert (error.code, error.status, error.retryable) == ("disk_not_found", 404, False)
    assert "nothing-flat.vmdk" in error.message
    datastore.assert_secret_free(error)


@pytest.mark.parametrize(
    ("rule", "code", "status", "retryable", "says"),
    [
        ({"status": 401}, "datastore_access_denied", 401, False, "log in again"),
        ({"status": 403}, "datastore_access_denied", 403, False, "Datastore.Browse"),
        ({"status": 503}, "source_read_failed", 503, True, "retry later"),
        ({"drop_after": 65536}, "source_read_failed", 206, True, "the connection was cut"),
        ({"drop": True}, "source_read_failed", None, True, "RemoteDisconnected"),
    ],
    ids=["401", "403", "503", "drop-after-64KiB", "drop"],
)
async def test_a_failed_read_says_why_and_whether_to_retry_and_the_reader_recovers(
    datastore: Datastore, rule: dict[str, Any], code: str, status: int | None, retryable: bool, says: str
) -> None:
    datastore.control("POST", "/faults", {"path": "dense-flat.vmdk", "times": 1, **rule})
    async with datastore.reader() as reader:
        with pytest.raises(SourceReadError) as caught:
            await reader.read(MiB, 2 * MiB)
        assert await reader.read(MiB, 2 * MiB) == datastore.content[MiB : 3 * MiB]
    error = caught.value
    assert (error.code, error.status, error.retryable) == (code, status, retryable)
    assert says in error.message and "dense-flat.vmdk" in error.message
    assert datastore.control("GET", "/faults")[0]["fired"] == 1
    datastore.assert_secret_free(error)


async def test_a_keep_alive_connection_dropped_while_idle_is_replaced_without_an_error(datastore: Datastore) -> None:
    async with datastore.reader(connections=1) as reader:
        assert await reader.read(0, 4096) == datastore.content[:4096]
        datastore.control("POST", "/faults", {"path": "dense-flat.vmdk", "drop": True, "times": 1})
        assert await reader.read(4096, 4096) == datastore.content[4096:8192]
    assert datastore.control("GET", "/faults")[0]["fired"] == 1


async def test_a_host_that_does_not_answer_in_time_is_a_retryable_error(datastore: Datastore) -> None:
    datastore.control("POST", "/faults", {"path": "dense-flat.vmdk", "delay_ms": 1000, "times": 1})
    async with datastore.reader(timeout=0.3) as reader:
        started = time.monotonic()
        with pytest.raises(SourceReadError) as caught:
            await reader.read(0, 4096)
        assert time.monotonic() - started < 0.9
        assert await reader.read(0, 4096) == datastore.content[:4096]
    assert caught.value.retryable and "timed out" in caught.value.message


async def test_connections_read_in_parallel_under_a_per_connection_cap(datastore: Datastore) -> None:
    datastore.control("PUT", "/bandwidth", {"bytes_per_second": 4 * MiB})
    ranges = [(offset, 2 * MiB) for offset in range(0, SIZE, 2 * MiB)]
    async with datastore.reader(connections=4) as reader:
        started = time.monotonic()
        bodies = await asyncio.gather(*(reader.read(offset, length) for offset, length in ranges))
        elapsed = time.monotonic() - started
    assert b"".join(bodies) == datastore.content
    # one connection needs ~1.9 s for 8 MiB at 4 MiB/s (less its burst); four share the work
    assert elapsed < 1.2, f"4 connections took {elapsed:.2f}s for 8 MiB at 4 MiB/s each"


async def test_a_cancelled_read_stops_at_once_and_closing_cuts_reads_in_flight(datastore: Datastore) -> None:
    datastore.control("PUT", "/bandwidth", {"bytes_per_second": MiB})  # a whole-disk read takes 8 s

    async def sending_more_than(sent: int) -> bool:
        return await asyncio.to_thread(lambda: datastore.bytes_sent() > sent)

    async with datastore.reader(connections=1) as reader:
        sent = datastore.bytes_sent()
        slow = asyncio.create_task(reader.read_into(0, bytearray(SIZE)))
        await async_wait_for(lambda: sending_more_than(sent), timeout=10, what="the slow read to start")
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        assert reader.reads_in_flight == 0  # its thread let go of the buffer before the cancellation returned
        # the only connection is free at once: the cancelled read does not go on in its thread
        tail = await asyncio.wait_for(reader.read(SIZE - 4096, 4096), timeout=3)
        assert tail == datastore.content[-4096:]
        sent = datastore.bytes_sent()
        in_flight = asyncio.create_task(reader.read(0, SIZE))
        await async_wait_for(lambda: sending_more_than(sent), timeout=10, what="the second read to start")
        started = time.monotonic()
        await reader.aclose()
        assert time.monotonic() - started < 2
        with pytest.raises(SourceReadError) as caught:
            await in_flight
        assert caught.value.retryable
        with pytest.raises(SourceReadError, match="closed"):
            await reader.read(0, 1)


class _RecordingHandler(http.server.BaseHTTPRequestHandler):
    """Serves ranges of ``server.content`` and records each request's Cookie header."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        server: Any = self.server
        server.cookies.append(self.headers.get("Cookie"))
        first, last = (int(n) for n in self.headers["Range"].removeprefix("bytes=").split("-"))
        body = server.content[first : last + 1]
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {first}-{last}/{len(server.content)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


async def test_the_session_cookie_is_sent_and_can_be_replaced() -> None:
    server: Any = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RecordingHandler)
    server.content, server.cookies = bytes(range(256)) * 16, []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/folder/vm/vm-flat.vmdk?dcPath=DC0&dsName=ds"
        async with DatastoreReader(url, session_cookie='vmware_soap_session="one"; Path=/; HttpOnly') as reader:
            assert await reader.read(10, 20) == server.content[10:30]
            reader.set_session_cookie("two")
            assert await reader.read(0, 4096) == server.content
    finally:
        server.shutdown()
        server.server_close()
    assert server.cookies == ['vmware_soap_session="one"', "vmware_soap_session=two"]
