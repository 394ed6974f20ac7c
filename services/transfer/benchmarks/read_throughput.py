"""Benchmark: the transfer's datastore reader (:class:`DatastoreReader`) against ``curl`` on one simulator disk.

Starts ferry-vcsim with one dense disk (state on /dev/shm), logs in with pyVmomi for the
``vmware_soap_session`` cookie, then, in the same invocation and on the same disk, times:
``curl -o /dev/null`` and ``curl -o`` a file on /dev/shm (one stream each), and the reader
reading the whole disk with 1, 2, 4, 8 connections and 4, 8, 16, 32 MiB ranges (as many ranges
in flight as connections; each read allocates its range, as the range copier's reads do). Then again with
the simulator capping each connection at --cap-mib MiB/s (vSphere's per-stream NFC limit),
on the first --capped-mib MiB of the disk. Prints the median MiB/s of --runs, the ratio to the
better curl, and the CPU seconds the client and the simulator spent per GiB. ``--read-into``
adds the reader filling reused buffers; ``--compare`` adds the previous reader (httpx) and
aiohttp, for reference.

    .venv/bin/python services/transfer/benchmarks/read_throughput.py [--size-mib 1024] [--runs 3]
"""

import argparse
import asyncio
import os
import resource
import secrets
import shutil
import ssl
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sized
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from pyVim.connect import Disconnect, SmartConnect

from ferry_peers.vcsim import Vcsim, start_vcsim
from ferry_transfer.adapters.datastore import DatastoreReader, flat_file_url, session_cookie_header

MiB = 1024 * 1024
GiB = 1024 * MiB
DATACENTER = "DC0"
CONNECTIONS = [1, 2, 4, 8]
RANGE_MIB = [4, 8, 16, 32]


def model(size: int) -> dict[str, Any]:
    vm = {"name": "dense", "disks": [{"capacity": size, "content": {"kind": "random", "seed": 11}}]}
    host = {"name": "H0"}
    return {
        "datacenters": [
            {
                "name": DATACENTER,
                "datastores": [{"name": "LocalDS_0"}],
                "clusters": [{"name": "C0", "hosts": [host]}],
                "vms": [vm],
            }
        ]
    }


