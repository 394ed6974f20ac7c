"""Ferry's ownership marker of a local-target VM directory, the local counterpart of the
labels on Kubernetes objects (:mod:`.ownership`).

PrepareVolumes writes ``.ferry-owner.json`` into the ``<namespace>/<vm>`` directory it
takes, naming the migration, and records in it every file and directory Ferry creates
there *before* creating it. CleanupVm deletes exactly what the marker records, and only
when the marker names the migration being cleaned up; a directory without a marker, or
with another migration's, is someone else's. Pure: the adapter reads and writes it.
"""

import msgspec

from ferry_shared.target_vm import TargetVm

MARKER_FILE = ".ferry-owner.json"


class OwnerMarker(msgspec.Struct, frozen=True, kw_only=True):
    """Who made a VM directory, and what Ferry created in it (names relative to the
    target's root; files relative to the VM directory)."""

    migration: str
    source_vm_id: str
    plan: str
    files: tuple[str, ...] = ()
    created_dirs: tuple[str, ...] = ()  # deepest first: "<ns>/<vm>", then "<ns>" if Ferry made it


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(OwnerMarker)


def new_marker(migration: str, vm: TargetVm, created_dirs: tuple[str, ...]) -> OwnerMarker:
    return OwnerMarker(migration=migration, source_vm_id=vm.source_vm_id, plan=vm.plan, created_dirs=created_dirs)


def with_files(marker: OwnerMarker, names: tuple[str, ...]) -> OwnerMarker:
    """``marker`` also recording ``names`` (kept once each, in order)."""
    files = tuple(dict.fromkeys((*marker.files, *names)))
    return msgspec.structs.replace(marker, files=files)


def encode(marker: OwnerMarker) -> bytes:
    return _encoder.encode(marker)


def decode(data: bytes) -> OwnerMarker | None:
    """The marker in ``data``, or ``None`` when it is not one (then nobody proves ownership)."""
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError:
        return None


def owned_by(marker: OwnerMarker | None, migration: str, vm: TargetVm) -> bool:
    """Whether ``marker`` proves the directory is this migration's, for this VM."""
    return marker is not None and marker.migration == migration and marker.source_vm_id == vm.source_vm_id


def is_plain_name(name: str) -> bool:
    """A recorded file name Ferry may delete: one path component, never a way out."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\0" not in name


def refusal(marker: OwnerMarker | None, directory: str, migration: str) -> str:
    """Why ``directory`` cannot be taken by ``migration``."""
    if marker is None:
        return (
            f"the target directory {directory} already exists and holds files Ferry did not create; "
            "move it away, or give the VM another target name or namespace"
        )
    return (
        f"the target directory {directory} already holds VM '{marker.source_vm_id}' of migration "
        f"'{marker.migration}' (plan '{marker.plan}'), not of migration '{migration}'; delete or move it, "
        "or give the VM another target name or namespace"
    )
