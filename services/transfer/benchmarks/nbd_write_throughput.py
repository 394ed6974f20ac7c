"""Benchmark: Ferry's NBD client writing to qemu-nbd, next to nbdcopy doing the same.

Writes a random raw source file (default 1 GiB, on /dev/shm) to a qemu-nbd export of a
fresh sparse file on /dev/shm, with N requests in flight on one connection (1, 4, 16, 64),
and the same copy with ``nbdcopy --connections=1 --requests=N`` and with nbdcopy's
defaults. Every run gets a new target file and a new qemu-nbd; the target is checked
against the source after each run. Prints the median MiB/s of --runs. ``--tls`` adds
Ferry's client over TLS (NBD_OPT_STARTTLS, client certificates, as Ferry's disk sinks
require) to a qemu-nbd with ``tls-creds-x509``.

    .venv/bin/python services/transfer/benchmarks/nbd_write_throughput.py [--size-mib 1024] [--runs 3] [--tls]
"""

import argparse
import asyncio
import hashlib
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from ferry_peers.ports import free_port
from ferry_peers.processes import ManagedProcess
from ferry_shared.pki import Authority
from ferry_transfer.adapters.nbd import NbdClient, NbdTls, client_context

MiB = 1024 * 1024


def accepting(port: int) -> bool | None:
    with socket.socket() as probe:
        try:
            probe.connect(("127.0.0.1", port))
        except OSError:
            return None
    return True


def make_source(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as file:
        for _ in range(size // (16 * MiB)):
            block = os.urandom(16 * MiB)
            digest.update(block)
            file.write(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(16 * MiB):
            digest.update(block)
    return digest.hexdigest()


def make_tls(workdir: Path) -> tuple[tuple[str, ...], NbdTls]:
    """qemu-nbd's TLS arguments (client certificates required) and the matching client side."""
    authority = Authority.create("benchmark NBD CA")
    server, client = authority.issue("sink", server_names=["sink.bench"]), authority.issue("bench", client=True)
    files = {"ca-cert.pem": authority.cert_pem, "server-cert.pem": server.cert_pem, "server-key.pem": server.key_pem,
             "client-cert.pem": client.cert_pem, "client-key.pem": client.key_pem}  # fmt: skip
    for name, data in files.items():
        (workdir / name).write_bytes(data)
    context = client_context(workdir / "ca-cert.pem", workdir / "client-cert.pem", workdir / "client-key.pem")
    args = ("--object", f"tls-creds-x509,id=tls0,dir={workdir},endpoint=server,verify-peer=on", "--tls-creds=tls0")
    return args, NbdTls(context, "sink.bench")


@contextmanager
def qemu_nbd_export(workdir: Path, size: int, extra: tuple[str, ...] = ()) -> Iterator[tuple[int, Path]]:
    """A fresh sparse raw file served by qemu-nbd; yields (port, file)."""
    target = workdir / "target.raw"
    target.unlink(missing_ok=True)
    with target.open("wb") as file:
        file.truncate(size)
    port = free_port()
    argv = ["qemu-nbd", "-f", "raw", "-x", "export", "-b", "127.0.0.1", "-p", str(port), "--persistent"]
    server = ManagedProcess("qemu-nbd", [*argv, "--shared=8", *extra, str(target)], workdir / "qemu-nbd.log")
    try:
        server.wait_until(lambda: accepting(port), timeout=20, what="accepting connections")
        yield port, target
    finally:
        server.stop()


async def ferry_copy(
    source: Path, port: int, size: int, in_flight: int, request_size: int, tls: NbdTls | None = None
) -> None:
    fd = os.open(source, os.O_RDONLY)
    offsets = iter(range(0, size, request_size))
    try:
        async with NbdClient.connect(
            host="127.0.0.1", port=port, export_name="export", max_in_flight=in_flight, tls=tls
        ) as nbd:

            async def worker() -> None:
                for offset in offsets:  # shared iterator: each offset is taken once
                    await nbd.pwrite(offset, os.pread(fd, min(request_size, size - offset), offset))

            await asyncio.gather(*(worker() for _ in range(in_flight)))
    finally:
        os.close(fd)


def run_ferry_copy(
    port: int, *, source: Path, size: int, in_flight: int, request_size: int, tls: NbdTls | None = None
) -> None:
    asyncio.run(ferry_copy(source, port, size, in_flight, request_size, tls))


def run_nbdcopy(port: int, *, source: Path, options: tuple[str, ...] = ()) -> None:
    subprocess.run(["nbdcopy", *options, str(source), f"nbd://127.0.0.1:{port}/export"], check=True)


def measure(
    workdir: Path, size: int, source_sha: str, runs: int, copy: Callable[[int], None], extra: tuple[str, ...] = ()
) -> float:
    speeds = []
    for _ in range(runs):
        with qemu_nbd_export(workdir, size, extra) as (port, target):
            started = time.perf_counter()
            copy(port)
            elapsed = time.perf_counter() - started
            if file_sha256(target) != source_sha:
                raise SystemExit(f"target differs from the source after a copy into {target}")
        speeds.append(size / MiB / elapsed)
    return statistics.median(speeds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--request-kib", type=int, default=1024, help="size of each NBD write request")
    parser.add_argument("--in-flight", default="1,4,16,64")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path("/dev/shm"))
    parser.add_argument("--tls", action="store_true", help="also measure Ferry's client over TLS")
    args = parser.parse_args()
    for tool in ("qemu-nbd", "nbdcopy"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: run scripts/install-debs.sh")
    size, request_size = args.size_mib * MiB, args.request_kib * 1024
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="ferry-nbd-bench-") as tmp:
        workdir = Path(tmp)
        source = workdir / "source.raw"
        source_sha = make_source(source, size)
        print(
            f"{args.size_mib} MiB from {source} to qemu-nbd on {workdir}, {args.request_kib} KiB requests, "
            f"median of {args.runs} (MiB/s)"
        )
        tls_args, tls = make_tls(workdir) if args.tls else ((), None)
        print(f"{'in flight':>9}  {'ferry NbdClient':>15}  {'nbdcopy 1 conn':>14}" + ("  ferry over TLS" * args.tls))
        for in_flight in (int(n) for n in args.in_flight.split(",")):
            ours = measure(
                workdir,
                size,
                source_sha,
                args.runs,
                partial(run_ferry_copy, source=source, size=size, in_flight=in_flight, request_size=request_size),
            )
            options = ("--connections=1", f"--requests={in_flight}", f"--request-size={request_size}")
            theirs = measure(workdir, size, source_sha, args.runs, partial(run_nbdcopy, source=source, options=options))
            line = f"{in_flight:>9}  {ours:>15.0f}  {theirs:>14.0f}"
            if tls is not None:
                copy = partial(run_ferry_copy, source=source, size=size, in_flight=in_flight,
                               request_size=request_size, tls=tls)  # fmt: skip
                line += f"  {measure(workdir, size, source_sha, args.runs, copy, tls_args):>14.0f}"
            print(line)
        default = measure(workdir, size, source_sha, args.runs, partial(run_nbdcopy, source=source))
        print(f"nbdcopy with its defaults (multi-conn, its own request size and queue): {default:.0f}")


if __name__ == "__main__":
    main()
