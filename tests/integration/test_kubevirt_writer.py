"""kubevirt-writer against a real kube-apiserver (with KubeVirt's and CDI's CRDs) over real
NATS: commands go through the service's own consumer, and the test plays the node that
runs the disk-sink pods (:class:`~ferry_testpeers.sink_node.SinkNode`: real qemu-nbd
servers on loopback addresses), so the sinks the writer reports really take bytes.
"""

import base64
import os
import secrets
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ferry_kubevirt_writer.settings import WriterSettings
from ferry_peers.security import LocalSecurity
from ferry_shared.messages import MessageFailed, StepRef
from ferry_shared.migrations import CleanupVm, CreateVm, PrepareVolumes, VmCleanedUp, VmCreated, VolumesPrepared
from ferry_shared.pki import Authority
from ferry_shared.providers import ProviderSpec
from ferry_shared.service import Bus
from ferry_shared.target_vm import TargetDisk, TargetNic, TargetVm
from ferry_testpeers.kube import KubeControlPlane, create_namespace
from ferry_testpeers.sink_node import SinkNode
from ferry_testpeers.waiting import async_wait_for
from ferry_transfer.adapters.nbd import NbdClient, NbdTls, NbdTlsError, client_context, directory_context

from .writer_harness import MIGRATION, running_writer

MIB = 1024 * 1024
TARGET = ProviderSpec(name="cluster", type="kubernetes")
VMS = ("kubevirt.io", "v1", "virtualmachines")
DVS = ("cdi.kubevirt.io", "v1beta1", "datavolumes")
SINK_IMAGE = "registry.example/ferry/nbd-sink:test"


@dataclass
class Cluster:
    namespace: str
    core: client.CoreV1Api
    custom: client.CustomObjectsApi
    rbac: client.RbacAuthorizationV1Api

    def pod(self, name: str) -> Any:
        return self.core.read_namespaced_pod(name, self.namespace)

    def absent(self, read: Any, *args: Any) -> bool:
        try:
            read(*args)
        except ApiException as error:
            return error.status == 404
        return False


@pytest.fixture
def cluster(kube: KubeControlPlane) -> Iterator[Cluster]:
    """A fresh namespace of the session's control plane, and admin clients."""
    with kube.api_client() as api:
        core = client.CoreV1Api(api)
        namespace = create_namespace(core, "writer")
        yield Cluster(namespace, core, client.CustomObjectsApi(api), client.RbacAuthorizationV1Api(api))
        core.delete_collection_namespaced_pod(namespace)  # so no later test's node runs a pod left here


@pytest.fixture(scope="module")
def nbd_security(tmp_path_factory: pytest.TempPathFactory) -> LocalSecurity:
    """The NBD CA the writer signs sink certificates with, and the transfer's client identity."""
    return LocalSecurity.create(tmp_path_factory.mktemp("security"))


