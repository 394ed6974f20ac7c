"""The :class:`~ferry_kubevirt_writer.domain.ports.TargetWriter` of a local directory
target, made for providers of type ``local``.

Each VM gets ``<path>/<namespace>/<vm name>/``: PrepareVolumes takes the directory
(refusing one that holds anything not of this migration), writes Ferry's ownership
marker (:mod:`~ferry_kubevirt_writer.domain.local_ownership`) and creates a sparse raw
file per disk (the transfer writes it directly); CreateVm writes the manifests and a
README (see :mod:`~ferry_kubevirt_writer.domain.local_bundle`); CleanupVm deletes only
what the marker records, and only for the migration it names.

The writer writes only inside the allowed roots (``FERRY_LOCAL_TARGET_ROOTS``), compared
after resolving symlinks; the namespace and VM directories must be real directories,
not symlinks, and files are opened without following a final symlink. File work runs
in a thread; manifests and the marker are replaced atomically.
"""

import asyncio
import errno
import logging
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import yaml

from ferry_kubevirt_writer.domain import local_ownership as owner
from ferry_kubevirt_writer.domain.local_bundle import README_FILE, VM_FILE, VOLUMES_FILE, disk_file, readme
from ferry_kubevirt_writer.domain.vm_manifest import virtual_machine
from ferry_kubevirt_writer.domain.volumes import volume_bodies
from ferry_shared.errors import FerryError, PermanentError, TemporaryError
from ferry_shared.local_roots import outside_roots_message, root_of
from ferry_shared.migrations import SinkLocation
from ferry_shared.target_vm import TargetVm

log = logging.getLogger(__name__)

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)
T = TypeVar("T")
Work = Callable[[str, TargetVm], T]


class LocalTargetWriter:
    """Writes VMs as files under one directory inside the allowed roots."""

    def __init__(self, root: Path, allowed_roots: tuple[Path, ...]) -> None:
        self._root = root
        self._allowed = allowed_roots

    def __repr__(self) -> str:
        return f"LocalTargetWriter({str(self._root)!r})"

    def directory(self, vm: TargetVm) -> Path:
        """Where ``vm``'s files go."""
        return self._root / vm.namespace / vm.name

    async def prepare_volumes(self, migration: str, vm: TargetVm) -> tuple[SinkLocation, ...]:
        return await asyncio.to_thread(self._guarded, self._prepare, migration, vm)

    async def create_vm(self, migration: str, vm: TargetVm) -> str:
        return await asyncio.to_thread(self._guarded, self._write_manifests, migration, vm)

    async def cleanup_vm(self, migration: str, vm: TargetVm) -> tuple[str, ...]:
        return await asyncio.to_thread(self._guarded, self._remove, migration, vm)

    def _guarded(self, work: Work[T], migration: str, vm: TargetVm) -> T:
        self._check_root()
        try:
            return work(migration, vm)
        except OSError as error:
            raise _failure(error) from error

    def _check_root(self) -> None:
        if not str(self._root) or not self._root.is_absolute():
            raise PermanentError(
                "invalid_target", f"the local target's path '{self._root}' is not an absolute directory path"
            )
        if root_of(str(self._root), self._allowed) is None:
            raise PermanentError("target_not_allowed", outside_roots_message(str(self._root), self._allowed))
        if not self._root.is_dir():
            raise PermanentError(
                "target_missing",
                f"the local target directory {self._root} does not exist (or is not a directory); "
                "create it or correct the provider's path",
            )

    # ── PrepareVolumes ──────────────────────────────────────────────────────────────

    def _prepare(self, migration: str, vm: TargetVm) -> tuple[SinkLocation, ...]:
        directory = self._take(migration, vm)
        names = tuple(disk_file(index) for index in range(len(vm.disks)))
        self._record(directory, names)  # recorded before created: a crash leaves nothing unrecorded
        sinks = []
        for name, disk in zip(names, vm.disks, strict=True):
            path = directory / name
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | NO_FOLLOW, 0o644)
            try:
                if os.fstat(descriptor).st_size != disk.capacity_bytes:
                    os.ftruncate(descriptor, disk.capacity_bytes)  # sparse: no block is written
            finally:
                os.close(descriptor)
            sinks.append(SinkLocation(disk_key=disk.key, kind="file", path=str(path), size_bytes=disk.capacity_bytes))
        return tuple(sinks)

    def _take(self, migration: str, vm: TargetVm) -> Path:
        """The VM's directory, made (or already) this migration's; refuses anyone else's."""
        namespace_dir = self._root / vm.namespace
        directory = namespace_dir / vm.name
        created: list[str] = []
        if _make_directory(namespace_dir):
            created.append(vm.namespace)
        if _make_directory(directory):
            created.insert(0, f"{vm.namespace}/{vm.name}")
        self._check_inside(directory)
        marker = _read_marker(directory)
        if marker is None:
            entries = list(directory.iterdir())
            unfinished = [path for path in entries if path.name.startswith(f"{owner.MARKER_FILE}.", 1)]
            if not created and len(unfinished) < len(entries):
                raise PermanentError("target_exists", owner.refusal(None, str(directory), migration))
            for path in unfinished:  # a marker whose write was interrupted: it proves nothing, holds nothing
                _unlink(path)
            _write_marker(directory, owner.new_marker(migration, vm, tuple(created)))
        elif not owner.owned_by(marker, migration, vm):
            raise PermanentError("target_exists", owner.refusal(marker, str(directory), migration))
        return directory

    def _check_inside(self, directory: Path) -> None:
        if root_of(str(directory), self._allowed) is None:
            raise PermanentError("target_not_allowed", outside_roots_message(str(directory), self._allowed))

    def _record(self, directory: Path, names: tuple[str, ...]) -> None:
        marker = _read_marker(directory)
        assert marker is not None, "taken directories have a marker"
        recorded = owner.with_files(marker, names)
        if recorded != marker:
            _write_marker(directory, recorded)

    # ── CreateVm ────────────────────────────────────────────────────────────────────

    def _write_manifests(self, migration: str, vm: TargetVm) -> str:
        directory = self._owned(migration, vm)
        if directory is None:
            raise PermanentError(
                "target_exists",
                owner.refusal(_read_marker_if_any(self.directory(vm)), str(self.directory(vm)), migration),
            )
        volumes = volume_bodies(vm)
        self._record(directory, (VOLUMES_FILE, README_FILE, VM_FILE))
        _replace(directory / VOLUMES_FILE, yaml.safe_dump_all(volumes, sort_keys=False))
        _replace(directory / README_FILE, readme(vm, volumes))
        _replace(directory / VM_FILE, yaml.safe_dump(virtual_machine(vm), sort_keys=False))
        return str(directory)

    def _owned(self, migration: str, vm: TargetVm) -> Path | None:
        """The VM's directory if it is a real directory inside the roots whose marker names this migration."""
        directory = self.directory(vm)
        if not all(_is_real_directory(path) for path in (directory.parent, directory)):
            return None
        self._check_inside(directory)
        return directory if owner.owned_by(_read_marker(directory), migration, vm) else None

    # ── CleanupVm ───────────────────────────────────────────────────────────────────

    def _remove(self, migration: str, vm: TargetVm) -> tuple[str, ...]:
        directory = self._owned(migration, vm)
        if directory is None:
            if os.path.lexists(self.directory(vm)):
                log.warning("not cleaning %s: it is not migration %s's", self.directory(vm), migration)
            return ()
        marker = _read_marker(directory)
        assert marker is not None
        removed = []
        for name in marker.files:
            if owner.is_plain_name(name) and _unlink(directory / name):
                removed.append(str(directory / name))
        for leftover in directory.glob(".*.*"):  # temporary files of an interrupted replace
            if leftover.name != owner.MARKER_FILE and leftover.name.startswith(tuple(f".{n}." for n in marker.files)):
                _unlink(leftover)
        _unlink(directory / owner.MARKER_FILE)
        for relative in marker.created_dirs:
            path = self._root / relative
            if relative in (f"{vm.namespace}/{vm.name}", vm.namespace) and _remove_if_empty(path):
                removed.append(str(path))
        return tuple(removed)


