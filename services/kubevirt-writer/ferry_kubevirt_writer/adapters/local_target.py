"""The :class:`~ferry_kubevirt_writer.domain.ports.TargetWriter` of a local directory
target, made for providers of type ``local``.

Each VM gets ``<path>/<namespace>/<vm name>/``: PrepareVolumes creates a sparse raw
file per disk there (the transfer writes it directly), CreateVm writes the manifests
and a README (see :mod:`~ferry_kubevirt_writer.domain.local_bundle`), CleanupVm removes
the directory. File work runs in a thread; files are replaced atomically.
"""

import asyncio
import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import yaml

from ferry_kubevirt_writer.domain.local_bundle import README_FILE, VM_FILE, VOLUMES_FILE, disk_file, readme
from ferry_kubevirt_writer.domain.vm_manifest import virtual_machine
from ferry_kubevirt_writer.domain.volumes import volume_bodies
from ferry_shared.errors import FerryError, PermanentError, TemporaryError
from ferry_shared.migrations import SinkLocation
from ferry_shared.target_vm import TargetVm

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
T = TypeVar("T")


class LocalTargetWriter:
    """Writes VMs as files under one directory."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def __repr__(self) -> str:
        return f"LocalTargetWriter({str(self._root)!r})"

    def directory(self, vm: TargetVm) -> Path:
        """Where ``vm``'s files go."""
        return self._root / vm.namespace / vm.name

    async def prepare_volumes(self, migration: str, vm: TargetVm) -> tuple[SinkLocation, ...]:
        return await asyncio.to_thread(self._guarded, self._prepare, vm)

    async def create_vm(self, vm: TargetVm) -> str:
        return await asyncio.to_thread(self._guarded, self._write_manifests, vm)

    async def cleanup_vm(self, vm: TargetVm) -> tuple[str, ...]:
        return await asyncio.to_thread(self._guarded, self._remove, vm)

    def _guarded(self, work: Callable[[TargetVm], T], vm: TargetVm) -> T:
        self._check_root()
        try:
            return work(vm)
        except OSError as error:
            raise _failure(error) from error

    def _check_root(self) -> None:
        if not str(self._root) or not self._root.is_absolute():
            raise PermanentError(
                "invalid_target", f"the local target's path '{self._root}' is not an absolute directory path"
            )
        if not self._root.is_dir():
            raise PermanentError(
                "target_missing",
                f"the local target directory {self._root} does not exist (or is not a directory); "
                "create it or correct the provider's path",
            )

    def _prepare(self, vm: TargetVm) -> tuple[SinkLocation, ...]:
        directory = self.directory(vm)
        directory.mkdir(parents=True, exist_ok=True)
        sinks = []
        for index, disk in enumerate(vm.disks):
            path = directory / disk_file(index)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                if os.fstat(descriptor).st_size != disk.capacity_bytes:
                    os.ftruncate(descriptor, disk.capacity_bytes)  # sparse: no block is written
            finally:
                os.close(descriptor)
            sinks.append(SinkLocation(disk_key=disk.key, kind="file", path=str(path), size_bytes=disk.capacity_bytes))
        return tuple(sinks)

    def _write_manifests(self, vm: TargetVm) -> str:
        directory = self.directory(vm)
        directory.mkdir(parents=True, exist_ok=True)
        volumes = volume_bodies(vm)
        _replace(directory / VOLUMES_FILE, yaml.safe_dump_all(volumes, sort_keys=False))
        _replace(directory / README_FILE, readme(vm, volumes))
        _replace(directory / VM_FILE, yaml.safe_dump(virtual_machine(vm), sort_keys=False))
        return str(directory)

    def _remove(self, vm: TargetVm) -> tuple[str, ...]:
        directory = self.directory(vm)
        if not directory.exists():
            return ()
        shutil.rmtree(directory)
        return (str(directory),)


def _replace(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` all at once: a reader sees the old file or the new one."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as file:
        file.write(text)
    os.replace(file.name, path)


def _failure(error: OSError) -> FerryError:
    where = f" {error.filename}" if error.filename else ""
    if isinstance(error, PermissionError) or error.errno == errno.EROFS:
        return PermanentError(
            "target_not_writable",
            f"Ferry cannot write{where} ({error.strerror}); make the local target directory writable for it",
        )
    if error.errno in NO_SPACE:
        return PermanentError("target_full", f"no space left for{where} ({error.strerror}); free space and retry")
    return TemporaryError("local_io_error", f"writing{where} failed ({error.strerror or error})")
