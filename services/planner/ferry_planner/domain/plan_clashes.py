"""Checks between the VMs of one plan: two VMs that would share a MAC address or a name on
the target. Pure; :func:`~ferry_planner.domain.plan_validation.validate_plan` calls
:func:`clashes` with the plan's resolved VMs (each once) and adds what it finds to each VM's
concerns, so both VMs of a clash name the other.
"""

from collections.abc import Callable, Mapping, Sequence

from ferry_shared.inventory import VmRecord
from ferry_shared.plans import Category, Concern


def _shown(vm: VmRecord) -> str:
    return f"'{vm.name}' ({vm.id})"


def _others(vms: Sequence[VmRecord]) -> Mapping[str, list[VmRecord]]:
    """Each VM's id → the other VMs of ``vms``."""
    return {vm.id: [other for other in vms if other.id != vm.id] for vm in vms}


def _by_mac(vms: Sequence[VmRecord]) -> dict[str, list[VmRecord]]:
    owners: dict[str, list[VmRecord]] = {}
    for vm in vms:
        for mac in sorted({nic.mac.lower() for nic in vm.nics if nic.mac}):
            owners.setdefault(mac, []).append(vm)
    return owners


def _by_target_name(vms: Sequence[VmRecord], target_names: Mapping[str, str]) -> dict[str, list[VmRecord]]:
    owners: dict[str, list[VmRecord]] = {}
    for vm in vms:
        if name := target_names.get(vm.id, ""):
            owners.setdefault(name, []).append(vm)
    return owners


def clashes(vms: Sequence[VmRecord], target_names: Mapping[str, str]) -> dict[str, list[Concern]]:
    """VM id → Critical concerns naming the other VMs of the plan it clashes with.

    ``vms`` are distinct VMs (a VM listed twice is the plan's ``DuplicateVM`` condition, not
    a clash with itself); ``target_names`` maps their ids to their names on the target.
    """
    found: dict[str, list[Concern]] = {}

    def add(groups: Mapping[str, list[VmRecord]], concern: Callable[[str, str], Concern]) -> None:
        for value, owners in groups.items():
            if len(owners) < 2:
                continue
            for vm, others in _others(owners).items():
                found.setdefault(vm, []).append(concern(value, ", ".join(_shown(other) for other in others)))

    add(_by_mac(vms), lambda mac, names: Concern(
        id="vm.mac.duplicate",
        category=Category.CRITICAL,
        label="MAC address shared with another VM of the plan",
        assessment=f"MAC {mac} is also on VM {names} in this plan; both would be created with it. "
        "Change the MAC of one in vSphere, or move one to another plan",
    ))  # fmt: skip
    add(_by_target_name(vms, target_names), lambda name, names: Concern(
        id="vm.target_name.duplicate",
        category=Category.CRITICAL,
        label="Target name shared with another VM of the plan",
        assessment=f"VM {names} of this plan would also be created as '{name}'; give one another "
        "target name (--vm NAME:TARGET_NAME)",
    ))  # fmt: skip
    return found


def shared_macs(vms: Sequence[VmRecord]) -> list[str]:
    """The MAC addresses more than one of ``vms`` has (lower case, sorted)."""
    return sorted(mac for mac, owners in _by_mac(vms).items() if len(owners) > 1)
