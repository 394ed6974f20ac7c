"""Builds Ferry's OCI images with no container engine (``make images``).

Each image is a Debian bookworm root filesystem made by ``mmdebstrap`` (the packages pinned
by ``deploy/images/<image>.packages``), plus, for the service image, Ferry's packages and
their locked Python dependencies installed by ``uv`` into ``/opt/ferry/lib``. ``umoci``
turns the tree into a one-layer OCI image (user, entrypoint, labels, a fixed creation time)
and ``skopeo`` writes an ``oci-archive`` of it. Every file's time is clamped to
``SOURCE_DATE_EPOCH`` and no bytecode is written, so the same inputs give the same digest.

Images are cached per machine under ``$FERRY_IMAGES_CACHE`` (default
``~/.cache/ferry/images``) in a folder named by a hash of everything that decides them;
``var/images/<image>`` links to the current one, whose ``image.json`` gives the reference,
digest and sizes. ``--refresh-packages`` re-resolves the Debian packages (when the mirror no
longer has a pinned version) and rewrites the ``.packages`` files.

Usage: ``python deploy/images/build.py [IMAGE...] [--refresh-packages]``.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "deploy" / "images"
SOURCE_DATE_EPOCH = 1767225600  # 2026-01-01T00:00:00Z: the images' file times and creation time
CREATED = "2026-01-01T00:00:00Z"
VERSION = "0.1.0"
SUITES = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
EXCLUDED = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*", "/usr/share/info/*", "/usr/share/lintian/*")
FERRY_PACKAGES = (
    "shared",
    "services/inventory",
    "services/planner",
    "services/transfer",
    "services/kubevirt-writer",
    "cli",
    "peers/launch",
)
"""Ferry's own Python packages in the service image (the CLI needs ``ferry_peers``)."""


@dataclass(frozen=True)
class ImageSpec:
    name: str
    description: str
    packages: tuple[str, ...]
    """Debian packages asked for (their dependencies come too)."""
    user: int
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...] = ()
    python: bool = False
    """Whether Ferry's Python packages go in."""
    env: tuple[str, ...] = field(default=())


IMAGES = {
    "ferry": ImageSpec(
        name="ferry",
        description="Ferry's services and CLI: python3 -m ferry_<service>, or ferry",
        packages=("python3", "ca-certificates"),
        user=10001,
        entrypoint=("python3", "-m"),
        cmd=("ferry_cli", "--help"),
        python=True,
        env=("PYTHONPATH=/opt/ferry/lib", "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"),
    ),
    # The disk-sink pods of kubevirt-writer (FERRY_WRITER_SINK_IMAGE): one container per disk runs
    # qemu-nbd with its own command (ferry_kubevirt_writer/domain/sink_pod.py), TLS only, as
    # uid/gid 107 (KubeVirt's and CDI's) with a read-only root: the pod's fsGroup makes the volume writable.
    "nbd-sink": ImageSpec(
        name="nbd-sink",
        description="qemu-nbd serving a KubeVirt volume while Ferry copies a disk into it",
        packages=("qemu-utils",),
        user=107,
        entrypoint=(),
        cmd=("qemu-nbd", "--version"),
    ),
}


class BuildError(RuntimeError):
    """A step of the build failed; the message says which and what to do."""


def run(*argv: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BuildError(f"{' '.join(argv[:3])} … failed ({done.returncode}):\n{(done.stderr or done.stdout)[-3000:]}")
    return done.stdout


def packages_file(spec: ImageSpec) -> Path:
    return HERE / f"{spec.name}.packages"


def pinned(spec: ImageSpec) -> list[str]:
    """``name=version`` of every package of the image's last resolution (empty: none yet)."""
    path = packages_file(spec)
    if not path.exists():
        return []
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def source_files() -> list[Path]:
    listed = run("git", "ls-files", "-z", *FERRY_PACKAGES, "requirements.lock", "requirements.in", cwd=ROOT)
    return [ROOT / name for name in listed.split("\0") if name]


def cache_key(spec: ImageSpec) -> str:
    digest = hashlib.sha256()
    digest.update(repr(spec).encode())
    digest.update(Path(__file__).read_bytes())
    digest.update("\n".join(pinned(spec)).encode())
    for path in source_files() if spec.python else []:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def make_rootfs(spec: ImageSpec, rootfs: Path, *, refresh: bool) -> bool:
    """The Debian tree with the pinned versions; True if it has them. When the mirror no longer
    has a pinned version (a point release replaced it), or on ``refresh``, it is made from what
    the mirror has now, and the build says so (the image is then not the pinned one)."""
    if not refresh and pinned(spec):
        try:
            _mmdebstrap(spec, rootfs, tuple(pinned(spec)))
            return True
        except BuildError as error:
            print(
                f"warning: image {spec.name}: a pinned Debian package is gone from the mirror, so this build uses "
                f"today's versions (run `python deploy/images/build.py {spec.name} --refresh-packages` and commit "
                f"{packages_file(spec).name} to pin them): {str(error).splitlines()[-1][:300]}",
                file=sys.stderr,
            )
            shutil.rmtree(rootfs)
            rootfs.mkdir()
    _mmdebstrap(spec, rootfs, spec.packages)
    return False


def _mmdebstrap(spec: ImageSpec, rootfs: Path, include: tuple[str, ...]) -> None:
    options = [f"--dpkgopt=path-exclude={pattern}" for pattern in EXCLUDED]
    options.append("--dpkgopt=path-include=/usr/share/doc/*/copyright")
    hooks = [
        f'echo "ferry:x:{spec.user}:{spec.user}::/nonexistent:/usr/sbin/nologin" >> "$1/etc/passwd"',
        f'echo "ferry:x:{spec.user}:" >> "$1/etc/group"',
        'rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/* "$1"/var/log/* "$1"/etc/machine-id',
    ]
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH)}
    run(
        "mmdebstrap", "--mode=root", "--variant=essential", f"--include={','.join(include)}", *options,
        *(f"--customize-hook={hook}" for hook in hooks), "bookworm", str(rootfs), *SUITES, env=env,
    )  # fmt: skip


