"""Ferry's built OCI images (``make images``, ``deploy/images/build.py``) and running a service
from one without a container engine: the image's root filesystem, unpacked with ``umoci``,
entered with ``chroot`` as the image's user in a mount namespace of its own
(``unshare --mount``), sharing the host's network so it reaches the test NATS on 127.0.0.1.

The service gets the environment ``start_service`` would give it, with every path moved
under ``/run/ferry`` inside the image: its key material and work folder are copied or bind
mounted there, owned by the image's user (the keys are 0600 files of the stack's owner).
"""

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ferry_peers.nats_server import NatsServer
from ferry_peers.ports import free_port
from ferry_peers.processes import ManagedProcess
from ferry_peers.services import SERVICE_MODULES, ServiceProcess, ready

ROOT = Path(__file__).resolve().parents[3]
IMAGES_DIR = ROOT / "var" / "images"
INSIDE = Path("/run/ferry")


@dataclass(frozen=True)
class BuiltImage:
    """One image of ``var/images``: its OCI layout, archive and summary."""

    name: str
    folder: Path

    @property
    def summary(self) -> dict[str, object]:
        return dict(json.loads((self.folder / "image.json").read_text()))

    @property
    def user(self) -> int:
        return int(str(self.summary["user"]))

    @property
    def reference(self) -> str:
        """The name and tag it is built as (``ghcr.io/ferry-migrate/ferry:0.1.0``)."""
        return str(self.summary["reference"])

    @property
    def digest(self) -> str:
        """The manifest's digest (``sha256:…``), as a registry serves it after ``skopeo copy``."""
        return str(self.summary["digest"])

    @property
    def config(self) -> dict[str, object]:
        """The image config's ``config`` section: ``User``, ``Env``, ``Entrypoint``, ``Cmd``…"""
        config = json.loads(_umoci_stat_config(self.folder / "oci"))
        return dict(config.get("config") or {})

    def _strings(self, key: str) -> list[str]:
        entries = self.config.get(key) or []
        assert isinstance(entries, list), f"{key} of {self.name}'s config is not a list"
        return [str(entry) for entry in entries]

    @property
    def environment(self) -> dict[str, str]:
        """The image config's ``Env``."""
        return dict(entry.split("=", 1) for entry in self._strings("Env"))

    @property
    def entrypoint(self) -> tuple[str, ...]:
        return tuple(self._strings("Entrypoint"))

    @property
    def cmd(self) -> tuple[str, ...]:
        return tuple(self._strings("Cmd"))

    def unpack(self, into: Path) -> Path:
        """The image's root filesystem under ``into`` (made once), as ``umoci unpack`` gives it."""
        rootfs = into / "rootfs"
        if not rootfs.exists():
            bundle = into.with_name(into.name + ".tmp")
            shutil.rmtree(bundle, ignore_errors=True)
            subprocess.run(["umoci", "unpack", "--image", f"{self.folder / 'oci'}:0.1.0", str(bundle)],
                           check=True, capture_output=True)  # fmt: skip
            shutil.rmtree(into, ignore_errors=True)
            bundle.rename(into)
        return rootfs


def _umoci_stat_config(layout: Path) -> str:
    """The image's config JSON, read from the layout (index → manifest → config blob)."""
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads(_blob(layout, index["manifests"][0]["digest"]))
    return _blob(layout, manifest["config"]["digest"])


def _blob(layout: Path, digest: str) -> str:
    algorithm, value = digest.split(":", 1)
    return (layout / "blobs" / algorithm / value).read_text()


def built_image(name: str) -> BuiltImage:
    """The current build of image ``name``; a clear error when ``make images`` has not run."""
    folder = IMAGES_DIR / name
    if not (folder / "image.json").exists():
        raise FileNotFoundError(f"image {name} is not built: run `make images` ({folder} is missing)")
    return BuiltImage(name, folder.resolve())


def _inside(value: str, moves: dict[str, str]) -> str:
    for outside, inside in moves.items():
        value = value.replace(outside, inside)
    return value


def start_service_from_image(
    name: str,
    nats: NatsServer,
    image: BuiltImage,
    rootfs: Path,
    work_dir: Path,
    *,
    timeout: float = 60.0,
) -> ServiceProcess:
    """Start ``name`` from ``image``'s ``rootfs`` and wait until its ``/readyz`` answers 200."""
    port = free_port()
    security = work_dir / "security"
    shutil.copytree(nats.security.directory, security, dirs_exist_ok=True)
    data = work_dir / "data"
    data.mkdir(parents=True, exist_ok=True)
    for path in [work_dir, *work_dir.rglob("*")]:
        if path.name != "logs" and "logs" not in path.relative_to(work_dir).parts:
            shutil.chown(path, image.user, image.user)
    moves = {str(nats.security.directory): str(INSIDE / "security"), str(data): str(INSIDE / "data")}
    settings = {
        **image.environment,
        **{key: _inside(value, moves) for key, value in nats.security.service_env(name).items()},
        **{key: _inside(value, moves) for key, value in nats.service_env(name).items()},
        "FERRY_HTTP_PORT": str(port),
        "FERRY_HTTP_HOST": "127.0.0.1",
        "FERRY_LOCAL_TARGET_ROOTS": str(INSIDE / "data"),
        "HOME": str(INSIDE / "data"),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
    }
    mounts = f'mkdir -p "$0/run/ferry/security" "$0/run/ferry/data" && mount --bind "{security}" "$0/run/ferry/security"'
    mounts += f' && mount --bind "{data}" "$0/run/ferry/data" && mount -t proc proc "$0/proc"'
    enter = f'exec chroot --userspec={image.user}:{image.user} "$0" env -i "$@"'
    argv = [
        "unshare", "--mount", "--pid", "--fork", "--kill-child=SIGTERM", "--propagation", "private",
        "sh", "-c", f"{mounts} && {enter}", str(rootfs),
        *(f"{key}={value}" for key, value in settings.items()), "python3", "-m", SERVICE_MODULES[name],
    ]  # fmt: skip
    process = ManagedProcess(f"{name}-image", argv, work_dir / "logs" / f"{name}.log", signal_group=True)
    url = f"http://127.0.0.1:{port}"
    process.wait_until(lambda: ready(url), timeout=timeout, what="ready")
    return ServiceProcess(name=name, process=process, http_url=url)
