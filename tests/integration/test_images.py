"""Ferry's built images (``make images``): each service runs from the service image's root
filesystem against the real NATS and answers ``/readyz``; the image's Python packages are
the locked ones; the sink image's qemu-nbd serves a disk to the transfer's NBD client."""

import asyncio
import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferry_peers.images import BuiltImage, built_image, start_service_from_image
from ferry_peers.nats_server import NatsServer
from ferry_peers.ports import free_port
from ferry_peers.processes import ManagedProcess, stop_all
from ferry_peers.services import SERVICE_MODULES, ServiceProcess
from ferry_shared.migrations import SinkLocation
from ferry_transfer.adapters.sink_factory import SinkFactory, SinkOptions

pytestmark = [pytest.mark.nats]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def service_image(tmp_path_factory: pytest.TempPathFactory) -> tuple[BuiltImage, Path]:
    image = built_image("ferry")
    return image, image.unpack(tmp_path_factory.mktemp("ferry-image") / "bundle")


@pytest.fixture(scope="module")
def sink_image(tmp_path_factory: pytest.TempPathFactory) -> tuple[BuiltImage, Path]:
    image = built_image("nbd-sink")
    return image, image.unpack(tmp_path_factory.mktemp("sink-image") / "bundle")


def in_image(rootfs: Path, user: int, *argv: str) -> str:
    done = subprocess.run(["chroot", f"--userspec={user}:{user}", str(rootfs), *argv],
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    return done.stdout


@pytest.fixture
def services(
    nats_server: NatsServer, service_image: tuple[BuiltImage, Path], tmp_path: Path
) -> Iterator[dict[str, ServiceProcess]]:
    image, rootfs = service_image
    started: dict[str, ServiceProcess] = {}
    try:
        for name in SERVICE_MODULES:
            started[name] = start_service_from_image(name, nats_server, image, rootfs, tmp_path / name)
        yield started
    finally:
        stop_all(service.process for service in started.values())


def test_every_service_starts_from_the_image_as_its_user_and_is_ready(
    services: dict[str, ServiceProcess], service_image: tuple[BuiltImage, Path]
) -> None:
    image, _ = service_image
    assert image.user == 10001
    for name, service in services.items():
        pid = service.process.process.pid
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout.split()
        assert children, f"{name}: unshare has no child"
        log = service.process.log_path.read_text()
        assert "Traceback" not in log, log[-2000:]
    uids = subprocess.run(["ps", "-o", "uid=,args=", "-u", "10001"], capture_output=True, text=True, check=True).stdout
    for module in SERVICE_MODULES.values():
        assert f"python3 -m {module}" in uids


def locked_versions() -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", (ROOT / "requirements.lock").read_text(), re.MULTILINE)
    return {name.lower().replace("_", "-"): version for name, version in pins}


def test_the_images_python_and_packages_are_the_locked_ones(service_image: tuple[BuiltImage, Path]) -> None:
    image, rootfs = service_image
    assert in_image(rootfs, image.user, "python3", "--version").startswith("Python 3.11.")
    script = "import importlib.metadata as m\nfor d in m.distributions(): print(f\"{d.metadata['Name']}=={d.version}\")"
    listing = in_image(rootfs, image.user, "env", "PYTHONPATH=/opt/ferry/lib", "python3", "-c", script)
    installed = dict(line.split("==", 1) for line in listing.split())
    locked = locked_versions()
    third_party = {name.lower().replace("_", "-"): version for name, version in installed.items()
                   if not name.startswith("ferry")}  # fmt: skip
    assert third_party, "no third-party package in the image"
    assert {name: version for name, version in third_party.items() if locked.get(name) != version} == {}
    assert {"ferry-shared", "ferry-planner", "ferry-inventory", "ferry-transfer", "ferry-kubevirt-writer",
            "ferry-cli"} <= {name.lower() for name in installed}  # fmt: skip
    assert not list((rootfs / "opt" / "ferry" / "lib").rglob("__pycache__"))
    assert "Usage" in in_image(rootfs, image.user, "env", "PYTHONPATH=/opt/ferry/lib", "ferry", "--help")


def test_the_sink_images_qemu_nbd_serves_a_disk_to_the_transfer(
    sink_image: tuple[BuiltImage, Path], tmp_path: Path
) -> None:
    image, rootfs = sink_image
    assert image.user == 107
    assert "qemu-nbd" in in_image(rootfs, image.user, "qemu-nbd", "--version")
    disks = tmp_path / "disks"
    disks.mkdir()
    (disks / "disk.img").write_bytes(bytes(4 << 20))
    subprocess.run(["chown", "-R", "107:107", str(disks)], check=True)
    port = free_port()
    serve = (f'mkdir -p "$0/disks" && mount --bind "{disks}" "$0/disks" && exec chroot --userspec=107:107 "$0" '
             f"qemu-nbd --persistent --shared=4 --bind=127.0.0.1 --port={port} --export-name=disk "
             "--format=raw --cache=none --aio=threads /disks/disk.img")  # fmt: skip
    argv = ["unshare", "--mount", "--fork", "--kill-child=SIGTERM", "--propagation", "private",
            "sh", "-c", serve, str(rootfs)]  # fmt: skip
    process = ManagedProcess("nbd-sink-image", argv, tmp_path / "logs" / "sink.log", signal_group=True)
    try:
        process.wait_until(lambda: _listening(port), timeout=30, what="qemu-nbd listening")
        sink = SinkLocation(disk_key=1, kind="nbd", size_bytes=4 << 20, host="127.0.0.1", port=port, export="disk")
        asyncio.run(_write_and_read(sink))
    finally:
        process.stop()
    assert (disks / "disk.img").read_bytes()[:8] == b"ferry-ok"


def _listening(port: int) -> bool | None:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return True if probe.connect_ex(("127.0.0.1", port)) == 0 else None


async def _write_and_read(sink: SinkLocation) -> None:
    sinks = SinkFactory(SinkOptions())
    try:
        async with sinks.open(sink) as opened:
            await opened.write(0, b"ferry-ok")
            assert await opened.read(0, 8) == b"ferry-ok"
            await opened.finish()
    finally:
        await sinks.close_all()
