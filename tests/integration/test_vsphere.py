"""pyvmomi against the ferry-vcsim simulator: login, inventory, ranged disk reads, CBT."""

import hashlib
import os
import ssl
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from ferry_cli.local.vcsim import Vcsim
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


@pytest.fixture
def service_instance(simulator: Vcsim) -> Iterator[vim.ServiceInstance]:
    si = connect(simulator)
    yield si
    Disconnect(si)


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


def test_login_with_a_wrong_password_is_refused(simulator: Vcsim) -> None:
    with pytest.raises(vim.fault.InvalidLogin):
        connect(simulator, password="not-the-password")


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


def test_datastore_endpoint_refuses_requests_without_a_session(simulator: Vcsim) -> None:
    context = ssl.create_default_context(cafile=str(simulator.certificate_path))
    with httpx.Client(verify=context) as anonymous:
        response = anonymous.get(folder_url(simulator, "ferry-test/none-flat.vmdk", "LocalDS_0"))
    assert response.status_code in (401, 403)
