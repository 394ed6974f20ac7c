"""kubevirt-writer's target bodies: volume names and sizes, PVCs, DataVolumes and the
VirtualMachine (pure domain, no I/O)."""

import json
import math
import re
from typing import Any

import msgspec
import pytest

from ferry_kubevirt_writer.domain.vm_manifest import virtual_machine
from ferry_kubevirt_writer.domain.volumes import (
    MIB,
    data_volume,
    label_value,
    persistent_volume_claim,
    pvc_request_bytes,
    volume_bodies,
    volume_name,
)
from ferry_shared.target_vm import TargetDisk, TargetNic, TargetVm

GIB = 1024 * MIB
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def disk(key: int = 2000, **extra: Any) -> TargetDisk:
    fields: dict[str, Any] = {"source_file": f"[ds1] vm/vm_{key}.vmdk", "capacity_bytes": GIB, "storage_class": "fast"}
    return TargetDisk(key=key, **(fields | extra))


def target(**extra: Any) -> TargetVm:
    fields: dict[str, Any] = {
        "name": "web-1",
        "namespace": "apps",
        "source_provider": "vcenter",
        "source_vm_id": "vm-42",
        "source_vm_name": "Web 1",
        "plan": "wave-1",
        "cpu_sockets": 2,
        "cores_per_socket": 4,
        "memory_mib": 8192,
        "disks": (disk(),),
        "nics": (TargetNic(mac="00:50:56:aa:bb:01"),),
    }
    return TargetVm(**(fields | extra))


def template_spec(body: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = body["spec"]["template"]["spec"]
    return spec


# --- names and labels ---------------------------------------------------------------


def test_volume_names_are_vm_name_and_disk_index() -> None:
    assert volume_name("web-1", 0) == "web-1-disk-0"
    assert volume_name("web-1", 12) == "web-1-disk-12"


def test_long_vm_names_give_distinct_volume_names_within_63_characters() -> None:
    first, second = "a" * 60 + "-x", "a" * 60 + "-y"
    names = {volume_name(first, 3), volume_name(second, 3)}
    assert len(names) == 2
    for name in names:
        assert len(name) <= 63
        assert name.endswith("-disk-3")
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)
    assert volume_name(first, 3) == volume_name(first, 3)


def test_volume_name_rejects_a_name_that_is_not_dns1123() -> None:
    with pytest.raises(ValueError, match="DNS-1123"):
        volume_name("Web_1", 0)


@pytest.mark.parametrize("value", ["vm-42", "wave_1.a", "A", ""])
def test_valid_label_values_are_kept(value: str) -> None:
    assert label_value(value) == value


@pytest.mark.parametrize("value", ["Web 1/prod", "-lead", "trail.", "x" * 80, "ß", "a/b", "a b"])
def test_invalid_label_values_are_sanitized(value: str) -> None:
    sanitized = label_value(value)
    assert sanitized
    assert len(sanitized) <= 63
    assert LABEL_VALUE.fullmatch(sanitized)


def test_sanitized_label_values_do_not_collide() -> None:
    assert label_value("a/b") != label_value("a b")


# --- sizes --------------------------------------------------------------------------


def test_filesystem_volume_adds_cdi_overhead_rounded_to_mib() -> None:
    # CDI: aligned / (1 - 0.055), so 5.5 % of the whole volume is overhead and 1 GiB still fits.
    expected = math.ceil(GIB / (1 - 0.055) / MIB) * MIB
    assert pvc_request_bytes(GIB, "Filesystem") == expected == 1084 * MIB
    assert expected * (1 - 0.055) >= GIB


def test_unset_volume_mode_counts_as_filesystem() -> None:
    assert pvc_request_bytes(GIB, "") == pvc_request_bytes(GIB, "Filesystem")


def test_block_volume_requests_capacity_rounded_up_to_mib() -> None:
    assert pvc_request_bytes(GIB, "Block") == GIB
    assert pvc_request_bytes(GIB + 1, "Block") == GIB + MIB