def resolved_packages(rootfs: Path) -> list[str]:
    listed = run("chroot", str(rootfs), "dpkg-query", "-W", "-f", "${Package}=${Version}\\n")
    return sorted(line for line in listed.splitlines() if line)


def install_python(rootfs: Path, scratch: Path) -> None:
    """The locked runtime dependencies and Ferry's packages, into ``/opt/ferry/lib``."""
    uv = ROOT / ".venv" / "bin" / "uv"
    runtime_in = scratch / "runtime.in"
    requirements = (ROOT / "requirements.in").read_text().split("# development")[0]
    runtime_in.write_text(requirements)
    runtime_lock = scratch / "runtime.lock"
    run(str(uv), "pip", "compile", "--quiet", "--python-version", "3.11", "-c", str(ROOT / "requirements.lock"),
        "--no-header", "--no-annotate", str(runtime_in), "-o", str(runtime_lock), cwd=ROOT)  # fmt: skip
    target = rootfs / "opt" / "ferry" / "lib"
    run(str(uv), "pip", "install", "--quiet", "--target", str(target), "--python-version", "3.11",
        "--python-platform", "x86_64-manylinux_2_36", "--no-deps", "--no-compile", "--no-cache",
        "-r", str(runtime_lock), *(f"./{package}" for package in FERRY_PACKAGES), cwd=ROOT)  # fmt: skip
    _drop_install_records(target)
    shutil.copy(runtime_lock, rootfs / "opt" / "ferry" / "requirements.lock")
    bin_dir = target / "bin"
    if bin_dir.exists():
        shutil.rmtree(bin_dir)  # console scripts with the build host's interpreter path
    launcher = rootfs / "usr" / "local" / "bin" / "ferry"
    launcher.parent.mkdir(parents=True, exist_ok=True)
    launcher.write_text('#!/bin/sh\nexec python3 -m ferry_cli "$@"\n')
    launcher.chmod(0o755)


INSTALL_RECORDS = ("direct_url.json", "uv_build.json", "uv_cache.json")
"""What an installer writes about the build host (source paths, source times): not part of an image."""


def _host_specific(recorded: str) -> bool:
    """A RECORD entry of an install record, or of a console script (made for the build host's Python, removed)."""
    return recorded.startswith("bin/") or recorded.rsplit("/", 1)[-1] in INSTALL_RECORDS


def _drop_install_records(site: Path) -> None:
    for dist_info in site.glob("*.dist-info"):
        for name in INSTALL_RECORDS:
            (dist_info / name).unlink(missing_ok=True)
        record = dist_info / "RECORD"
        if record.exists():
            lines = record.read_text().splitlines(keepends=True)
            kept = [line for line in lines if not _host_specific(line.split(",", 1)[0])]
            record.write_text("".join(kept))


def clamp_times(tree: Path) -> None:
    """Every file's time at most ``SOURCE_DATE_EPOCH`` (what reproducible builds expect)."""
    for path in [tree, *tree.rglob("*")]:
        stat = path.lstat()
        if stat.st_mtime > SOURCE_DATE_EPOCH:
            os.utime(path, (SOURCE_DATE_EPOCH, SOURCE_DATE_EPOCH), follow_symlinks=False)


