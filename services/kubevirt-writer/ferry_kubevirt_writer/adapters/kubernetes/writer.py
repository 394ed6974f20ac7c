"""The :class:`~ferry_kubevirt_writer.domain.ports.TargetWriter` of a Kubernetes cluster
with KubeVirt (and CDI for DataVolumes), made for providers of type ``kubernetes``.

PrepareVolumes creates a PVC or blank DataVolume per disk, the sink's TLS Secret (a server
certificate from Ferry's NBD CA) and NetworkPolicy (only transfer pods may connect), and
one disk-sink pod that serves every disk over NBD with TLS
(:mod:`~ferry_kubevirt_writer.domain.sink_pod`), then follows the pod with a watch until it
serves. CreateVm removes the sink (pod, Secret, policy) and creates the VirtualMachine.
CleanupVm deletes all of them. Every object has a deterministic name:
a taken name is accepted when the object's labels say Ferry made it for this VM, and
refused otherwise; cleanup deletes only such objects.
"""

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from ferry_kubevirt_writer.adapters.kubernetes.objects import Body, Cluster
from ferry_kubevirt_writer.adapters.kubernetes.pod_watch import pod_states
from ferry_kubevirt_writer.adapters.kubernetes.resources import (
    BY_KIND,
    DATA_VOLUMES,
    NETWORK_POLICIES,
    PODS,
    PVCS,
    SECRETS,
    VIRTUAL_MACHINES,
    Resource,
)
from ferry_kubevirt_writer.adapters.sink_certificates import SinkCertificates
from ferry_kubevirt_writer.domain.ownership import (
    sink_guard_is_ours,
    sink_is_ours,
    sink_migration,
    sink_selectors,
    vm_is_ours,
    volume_is_ours,
)
from ferry_kubevirt_writer.domain.sink_names import sink_pod_name
from ferry_kubevirt_writer.domain.sink_network import sink_network_policy, sink_policy_name
from ferry_kubevirt_writer.domain.sink_pod import (
    Broken,
    Gone,
    Serving,
    SinkState,
    Starting,
    disk_sinks,
    sink_pod,
    sink_state,
)
from ferry_kubevirt_writer.domain.sink_tls import sink_secret, sink_secret_name, sink_server_name
from ferry_kubevirt_writer.domain.vm_manifest import virtual_machine
from ferry_kubevirt_writer.domain.volumes import label_value, volume_bodies, volume_name
from ferry_shared.errors import PermanentError, TemporaryError
from ferry_shared.migrations import SinkLocation
from ferry_shared.target_vm import TargetVm

Owned = Callable[[Mapping[str, str] | None, TargetVm], bool]
RACE_DELAY = 2.0


def _labels(body: Body) -> dict[str, str]:
    labels: dict[str, str] = (body.get("metadata") or {}).get("labels") or {}
    return labels


def _terminating(body: Body) -> bool:
    return bool((body.get("metadata") or {}).get("deletionTimestamp"))