def until(predicate: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    """An async probe for :func:`async_wait_for` from a plain predicate."""

    async def probe() -> bool:
        return predicate()

    return probe


def settings(security: LocalSecurity, **overrides: Any) -> WriterSettings:
    """The writer's settings: sinks signed by ``security``'s NBD CA, Ferry in namespace ferry-system."""
    defaults: dict[str, Any] = {"sink_ready_timeout": 20.0, "nbd_ca_dir": security.nbd_ca_dir}
    return WriterSettings.model_validate(
        {"sink_image": SINK_IMAGE, "FERRY_NAMESPACE": "ferry-system", **defaults, **overrides}
    )


def admin(kube: KubeControlPlane) -> dict[str, str]:
    return {TARGET.name: kube.kubeconfig.read_text()}


def three_disk_vm(namespace: str, name: str = "db-1") -> TargetVm:
    """A Block PVC, a Filesystem PVC and a Filesystem DataVolume; EFI, two networks."""
    return TargetVm(
        name=name, namespace=namespace, source_provider="vcenter", source_vm_id="vm-42",
        source_vm_name="DB 1 (prod)", plan="wave-1", cpu_sockets=2, cores_per_socket=2, memory_mib=4096,
        firmware="efi", secure_boot=True, vtpm=True, run=True,
        disks=(
            TargetDisk(key=2000, source_file="[ds1] db/db.vmdk", capacity_bytes=3 * MIB + 4096,
                       storage_class="fast", volume_mode="Block", access_mode="ReadWriteMany"),
            TargetDisk(key=2001, source_file="[ds1] db/db_1.vmdk", capacity_bytes=2 * MIB, bus="sata",
                       storage_class="standard", volume_mode="Filesystem"),
            TargetDisk(key=2002, source_file="[ds2] db/db_2.vmdk", capacity_bytes=5 * MIB, bus="scsi",
                       storage_class="standard", volume_mode="Filesystem", use_datavolume=True),
        ),
        nics=(
            TargetNic(mac="00:50:56:aa:00:01"),
            TargetNic(mac="00:50:56:aa:00:02", model="e1000e", destination="multus", nad=f"{namespace}/vlan-10"),
        ),
    )  # fmt: skip


async def test_prepare_volumes_creates_the_volumes_and_one_sink_pod_that_serves_every_disk(
    bus: Bus, kube: KubeControlPlane, cluster: Cluster, sink_node: SinkNode, nbd_security: LocalSecurity
) -> None:
    vm = three_disk_vm(cluster.namespace)
    restricted = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    cluster.core.patch_namespace(cluster.namespace, {"metadata": {"labels": restricted}})  # the strictest admission
    plain = {"metadata": {"name": "plain"}, "spec": {"containers": [{"name": "c", "image": SINK_IMAGE}]}}
    with pytest.raises(ApiException) as refused:  # the admission really enforces it here
        cluster.core.create_namespaced_pod(cluster.namespace, plain)  # type: ignore[arg-type]
    assert refused.value.status == 403 and "restricted" in str(refused.value.body)
    async with running_writer(bus, settings(nbd_security), admin(kube)) as writer:
        await writer.send(PrepareVolumes, TARGET, vm)
        prepared = await writer.next(VolumesPrepared)

        block = cluster.core.read_namespaced_persistent_volume_claim("db-1-disk-0", cluster.namespace)
        assert (block.spec.volume_mode, block.spec.storage_class_name) == ("Block", "fast")
        assert block.spec.access_modes == ["ReadWriteMany"]
        assert block.spec.resources.requests["storage"] == "4Mi"  # the capacity, rounded up to a MiB
        filesystem = cluster.core.read_namespaced_persistent_volume_claim("db-1-disk-1", cluster.namespace)
        assert (filesystem.spec.volume_mode, filesystem.spec.storage_class_name) == ("Filesystem", "standard")
        assert filesystem.spec.resources.requests["storage"] == "3Mi"  # 2 MiB / (1 - 5.5%), rounded up
        dv = cluster.custom.get_namespaced_custom_object(*DVS[:2], cluster.namespace, DVS[2], "db-1-disk-2")
        assert dv["spec"]["source"] == {"blank": {}}
        assert dv["spec"]["storage"]["resources"]["requests"]["storage"] == "5Mi"
        assert dv["spec"]["storage"]["storageClassName"] == "standard"

        pod = cluster.pod("db-1-disk-sink")
        assert pod.metadata.labels["ferry.dev/role"] == "disk-sink"
        assert pod.metadata.labels["ferry.dev/migration"] == MIGRATION
        assert pod.metadata.labels["ferry.dev/vm"] == "db-1"
        assert pod.spec.security_context.run_as_non_root is True
        assert pod.spec.security_context.seccomp_profile.type == "RuntimeDefault"
        containers = pod.spec.containers
        assert [c.name for c in containers] == ["disk-0", "disk-1", "disk-2"]
        assert [c.ports[0].container_port for c in containers] == [10809, 10810, 10811]
        assert all(c.image == SINK_IMAGE for c in containers)
        assert all(c.security_context.allow_privilege_escalation is False for c in containers)
        assert all(c.security_context.capabilities.drop == ["ALL"] for c in containers)
        env = [{e.name: e.value for e in c.env} for c in containers]
        assert env == [
            {"FERRY_DISK_SIZE": str(3 * MIB + 4096), "FERRY_DISK_CLAIM": "db-1-disk-0"},
            {"FERRY_DISK_SIZE": str(2 * MIB), "FERRY_DISK_CLAIM": "db-1-disk-1"},
            {"FERRY_DISK_SIZE": str(5 * MIB), "FERRY_DISK_CLAIM": "db-1-disk-2"},
        ]
        assert containers[0].volume_devices[0].device_path == "/dev/ferry-disk-0"
        assert [m.mount_path for m in containers[0].volume_mounts] == ["/etc/ferry/nbd-tls"]
        assert [m.mount_path for m in containers[1].volume_mounts] == ["/disks/1", "/etc/ferry/nbd-tls"]
        assert all(c.volume_mounts[-1].read_only is True for c in containers)
        assert [c.name for c in pod.spec.init_containers] == ["size-1", "size-2"]
        assert pod.spec.init_containers[0].command == ["truncate", f"--size=>{2 * MIB}", "/disks/1/disk.img"]
        assert all(c.command == ["qemu-nbd"] for c in containers)
        assert containers[0].args[-1] == "/dev/ferry-disk-0" and containers[1].args[-1] == "/disks/1/disk.img"
        assert all("verify-peer=on" in " ".join(c.args) and "--tls-creds=tls0" in c.args for c in containers)
        for c in [*containers, *pod.spec.init_containers]:  # the hardened context, as the apiserver stored it
            assert c.security_context.read_only_root_filesystem is True and c.security_context.run_as_non_root
        assert pod.spec.automount_service_account_token is False
        assert (pod.spec.security_context.run_as_user, pod.spec.security_context.fs_group) == (107, 107)
        claims = [v.persistent_volume_claim.claim_name for v in pod.spec.volumes if v.persistent_volume_claim]
        assert claims == ["db-1-disk-0", "db-1-disk-1", "db-1-disk-2"]
        (tls_volume,) = [v for v in pod.spec.volumes if v.secret]
        assert (tls_volume.secret.secret_name, tls_volume.secret.default_mode) == ("db-1-disk-sink-tls", 0o440)
        check_sink_secret_and_policy(cluster, nbd_security)

    (served,) = sink_node.pods_seen
    assert [(s.disk_key, s.kind, s.host, s.port, s.export, s.size_bytes) for s in prepared.sinks] == [
        (2000, "nbd", served.ip, 10809, "disk", 3 * MIB + 4096),
        (2001, "nbd", served.ip, 10810, "disk", 2 * MIB),
        (2002, "nbd", served.ip, 10811, "disk", 5 * MIB),
    ]
    assert {s.tls_server_name for s in prepared.sinks} == {f"db-1-disk-sink.{cluster.namespace}.nbd.ferry.invalid"}
    assert (prepared.migration, prepared.vm_id) == (MIGRATION, "vm-42")
    tls = NbdTls(directory_context(nbd_security.nbd_client_dir), prepared.sinks[0].tls_server_name)
    for sink in prepared.sinks:  # every sink takes bytes, and they land in the claim's volume
        payload = os.urandom(8192)
        async with NbdClient.connect(host=sink.host, port=sink.port, export_name=sink.export, tls=tls) as nbd:
            assert nbd.size == sink.size_bytes
            await nbd.pwrite(MIB, payload)
            await nbd.flush()
            assert await nbd.pread(MIB, len(payload)) == payload
        claim = f"db-1-disk-{prepared.sinks.index(sink)}"
        with sink_node.disk_path(cluster.namespace, claim).open("rb") as image:
            image.seek(MIB)
            assert image.read(len(payload)) == payload


def check_sink_secret_and_policy(cluster: Cluster, security: LocalSecurity) -> None:
    secret: Any = cluster.core.read_namespaced_secret("db-1-disk-sink-tls", cluster.namespace)
    assert sorted(secret.data) == ["ca-cert.pem", "server-cert.pem", "server-key.pem"]
    assert base64.b64decode(secret.data["ca-cert.pem"]) == (security.nbd_ca_dir / "ca-cert.pem").read_bytes()
    assert secret.metadata.labels["ferry.dev/vm"] == "db-1"
    assert secret.metadata.labels["app.kubernetes.io/managed-by"] == "ferry"
    policy: Any = client.NetworkingV1Api(cluster.core.api_client).read_namespaced_network_policy(
        "db-1-disk-sink", cluster.namespace
    )
    assert policy.spec.pod_selector.match_labels == {"ferry.dev/role": "disk-sink", "ferry.dev/vm": "db-1"}
    assert policy.spec.policy_types == ["Ingress"]
    (rule,) = policy.spec.ingress
    (peer,) = rule._from
    assert peer.namespace_selector.match_labels == {"kubernetes.io/metadata.name": "ferry-system"}
    assert peer.pod_selector.match_labels == {
        "app.kubernetes.io/name": "ferry",
        "app.kubernetes.io/component": "transfer",
    }
    assert [(p.protocol, p.port) for p in rule.ports] == [("TCP", 10809), ("TCP", 10810), ("TCP", 10811)]


async def test_a_sink_pod_refuses_clients_without_a_certificate_from_the_nbd_ca(
    bus: Bus,
    kube: KubeControlPlane,
    cluster: Cluster,
    sink_node: SinkNode,
    nbd_security: LocalSecurity,
    tmp_path: Path,
) -> None:
    vm = three_disk_vm(cluster.namespace)
    async with running_writer(bus, settings(nbd_security), admin(kube)) as writer:
        await writer.send(PrepareVolumes, TARGET, vm)
        prepared = await writer.next(VolumesPrepared)
    sink = prepared.sinks[1]
    with pytest.raises(NbdTlsError, match="requires TLS"):
        async with NbdClient.connect(host=sink.host, port=sink.port, export_name=sink.export, connect_timeout=5):
            pass
    impostor = Authority.create("not Ferry's NBD CA")
    issued = impostor.issue("intruder", client=True)
    (tmp_path / "cert.pem").write_bytes(issued.cert_pem)
    (tmp_path / "key.pem").write_bytes(issued.key_pem)
    context = client_context(nbd_security.nbd_client_dir / "ca-cert.pem", tmp_path / "cert.pem", tmp_path / "key.pem")
    with pytest.raises(NbdTlsError, match="did not accept this client's certificate"):
        async with NbdClient.connect(host=sink.host, port=sink.port, export_name=sink.export, connect_timeout=5,
                                     tls=NbdTls(context, sink.tls_server_name)):  # fmt: skip
            pass
    good = NbdTls(directory_context(nbd_security.nbd_client_dir), "db-2-disk-sink.other.nbd.ferry.invalid")
    with pytest.raises(NbdTlsError, match="CERTIFICATE_VERIFY_FAILED"):  # another VM's name: not this sink
        async with NbdClient.connect(host=sink.host, port=sink.port, export_name=sink.export, connect_timeout=5,
                                     tls=good):  # fmt: skip
            pass


async def test_a_redelivered_prepare_volumes_reuses_what_exists_and_answers_alike(
    bus: Bus, kube: KubeControlPlane, cluster: Cluster, sink_node: SinkNode, nbd_security: LocalSecurity
) -> None:
    vm = three_disk_vm(cluster.namespace)
    async with running_writer(bus, settings(nbd_security), admin(kube)) as writer:
        await writer.send(PrepareVolumes, TARGET, vm)
        first = await writer.next(VolumesPrepared)
        pod_uid = cluster.pod("db-1-disk-sink").metadata.uid
        claim_uid = cluster.core.read_namespaced_persistent_volume_claim("db-1-disk-1", cluster.namespace).metadata.uid
        await writer.send(PrepareVolumes, TARGET, vm)
        second = await writer.next(VolumesPrepared, after=1)
        await writer.settled()
    assert second.sinks == first.sinks
    assert second.message_id == first.message_id  # deduplicated on the stream
    assert cluster.pod("db-1-disk-sink").metadata.uid == pod_uid
    assert cluster.core.read_namespaced_persistent_volume_claim("db-1-disk-1", cluster.namespace).metadata.uid == (
        claim_uid
    )
    assert len(sink_node.pods_seen) == 1
    assert writer.of(MessageFailed) == []


async def test_create_vm_retires_the_sink_and_creates_the_virtual_machine_once(
    bus: Bus, kube: KubeControlPlane, cluster: Cluster, sink_node: SinkNode, nbd_security: LocalSecurity
) -> None:
    vm = three_disk_vm(cluster.namespace)
    async with running_writer(bus, settings(nbd_security), admin(kube)) as writer:
        await writer.send(PrepareVolumes, TARGET, vm)
        await writer.next(VolumesPrepared)
        await writer.send(CreateVm, TARGET, vm)
        created = await writer.next(VmCreated)
        stored = cluster.custom.get_namespaced_custom_object(*VMS[:2], cluster.namespace, VMS[2], "db-1")
        await writer.send(CreateVm, TARGET, vm)  # delivered twice
        await writer.next(VmCreated, after=1)
        await writer.settled()

    assert created.location == f"{cluster.namespace}/db-1"
    assert cluster.absent(cluster.pod, "db-1-disk-sink")
    await async_wait_for(until(lambda: sink_node.serving() == 0), timeout=10, what="qemu-nbd to stop")
    again = cluster.custom.get_namespaced_custom_object(*VMS[:2], cluster.namespace, VMS[2], "db-1")
    assert again["metadata"]["uid"] == stored["metadata"]["uid"]
    assert writer.of(MessageFailed) == []

    spec = stored["spec"]["template"]["spec"]
    domain = spec["domain"]
    assert stored["spec"]["runStrategy"] == "Always"
    assert domain["cpu"] == {"sockets": 2, "cores": 2, "threads": 1}
    assert domain["memory"]["guest"] == "4096Mi"
    assert domain["firmware"] == {"bootloader": {"efi": {"secureBoot": True}}}
    assert domain["features"] == {"smm": {"enabled": True}}
    assert domain["devices"]["tpm"] == {"persistent": True}
    assert [(d["name"], d["disk"]["bus"]) for d in domain["devices"]["disks"]] == [
        ("disk-0", "virtio"), ("disk-1", "sata"), ("disk-2", "scsi"),
    ]  # fmt: skip
    assert [(i["macAddress"], i["model"], "masquerade" in i) for i in domain["devices"]["interfaces"]] == [
        ("00:50:56:aa:00:01", "virtio", True),
        ("00:50:56:aa:00:02", "e1000e", False),
    ]
    assert spec["networks"] == [
        {"name": "nic-0", "pod": {}},
        {"name": "nic-1", "multus": {"networkName": f"{cluster.namespace}/vlan-10"}},
    ]
    assert spec["volumes"][2] == {"name": "disk-2", "dataVolume": {"name": "db-1-disk-2"}}
    assert stored["metadata"]["labels"]["ferry.dev/source-vm-id"] == "vm-42"


async def test_cleanup_removes_every_object_of_the_vm_and_lists_them(
    bus: Bus, kube: KubeControlPlane, cluster: Cluster, sink_node: SinkNode, nbd_security: LocalSecurity
) -> None:
    vm = three_disk_vm(cluster.namespace)
    other = three_disk_vm(cluster.namespace, name="web-2")
    ns = cluster.namespace
    async with running_writer(bus, settings(nbd_security), admin(kube)) as writer:
        await writer.send(PrepareVolumes, TARGET, vm)
        await writer.send(PrepareVolumes, TARGET, other, migration="wave-1-2")
        await writer.next(VolumesPrepared, after=1)
        await writer.send(CreateVm, TARGET, other)
        await writer.next(VmCreated)
        await writer.send(CleanupVm, TARGET, vm)  # cancelled while copying: its sink still runs
        mid_copy = await writer.next(VmCleanedUp)
        await writer.send(CleanupVm, TARGET, other)  # failed after its VM was created
        created = await writer.next(VmCleanedUp, after=1)
        await writer.send(CleanupVm, TARGET, other)
        repeated = await writer.next(VmCleanedUp, after=2)

    assert sorted(mid_copy.removed) == sorted([
        f"Pod {ns}/db-1-disk-sink", f"Secret {ns}/db-1-disk-sink-tls", f"NetworkPolicy {ns}/db-1-disk-sink",
        f"PersistentVolumeClaim {ns}/db-1-disk-0",
        f"PersistentVolumeClaim {ns}/db-1-disk-1", f"DataVolume {ns}/db-1-disk-2",
    ])  # fmt: skip
    assert sorted(created.removed) == sorted([
        f"VirtualMachine {ns}/web-2", f"PersistentVolumeClaim {ns}/web-2-disk-0",
        f"PersistentVolumeClaim {ns}/web-2-disk-1", f"DataVolume {ns}/web-2-disk-2",
    ])  # fmt: skip
    assert repeated.removed in ((), created.removed)  # nothing left, or the claims still terminating

    async def all_gone() -> bool:
        left = [p.metadata.name for p in cluster.core.list_namespaced_pod(ns).items]
        left += [c.metadata.name for c in cluster.core.list_namespaced_persistent_volume_claim(ns).items]
        ours = "app.kubernetes.io/managed-by=ferry"
        left += [s.metadata.name for s in cluster.core.list_namespaced_secret(ns, label_selector=ours).items]
        networking = client.NetworkingV1Api(cluster.core.api_client)
        left += [p.metadata.name for p in networking.list_namespaced_network_policy(ns).items]
        for group, version, plural in (VMS, DVS):
            left += [
                o["metadata"]["name"]
                for o in cluster.custom.list_namespaced_custom_object(group, version, ns, plural)["items"]
            ]
        return not left

    await async_wait_for(all_gone, timeout=10, what="every object to be gone")  # claims: once the node lets go
    assert writer.of(MessageFailed) == []


async def test_sink_pods_an_earlier_version_labelled_are_still_cleaned_up(
    bus: Bus, kube: KubeControlPlane, cluster: Cluster, nbd_security: LocalSecurity
) -> None:
    vm = three_disk_vm(cluster.namespace)
    ns = cluster.namespace
    earlier = {"app.kubernetes.io/managed-by": "ferry", "ferry.io/role": "disk-sink",
               "ferry.io/migration": "wave-1-1", "ferry.io/vm": "db-1"}  # fmt: skip
    for name in ("db-1-disk-sink", "db-1-earlier-sink"):
        pod = {"metadata": {"name": name, "labels": earlier},
               "spec": {"containers": [{"name": "disk-0", "image": SINK_IMAGE}]}}  # fmt: skip
        cluster.core.create_namespaced_pod(ns, pod)  # type: ignore[arg-type]
    async with running_writer(bus, settings(nbd_security), admin(kube)) as writer:
        await writer.send(CleanupVm, TARGET, vm)
        cleaned = await writer.next(VmCleanedUp)
    assert sorted(cleaned.removed) == [f"Pod {ns}/db-1-disk-sink", f"Pod {ns}/db-1-earlier-sink"]
    await async_wait_for(until(lambda: not cluster.core.list_namespaced_pod(ns).items), timeout=10,
                         what="the earlier version's sink pods to be gone")  # fmt: skip


async def test_objects_that_ferry_did_not_make_are_neither_taken_nor_deleted(
    bus: Bus, kube: KubeControlPlane, cluster: Cluster, nbd_security: LocalSecurity
) -> None:
    vm = three_disk_vm(cluster.namespace)
    foreign = {"metadata": {"name": "db-1-disk-1", "labels": {"app": "someone-elses"}},
               "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}  # fmt: skip
    cluster.core.create_namespaced_persistent_volume_claim(cluster.namespace, foreign)  # type: ignore[arg-type]
    async with running_writer(bus, settings(nbd_security), admin(kube)) as writer:
        await writer.send(PrepareVolumes, TARGET, vm)
        failed = await writer.failure()
        await writer.send(CleanupVm, TARGET, vm)
        cleaned = await writer.next(VmCleanedUp)
    assert failed.error_code == "volume_exists"
    assert f"PersistentVolumeClaim {cluster.namespace}/db-1-disk-1 already exists" in failed.reason
    assert failed.about == StepRef(migration=MIGRATION, vm_id="vm-42")
    assert f"PersistentVolumeClaim {cluster.namespace}/db-1-disk-1" not in cleaned.removed
    kept = cluster.core.read_namespaced_persistent_volume_claim("db-1-disk-1", cluster.namespace)
    assert kept.metadata.labels == {"app": "someone-elses"} and kept.metadata.deletion_timestamp is None


async def test_a_user_without_rights_gets_a_failure_naming_the_missing_permission(
    bus: Bus, kube: KubeControlPlane, cluster: Cluster, nbd_security: LocalSecurity
) -> None:
    user = f"writer-{secrets.token_hex(3)}"
    rules = [client.V1PolicyRule(api_groups=[""], resources=["persistentvolumeclaims"], verbs=["get"])]
    role = client.V1Role(metadata=client.V1ObjectMeta(name=user), rules=rules)
    cluster.rbac.create_namespaced_role(cluster.namespace, role)
    binding = client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name=user),
        role_ref=client.V1RoleRef(kind="Role", name=user, api_group="rbac.authorization.k8s.io"),
        subjects=[client.RbacV1Subject(kind="User", name=user, api_group="rbac.authorization.k8s.io")],
    )
    cluster.rbac.create_namespaced_role_binding(cluster.namespace, binding)
    kubeconfig = kube.user_kubeconfig(user).read_text()
    async with running_writer(bus, settings(nbd_security), {TARGET.name: kubeconfig}) as writer:
        await writer.send(PrepareVolumes, TARGET, three_disk_vm(cluster.namespace))
        failed = await writer.failure()
    assert failed.error_code == "forbidden"
    assert failed.about == StepRef(migration=MIGRATION, vm_id="vm-42")
    assert f"may not create persistentvolumeclaims in namespace '{cluster.namespace}'" in failed.reason
    assert kube.url in failed.reason
    assert "BEGIN" not in failed.reason and "client-key" not in failed.reason