@dataclass
class Source:
    """The simulator, its disk and a logged-in session (the cookie stays in a 0600 header file for curl)."""

    vcsim: Vcsim
    url: str
    path_on_disk: Path
    size: int
    cookie: str
    header_file: Path
    control: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.control = httpx.Client(base_url=self.vcsim.control_url, timeout=30)

    def cap(self, bytes_per_second: int) -> None:
        self.control.put("/bandwidth", json={"bytes_per_second": bytes_per_second}).raise_for_status()
        if self.control.get("/bandwidth").json()["bytes_per_second"] != bytes_per_second:
            raise SystemExit("the simulator did not take the bandwidth cap")

    def simulator_cpu(self) -> float:
        fields = Path(f"/proc/{self.vcsim.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def simulator(workdir: Path, size: int) -> Iterator[Source]:
    vcsim = start_vcsim(workdir / "vcsim", password=secrets.token_urlsafe(12), model=model(size))
    try:
        host, port = vcsim.host.rsplit(":", 1)
        context = ssl.create_default_context(cafile=str(vcsim.certificate_path))
        si = SmartConnect(  # type: ignore[no-untyped-call]
            host=host, port=int(port), user=vcsim.username, pwd=vcsim.password, sslContext=context
        )
        try:
            disk = httpx.get(f"{vcsim.control_url}/vms/dense", timeout=30).json()["disks"][0]
            cookie = si._stub.cookie
            header_file = workdir / "cookie-header"
            header_file.touch(mode=0o600)
            header_file.write_text(f"Cookie: {session_cookie_header(cookie)}\n")
            url = flat_file_url(vcsim.host, disk["file"], DATACENTER)
            yield Source(vcsim, url, Path(disk["path_on_disk"]), int(disk["capacity"]), cookie, header_file)
        finally:
            Disconnect(si)  # type: ignore[no-untyped-call]
    finally:
        vcsim.stop()


@dataclass
class Result:
    name: str
    connections: int
    range_mib: int | None
    speeds: list[float]
    cpu_per_gib: float
    simulator_cpu_per_gib: float

    @property
    def median(self) -> float:
        return statistics.median(self.speeds)


def timed(
    source: Source, size: int, runs: int, run: Callable[[], None], *, children: bool
) -> tuple[list[float], float, float]:
    """MiB/s of each run; the client's and the simulator's CPU seconds per GiB (of the last run)."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    speeds, cpu, simulator_cpu = [], 0.0, 0.0
    for _ in range(runs):
        before, simulator_before = resource.getrusage(who), source.simulator_cpu()
        started = time.perf_counter()
        run()
        elapsed = time.perf_counter() - started
        after = resource.getrusage(who)
        cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) / (size / GiB)
        simulator_cpu = (source.simulator_cpu() - simulator_before) / (size / GiB)
        speeds.append(size / MiB / elapsed)
    return speeds, cpu, simulator_cpu


def curl(source: Source, size: int, output: Path) -> None:
    argv = ["curl", "-sS", "--fail", "--http1.1", "--cacert", str(source.vcsim.certificate_path)]
    argv += ["-H", f"@{source.header_file}", "-o", str(output)]
    if size < source.size:
        argv += ["-r", f"0-{size - 1}"]
    subprocess.run([*argv, source.url], check=True)
    if output.is_file() and output.stat().st_size != size:
        raise SystemExit(f"curl wrote {output.stat().st_size} bytes, not {size}")


async def read_all(read: Callable[[int, int], Awaitable[Sized]], size: int, range_size: int, in_flight: int) -> None:
    offsets = iter(range(0, size, range_size))

    async def worker() -> None:
        for offset in offsets:  # shared: each range is taken once
            length = min(range_size, size - offset)
            if len(await read(offset, length)) != length:
                raise SystemExit(f"short read at {offset}")

    await asyncio.gather(*(worker() for _ in range(in_flight)))


async def with_reader(source: Source, size: int, range_size: int, connections: int) -> None:
    async with DatastoreReader(
        source.url, session_cookie=source.cookie, ca_bundle=source.vcsim.certificate_path, connections=connections
    ) as reader:
        await read_all(reader.read, size, range_size, connections)


async def with_reader_into(source: Source, size: int, range_size: int, connections: int) -> None:
    buffers = [memoryview(bytearray(range_size)) for _ in range(connections)]  # reused: no allocation per range
    async with DatastoreReader(
        source.url, session_cookie=source.cookie, ca_bundle=source.vcsim.certificate_path, connections=connections
    ) as reader:

        async def read(offset: int, length: int) -> Sized:
            buffer = buffers.pop()
            try:
                await reader.read_into(offset, buffer[:length])
            finally:
                buffers.append(buffer)
            return buffer[:length]

        await read_all(read, size, range_size, connections)


async def with_httpx(source: Source, size: int, range_size: int, connections: int) -> None:
    context = ssl.create_default_context(cafile=str(source.vcsim.certificate_path))
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Cookie": session_cookie_header(source.cookie)}
    async with httpx.AsyncClient(verify=context, limits=limits, headers=headers, timeout=60) as client:

        async def read(offset: int, length: int) -> bytes:
            response = await client.get(source.url, headers={"Range": f"bytes={offset}-{offset + length - 1}"})
            return response.content

        await read_all(read, size, range_size, connections)


async def with_aiohttp(source: Source, size: int, range_size: int, connections: int) -> None:
    import aiohttp  # noqa: PLC0415 - only for --compare
    from yarl import URL  # noqa: PLC0415

    context = ssl.create_default_context(cafile=str(source.vcsim.certificate_path))
    connector = aiohttp.TCPConnector(ssl=context, limit=connections)
    headers = {"Cookie": session_cookie_header(source.cookie)}
    url = URL(source.url, encoded=True)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def read(offset: int, length: int) -> bytes:
            async with session.get(url, headers={"Range": f"bytes={offset}-{offset + length - 1}"}) as response:
                return await response.read()

        await read_all(read, size, range_size, connections)


READERS = {
    "reader": with_reader,
    "reader read_into": with_reader_into,
    "httpx (old)": with_httpx,
    "aiohttp": with_aiohttp,
}


async def verify(source: Source) -> None:
    """A few odd ranges read by the reader equal the simulator's file (not timed)."""
    async with DatastoreReader(
        source.url, session_cookie=source.cookie, ca_bundle=source.vcsim.certificate_path, connections=2
    ) as reader:
        with source.path_on_disk.open("rb") as file:
            for offset, length in ((0, 4096), (12345, 3 * MiB + 7), (source.size - 999, 999)):
                file.seek(offset)
                if await reader.read(offset, length) != file.read(length):
                    raise SystemExit(f"the reader's bytes {offset}+{length} differ from the disk file")


def _run(job: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(job())


def measure(source: Source, workdir: Path, size: int, args: argparse.Namespace, names: list[str]) -> list[Result]:
    runs = args.runs
    results = []
    for label, output in (("curl -o /dev/null", Path("/dev/null")), ("curl -o /dev/shm", workdir / "curl.out")):
        speeds, cpu, simulator_cpu = timed(source, size, runs, partial(curl, source, size, output), children=True)
        if output.is_file():
            output.unlink()
        results.append(Result(label, 1, None, speeds, cpu, simulator_cpu))
        print(f"  {label:<20} {statistics.median(speeds):7.0f} MiB/s", flush=True)
    for name in names:
        for connections in args.connections:
            for range_mib in args.range_mib:
                job = partial(READERS[name], source, size, range_mib * MiB, connections)
                speeds, cpu, simulator_cpu = timed(source, size, runs, partial(_run, job), children=False)
                results.append(Result(name, connections, range_mib, speeds, cpu, simulator_cpu))
                speed = statistics.median(speeds)
                print(f"  {name:<12} {connections} conn {range_mib:>2} MiB {speed:7.0f} MiB/s", flush=True)
    return results


def report(title: str, results: list[Result], connection_counts: list[int]) -> None:
    best_curl = max(r.median for r in results if r.name.startswith("curl"))
    print(f"\n{title}")
    columns = ("client", "conns", "range", "MiB/s", "runs", "x curl", "cpu s/GiB", "sim cpu")
    print("{:<20} {:>5} {:>6} {:>7} {:<22} {:>6} {:>9} {:>7}".format(*columns))
    for r in results:
        size = f"{r.range_mib}M" if r.range_mib else "-"
        runs = ",".join(f"{s:.0f}" for s in r.speeds)
        print(
            f"{r.name:<20} {r.connections:>5} {size:>6} {r.median:>7.0f} {runs:<22} {r.median / best_curl:>6.2f} "
            f"{r.cpu_per_gib:>9.2f} {r.simulator_cpu_per_gib:>7.2f}"
        )
    ours = [r for r in results if r.name == "reader"]
    for connections in connection_counts:
        best = max((r for r in ours if r.connections == connections), key=lambda r: r.median)
        ratio = best.median / best_curl
        print(f"  best with {connections} connection(s): {best.range_mib} MiB ranges, {ratio:.2f}x curl")


def _numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024, help="disk size (default 1024)")
    parser.add_argument("--runs", type=int, default=3, help="runs per case; the median is reported")
    parser.add_argument("--connections", type=_numbers, default=CONNECTIONS, help="default 1,2,4,8")
    parser.add_argument("--range-mib", type=_numbers, default=RANGE_MIB, help="range sizes, default 4,8,16,32")
    parser.add_argument("--cap-mib", type=int, default=100, help="per-connection cap of the capped cases (MiB/s)")
    parser.add_argument("--capped-mib", type=int, default=512, help="bytes read in the capped cases (MiB)")
    parser.add_argument("--no-cap", action="store_true", help="skip the capped cases")
    parser.add_argument("--read-into", action="store_true", help="also time read_into with reused buffers")
    parser.add_argument("--compare", action="store_true", help="also time httpx (the previous reader) and aiohttp")
    parser.add_argument("--dir", type=Path, default=Path("/dev/shm"), help="where the simulator keeps the disk")
    args = parser.parse_args()
    if shutil.which("curl") is None:
        raise SystemExit("curl is missing: apt-get install curl")
    size = args.size_mib * MiB
    names = ["reader", *(["reader read_into"] if args.read_into else [])]
    names += ["httpx (old)", "aiohttp"] if args.compare else []
    with (
        tempfile.TemporaryDirectory(dir=args.dir, prefix="ferry-read-bench-") as tmp,
        simulator(Path(tmp), size) as source,
    ):
        where = source.url.split("?")[0]
        print(f"{args.size_mib} MiB dense disk at {where}; {os.cpu_count()} cores; median of {args.runs}")
        asyncio.run(verify(source))
        uncapped = measure(source, Path(tmp), size, args, names)
        report("no cap", uncapped, args.connections)
        if not args.no_cap:
            capped_size = min(size, args.capped_mib * MiB)
            source.cap(args.cap_mib * MiB)
            print(f"\ncapped at {args.cap_mib} MiB/s per connection, first {capped_size // MiB} MiB:")
            capped = measure(source, Path(tmp), capped_size, args, names)
            report(f"capped at {args.cap_mib} MiB/s per connection", capped, args.connections)


if __name__ == "__main__":
    main()