def _is_real_directory(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _make_directory(path: Path) -> bool:
    """Create ``path`` (True) or accept a real directory there (False); refuse a symlink or a file."""
    try:
        os.mkdir(path, 0o755)
        return True
    except FileExistsError:
        if not _is_real_directory(path):
            raise PermanentError(
                "target_not_allowed",
                f"{path} exists and is not a plain directory (a symlink or a file); Ferry writes only into "
                "real directories inside the allowed roots",
            ) from None
        return False


def _read_marker(directory: Path) -> owner.OwnerMarker | None:
    try:
        descriptor = os.open(directory / owner.MARKER_FILE, os.O_RDONLY | NO_FOLLOW)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:  # a symlink in the marker's place proves nothing
            return None
        raise
    with os.fdopen(descriptor, "rb") as file:
        return owner.decode(file.read())


def _read_marker_if_any(directory: Path) -> owner.OwnerMarker | None:
    return _read_marker(directory) if _is_real_directory(directory) else None


def _write_marker(directory: Path, marker: owner.OwnerMarker) -> None:
    _replace(directory / owner.MARKER_FILE, owner.encode(marker).decode())


def _unlink(path: Path) -> bool:
    try:
        os.unlink(path)  # removes a symlink itself, never what it points at
        return True
    except FileNotFoundError:
        return False


def _remove_if_empty(path: Path) -> bool:
    try:
        os.rmdir(path)
        return True
    except OSError as error:
        if error.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT, errno.ENOTDIR):
            return False
        raise


def _replace(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` all at once: a reader sees the old file or the new one."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as file:
        file.write(text)
    os.replace(file.name, path)


def _failure(error: OSError) -> FerryError:
    where = f" {error.filename}" if error.filename else ""
    if error.errno == errno.ELOOP:
        return PermanentError(
            "target_not_allowed", f"{where.strip()} is a symlink; Ferry does not write through symlinks in a target"
        )
    if isinstance(error, PermissionError) or error.errno == errno.EROFS:
        return PermanentError(
            "target_not_writable",
            f"Ferry cannot write{where} ({error.strerror}); make the local target directory writable for it",
        )
    if error.errno in NO_SPACE:
        return PermanentError("target_full", f"no space left for{where} ({error.strerror}); free space and retry")
    return TemporaryError("local_io_error", f"writing{where} failed ({error.strerror or error})")