def test_capacity_is_rounded_up_to_mib_before_the_overhead() -> None:
    assert pvc_request_bytes(MIB + 1, "Filesystem") == pvc_request_bytes(2 * MIB, "Filesystem")


def test_filesystem_overhead_is_configurable() -> None:
    assert pvc_request_bytes(GIB, "Filesystem", filesystem_overhead=0) == GIB
    assert pvc_request_bytes(100 * MIB, "Filesystem", filesystem_overhead=0.2) == 125 * MIB


@pytest.mark.parametrize("capacity", [0, -1])
def test_capacity_must_be_positive(capacity: int) -> None:
    with pytest.raises(ValueError, match="capacity must be more than 0"):
        pvc_request_bytes(capacity, "Block")
    with pytest.raises(ValueError, match="capacity must be more than 0"):
        persistent_volume_claim(target(disks=(disk(capacity_bytes=capacity),)), 0)
    with pytest.raises(ValueError, match="capacity must be more than 0"):
        data_volume(target(disks=(disk(capacity_bytes=capacity, use_datavolume=True),)), 0)


@pytest.mark.parametrize("overhead", [-0.1, 1.0])
def test_filesystem_overhead_must_be_a_fraction_below_one(overhead: float) -> None:
    with pytest.raises(ValueError, match="overhead"):
        pvc_request_bytes(GIB, "Filesystem", filesystem_overhead=overhead)


# --- PVCs and DataVolumes -----------------------------------------------------------


def test_pvc_body_carries_size_mode_access_class_and_labels() -> None:
    vm = target(disks=(disk(volume_mode="Filesystem", access_mode="ReadWriteMany"),), plan="Wave 1")
    body = persistent_volume_claim(vm, 0)
    assert body["apiVersion"] == "v1"
    assert body["kind"] == "PersistentVolumeClaim"
    assert body["metadata"]["name"] == "web-1-disk-0"
    assert body["metadata"]["namespace"] == "apps"
    labels = body["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "ferry"
    assert labels["ferry.dev/source-vm"] == "vm-42"
    assert labels["ferry.dev/plan"] == label_value("Wave 1")
    assert body["spec"] == {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": "1084Mi"}},
        "volumeMode": "Filesystem",
        "storageClassName": "fast",
    }


def test_pvc_leaves_unset_volume_mode_and_storage_class_to_the_cluster() -> None:
    body = persistent_volume_claim(target(disks=(disk(storage_class="", volume_mode=""),)), 0)
    assert "volumeMode" not in body["spec"]
    assert "storageClassName" not in body["spec"]


def test_pvc_needs_an_access_mode() -> None:
    with pytest.raises(ValueError, match="access mode"):
        persistent_volume_claim(target(disks=(disk(access_mode=""),)), 0)


def test_unknown_volume_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="volume mode"):
        persistent_volume_claim(target(disks=(disk(volume_mode="Raw"),)), 0)


def test_datavolume_is_blank_and_requests_the_capacity_leaving_overhead_to_cdi() -> None:
    vm = target(disks=(disk(capacity_bytes=GIB + 1, volume_mode="Block", use_datavolume=True),))
    body = data_volume(vm, 0)
    assert body["apiVersion"] == "cdi.kubevirt.io/v1beta1"
    assert body["kind"] == "DataVolume"
    assert body["metadata"]["name"] == "web-1-disk-0"
    assert body["spec"] == {
        "source": {"blank": {}},
        "storage": {
            "resources": {"requests": {"storage": "1025Mi"}},
            "accessModes": ["ReadWriteOnce"],
            "volumeMode": "Block",
            "storageClassName": "fast",
        },
    }


