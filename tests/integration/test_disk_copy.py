"""The copy pipeline end to end: ferry-vcsim's datastore over HTTPS into a raw file or qemu-nbd.

The simulator's flat files hold documented deterministic content, so each test compares the
target with the file the simulator serves (``path_on_disk``).
"""

import os
import shutil
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pyVim.connect import Disconnect, SmartConnect

from ferry_peers.ports import free_port
from ferry_peers.processes import ManagedProcess
from ferry_peers.vcsim import Vcsim
from ferry_testpeers.plugin import VcsimFactory
from ferry_transfer.adapters.copier import CopyResult, copy_disk
from ferry_transfer.adapters.datastore import DatastoreReader, flat_file_url
from ferry_transfer.adapters.nbd import NbdClient
from ferry_transfer.adapters.sinks import NbdSink, RawFileSink
from ferry_transfer.domain.errors import SourceReadError
from ferry_transfer.domain.ranges import Extent

pytestmark = pytest.mark.vsphere

MiB = 1024 * 1024
SPARSE_EXTENTS = [(0, MiB), (10 * MiB, 3 * MiB), (40 * MiB + 4096, 100 * 1024)]
MODEL = {
    "datacenters": [
        {
            "name": "DC0",
            "datastores": [{"name": "LocalDS_0"}],
            "clusters": [{"name": "C0", "hosts": [{"name": "H0"}]}],
            "vms": [
                {
                    "name": "sparse",
                    "disks": [
                        {
                            "capacity": "64MiB",
                            "content": {
                                "kind": "extents",
                                "seed": 7,
                                "extents": [{"offset": o, "length": n} for o, n in SPARSE_EXTENTS],
                            },
                        }
                    ],
                },
                {"name": "dense", "disks": [{"capacity": "32MiB", "content": {"kind": "random", "seed": 3}}]},
            ],
        }
    ]
}


@dataclass
class SourceDisk:
    url: str
    path_on_disk: Path
    size: int


@dataclass
class Session:
    simulator: Vcsim
    cookie: str

    def disk(self, vm: str) -> SourceDisk:
        info = httpx.get(f"{self.simulator.control_url}/vms/{vm}").json()["disks"][0]
        url = flat_file_url(self.simulator.host, info["file"], "DC0")
        return SourceDisk(url, Path(info["path_on_disk"]), info["capacity"])

    def inject_fault(self, rule: dict[str, Any]) -> None:
        httpx.post(f"{self.simulator.control_url}/faults", json=rule).raise_for_status()

    def reader(self, disk: SourceDisk, **options: Any) -> DatastoreReader:
        return DatastoreReader(
            disk.url, session_cookie=self.cookie, ca_bundle=self.simulator.certificate_path, **options
        )


@pytest.fixture
def session(vcsim_factory: VcsimFactory) -> Iterator[Session]:
    simulator = vcsim_factory(model=MODEL)
    host, port = simulator.host.split(":")
    context = ssl.create_default_context(cafile=str(simulator.certificate_path))
    si = SmartConnect(host=host, port=int(port), user=simulator.username, pwd=simulator.password, sslContext=context)
    try:
        yield Session(simulator, si._stub.cookie)
    finally:
        Disconnect(si)
        si._stub.DropConnections()


class Progress:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))

    def assert_monotonic_to(self, total: int) -> None:
        done = [d for d, _ in self.calls]
        assert done == sorted(done)
        assert {t for _, t in self.calls} == {total}
        assert done[-1] == total


def allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512


async def test_sparse_disk_copies_to_a_raw_file_with_zeroes_as_holes(session: Session, tmp_path: Path) -> None:
    source = session.disk("sparse")
    progress = Progress()
    target = tmp_path / "sparse.raw"
    async with session.reader(source) as reader:
        with RawFileSink(target, source.size) as sink:
            result = await copy_disk(reader, sink, source.size, range_size=4 * MiB, on_progress=progress)
    assert target.read_bytes() == source.path_on_disk.read_bytes()
    data_bytes = MiB + 3 * MiB + 128 * 1024  # the last extent touches two 64 KiB zero-detection blocks
    assert result.bytes_read == source.size
    assert result.bytes_written == data_bytes
    assert result.zero_bytes_skipped == source.size - data_bytes
    assert allocated(target) < 2 * data_bytes
    with target.open("rb") as file:  # the zero region after the second extent is a hole
        assert os.lseek(file.fileno(), 13 * MiB, os.SEEK_DATA) >= 40 * MiB
    progress.assert_monotonic_to(source.size)