def oci_image(spec: ImageSpec, rootfs: Path, layout: Path, scratch: Path) -> None:
    image = f"{layout}:{VERSION}"
    run("umoci", "init", "--layout", str(layout))
    run("umoci", "new", "--image", image)
    bundle = scratch / "bundle"
    run("umoci", "unpack", "--image", image, str(bundle))
    (bundle / "rootfs").rmdir()
    rootfs.rename(bundle / "rootfs")
    history = ("--history.created", CREATED, "--history.created_by", f"deploy/images/build.py {spec.name}")
    run("umoci", "repack", "--image", image, *history, str(bundle))
    config = ["--config.user", f"{spec.user}:{spec.user}", "--config.workingdir", "/", "--created", CREATED]
    config += [f"--config.entrypoint={part}" for part in spec.entrypoint]
    config += [f"--config.cmd={part}" for part in spec.cmd]
    config += [f"--config.env={variable}" for variable in spec.env]
    labels = {
        "org.opencontainers.image.title": "ferry" if spec.name == "ferry" else f"ferry {spec.name}",
        "org.opencontainers.image.description": spec.description,
        "org.opencontainers.image.version": VERSION,
        "org.opencontainers.image.created": CREATED,
    }
    config += [f"--config.label={key}={value}" for key, value in labels.items()]
    run("umoci", "config", "--image", image, "--no-history", *config)
    run("umoci", "gc", "--layout", str(layout))


def image_digest(layout: Path) -> str:
    index = json.loads((layout / "index.json").read_text())
    return str(index["manifests"][0]["digest"])


def tree_bytes(tree: Path) -> int:
    return sum(path.lstat().st_size for path in tree.rglob("*") if path.is_file() and not path.is_symlink())


def build(spec: ImageSpec, cache: Path, *, refresh: bool) -> Path:
    """Build ``spec`` unless cached; returns its folder (``oci/``, ``image.tar``, ``image.json``)."""
    key = cache_key(spec)
    folder = cache / f"{spec.name}-{key}"
    if (folder / "image.json").exists() and not refresh:
        return folder
    started = time.monotonic()
    print(f"building image {spec.name} ({key})...", flush=True)
    with tempfile.TemporaryDirectory(prefix=f"ferry-image-{spec.name}-", dir=cache) as temporary:
        scratch = Path(temporary)
        rootfs = scratch / "rootfs"
        rootfs.mkdir()
        pinned_build = make_rootfs(spec, rootfs, refresh=refresh)
        packages = resolved_packages(rootfs)
        if refresh or not pinned(spec):
            header = f"# Debian packages of the {spec.name} image (deploy/images/build.py --refresh-packages)\n"
            packages_file(spec).write_text(header + "\n".join(packages) + "\n")
        if spec.python:
            install_python(rootfs, scratch)
        clamp_times(rootfs)
        unpacked = tree_bytes(rootfs)
        out = scratch / "out"
        out.mkdir()
        oci_image(spec, rootfs, out / "oci", scratch)
        run("skopeo", "copy", "--quiet", f"oci:{out / 'oci'}:{VERSION}", f"oci-archive:{out / 'image.tar'}:{VERSION}")
        summary = {
            "name": spec.name,
            "reference": f"ghcr.io/ferry-migrate/{spec.name}:{VERSION}",
            "digest": image_digest(out / "oci"),
            "archive_bytes": (out / "image.tar").stat().st_size,
            "unpacked_bytes": unpacked,
            "user": spec.user,
            "debian_packages": len(packages),
            "debian_packages_pinned": pinned_build,
            "build_seconds": round(time.monotonic() - started, 1),
        }
        (out / "image.json").write_text(json.dumps(summary, indent=2) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        out.rename(folder)
    print(f"built {spec.name} in {summary['build_seconds']}s: {summary['digest']}", flush=True)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="*", metavar="IMAGE", help=f"default: all of {', '.join(IMAGES)}")
    parser.add_argument("--refresh-packages", action="store_true")
    arguments = parser.parse_args()
    cache = Path(os.environ.get("FERRY_IMAGES_CACHE", Path.home() / ".cache" / "ferry" / "images"))
    cache.mkdir(parents=True, exist_ok=True)
    links = ROOT / "var" / "images"
    links.mkdir(parents=True, exist_ok=True)
    unknown = sorted(set(arguments.images) - set(IMAGES))
    if unknown:
        parser.error(f"no image named {', '.join(unknown)}; the images are {', '.join(IMAGES)}")
    for name in arguments.images or list(IMAGES):
        try:
            folder = build(IMAGES[name], cache, refresh=arguments.refresh_packages)
        except BuildError as error:
            print(f"image {name}: {error}", file=sys.stderr)
            return 1
        link = links / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(folder)
        summary = json.loads((folder / "image.json").read_text())
        size = summary["archive_bytes"] / 2**20
        print(f"{name}: {summary['digest']}  {size:.1f} MiB archive, {summary['unpacked_bytes'] / 2**20:.1f} MiB "
              f"unpacked, uid {summary['user']}  ({link}/image.tar)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
