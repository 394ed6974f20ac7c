"""The inventory's Kubernetes and local-target watchers against a real kube-apiserver.

Every test works in namespaces and cluster-scoped objects of its own (the control plane
is shared by the session), feeds the watcher hand-written fakes of the sink and status
reporter, and waits on their changes with deadlines.
"""

import asyncio
import base64
import contextlib
import copy
import json
import logging
import os
import secrets
import shutil
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiClient

from ferry_inventory.adapters.kubernetes import KubernetesWatcher
from ferry_inventory.adapters.kubernetes.feed import Feed, FeedItem, Listed
from ferry_inventory.adapters.kubernetes.resources import VIRTUAL_MACHINES
from ferry_inventory.adapters.local_target import LocalTargetWatcher
from ferry_inventory.domain.ports import KindAndId, KindAndRecord, Watcher
from ferry_peers.ports import free_port
from ferry_peers.processes import ManagedProcess
from ferry_shared.inventory import NadRecord, NamespaceRecord, Record, StorageClassRecord, TargetVmRecord
from ferry_shared.providers import ProviderPhase, ProviderSpec, ProviderStatus
from ferry_testpeers.kube import KubeControlPlane, install_crds, new_client, start_control_plane
from ferry_testpeers.pki import CertificateAuthority
from ferry_testpeers.plugin import PEER_ERRORS, crd_directory
from ferry_testpeers.waiting import eventually

pytestmark = pytest.mark.kube

CHANGE_WITHIN = 5.0
STOP_WITHIN = 3.0


class Signal:
    """Wakes waiters whenever a fake was called."""

    def __init__(self) -> None:
        self._condition = asyncio.Condition()

    async def notify(self) -> None:
        async with self._condition:
            self._condition.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], within: float, what: str) -> None:
        try:
            async with self._condition:
                await asyncio.wait_for(self._condition.wait_for(predicate), within)
        except TimeoutError:
            pytest.fail(f"no {what} within {within:.0f}s")


@dataclass
class FakeSink:
    signal: Signal
    records: dict[KindAndId, Record] = field(default_factory=dict)
    replaced: int = 0

    async def replace_all(self, records: Sequence[KindAndRecord]) -> None:
        self.records = {(kind, record.id): record for kind, record in records}
        self.replaced += 1
        await self.signal.notify()

    async def apply(self, put: Sequence[KindAndRecord], deleted: Sequence[KindAndId]) -> None:
        self.records.update({(kind, record.id): record for kind, record in put})
        for key in deleted:
            self.records.pop(key, None)
        await self.signal.notify()


@dataclass
class FakeStatus:
    signal: Signal
    seen: list[ProviderStatus] = field(default_factory=list)

    async def report(self, status: ProviderStatus) -> None:
        self.seen.append(status)
        await self.signal.notify()

    @property
    def last(self) -> ProviderStatus:
        return self.seen[-1] if self.seen else ProviderStatus()


@dataclass
class Run:
    sink: FakeSink
    status: FakeStatus
    signal: Signal
    stopped_in: float = 0.0

    async def until_status(
        self, reason: str = "", phase: ProviderPhase = ProviderPhase.ERROR, within: float = 20
    ) -> ProviderStatus:
        await self.signal.wait_for(
            lambda: self.status.last.phase == phase and (not reason or self.status.last.reason == reason),
            within,
            f"status {phase} {reason}",
        )
        return self.status.last

    async def change(
        self, action: Callable[[], object], kind: str, identifier: str, check: Callable[[Record | None], bool]
    ) -> float:
        """Run ``action`` (an API call, in a thread); seconds from its start until the sink's
        record passes ``check`` (None: absent), at most CHANGE_WITHIN."""
        started = time.monotonic()
        await asyncio.to_thread(action)
        await self.signal.wait_for(
            lambda: check(self.sink.records.get((kind, identifier))),
            CHANGE_WITHIN,
            f"{kind} {identifier} change",
        )
        return time.monotonic() - started


