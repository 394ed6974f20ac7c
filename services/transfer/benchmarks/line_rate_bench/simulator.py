"""The simulator serving the benchmark's disks, and one logged-in vSphere session on it.

Starts ferry-vcsim with the model of :mod:`.cases` (its state dir holds the disks), logs
in once with pyVmomi for the ``vmware_soap_session`` cookie every peer sends, answers
each disk's datastore URL and file on disk, and sets the per-connection bandwidth cap
through the control API.
"""

import secrets
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from pyVim.connect import Disconnect, SmartConnect

from ferry_peers.vcsim import Vcsim, start_vcsim
from ferry_shared.credentials import Secret
from ferry_transfer.adapters.datastore import flat_file_url, session_cookie_header
from line_rate_bench.cases import DATACENTER


@dataclass(frozen=True)
class SourceDisk:
    """A VM's only disk as the simulator serves it."""

    vm_name: str
    vm_moref: str
    disk_key: int
    backing_file: str  # "[datastore] vm/vm.vmdk"
    path_on_disk: Path  # the flat file the simulator serves (the reference for checks)
    capacity: int
    change_id: str | None
    url: str  # https://…/folder/…-flat.vmdk?dcPath=…&dsName=…


class Simulator:
    """A running simulator with a logged-in session; ``close()`` logs out and stops it."""

    def __init__(self, vcsim: Vcsim, service_instance: Any, build_seconds: float) -> None:
        self.vcsim = vcsim
        self.build_seconds = build_seconds
        self._si = service_instance
        self._control = httpx.Client(base_url=vcsim.control_url, timeout=30)

    @property
    def cookie_header_value(self) -> Secret:
        """``vmware_soap_session=…``, the value of the ``Cookie`` header the datastore endpoint wants."""
        return Secret(session_cookie_header(self._si._stub.cookie))

    @property
    def ca_file(self) -> Path:
        return self.vcsim.certificate_path

    def disk(self, vm: str) -> SourceDisk:
        """The first disk of ``vm``, from the control API."""
        answer = self._control.get(f"/vms/{vm}")
        answer.raise_for_status()
        data = answer.json()
        disk = data["disks"][0]
        return SourceDisk(
            vm_name=data["name"],
            vm_moref=data["moref"],
            disk_key=int(disk["key"]),
            backing_file=disk["file"],
            path_on_disk=Path(disk["path_on_disk"]),
            capacity=int(disk["capacity"]),
            change_id=disk.get("change_id"),
            url=flat_file_url(self.vcsim.host, disk["file"], DATACENTER),
        )

    def set_bandwidth(self, bytes_per_second: int) -> None:
        """Cap each datastore connection at ``bytes_per_second`` (0 = no cap) and check it took."""
        self._control.put("/bandwidth", json={"bytes_per_second": bytes_per_second}).raise_for_status()
        now = self._control.get("/bandwidth").json()["bytes_per_second"]
        if now != bytes_per_second:
            raise RuntimeError(f"the simulator kept a cap of {now} B/s after being asked for {bytes_per_second}")

    def keep_alive(self) -> None:
        """One cheap SOAP call so the session (and so the cookie) stays valid."""
        self._si.CurrentTime()

    def close(self) -> None:
        try:
            Disconnect(self._si)  # type: ignore[no-untyped-call]
        finally:
            self._control.close()
            self.vcsim.stop()

    def __enter__(self) -> "Simulator":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def start_simulator(work_dir: Path, model: dict[str, Any], *, timeout: float = 900) -> Simulator:
    """Start ferry-vcsim with its state under ``work_dir`` and log in."""
    started = time.monotonic()
    vcsim = start_vcsim(work_dir, password=secrets.token_urlsafe(16), model=model, timeout=timeout)
    build_seconds = time.monotonic() - started
    try:
        host, _, port = vcsim.host.rpartition(":")
        context = ssl.create_default_context(cafile=str(vcsim.certificate_path))
        service_instance = SmartConnect(  # type: ignore[no-untyped-call]
            host=host, port=int(port), user=vcsim.username, pwd=vcsim.password, sslContext=context
        )
    except BaseException:
        vcsim.stop()
        raise
    return Simulator(vcsim, service_instance, build_seconds)
