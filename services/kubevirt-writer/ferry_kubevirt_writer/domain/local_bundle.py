"""What a local-directory target holds for one VM, as ``virt-v2v -o kubevirt`` leaves it:
a raw image per disk, the volumes and VirtualMachine manifests, and a README saying
how to import them into a cluster.

Called by the local target adapter for file names and the README text. Pure.
"""

from collections.abc import Sequence
from typing import Any

from ferry_shared.target_vm import TargetVm

VM_FILE = "virtualmachine.yaml"
VOLUMES_FILE = "volumes.yaml"
README_FILE = "README.md"


def disk_file(index: int) -> str:
    """The raw image of disk ``index``: ``disk-<index>.raw``."""
    return f"disk-{index}.raw"


def _requested(body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The storage part of a PVC or DataVolume body, and its requested size."""
    storage: dict[str, Any] = body["spec"]["storage"] if body["kind"] == "DataVolume" else body["spec"]
    return storage, str(storage["resources"]["requests"]["storage"])


def upload_command(vm: TargetVm, index: int, body: dict[str, Any]) -> str:
    """The ``virtctl image-upload`` that creates volume ``body`` and fills it with disk ``index``."""
    storage, size = _requested(body)
    kind = "dv" if body["kind"] == "DataVolume" else "pvc"
    parts = [
        f"virtctl image-upload {kind} {body['metadata']['name']}",
        f"--namespace {vm.namespace}",
        f"--image-path {disk_file(index)}",
        f"--size {size}",
    ]
    if storage.get("storageClassName"):
        parts.append(f"--storage-class {storage['storageClassName']}")
    if storage.get("volumeMode"):
        parts.append(f"--volume-mode {str(storage['volumeMode']).lower()}")
    if storage.get("accessModes"):
        parts.append(f"--access-mode {storage['accessModes'][0]}")
    return " ".join(parts)


def readme(vm: TargetVm, volumes: Sequence[dict[str, Any]]) -> str:
    """How to import this directory into a cluster with KubeVirt and CDI."""
    disks = "\n".join(
        f"- `{disk_file(i)}`: disk {i} (source `{disk.source_file}`, {disk.capacity_bytes} bytes), "
        f"volume {body['kind']} `{body['metadata']['name']}`"
        for i, (disk, body) in enumerate(zip(vm.disks, volumes, strict=True))
    )
    uploads = "\n".join(upload_command(vm, i, body) for i, body in enumerate(volumes))
    return f"""# {vm.name}

Migrated by Ferry from VM "{vm.source_vm_name}" (`{vm.source_vm_id}`) of provider
`{vm.source_provider}`, plan `{vm.plan}`, for namespace `{vm.namespace}`.

{disks or "- no disks"}
- `{VOLUMES_FILE}`: the volumes the VirtualMachine uses
- `{VM_FILE}`: the KubeVirt VirtualMachine

## Import into a cluster with KubeVirt and CDI

Run these in this directory.

1. Create the namespace if it does not exist: `kubectl create namespace {vm.namespace}`
2. Upload every disk; `virtctl` creates each volume with the name, size, class and
   mode written in `{VOLUMES_FILE}`:

   ```sh
{_indented(uploads) if uploads else "   # no disks"}
   ```

3. Create the VirtualMachine: `kubectl apply -f {VM_FILE}`

Without `virtctl`: `kubectl apply -f {VOLUMES_FILE}` first creates the empty volumes;
copy each raw image into its volume (as `disk.img` on a Filesystem volume, onto the
device of a Block volume), then apply `{VM_FILE}`.
"""


def _indented(text: str) -> str:
    return "\n".join(f"   {line}" for line in text.splitlines())
