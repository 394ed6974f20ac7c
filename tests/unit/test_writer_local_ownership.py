"""The local target's ownership marker: what PrepareVolumes takes, what CleanupVm may
delete, and the roots the writer keeps to (on a temporary directory)."""

import os
from pathlib import Path

import msgspec
import pytest

from ferry_kubevirt_writer.adapters.local_target import LocalTargetWriter
from ferry_kubevirt_writer.domain import local_ownership as owner
from ferry_shared.errors import PermanentError
from ferry_shared.local_roots import parse_roots, root_of
from ferry_shared.target_vm import TargetDisk, TargetVm

VM = TargetVm(
    name="db", namespace="apps", source_provider="vc", source_vm_id="vm-9", source_vm_name="DB", plan="p",
    memory_mib=512, disks=(TargetDisk(key=1, source_file="[ds] db.vmdk", capacity_bytes=4096),),
)  # fmt: skip


def writer(root: Path, *allowed: Path) -> LocalTargetWriter:
    return LocalTargetWriter(root, allowed or (root,))


def test_a_marker_proves_ownership_only_for_its_migration_and_vm() -> None:
    marker = owner.with_files(owner.new_marker("m-1", VM, ("apps/db",)), ("a.raw", "a.raw", "b.yaml"))
    assert marker.files == ("a.raw", "b.yaml")
    assert owner.decode(owner.encode(marker)) == marker
    assert owner.owned_by(marker, "m-1", VM)
    assert not owner.owned_by(marker, "m-2", VM)
    assert not owner.owned_by(None, "m-1", VM)
    assert owner.decode(b"not json") is None
    assert [owner.is_plain_name(n) for n in ("disk-0.raw", "../x", "..", "", "a/b")] == [True] + [False] * 4


def test_roots_are_absolute_and_compared_after_resolving_symlinks(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not an absolute directory path"):
        parse_roots("/ok:relative")
    assert parse_roots("/a::/b") == (Path("/a"), Path("/b"))
    (tmp_path / "root").mkdir()
    (tmp_path / "rootless").mkdir()
    (tmp_path / "root" / "out").symlink_to(tmp_path)
    roots = (tmp_path / "root",)
    assert root_of(str(tmp_path / "root" / "x"), roots) == tmp_path / "root"
    assert root_of(str(tmp_path / "rootless"), roots) is None  # a shared prefix is not inside
    assert root_of(str(tmp_path / "root" / "out"), roots) is None
    assert root_of(str(tmp_path / "root" / ".." / "rootless"), roots) is None
    assert root_of("root/x", roots) is None


async def test_without_roots_the_local_target_is_disabled_saying_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(PermanentError) as raised:
        await LocalTargetWriter(tmp_path, ()).prepare_volumes("m-1", VM)
    assert raised.value.code == "target_not_allowed"
    assert "local targets are disabled" in raised.value.message
    assert "set FERRY_LOCAL_TARGET_ROOTS" in raised.value.message
    assert os.listdir(tmp_path) == []


async def test_cleanup_deletes_only_recorded_files_and_the_directories_it_made(tmp_path: Path) -> None:
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "other-vm.txt").write_text("keep")
    target = writer(tmp_path)
    await target.prepare_volumes("m-1", VM)
    (tmp_path / "apps" / "db" / "added-by-someone").write_text("keep")
    assert await target.cleanup_vm("m-2", VM) == ()
    removed = await target.cleanup_vm("m-1", VM)
    assert removed == (str(tmp_path / "apps" / "db" / "disk-0.raw"),)  # the directory is not empty
    assert sorted(os.listdir(tmp_path / "apps" / "db")) == ["added-by-someone"]
    assert (tmp_path / "apps" / "other-vm.txt").read_text() == "keep"


async def test_an_empty_directory_that_was_there_is_used_but_not_deleted(tmp_path: Path) -> None:
    (tmp_path / "apps" / "db").mkdir(parents=True)
    (tmp_path / "apps" / "db" / f".{owner.MARKER_FILE}.x1y2").write_text("{")  # an interrupted marker write
    target = writer(tmp_path)
    await target.prepare_volumes("m-1", VM)
    await target.prepare_volumes("m-1", VM)  # a redelivery takes its own directory again
    assert await target.cleanup_vm("m-1", VM) == (str(tmp_path / "apps" / "db" / "disk-0.raw"),)
    assert os.listdir(tmp_path / "apps" / "db") == []


async def test_a_forged_marker_entry_cannot_reach_outside_the_vm_directory(tmp_path: Path) -> None:
    (tmp_path / "precious").write_text("keep")
    target = writer(tmp_path)
    await target.prepare_volumes("m-1", VM)
    marker_path = tmp_path / "apps" / "db" / owner.MARKER_FILE
    marker = owner.decode(marker_path.read_bytes())
    assert marker is not None
    forged = owner.with_files(marker, ("../../precious",))
    marker_path.write_bytes(owner.encode(msgspec.structs.replace(forged, created_dirs=(*forged.created_dirs, ".."))))
    await target.cleanup_vm("m-1", VM)
    assert (tmp_path / "precious").read_text() == "keep"


async def test_create_vm_refuses_a_directory_this_migration_did_not_take(tmp_path: Path) -> None:
    await writer(tmp_path).prepare_volumes("m-1", VM)
    with pytest.raises(PermanentError) as raised:
        await writer(tmp_path).create_vm("m-2", VM)
    assert raised.value.code == "target_exists"
    assert "of migration 'm-1'" in raised.value.message
    assert not (tmp_path / "apps" / "db" / "virtualmachine.yaml").exists()


async def test_a_symlinked_disk_file_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text("keep")
    root = tmp_path / "root"
    (root / "apps" / "db").mkdir(parents=True)
    (root / "apps" / "db" / "disk-0.raw").symlink_to(outside)
    with pytest.raises(PermanentError) as raised:
        await writer(root).prepare_volumes("m-1", VM)
    assert raised.value.code == "target_exists"  # non-Ferry content: refused before any file is opened
    assert outside.read_text() == "keep"