async def test_the_apiserver_rejecting_a_volume_fails_with_its_reason(
    bus: Bus, kube: KubeControlPlane, cluster: Cluster, nbd_security: LocalSecurity
) -> None:
    vm = three_disk_vm(cluster.namespace)
    disk = TargetDisk(key=1, source_file="[ds] x.vmdk", capacity_bytes=MIB, storage_class="Not_A_Class!")
    bad = msgspec.structs.replace(vm, disks=(disk,))
    async with running_writer(bus, settings(nbd_security), admin(kube)) as writer:
        await writer.send(PrepareVolumes, TARGET, bad)
        failed = await writer.failure()
    assert failed.error_code == "invalid_object"
    assert f"rejected PersistentVolumeClaim {cluster.namespace}/db-1-disk-0" in failed.reason
    assert "storageClassName" in failed.reason


async def test_a_sink_pod_that_fails_fails_the_step_with_its_reason(
    bus: Bus, kube: KubeControlPlane, cluster: Cluster, nbd_security: LocalSecurity
) -> None:
    """No node here: the test plays one on which the sink pod's container crashes."""
    vm = three_disk_vm(cluster.namespace)
    async with running_writer(bus, settings(nbd_security), admin(kube)) as writer:
        await writer.send(PrepareVolumes, TARGET, vm)
        await async_wait_for(until(lambda: not cluster.absent(cluster.pod, "db-1-disk-sink")),
                             timeout=10, what="the sink pod")  # fmt: skip
        terminated = {"terminated": {"exitCode": 1, "reason": "Error", "message": "qemu-nbd: Permission denied"}}
        status = {"status": {"phase": "Failed", "containerStatuses": [
            {"name": "disk-0", "image": SINK_IMAGE, "imageID": "", "ready": False, "restartCount": 0,
             "state": terminated}]}}  # fmt: skip
        cluster.core.patch_namespaced_pod_status("db-1-disk-sink", cluster.namespace, status)
        failed = await writer.failure()
    assert failed.error_code == "sink_failed"
    assert "phase Failed" in failed.reason and "qemu-nbd: Permission denied" in failed.reason


