"""kubevirt-writer with a local directory target, over real NATS: raw sparse disk files,
manifests that parse back into what the writer builds, a README that says how to import
them, and cleanup."""

import os
from pathlib import Path

import msgspec
import yaml

from ferry_kubevirt_writer.domain.vm_manifest import virtual_machine
from ferry_kubevirt_writer.domain.volumes import volume_bodies
from ferry_shared.messages import MessageFailed, StepRef
from ferry_shared.migrations import CleanupVm, CreateVm, PrepareVolumes, VmCleanedUp, VmCreated, VolumesPrepared
from ferry_shared.providers import ProviderSpec
from ferry_shared.service import Bus
from ferry_shared.target_vm import TargetDisk, TargetNic, TargetVm

from .writer_harness import MIGRATION, running_writer

MIB = 1024 * 1024
GIB = 1024 * MIB


def vm() -> TargetVm:
    return TargetVm(
        name="web-1", namespace="apps", source_provider="vcenter", source_vm_id="vm-7", source_vm_name="Web 1",
        plan="wave-1", memory_mib=2048, run=False,
        disks=(
            TargetDisk(key=2000, source_file="[ds1] web/web.vmdk", capacity_bytes=10 * GIB,
                       storage_class="standard", volume_mode="Filesystem"),
            TargetDisk(key=2001, source_file="[ds1] web/web_1.vmdk", capacity_bytes=3 * GIB + 512,
                       storage_class="fast", volume_mode="Block", access_mode="ReadWriteMany", use_datavolume=True),
        ),
        nics=(TargetNic(mac="00:50:56:aa:00:07"),),
    )  # fmt: skip


async def test_a_local_target_gets_sparse_disks_manifests_and_a_readme_and_loses_them_on_cleanup(
    bus: Bus, tmp_path: Path
) -> None:
    target = ProviderSpec(name="disk", type="local", path=str(tmp_path))
    directory = tmp_path / "apps" / "web-1"
    async with running_writer(bus) as writer:
        await writer.send(PrepareVolumes, target, vm())
        prepared = await writer.next(VolumesPrepared)
        files = [directory / "disk-0.raw", directory / "disk-1.raw"]
        assert [(s.disk_key, s.kind, s.path, s.size_bytes) for s in prepared.sinks] == [
            (2000, "file", str(files[0]), 10 * GIB),
            (2001, "file", str(files[1]), 3 * GIB + 512),
        ]
        for path, size in zip(files, (10 * GIB, 3 * GIB + 512), strict=True):
            assert path.stat().st_size == size
            assert path.stat().st_blocks == 0, "sparse: nothing allocated"
        with files[1].open("r+b") as image:  # the transfer writes; a redelivered PrepareVolumes keeps it
            image.write(b"boot sector")
        await writer.send(PrepareVolumes, target, vm())
        await writer.next(VolumesPrepared, after=1)
        with files[1].open("rb") as image:
            assert image.read(11) == b"boot sector"

        await writer.send(CreateVm, target, vm())
        created = await writer.next(VmCreated)
        assert created.location == str(directory)
        assert yaml.safe_load((directory / "virtualmachine.yaml").read_text()) == virtual_machine(vm())
        assert list(yaml.safe_load_all((directory / "volumes.yaml").read_text())) == volume_bodies(vm())
        readme = (directory / "README.md").read_text()
        assert (
            "virtctl image-upload pvc web-1-disk-0 --namespace apps --image-path disk-0.raw --size 10836Mi "
            "--storage-class standard --volume-mode filesystem --access-mode ReadWriteOnce"
        ) in readme
        assert (
            "virtctl image-upload dv web-1-disk-1 --namespace apps --image-path disk-1.raw --size 3073Mi "
            "--storage-class fast --volume-mode block --access-mode ReadWriteMany"
        ) in readme
        assert "kubectl apply -f virtualmachine.yaml" in readme
        assert "kubectl apply -f volumes.yaml" in readme
        assert not [p for p in directory.iterdir() if p.name.startswith(".")], "no temporary file left"

        await writer.send(CleanupVm, target, vm())
        cleaned = await writer.next(VmCleanedUp)
        await writer.send(CleanupVm, target, vm())
        again = await writer.next(VmCleanedUp, after=1)
    assert cleaned.removed == (str(directory),)
    assert again.removed == ()
    assert not directory.exists()
    assert (prepared.migration, created.vm_id) == (MIGRATION, "vm-7")
    assert writer.of(MessageFailed) == []


async def test_a_missing_target_directory_and_a_bad_blueprint_fail_with_what_to_fix(bus: Bus, tmp_path: Path) -> None:
    missing = ProviderSpec(name="disk", type="local", path=str(tmp_path / "nowhere"))
    async with running_writer(bus) as writer:
        await writer.send(PrepareVolumes, missing, vm())
        no_directory = await writer.failure()
        writer.events.clear()
        traversal = msgspec.structs.replace(vm(), namespace="../../etc")
        await writer.send(PrepareVolumes, ProviderSpec(name="disk", type="local", path=str(tmp_path)), traversal)
        bad_vm = await writer.failure()
    assert no_directory.error_code == "target_missing"
    assert f"{tmp_path / 'nowhere'} does not exist" in no_directory.reason
    assert no_directory.about == StepRef(migration=MIGRATION, vm_id="vm-7")
    assert bad_vm.error_code == "invalid_vm"
    assert "target namespace '../../etc'" in bad_vm.reason
    assert os.listdir(tmp_path) == []
