"""Which objects on a target the kubevirt-writer takes as its own (and so may reuse or
delete): those it labelled today, and disk-sink pods labelled by earlier versions
(``ferry.io/...``). Pure checks, and cleanup over a hand-written fake cluster."""

from dataclasses import dataclass, field
from typing import Any, cast

import msgspec

from ferry_kubevirt_writer.adapters.kubernetes.objects import Body, Cluster
from ferry_kubevirt_writer.adapters.kubernetes.resources import PODS, Resource
from ferry_kubevirt_writer.adapters.kubernetes.writer import KubernetesTargetWriter
from ferry_kubevirt_writer.domain.ownership import sink_is_ours, sink_migration, sink_selectors
from ferry_kubevirt_writer.domain.sink_names import sink_labels
from ferry_shared.target_vm import TargetDisk, TargetVm

VM = TargetVm(
    name="web-1", namespace="apps", source_provider="vc", source_vm_id="vm-42", source_vm_name="Web 1", plan="p1",
    memory_mib=1024, disks=(TargetDisk(key=2000, source_file="a.vmdk", capacity_bytes=1024 * 1024),),
)  # fmt: skip
EARLIER = {  # what versions before the one label prefix put on a sink pod
    "app.kubernetes.io/managed-by": "ferry",
    "ferry.io/role": "disk-sink",
    "ferry.io/migration": "wave-1-1",
    "ferry.io/vm": "web-1",
}


def test_a_sink_pod_labelled_today_is_ours_with_its_migration() -> None:
    labels = sink_labels("wave-1-2", VM)
    assert {key for key in labels if key.startswith("ferry.")} == {"ferry.dev/role", "ferry.dev/migration",
                                                                   "ferry.dev/vm"}  # fmt: skip
    assert sink_is_ours(labels, VM)
    assert sink_migration(labels) == "wave-1-2"


def test_a_sink_pod_labelled_by_an_earlier_version_is_still_ours() -> None:
    assert sink_is_ours(EARLIER, VM)
    assert sink_migration(EARLIER) == "wave-1-1"
    assert not sink_is_ours(EARLIER, msgspec.structs.replace(VM, name="web-2"))


def test_a_pod_that_is_not_a_ferry_sink_for_the_vm_is_not_ours() -> None:
    assert not sink_is_ours(None, VM)
    assert not sink_is_ours({"ferry.io/vm": "web-1"}, VM)
    assert not sink_is_ours({"ferry.dev/role": "disk-sink", "ferry.io/vm": "web-2"}, VM)
    assert not sink_is_ours({"role": "disk-sink", "vm": "web-1"}, VM)
    assert sink_migration({"migration": "wave-1-1"}) == ""


def test_sink_pods_are_looked_for_under_both_label_prefixes() -> None:
    assert sink_selectors(VM) == (
        "ferry.dev/role=disk-sink,ferry.dev/vm=web-1",
        "ferry.io/role=disk-sink,ferry.io/vm=web-1",
    )


def _matches(body: Body, selector: str) -> bool:
    labels = body["metadata"].get("labels") or {}
    return all(labels.get(key) == value for key, _, value in (term.partition("=") for term in selector.split(",")))


@dataclass
class FakeCluster:
    """Pods by name in one namespace; other resources hold nothing."""

    pods: dict[str, Body] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    server: str = "https://fake"

    def add_pod(self, name: str, labels: dict[str, str]) -> None:
        self.pods[name] = {"metadata": {"name": name, "uid": f"uid-{name}", "labels": labels}}

    async def get(self, resource: Resource, namespace: str, name: str) -> Body | None:
        return self.pods.get(name) if resource == PODS else None

    async def find(self, resource: Resource, namespace: str, label_selector: str) -> list[Body]:
        return [pod for pod in self.pods.values() if _matches(pod, label_selector)] if resource == PODS else []

    async def delete(self, resource: Resource, namespace: str, name: str, uid: str = "") -> bool:
        found: Any = self.pods.pop(name, None) if resource == PODS else None
        if found is not None:
            self.deleted.append(name)
        return found is not None


async def test_cleanup_deletes_sink_pods_of_both_versions_and_nothing_else() -> None:
    cluster = FakeCluster()
    cluster.add_pod("web-1-disk-sink", sink_labels("wave-1-2", VM))
    cluster.add_pod("web-1-sink-from-before", EARLIER)
    cluster.add_pod("someone-elses", {"ferry.io/role": "disk-sink", "ferry.io/vm": "web-2"})
    writer = KubernetesTargetWriter(cast(Cluster, cluster), sink_image="img", sink_ready_timeout=1)

    removed = await writer.cleanup_vm("wave-1-2", VM)

    assert removed == ("Pod apps/web-1-disk-sink", "Pod apps/web-1-sink-from-before")
    assert sorted(cluster.deleted) == ["web-1-disk-sink", "web-1-sink-from-before"]
    assert list(cluster.pods) == ["someone-elses"]
