"""kubevirt-writer with a local directory target, over real NATS: raw sparse disk files,
manifests that parse back into what the writer builds, a README that says how to import
them, and cleanup."""

import os
from pathlib import Path

import msgspec
import yaml

from ferry_kubevirt_writer.domain.local_ownership import MARKER_FILE
from ferry_kubevirt_writer.domain.vm_manifest import virtual_machine
from ferry_kubevirt_writer.domain.volumes import volume_bodies
from ferry_kubevirt_writer.settings import WriterSettings
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


def allowed(*roots: Path) -> WriterSettings:
    return WriterSettings(local_target_roots=":".join(str(root) for root in roots))


async def test_a_local_target_gets_sparse_disks_manifests_and_a_readme_and_loses_them_on_cleanup(
    bus: Bus, tmp_path: Path
) -> None:
    target = ProviderSpec(name="disk", type="local", path=str(tmp_path))
    directory = tmp_path / "apps" / "web-1"
    async with running_writer(bus, allowed(tmp_path)) as writer:
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
        assert [p.name for p in directory.iterdir() if p.name.startswith(".")] == [MARKER_FILE], "no temporary file"

        await writer.send(CleanupVm, target, vm())
        cleaned = await writer.next(VmCleanedUp)
        await writer.send(CleanupVm, target, vm())
        again = await writer.next(VmCleanedUp, after=1)
    made = ("disk-0.raw", "disk-1.raw", "volumes.yaml", "README.md", "virtualmachine.yaml")
    assert cleaned.removed == (*(str(directory / name) for name in made), str(directory), str(tmp_path / "apps"))
    assert again.removed == ()
    assert os.listdir(tmp_path) == []
    assert (prepared.migration, created.vm_id) == (MIGRATION, "vm-7")
    assert writer.of(MessageFailed) == []


async def test_a_missing_target_directory_and_a_bad_blueprint_fail_with_what_to_fix(bus: Bus, tmp_path: Path) -> None:
    missing = ProviderSpec(name="disk", type="local", path=str(tmp_path / "nowhere"))
    async with running_writer(bus, allowed(tmp_path)) as writer:
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


async def test_cleanup_after_a_failed_copy_leaves_a_directory_that_was_there_before(bus: Bus, tmp_path: Path) -> None:
    target = ProviderSpec(name="disk", type="local", path=str(tmp_path))
    theirs = tmp_path / "apps" / "web-1"
    theirs.mkdir(parents=True)
    (theirs / "notes.txt").write_text("mine")
    async with running_writer(bus, allowed(tmp_path)) as writer:
        await writer.send(PrepareVolumes, target, vm())
        refused = await writer.failure()
        await writer.send(CleanupVm, target, vm())  # what the planner sends after the failure
        cleaned = await writer.next(VmCleanedUp)
    assert refused.error_code == "target_exists"
    assert f"{theirs} already exists and holds files Ferry did not create" in refused.reason
    assert cleaned.removed == ()
    assert (theirs / "notes.txt").read_text() == "mine"
    assert os.listdir(theirs) == ["notes.txt"]


async def test_a_rerun_into_a_completed_migrations_output_is_refused_and_deletes_nothing(
    bus: Bus, tmp_path: Path
) -> None:
    target = ProviderSpec(name="disk", type="local", path=str(tmp_path))
    directory = tmp_path / "apps" / "web-1"
    async with running_writer(bus, allowed(tmp_path)) as writer:
        await writer.send(PrepareVolumes, target, vm())
        await writer.next(VolumesPrepared)
        await writer.send(CreateVm, target, vm())
        await writer.next(VmCreated)
        before = {path.name: path.stat().st_mtime_ns for path in directory.iterdir()}
        await writer.send(PrepareVolumes, target, vm(), migration="wave-1-2")
        refused = await writer.failure()
        await writer.send(CleanupVm, target, vm(), migration="wave-1-2")
        cleaned = await writer.next(VmCleanedUp)
    assert refused.error_code == "target_exists"
    assert "already holds VM 'vm-7' of migration 'wave-1-1'" in refused.reason
    assert cleaned.removed == ()
    assert {path.name: path.stat().st_mtime_ns for path in directory.iterdir()} == before


async def test_paths_outside_the_roots_or_escaping_by_symlink_are_refused(bus: Bus, tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    (root / "apps").symlink_to(elsewhere)  # a namespace directory that leads out of the root
    (root / "out").symlink_to(elsewhere)  # a provider path that leads out of the root
    async with running_writer(bus, allowed(root)) as writer:
        await writer.send(PrepareVolumes, ProviderSpec(name="disk", type="local", path=str(elsewhere)), vm())
        outside = await writer.failure()
        writer.events.clear()
        await writer.send(PrepareVolumes, ProviderSpec(name="disk", type="local", path=str(root / "out")), vm())
        linked_root = await writer.failure()
        writer.events.clear()
        await writer.send(PrepareVolumes, ProviderSpec(name="disk", type="local", path=str(root)), vm())
        linked_namespace = await writer.failure()
    assert outside.error_code == linked_root.error_code == linked_namespace.error_code == "target_not_allowed"
    assert f"outside the allowed directories FERRY_LOCAL_TARGET_ROOTS={root}" in outside.reason
    assert f"{root / 'apps'} exists and is not a plain directory" in linked_namespace.reason
    assert os.listdir(elsewhere) == []