def test_volume_bodies_follow_each_disks_choice_in_order() -> None:
    vm = target(disks=(disk(1), disk(2, use_datavolume=True), disk(3)))
    bodies = volume_bodies(vm)
    assert [b["kind"] for b in bodies] == ["PersistentVolumeClaim", "DataVolume", "PersistentVolumeClaim"]
    assert [b["metadata"]["name"] for b in bodies] == ["web-1-disk-0", "web-1-disk-1", "web-1-disk-2"]


# --- the VirtualMachine -------------------------------------------------------------


def test_vm_metadata_has_sanitized_labels_and_raw_source_annotations() -> None:
    body = virtual_machine(target(source_vm_name="Web 1 (prod)/eu", source_provider="vcenter", plan="wave-1"))
    assert body["apiVersion"] == "kubevirt.io/v1"
    assert body["kind"] == "VirtualMachine"
    metadata = body["metadata"]
    assert (metadata["name"], metadata["namespace"]) == ("web-1", "apps")
    assert metadata["labels"] == {
        "app.kubernetes.io/managed-by": "ferry",
        "ferry.dev/plan": "wave-1",
        "ferry.dev/source-provider": "vcenter",
        "ferry.dev/source-vm-id": "vm-42",
    }
    assert metadata["annotations"]["ferry.dev/source-vm-name"] == "Web 1 (prod)/eu"
    assert metadata["annotations"]["ferry.dev/source-provider"] == "vcenter"


def test_vm_label_values_are_sanitized() -> None:
    body = virtual_machine(target(source_vm_id="datacenter-1/vm 42", source_provider="VC prod!", plan="p" * 70))
    for value in body["metadata"]["labels"].values():
        assert len(value) <= 63
        assert LABEL_VALUE.fullmatch(value)
    assert body["metadata"]["annotations"]["ferry.dev/source-vm-id"] == "datacenter-1/vm 42"


@pytest.mark.parametrize(("run", "strategy"), [(True, "Always"), (False, "Halted")])
def test_run_strategy_follows_source_power_state(run: bool, strategy: str) -> None:
    assert virtual_machine(target(run=run))["spec"]["runStrategy"] == strategy


def test_cpu_and_memory() -> None:
    domain = template_spec(virtual_machine(target()))["domain"]
    assert domain["cpu"] == {"sockets": 2, "cores": 4, "threads": 1}
    assert domain["memory"] == {"guest": "8192Mi"}
    assert domain["resources"] == {"requests": {"memory": "8192Mi"}}
    assert "machine" not in domain


def test_bios_firmware() -> None:
    domain = template_spec(virtual_machine(target(firmware="bios")))["domain"]
    assert domain["firmware"] == {"bootloader": {"bios": {}}}
    assert "features" not in domain
    assert "tpm" not in domain["devices"]


def test_efi_without_secure_boot_says_so_explicitly() -> None:
    # KubeVirt's EFI default is secure boot on, so "off" must be written out.
    domain = template_spec(virtual_machine(target(firmware="efi")))["domain"]
    assert domain["firmware"] == {"bootloader": {"efi": {"secureBoot": False}}}
    assert "features" not in domain


def test_efi_secure_boot_enables_smm() -> None:
    domain = template_spec(virtual_machine(target(firmware="efi", secure_boot=True)))["domain"]
    assert domain["firmware"] == {"bootloader": {"efi": {"secureBoot": True}}}
    assert domain["features"] == {"smm": {"enabled": True}}


def test_vtpm_is_persistent() -> None:
    domain = template_spec(virtual_machine(target(firmware="efi", vtpm=True)))["domain"]
    assert domain["devices"]["tpm"] == {"persistent": True}


def test_secure_boot_without_efi_is_rejected() -> None:
    with pytest.raises(ValueError, match="secure boot needs EFI"):
        virtual_machine(target(firmware="bios", secure_boot=True))


