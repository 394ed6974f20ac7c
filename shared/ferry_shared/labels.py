"""The labels and annotations Ferry puts on the objects it creates on a target.

Labels decide what Ferry takes as its own and may delete, so every builder (the
kubevirt-writer's VirtualMachine, volume and disk-sink pod bodies) and every ownership
check takes its keys from here. Every key Ferry owns has the one prefix ``ferry.dev/``.

Earlier versions labelled disk-sink pods ``ferry.io/role``, ``ferry.io/migration`` and
``ferry.io/vm``; :func:`label_of` and :func:`selectors` also read those keys, so the
objects they made are still recognised (and cleaned up) as Ferry's. Pure.
"""

from collections.abc import Mapping

PREFIX = "ferry.dev/"

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_FERRY: Mapping[str, str] = {MANAGED_BY: "ferry"}
"""On every object Ferry creates (the Kubernetes recommended label)."""

# ── labels (values made label-safe) ─────────────────────────────────────────────────
PLAN = f"{PREFIX}plan"
"""Volumes and VirtualMachines: the plan the VM was migrated by."""
SOURCE_VM = f"{PREFIX}source-vm"
"""Volumes: the source VM's id."""
SOURCE_VM_ID = f"{PREFIX}source-vm-id"
"""VirtualMachines: the source VM's id (also an annotation, verbatim)."""
SOURCE_PROVIDER = f"{PREFIX}source-provider"
"""VirtualMachines: the source provider (also an annotation, verbatim)."""
ROLE = f"{PREFIX}role"
"""Disk-sink pods: :data:`SINK_ROLE`."""
MIGRATION = f"{PREFIX}migration"
"""Disk-sink pods: the migration they serve (also an annotation, verbatim)."""
VM = f"{PREFIX}vm"
"""Disk-sink pods: the target VM's name."""

SINK_ROLE = "disk-sink"

# ── annotations (values verbatim) ───────────────────────────────────────────────────
SOURCE_FILE = f"{PREFIX}source-file"
"""Volumes: the source disk's file."""
SOURCE_VM_NAME = f"{PREFIX}source-vm-name"
"""VirtualMachines: the source VM's name."""

LEGACY_KEYS: Mapping[str, str] = {
    ROLE: "ferry.io/role",
    MIGRATION: "ferry.io/migration",
    VM: "ferry.io/vm",
}
"""Today's key → the key earlier versions put on disk-sink pods for it."""


def label_of(labels: Mapping[str, str] | None, key: str) -> str | None:
    """The value of label ``key``, or of the key earlier versions used for it; None when
    the object has neither."""
    labels = labels or {}
    if key in labels:
        return labels[key]
    legacy = LEGACY_KEYS.get(key)
    return labels.get(legacy) if legacy is not None else None


def selectors(wanted: Mapping[str, str]) -> tuple[str, ...]:
    """The label selectors that together find every object labelled ``wanted`` (key →
    value): one with today's keys and, when any key was named differently before, one
    with the earlier keys."""
    current = _selector(wanted)
    legacy = _selector({LEGACY_KEYS.get(key, key): value for key, value in wanted.items()})
    return (current,) if legacy == current else (current, legacy)


def _selector(wanted: Mapping[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in wanted.items())