class KubernetesTargetWriter:
    """Writes VMs to one cluster."""

    def __init__(
        self,
        cluster: Cluster,
        *,
        sink_image: str,
        sink_ready_timeout: float,
        certificates: SinkCertificates | None = None,
        transfer_namespace: str = "ferry",
    ) -> None:
        self._cluster = cluster
        self._sink_image = sink_image
        self._ready_timeout = sink_ready_timeout
        self._certificates = certificates
        self._transfer_namespace = transfer_namespace

    def __repr__(self) -> str:
        return f"KubernetesTargetWriter({self._cluster.server!r})"

    # ── PrepareVolumes ──────────────────────────────────────────────────────────────

    async def prepare_volumes(self, migration: str, vm: TargetVm) -> tuple[SinkLocation, ...]:
        for body in volume_bodies(vm):
            await self._ensure_volume(vm, body)
        if not vm.disks:
            return ()
        await self._ensure_guard(migration, vm, SECRETS, self._secret(migration, vm))
        await self._ensure_guard(
            migration, vm, NETWORK_POLICIES,
            sink_network_policy(migration, vm, transfer_namespace=self._transfer_namespace),
        )  # fmt: skip
        await self._ensure_sink(migration, vm)
        return disk_sinks(vm, await self._serving(vm))

    def _secret(self, migration: str, vm: TargetVm) -> Body:
        if self._certificates is None:
            raise PermanentError(
                "nbd_tls_unconfigured",
                "FERRY_WRITER_NBD_CA_DIR is not set: the writer has no NBD CA to give the disk-sink pod its TLS "
                "certificate; mount the NBD CA (ca-cert.pem, ca-key.pem) and set it",
            )
        issued = self._certificates.issue(sink_server_name(vm))
        return sink_secret(migration, vm, ca_pem=issued.ca_pem, cert_pem=issued.cert_pem, key_pem=issued.key_pem)

    async def _ensure_guard(self, migration: str, vm: TargetVm, resource: Resource, body: Body) -> None:
        """Create the sink's Secret or NetworkPolicy; keep one this migration made (a
        redelivery), replace one an earlier migration made, refuse someone else's."""
        existing = await self._create_or_get(resource, vm.namespace, body)
        if existing is None:
            return
        name = str(body["metadata"]["name"])
        if not sink_guard_is_ours(_labels(existing), vm):
            raise PermanentError(
                f"{resource.plural[:-1]}_exists",
                f"{resource.kind} {vm.namespace}/{name} already exists and is not Ferry's for the disk sink of VM "
                f"'{vm.name}'; delete it, or give the VM another target name or namespace",
            )
        if sink_migration(_labels(existing)) == label_value(migration) and not _terminating(existing):
            return
        await self._cluster.delete(resource, vm.namespace, name, uid=existing["metadata"]["uid"])
        if await self._cluster.create(resource, vm.namespace, body) is None:
            raise TemporaryError(
                "object_exists", f"{resource.kind} {vm.namespace}/{name} is still being replaced", delay=RACE_DELAY
            )

    async def _ensure_volume(self, vm: TargetVm, body: Body) -> None:
        resource = BY_KIND[body["kind"]]
        existing = await self._create_or_get(resource, vm.namespace, body)
        if existing is None:
            return
        where = f"{resource.kind} {vm.namespace}/{body['metadata']['name']}"
        if not volume_is_ours(_labels(existing), vm):
            raise PermanentError(
                "volume_exists",
                f"{where} already exists and was not made by Ferry for source VM '{vm.source_vm_id}'; "
                "delete it, or give the VM another target name or namespace",
            )
        if _terminating(existing):
            raise TemporaryError("volume_terminating", f"{where} is still being deleted; trying again", delay=5)

    async def _create_or_get(self, resource: Resource, namespace: str, body: Body) -> Body | None:
        """None when ``body`` was created; else the object that already had its name."""
        if await self._cluster.create(resource, namespace, body) is not None:
            return None
        name = str(body["metadata"]["name"])
        existing = await self._cluster.get(resource, namespace, name)
        if existing is None:
            raise TemporaryError(
                "object_vanished",
                f"{resource.kind} {namespace}/{name} was deleted while being created",
                delay=RACE_DELAY,
            )
        return existing

    async def _ensure_sink(self, migration: str, vm: TargetVm) -> None:
        body = sink_pod(migration, vm, self._sink_image)
        existing = await self._create_or_get(PODS, vm.namespace, body)
        if existing is None:
            return
        name = sink_pod_name(vm.name)
        if not sink_is_ours(_labels(existing), vm):
            raise PermanentError(
                "pod_exists",
                f"pod {vm.namespace}/{name} already exists and is not Ferry's disk sink for VM '{vm.name}'; "
                "delete it, or give the VM another target name or namespace",
            )
        if sink_migration(_labels(existing)) == label_value(migration) and not _terminating(existing):
            return  # a redelivery: the pod made the first time serves this migration
        await self._cluster.delete(PODS, vm.namespace, name, uid=existing["metadata"]["uid"])
        await self._until(vm, lambda state: isinstance(state, Gone), "the earlier disk-sink pod to go", "")
        if await self._cluster.create(PODS, vm.namespace, body) is None:
            raise TemporaryError(
                "pod_exists", f"pod {vm.namespace}/{name} was created again meanwhile", delay=RACE_DELAY
            )

    async def _serving(self, vm: TargetVm) -> str:
        """The sink pod's IP once it is Running and Ready."""
        hint = f"; check that its volumes can bind and its image {self._sink_image} can be pulled"
        state = await self._until(vm, lambda state: not isinstance(state, Starting), "the disk-sink pod to serve", hint)
        where = f"disk-sink pod {vm.namespace}/{sink_pod_name(vm.name)}"
        if isinstance(state, Serving):
            return state.pod_ip
        if isinstance(state, Broken):
            raise PermanentError(
                "sink_failed",
                f"the {where} failed: {state.why}; see `kubectl describe pod` and `kubectl logs` for it",
            )
        raise TemporaryError("sink_gone", f"the {where} went away ({state.why}); it is made again", delay=RACE_DELAY)

    async def _until(self, vm: TargetVm, done: Callable[[SinkState], bool], what: str, hint: str) -> SinkState:
        """Follow the sink pod until ``done`` accepts its state, for at most the sink deadline
        (then fail saying ``what`` did not happen, its last state and the ``hint``)."""
        name = sink_pod_name(vm.name)
        state: SinkState = Starting("no state seen yet")
        try:
            async with asyncio.timeout(self._ready_timeout), pod_states(self._cluster, vm.namespace, name) as states:
                async for pod in states:
                    state = sink_state(pod)
                    if done(state):
                        return state
        except TimeoutError:
            raise PermanentError(
                "sink_not_ready",
                f"timed out after {self._ready_timeout:.0f}s waiting for {what} ({vm.namespace}/{name}); "
                f"last seen: {state.why}{hint}",
            ) from None
        raise TemporaryError("watch_ended", f"the watch of pod {vm.namespace}/{name} ended", delay=RACE_DELAY)

    # ── CreateVm ────────────────────────────────────────────────────────────────────

    async def create_vm(self, migration: str, vm: TargetVm) -> str:
        body = virtual_machine(vm)
        await self._remove_sinks(vm)
        existing = await self._create_or_get(VIRTUAL_MACHINES, vm.namespace, body)
        if existing is not None and not vm_is_ours(_labels(existing), vm):
            raise PermanentError(
                "vm_exists",
                f"VirtualMachine {vm.namespace}/{vm.name} already exists and was not made by Ferry from source VM "
                f"'{vm.source_vm_id}'; delete it, or give the VM another target name or namespace",
            )
        return f"{vm.namespace}/{vm.name}"

    # ── CleanupVm ───────────────────────────────────────────────────────────────────

    async def cleanup_vm(self, migration: str, vm: TargetVm) -> tuple[str, ...]:
        removed = []
        if await self._delete_if_ours(VIRTUAL_MACHINES, vm, vm.name, vm_is_ours):
            removed.append(f"VirtualMachine {vm.namespace}/{vm.name}")
        removed += await self._remove_sinks(vm)
        for index in range(len(vm.disks)):
            name = volume_name(vm.name, index)
            for resource in (DATA_VOLUMES, PVCS):  # a DataVolume's PVC has its name
                if await self._delete_if_ours(resource, vm, name, volume_is_ours):
                    removed.append(f"{resource.kind} {vm.namespace}/{name}")
        return tuple(removed)

    async def _remove_sinks(self, vm: TargetVm) -> list[str]:
        """Delete the VM's sink pods (by name, and any other by label, today's or an
        earlier version's), then its TLS Secret and NetworkPolicy; what was deleted."""
        names = {sink_pod_name(vm.name)}
        for selector in sink_selectors(vm):
            names |= {str(pod["metadata"]["name"]) for pod in await self._cluster.find(PODS, vm.namespace, selector)}
        removed = [
            f"Pod {vm.namespace}/{name}"
            for name in sorted(names)
            if await self._delete_if_ours(PODS, vm, name, sink_is_ours)
        ]
        for resource, name in ((SECRETS, sink_secret_name(vm)), (NETWORK_POLICIES, sink_policy_name(vm))):
            if await self._delete_if_ours(resource, vm, name, sink_guard_is_ours):
                removed.append(f"{resource.kind} {vm.namespace}/{name}")
        return removed

    async def _delete_if_ours(self, resource: Resource, vm: TargetVm, name: str, owned: Owned) -> bool:
        found: Any = await self._cluster.get(resource, vm.namespace, name)
        if found is None or not owned(_labels(found), vm):
            return False
        return await self._cluster.delete(resource, vm.namespace, name, uid=found["metadata"]["uid"])
