"""pyvmomi against the ferry-vcsim simulator: login, inventory, ranged disk reads, CBT."""

import gc
import hashlib
import os
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

from ferry_peers.vcsim import Vcsim
from ferry_testpeers.plugin import VcsimFactory

pytestmark = pytest.mark.vsphere


def connect(simulator: Vcsim, password: str | None = None) -> vim.ServiceInstance:
    host, port = simulator.host.split(":")
    context = ssl.create_default_context(cafile=str(simulator.certificate_path))
    return SmartConnect(
        host=host,
        port=int(port),
        user=simulator.username,
        pwd=password if password is not None else simulator.password,
        sslContext=context,
    )


@pytest.fixture
def simulator(vcsim_factory: VcsimFactory) -> Vcsim:
    return vcsim_factory()


def close(si: vim.ServiceInstance) -> None:
    """Log out and close pyvmomi's pooled sockets (it leaves them to the GC otherwise)."""
    Disconnect(si)
    si._stub.DropConnections()


@pytest.fixture
def service_instance(simulator: Vcsim) -> Iterator[vim.ServiceInstance]:
    si = connect(simulator)
    yield si
    close(si)


def all_vms(si: vim.ServiceInstance) -> list[Any]:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return list(view.view)
    finally:
        view.Destroy()


def folder_url(simulator: Vcsim, path: str, datastore: str, datacenter: str = "DC0") -> str:
    base = simulator.sdk_url.rsplit("/sdk", 1)[0]
    return f"{base}/folder/{path}?dcPath={datacenter}&dsName={datastore}"


def session_client(simulator: Vcsim, si: vim.ServiceInstance) -> httpx.Client:
    cookie = si._stub.cookie  # "vmware_soap_session=…; Path=/; …"
    name, value = cookie.split(";", 1)[0].split("=", 1)
    context = ssl.create_default_context(cafile=str(simulator.certificate_path))
    return httpx.Client(verify=context, cookies={name.strip(): value.strip().strip('"')})


@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_login_with_a_wrong_password_is_refused(simulator: Vcsim) -> None:
    with pytest.raises(vim.fault.InvalidLogin):
        connect(simulator, password="not-the-password")
    gc.collect()  # pyvmomi leaves the failed login's socket to the GC: collect it under this test's filter


def test_pyvmomi_lists_the_simulated_vms(service_instance: vim.ServiceInstance) -> None:
    names = {vm.name for vm in all_vms(service_instance)}
    assert len(names) >= 3
    assert service_instance.content.about.apiType == "VirtualCenter"


def test_range_request_reads_exactly_the_uploaded_bytes(
    simulator: Vcsim, service_instance: vim.ServiceInstance
) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)
    url = folder_url(simulator, "ferry-test/blob-flat.vmdk", "LocalDS_0")
    with session_client(simulator, service_instance) as http:
        assert http.put(url, content=payload).status_code in (200, 201)
        start, end = 1_048_570, 2_621_440
        response = http.get(url, headers={"Range": f"bytes={start}-{end}"})
        assert response.status_code == 206
        assert response.headers["content-range"] == f"bytes {start}-{end}/{len(payload)}"
        assert response.content == payload[start : end + 1]
        whole = http.get(url)
        assert hashlib.sha256(whole.content).digest() == hashlib.sha256(payload).digest()


CBT_MODEL = {
    "datacenters": [
        {
            "name": "DC0",
            "datastores": [{"name": "LocalDS_0"}],
            "networks": [{"name": "VM Network"}],
            "clusters": [{"name": "C0", "hosts": [{"name": "H0"}]}],
            "vms": [
                {
                    "name": "tracked",
                    "cluster": "C0",
                    "cbt": True,
                    "disks": [
                        {
                            "capacity": "64MiB",
                            "datastore": "LocalDS_0",
                            "content": {
                                "kind": "extents",
                                "seed": 5,
                                "extents": [{"offset": "1MiB", "length": "2MiB"}, {"offset": "40MiB", "length": 65536}],
                            },
                        }
                    ],
                    "nics": [{"network": "VM Network"}],
                }
            ],
        }
    ]
}
BLOCK = 65536


def changed_areas(si: vim.ServiceInstance, vm: Any, disk_key: int, change_id: str) -> list[tuple[int, int]]:
    info = vm.QueryChangedDiskAreas(snapshot=None, deviceKey=disk_key, startOffset=0, changeId=change_id)
    return [(area.start, area.length) for area in info.changedArea]


def test_query_changed_disk_areas_returns_exactly_the_changed_extents(
    vcsim_factory: VcsimFactory,
) -> None:
    simulator = vcsim_factory(model=CBT_MODEL)
    si = connect(simulator)
    try:
        (vm,) = [v for v in all_vms(si) if v.name == "tracked"]
        (disk,) = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]
        assert vm.config.changeTrackingEnabled
        allocated = changed_areas(si, vm, disk.key, "*")
        assert allocated == [(1 << 20, 2 << 20), (40 << 20, BLOCK)]

        control = httpx.get(f"{simulator.control_url}/vms/tracked", timeout=10).json()
        flat = Path(control["disks"][0]["path_on_disk"])
        checkpoint = httpx.post(f"{simulator.control_url}/cbt/checkpoint", json={"vm": "tracked"}, timeout=10)
        change_id = checkpoint.json()["disks"][0]["change_id"]
        assert changed_areas(si, vm, disk.key, change_id) == []

        with flat.open("r+b") as image:  # the guest writes: one block inside data, two in a hole
            image.seek((1 << 20) + 5 * BLOCK + 10)
            image.write(b"guest write")
            image.seek(50 << 20)
            image.write(os.urandom(2 * BLOCK))
        assert changed_areas(si, vm, disk.key, change_id) == [((1 << 20) + 5 * BLOCK, BLOCK), (50 << 20, 2 * BLOCK)]
        assert changed_areas(si, vm, disk.key, "*") == [(1 << 20, 2 << 20), (40 << 20, BLOCK), (50 << 20, 2 * BLOCK)]
        with pytest.raises(vmodl.fault.InvalidArgument):
            changed_areas(si, vm, disk.key, "52 00 00 00 00 00 00 00-00 00 00 00 00 00 00 00/9")
    finally:
        close(si)