async def test_a_sink_pod_that_never_serves_fails_the_step_at_the_deadline(
    bus: Bus, kube: KubeControlPlane, cluster: Cluster, nbd_security: LocalSecurity
) -> None:
    """No node runs the pod: it stays Pending until the writer's deadline."""
    async with running_writer(bus, settings(nbd_security, sink_ready_timeout=1.0), admin(kube)) as writer:
        await writer.send(PrepareVolumes, TARGET, three_disk_vm(cluster.namespace))
        failed = await writer.failure()
    assert failed.error_code == "sink_not_ready"
    assert "timed out after 1s waiting for the disk-sink pod to serve" in failed.reason
    assert "last seen: phase Pending" in failed.reason
    assert SINK_IMAGE in failed.reason


async def test_a_writer_without_the_nbd_ca_makes_no_sink_and_says_what_to_set(
    bus: Bus, kube: KubeControlPlane, cluster: Cluster, nbd_security: LocalSecurity
) -> None:
    async with running_writer(bus, settings(nbd_security, nbd_ca_dir=None), admin(kube)) as writer:
        await writer.send(PrepareVolumes, TARGET, three_disk_vm(cluster.namespace))
        failed = await writer.failure()
    assert failed.error_code == "nbd_tls_unconfigured"
    assert "FERRY_WRITER_NBD_CA_DIR is not set" in failed.reason
    assert cluster.absent(cluster.pod, "db-1-disk-sink")