def test_disks_keep_source_order_and_bus_and_the_first_boots() -> None:
    vm = target(disks=(disk(1, bus="sata"), disk(2, bus="virtio", use_datavolume=True), disk(3, bus="scsi")))
    spec = template_spec(virtual_machine(vm))
    assert spec["domain"]["devices"]["disks"] == [
        {"name": "disk-0", "disk": {"bus": "sata"}, "bootOrder": 1},
        {"name": "disk-1", "disk": {"bus": "virtio"}},
        {"name": "disk-2", "disk": {"bus": "scsi"}},
    ]
    assert spec["volumes"] == [
        {"name": "disk-0", "persistentVolumeClaim": {"claimName": "web-1-disk-0"}},
        {"name": "disk-1", "dataVolume": {"name": "web-1-disk-1"}},
        {"name": "disk-2", "persistentVolumeClaim": {"claimName": "web-1-disk-2"}},
    ]


def test_volumes_reference_the_names_volume_bodies_create() -> None:
    vm = target(disks=(disk(1), disk(2, use_datavolume=True)))
    created = [b["metadata"]["name"] for b in volume_bodies(vm)]
    referenced = [v.get("persistentVolumeClaim", {}).get("claimName") or v["dataVolume"]["name"]
                  for v in template_spec(virtual_machine(vm))["volumes"]]  # fmt: skip
    assert referenced == created


def test_pod_nic_is_masqueraded_and_multus_nic_bridged() -> None:
    nics = (
        TargetNic(mac="00:50:56:aa:bb:01", model="e1000e"),
        TargetNic(mac="00:50:56:aa:bb:02", destination="multus", nad="net/vlan-10"),
    )
    spec = template_spec(virtual_machine(target(nics=nics)))
    assert spec["domain"]["devices"]["interfaces"] == [
        {"name": "nic-0", "macAddress": "00:50:56:aa:bb:01", "model": "e1000e", "masquerade": {}},
        {"name": "nic-1", "macAddress": "00:50:56:aa:bb:02", "model": "virtio", "bridge": {}},
    ]
    assert spec["networks"] == [
        {"name": "nic-0", "pod": {}},
        {"name": "nic-1", "multus": {"networkName": "net/vlan-10"}},
    ]


def test_vm_without_nics_has_no_networks() -> None:
    spec = template_spec(virtual_machine(target(nics=())))
    assert spec["networks"] == []
    assert spec["domain"]["devices"]["interfaces"] == []


def test_more_than_one_pod_nic_is_rejected() -> None:
    nics = (TargetNic(mac="00:50:56:aa:bb:01"), TargetNic(mac="00:50:56:aa:bb:02"))
    with pytest.raises(ValueError, match="at most one NIC can be on the pod network"):
        virtual_machine(target(nics=nics))


@pytest.mark.parametrize("nad", ["", "vlan-10", "/vlan-10", "net/"])
def test_multus_nic_needs_a_namespaced_nad(nad: str) -> None:
    with pytest.raises(ValueError, match="namespace/name"):
        virtual_machine(target(nics=(TargetNic(mac="00:50:56:aa:bb:01", destination="multus", nad=nad),)))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"name": "Web_1"}, "DNS-1123"),
        ({"namespace": ""}, "namespace"),
        ({"memory_mib": 0}, "memory"),
        ({"cpu_sockets": 0}, "sockets"),
        ({"disks": (disk(bus="ide"),)}, "bus"),
        ({"nics": (TargetNic(mac="00:50:56:aa:bb:01", model="vmxnet3"),)}, "model"),  # type: ignore[arg-type]
    ],
)
def test_invalid_targets_are_rejected(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        virtual_machine(target(**extra))


def test_bodies_are_plain_json() -> None:
    vm = target(disks=(disk(1), disk(2, use_datavolume=True)))
    for body in [virtual_machine(vm), *volume_bodies(vm)]:
        assert json.loads(json.dumps(body)) == body


def test_target_vm_round_trips_through_msgspec() -> None:
    vm = target(firmware="efi", secure_boot=True, disks=(disk(1, bus="scsi", volume_mode="Block"),))
    assert msgspec.json.decode(msgspec.json.encode(vm), type=TargetVm) == vm