@contextlib.asynccontextmanager
async def watching(watcher: Watcher) -> AsyncIterator[Run]:
    """Runs ``watcher``; on exit sets stop and requires it to return within STOP_WITHIN."""
    signal = Signal()
    run = Run(FakeSink(signal), FakeStatus(signal), signal)
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(run.sink, run.status, stop))
    try:
        yield run
    finally:
        stop.set()
        started = time.monotonic()
        await asyncio.wait_for(task, STOP_WITHIN)
        run.stopped_in = time.monotonic() - started


def spec(context: str = "") -> ProviderSpec:
    return ProviderSpec(name="target", type="kubernetes", context=context)


def inline(kubeconfig: Path) -> str:
    """The kubeconfig with its certificate and key files inlined, as a stored secret has them."""
    document = yaml.safe_load(kubeconfig.read_text())
    for section, key in (("clusters", "cluster"), ("users", "user")):
        for entry in document[section]:
            body = entry[key]
            for name in ("certificate-authority", "client-certificate", "client-key"):
                if name in body:
                    body[f"{name}-data"] = base64.b64encode(Path(body.pop(name)).read_bytes()).decode()
    return str(yaml.safe_dump(document))


def cluster(document: dict[str, Any]) -> dict[str, Any]:
    """The first cluster's settings in a kubeconfig document."""
    section: dict[str, Any] = document["clusters"][0]["cluster"]
    return section


def edited(kubeconfig: str, change: Callable[[dict[str, Any]], None]) -> str:
    document = copy.deepcopy(yaml.safe_load(kubeconfig))
    change(document)
    return str(yaml.safe_dump(document))


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


class Objects:
    """Creates and changes the test's objects as cluster admin."""

    def __init__(self, api: ApiClient) -> None:
        self.core = client.CoreV1Api(api)
        self.storage = client.StorageV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.rbac = client.RbacAuthorizationV1Api(api)

    def namespace(self) -> str:
        name = unique("inv")
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        return name

    def storage_class(self, name: str, *, default: bool = False) -> None:
        annotations = {"storageclass.kubernetes.io/is-default-class": "true"} if default else None
        meta = client.V1ObjectMeta(name=name, annotations=annotations)
        self.storage.create_storage_class(client.V1StorageClass(metadata=meta, provisioner=PROVISIONER))

    def storage_profile(self, name: str, volume_mode: str, access_modes: list[str]) -> None:
        """A StorageProfile as CDI's controller would leave it (hints in ``status``)."""
        group = ("cdi.kubevirt.io", "v1beta1", "storageprofiles")
        body = {
            "apiVersion": "cdi.kubevirt.io/v1beta1",
            "kind": "StorageProfile",
            "metadata": {"name": name},
            "spec": {},
        }
        created: Any = self.custom.create_cluster_custom_object(*group, body)
        created["status"] = {"claimPropertySets": [{"volumeMode": volume_mode, "accessModes": access_modes}]}
        self.custom.replace_cluster_custom_object_status(*group, name, created)

    def nad(self, namespace: str, name: str, vlan: int = 10) -> None:
        config = json.dumps({"cniVersion": "0.3.1", "type": "bridge", "bridge": "br1", "vlan": vlan})
        body = {
            "apiVersion": "k8s.cni.cncf.io/v1",
            "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": name},
            "spec": {"config": config},
        }
        self.custom.create_namespaced_custom_object(
            "k8s.cni.cncf.io", "v1", namespace, "network-attachment-definitions", body
        )

    def vm(self, namespace: str, name: str, macs: list[str]) -> None:
        interfaces = [{"name": f"nic{i}", "bridge": {}, "macAddress": mac} for i, mac in enumerate(macs)]
        networks = [{"name": f"nic{i}", "pod": {}} for i in range(len(macs))]
        template = {
            "domain": {"devices": {"interfaces": interfaces}, "memory": {"guest": "1Gi"}},
            "networks": networks,
        }
        body = {
            "apiVersion": "kubevirt.io/v1",
            "kind": "VirtualMachine",
            "metadata": {"name": name},
            "spec": {"runStrategy": "Halted", "template": {"spec": template}},
        }
        self.custom.create_namespaced_custom_object("kubevirt.io", "v1", namespace, "virtualmachines", body)

    def change_vm_macs(self, namespace: str, name: str, macs: list[str]) -> None:
        vms = ("kubevirt.io", "v1", namespace, "virtualmachines")
        current: Any = self.custom.get_namespaced_custom_object(*vms, name)
        interfaces = current["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"]
        for interface, mac in zip(interfaces, macs, strict=True):
            interface["macAddress"] = mac
        self.custom.replace_namespaced_custom_object(*vms, name, current)

    def grant(self, user: str, rules: list[client.V1PolicyRule]) -> None:
        name = unique(f"inventory-{user}")
        meta = client.V1ObjectMeta(name=name)
        self.rbac.create_cluster_role(client.V1ClusterRole(metadata=meta, rules=rules))
        subject = client.RbacV1Subject(kind="User", name=user, api_group="rbac.authorization.k8s.io")
        role_ref = client.V1RoleRef(kind="ClusterRole", name=name, api_group="rbac.authorization.k8s.io")
        binding = client.V1ClusterRoleBinding(metadata=client.V1ObjectMeta(name=name), role_ref=role_ref)
        binding.subjects = [subject]
        self.rbac.create_cluster_role_binding(binding)