async def test_only_the_given_extents_are_read(session: Session, tmp_path: Path) -> None:
    source = session.disk("sparse")
    extents = [Extent(o, n) for o, n in SPARSE_EXTENTS]
    target = tmp_path / "extents.raw"
    async with session.reader(source) as reader:
        with RawFileSink(target, source.size) as sink:
            result = await copy_disk(reader, sink, source.size, extents, range_size=2 * MiB)
    assert target.read_bytes() == source.path_on_disk.read_bytes()
    assert result.bytes_read == MiB + 3 * MiB + 100 * 1024
    assert result.bytes_written == result.bytes_read


async def test_dense_disk_copies_with_the_same_checksum_whatever_the_concurrency(
    session: Session, tmp_path: Path
) -> None:
    source = session.disk("dense")
    results: list[CopyResult] = []
    for in_flight in (1, 6):
        progress = Progress()
        target = tmp_path / f"dense-{in_flight}.raw"
        async with session.reader(source, connections=in_flight) as reader:
            with RawFileSink(target, source.size) as sink:
                results.append(
                    await copy_disk(
                        reader, sink, source.size, range_size=MiB, in_flight=in_flight, on_progress=progress
                    )
                )
        assert target.read_bytes() == source.path_on_disk.read_bytes()
        progress.assert_monotonic_to(source.size)
    assert results[0] == results[1]
    assert results[0].bytes_written == source.size
    assert results[0].zero_bytes_skipped == 0


def accepting(port: int) -> bool | None:
    with socket.socket() as probe:
        try:
            probe.connect(("127.0.0.1", port))
        except OSError:
            return None
    return True


@pytest.fixture
def qemu_nbd_image(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    if shutil.which("qemu-nbd") is None:
        pytest.fail("qemu-nbd is missing: run scripts/install-debs.sh (make peers does)", pytrace=False)
    image = tmp_path / "nbd" / "disk.raw"
    image.parent.mkdir()
    with image.open("wb") as file:
        file.truncate(64 * MiB)
    port = free_port()
    argv = ["qemu-nbd", "-f", "raw", "-x", "disk", "-p", str(port), "-b", "127.0.0.1", "--persistent", "--shared=8"]
    process = ManagedProcess("qemu-nbd", [*argv, str(image)], image.parent / "qemu-nbd.log")
    try:
        process.wait_until(lambda: accepting(port), timeout=20, what="accepting connections")
        yield port, image
    finally:
        process.stop()


async def test_sparse_disk_copies_to_qemu_nbd(session: Session, qemu_nbd_image: tuple[int, Path]) -> None:
    port, image = qemu_nbd_image
    source = session.disk("sparse")
    progress = Progress()
    async with (
        session.reader(source) as reader,
        NbdClient.connect(host="127.0.0.1", port=port, export_name="disk") as nbd,
    ):
        result = await copy_disk(reader, NbdSink(nbd), source.size, range_size=8 * MiB, on_progress=progress)
    assert image.read_bytes() == source.path_on_disk.read_bytes()
    assert result.bytes_written == MiB + 3 * MiB + 128 * 1024
    progress.assert_monotonic_to(source.size)


async def test_a_failing_source_raises_a_clear_error_without_the_cookie(session: Session, tmp_path: Path) -> None:
    source = session.disk("dense")
    session.inject_fault({"path": "-flat.vmdk", "status": 503, "times": 1})
    async with session.reader(source) as reader:
        with RawFileSink(tmp_path / "failed.raw", source.size) as sink, pytest.raises(SourceReadError) as caught:
            await copy_disk(reader, sink, source.size, range_size=4 * MiB)
    error = caught.value
    assert error.status == 503
    assert error.retryable
    assert "503" in str(error) and "retry later" in str(error) and "dense-flat.vmdk" in str(error)
    cookie_value = session.cookie.split(";", 1)[0].split("=", 1)[1].strip('"')
    assert cookie_value not in str(error) and cookie_value not in repr(error.__cause__)