MERGE_PATCH = "application/merge-patch+json"
PROVISIONER = "csi.ferry.test"
MAC_1, MAC_2 = "00:50:56:00:00:01", "00:50:56:00:00:02"
READ = ["get", "list", "watch"]


@pytest.fixture
def objects(kube: KubeControlPlane) -> Iterator[Objects]:
    with kube.api_client() as api:
        yield Objects(api)


@pytest.fixture
def admin(kube: KubeControlPlane) -> str:
    return inline(kube.kubeconfig)


async def test_initial_load_puts_every_kind_in_the_sink(objects: Objects, admin: str) -> None:
    namespace = objects.namespace()
    fast, slow = unique("fast"), unique("slow")
    objects.storage_class(fast, default=True)
    objects.storage_class(slow)
    objects.storage_profile(fast, "Block", ["ReadWriteMany", "ReadWriteOnce"])
    objects.nad(namespace, "vlan-10")
    objects.vm(namespace, "db", ["00:50:56:aa:bb:01", "00:50:56:aa:bb:02"])

    async with watching(KubernetesWatcher(spec(), admin)) as run:
        ready = await run.until_status(phase=ProviderPhase.READY)
        records = run.sink.records

    assert run.sink.replaced == 1
    assert [s.phase for s in run.status.seen] == [ProviderPhase.CONNECTING, ProviderPhase.READY]
    assert ready.reason == ""
    assert ready.message.startswith("watching Kubernetes v1.")
    assert set(ready.counts) == {"namespace", "storageclass", "nad", "targetvm"}
    assert ready.counts["targetvm"] >= 1
    assert records[("namespace", namespace)] == NamespaceRecord(id=namespace, name=namespace)
    assert records[("storageclass", fast)] == StorageClassRecord(
        id=fast,
        name=fast,
        provisioner=PROVISIONER,
        is_default=True,
        volume_modes=("Block",),
        access_modes=("ReadWriteMany", "ReadWriteOnce"),
    )
    assert records[("storageclass", slow)] == StorageClassRecord(id=slow, name=slow, provisioner=PROVISIONER)
    assert records[("nad", f"{namespace}/vlan-10")] == NadRecord(
        id=f"{namespace}/vlan-10", name="vlan-10", namespace=namespace
    )
    assert records[("targetvm", f"{namespace}/db")] == TargetVmRecord(
        id=f"{namespace}/db", name="db", namespace=namespace, macs=("00:50:56:aa:bb:01", "00:50:56:aa:bb:02")
    )


def count(sink: FakeSink, kind: str) -> int:
    return sum(k == kind for k, _ in sink.records)


def present(record: Record | None) -> bool:
    return record is not None


def absent(record: Record | None) -> bool:
    return record is None


def with_macs(*macs: str) -> Callable[[Record | None], bool]:
    return lambda record: isinstance(record, TargetVmRecord) and record.macs == macs


def default_class(is_default: bool) -> Callable[[Record | None], bool]:
    return lambda record: isinstance(record, StorageClassRecord) and record.is_default == is_default


async def test_changes_after_the_load_reach_the_sink_within_seconds(objects: Objects, admin: str) -> None:
    namespace = objects.namespace()
    vm, nad, gold = f"{namespace}/web", f"{namespace}/vlan-20", unique("gold")
    vms = ("kubevirt.io", "v1", namespace, "virtualmachines")
    nads = ("k8s.cni.cncf.io", "v1", namespace, "network-attachment-definitions")
    took: dict[str, float] = {}
    make_default = {"metadata": {"annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}}

    async with watching(KubernetesWatcher(spec(), admin)) as run:
        await run.until_status(phase=ProviderPhase.READY)
        create_vm = partial(objects.vm, namespace, "web", [MAC_1])
        took["vm created"] = await run.change(create_vm, "targetvm", vm, present)
        took["vm changed"] = await run.change(
            lambda: objects.change_vm_macs(namespace, "web", [MAC_2]), "targetvm", vm, with_macs(MAC_2)
        )
        took["vm deleted"] = await run.change(
            lambda: objects.custom.delete_namespaced_custom_object(*vms, "web"), "targetvm", vm, absent
        )
        took["nad created"] = await run.change(lambda: objects.nad(namespace, "vlan-20"), "nad", nad, present)
        took["nad deleted"] = await run.change(
            lambda: objects.custom.delete_namespaced_custom_object(*nads, "vlan-20"), "nad", nad, absent
        )
        took["storageclass created"] = await run.change(
            lambda: objects.storage_class(gold), "storageclass", gold, default_class(False)
        )
        took["storageclass changed"] = await run.change(
            lambda: objects.storage.patch_storage_class(gold, make_default, _content_type=MERGE_PATCH),
            "storageclass",
            gold,
            default_class(True),
        )
        took["storageprofile created"] = await run.change(
            lambda: objects.storage_profile(gold, "Filesystem", ["ReadWriteOnce"]),
            "storageclass",
            gold,
            lambda record: isinstance(record, StorageClassRecord) and record.volume_modes == ("Filesystem",),
        )
        took["storageclass deleted"] = await run.change(
            lambda: objects.storage.delete_storage_class(gold), "storageclass", gold, absent
        )
        await run.signal.wait_for(
            lambda: run.status.last.counts.get("targetvm") == count(run.sink, "targetvm"),
            CHANGE_WITHIN,
            "counts following the changes",
        )
    assert run.sink.replaced == 1
    assert run.stopped_in < 1.0
    print("change-to-sink latencies:", {name: f"{seconds * 1000:.0f} ms" for name, seconds in took.items()})


async def test_a_user_without_any_rbac_is_forbidden_with_the_missing_permissions_named(
    kube: KubeControlPlane,
) -> None:
    nobody = inline(kube.user_kubeconfig(unique("nobody")))
    async with watching(KubernetesWatcher(spec(), nobody)) as run:
        status = await run.until_status("forbidden")
    for permission in (
        "list namespaces",
        "watch namespaces",
        "list storageclasses.storage.k8s.io",
        "list virtualmachines.kubevirt.io",
        "watch network-attachment-definitions.k8s.cni.cncf.io",
        "list storageprofiles.cdi.kubevirt.io",
    ):
        assert permission in status.message
    assert kube.url in status.message


async def test_a_user_missing_one_permission_is_told_that_one_and_recovers_once_granted(
    kube: KubeControlPlane, objects: Objects
) -> None:
    user = unique("partial")
    objects.grant(
        user,
        [
            client.V1PolicyRule(api_groups=[""], resources=["namespaces"], verbs=READ),
            client.V1PolicyRule(api_groups=["storage.k8s.io"], resources=["storageclasses"], verbs=READ),
            client.V1PolicyRule(api_groups=["cdi.kubevirt.io"], resources=["storageprofiles"], verbs=READ),
            client.V1PolicyRule(api_groups=["kubevirt.io"], resources=["virtualmachines"], verbs=READ),
            client.V1PolicyRule(
                api_groups=["k8s.cni.cncf.io"], resources=["network-attachment-definitions"], verbs=["list"]
            ),
        ],
    )
    async with watching(KubernetesWatcher(spec(), inline(kube.user_kubeconfig(user)))) as run:
        status = await run.until_status("forbidden")
        nads = "network-attachment-definitions"
        assert f"user '{user}' may not watch {nads}.k8s.cni.cncf.io (" in status.message
        objects.grant(
            user,
            [
                client.V1PolicyRule(
                    api_groups=["k8s.cni.cncf.io"],
                    resources=["network-attachment-definitions"],
                    verbs=["watch"],
                )
            ],
        )
        await run.until_status(phase=ProviderPhase.READY)


@pytest.mark.parametrize(
    ("kubeconfig", "expected"),
    [
        ("{{{ not yaml", "not valid YAML at line 1"),
        ("just a string", "is not a kubeconfig"),
        ("apiVersion: v1\nkind: Config\ncontexts: []\n", "has no current-context"),
    ],
)
async def test_a_garbage_kubeconfig_is_invalid(kubeconfig: str, expected: str) -> None:
    async with watching(KubernetesWatcher(spec(), kubeconfig)) as run:
        status = await run.until_status("kubeconfig_invalid")
    assert expected in status.message


async def test_a_missing_context_is_invalid_and_named(admin: str) -> None:
    async with watching(KubernetesWatcher(spec(context="prod-east"), admin)) as run:
        status = await run.until_status("kubeconfig_invalid")
    assert status.message == "the kubeconfig has no context named 'prod-east' (its contexts: 'ferry-test')"


async def test_an_unreachable_server_is_reported_with_its_url(admin: str) -> None:
    url = f"https://127.0.0.1:{free_port()}"
    kubeconfig = edited(admin, lambda d: cluster(d).update(server=url))
    async with watching(KubernetesWatcher(spec(), kubeconfig)) as run:
        status = await run.until_status("unreachable")
    assert f"cannot reach the API server at {url}" in status.message


async def test_a_server_certificate_from_another_ca_is_untrusted(admin: str, tmp_path: Path) -> None:
    other = CertificateAuthority(tmp_path / "other-ca")
    ca = base64.b64encode(other.cert_path.read_bytes()).decode()
    kubeconfig = edited(admin, lambda d: cluster(d).update({"certificate-authority-data": ca}))
    async with watching(KubernetesWatcher(spec(), kubeconfig)) as run:
        status = await run.until_status("certificate_untrusted")
    assert "is not trusted" in status.message


async def test_a_client_certificate_of_an_unknown_ca_is_unauthorized(admin: str, tmp_path: Path) -> None:
    stranger = CertificateAuthority(tmp_path / "stranger-ca").issue("mallory", common_name="mallory")
    user = {
        "client-certificate-data": base64.b64encode(stranger.cert.read_bytes()).decode(),
        "client-key-data": base64.b64encode(stranger.key.read_bytes()).decode(),
    }
    kubeconfig = edited(admin, lambda d: d["users"][0].update(user=user))
    async with watching(KubernetesWatcher(spec(), kubeconfig)) as run:
        status = await run.until_status("unauthorized")
    assert "rejected the kubeconfig's credentials (401 Unauthorized)" in status.message


async def test_credential_plugins_are_refused_without_running_them(admin: str, tmp_path: Path) -> None:
    marker = tmp_path / "plugin-ran"
    command = {"apiVersion": "client.authentication.k8s.io/v1", "command": "touch", "args": [str(marker)]}
    plugin = {"exec": command}
    kubeconfig = edited(admin, lambda d: d["users"][0].update(user=plugin))
    async with watching(KubernetesWatcher(spec(), kubeconfig)) as run:
        status = await run.until_status("kubeconfig_invalid")
    assert "'exec' plug-in, which Ferry does not run" in status.message
    assert not marker.exists()


async def test_key_and_certificate_text_appear_in_no_status_or_log(
    kube: KubeControlPlane, admin: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    user = yaml.safe_load(admin)["users"][0]["user"]
    key_data, cert_data = user["client-key-data"], user["client-certificate-data"]
    key_pem = base64.b64decode(key_data).decode()
    secrets_ = [
        key_data,
        cert_data,
        *(line for line in key_pem.splitlines() if len(line) > 16 and "-" not in line),
    ]
    broken_yaml = admin.replace(f"client-key-data: {key_data}", f"client-key-data: {key_data}: [")
    assert broken_yaml != admin
    unreachable = edited(admin, lambda d: cluster(d).update(server=f"https://127.0.0.1:{free_port()}"))
    bad_key = edited(admin, lambda d: d["users"][0]["user"].update({"client-key-data": cert_data}))
    statuses: list[ProviderStatus] = []
    for kubeconfig, phase in [
        (admin, ProviderPhase.READY),
        (broken_yaml, ProviderPhase.ERROR),
        (unreachable, ProviderPhase.ERROR),
        (bad_key, ProviderPhase.ERROR),
    ]:
        async with watching(KubernetesWatcher(spec(), kubeconfig)) as run:
            await run.until_status(phase=phase)
        statuses += run.status.seen
    assert {s.reason for s in statuses} >= {"kubeconfig_invalid", "unreachable"}
    assert caplog.records, "the watcher logged nothing to check"
    shown = "\n".join([caplog.text, *(f"{s.reason} {s.message}" for s in statuses)])
    leaked = [secret for secret in secrets_ if secret and secret in shown]
    assert leaked == []


async def test_an_expired_version_is_answered_with_a_list(kube: KubeControlPlane, objects: Objects) -> None:
    namespace = objects.namespace()
    objects.vm(namespace, "old", ["00:50:56:00:00:10"])
    loop = asyncio.get_running_loop()
    items: asyncio.Queue[FeedItem] = asyncio.Queue()

    def emit(item: FeedItem) -> None:
        loop.call_soon_threadsafe(items.put_nowait, item)

    with kube.api_client() as api:
        feed = Feed(api, VIRTUAL_MACHINES, emit, resource_version="1")
        feed.start()
        try:
            item = await asyncio.wait_for(items.get(), CHANGE_WITHIN)
        finally:
            deadline = time.monotonic() + STOP_WITHIN
            while feed.alive and time.monotonic() < deadline:  # a stop can land between two requests
                feed.stop()
                await asyncio.to_thread(feed.join, 0.1)
    assert isinstance(item, Listed)
    assert f"{namespace}/old" in {obj.metadata.id for obj in item.objects}
    assert not feed.alive


async def test_stop_ends_the_watcher_promptly_while_it_waits_to_retry(admin: str) -> None:
    kubeconfig = edited(admin, lambda d: cluster(d).update(server=f"https://127.0.0.1:{free_port()}"))
    async with watching(KubernetesWatcher(spec(), kubeconfig)) as run:
        await run.until_status("unreachable")  # reported as the back-off wait begins
    assert run.stopped_in < 0.5


async def test_stop_ends_the_watcher_promptly_while_a_silent_server_holds_a_request(admin: str) -> None:
    with socket.socket() as silent:  # accepts connections but never answers them
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        silent.settimeout(10)
        url = f"https://127.0.0.1:{silent.getsockname()[1]}"
        kubeconfig = edited(admin, lambda d: cluster(d).update(server=url))
        async with watching(KubernetesWatcher(spec(), kubeconfig)) as run:
            held, _ = await asyncio.to_thread(silent.accept)  # the probe's request is in flight
        held.close()
    assert run.status.last.phase == ProviderPhase.CONNECTING
    assert run.stopped_in < 0.5


@pytest.fixture
def bare_kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeControlPlane]:
    """A control plane of its own without any CRDs (the shared one has them all)."""
    empty = tmp_path_factory.mktemp("no-crds")
    try:
        plane = start_control_plane(tmp_path_factory.mktemp("bare-kube"), empty)
    except PEER_ERRORS as error:
        pytest.fail(f"the CRD-less control plane could not start: {error}", pytrace=False)
    yield plane
    plane.stop()


# When the apiserver restarts, urllib3 may leave a dead TLS connection of the old server
# to the garbage collector (seen about once in ten runs): a warning about a socket of a
# connection that no longer exists, not a leak of the watcher's own.
@pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning")
async def test_kubevirt_is_required_cdi_and_multus_are_optional_and_a_restarted_server_is_rejoined(
    bare_kube: KubeControlPlane, tmp_path: Path
) -> None:
    async with watching(KubernetesWatcher(spec(), inline(bare_kube.kubeconfig))) as run:
        missing = await run.until_status("kubevirt_missing")
        kubevirt_only = tmp_path / "crds"
        kubevirt_only.mkdir()
        shutil.copy(crd_directory() / "kubevirt-virtualmachine.yaml", kubevirt_only)
        with new_client(bare_kube.kubeconfig) as api:
            await asyncio.to_thread(install_crds, api, kubevirt_only)
        ready = await run.until_status("cdi_missing", ProviderPhase.READY)
        loads = run.sink.replaced

        argv = cast(list[str], bare_kube.apiserver.process.args)  # as the fixture started it
        bare_kube.apiserver.kill()
        down = await run.until_status("unreachable")
        log = bare_kube.directory / "kube-apiserver-2.log"
        bare_kube.apiserver = ManagedProcess("kube-apiserver", argv, log)
        await run.until_status("cdi_missing", ProviderPhase.READY, within=40)
    assert "install KubeVirt" in missing.message
    assert "CDI is not installed" in ready.message
    assert "Multus is not installed" in ready.message
    assert set(ready.counts) == {"namespace", "storageclass", "targetvm"}
    assert bare_kube.url in down.message
    assert run.sink.replaced == loads + 1


async def test_a_local_target_directory_is_created_and_ready(tmp_path: Path) -> None:
    target = tmp_path / "exports" / "vms"
    async with watching(LocalTargetWatcher(ProviderSpec(name="disk", type="local", path=str(target)))) as run:
        ready = await run.until_status(phase=ProviderPhase.READY)
    assert target.is_dir()
    assert list(target.iterdir()) == []
    assert ready.counts == {}
    assert run.sink.replaced == 1
    assert run.sink.records == {}


async def test_a_local_target_lists_the_vms_already_in_it(tmp_path: Path) -> None:
    mac = "02:00:00:00:00:aa"
    done = tmp_path / "apps" / "web-1"
    done.mkdir(parents=True)
    interfaces = [{"name": "nic0", "macAddress": mac}]
    manifest = {"spec": {"template": {"spec": {"domain": {"devices": {"interfaces": interfaces}}}}}}
    (done / "virtualmachine.yaml").write_text(yaml.safe_dump(manifest))
    (tmp_path / "apps" / "empty").mkdir()  # in nobody's way
    (tmp_path / "apps" / "linked").symlink_to(done)  # not followed
    local = ProviderSpec(name="disk", type="local", path=str(tmp_path))
    async with watching(LocalTargetWatcher(local, rescan=0.1)) as run:
        await run.until_status(phase=ProviderPhase.READY)
        first = dict(run.sink.records)
        (tmp_path / "apps" / "db").mkdir()
        (tmp_path / "apps" / "db" / "notes.txt").write_text("someone's")
        await eventually(lambda: len(run.sink.records) == 2, timeout=10, what="the rescan to list the new VM")
    records = [r for r in first.values() if isinstance(r, TargetVmRecord)]
    assert [(r.namespace, r.name, r.macs) for r in records] == [("apps", "web-1", (mac.upper(),))]
    assert sorted(r.name for r in run.sink.records.values()) == ["db", "web-1"], "a rescan lists new VMs"


@pytest.fixture
def unwritable_directory(tmp_path: Path) -> Iterator[Path]:
    """A directory Ferry cannot write into; root writes anywhere on ordinary file
    systems, so as root this is sysfs, which refuses new files to everyone."""
    if os.geteuid() == 0:
        assert Path("/sys/kernel").is_dir(), "sysfs is not mounted; no unwritable directory for root"
        yield Path("/sys")
        return
    directory = tmp_path / "read-only"
    directory.mkdir(mode=0o500)
    yield directory
    directory.chmod(0o700)


async def test_a_local_target_that_is_not_writable_is_an_error(unwritable_directory: Path) -> None:
    local = ProviderSpec(name="disk", type="local", path=str(unwritable_directory))
    async with watching(LocalTargetWatcher(local)) as run:
        status = await run.until_status("path_not_writable")
    assert f"cannot write into {unwritable_directory}" in status.message


async def test_a_local_target_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    file = tmp_path / "disk.img"
    file.write_bytes(b"")
    async with watching(LocalTargetWatcher(ProviderSpec(name="disk", type="local", path=str(file)))) as run:
        status = await run.until_status("path_not_directory")
    assert "is not a directory" in status.message
