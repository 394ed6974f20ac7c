"""The peers Ferry is measured against, each copying the datastore URL into a local raw file.

- ``curl -o``: one HTTPS stream, the cookie sent from a header file.
- ``qemu-img convert`` with qemu's curl block driver (``https``), the cookie from a
  secret object. ``-m 1``: qemu 7.2's curl driver hangs for good within seconds with
  more than one coroutine against this server (every run with ``-m 2``/``-m 4`` hung,
  none with ``-m 1``). Readahead (default 256 KiB, one HTTP request each) is raised to
  8 MiB, about twice as fast here. qemu's driver has no CA-file option, so TLS is not verified (``sslverify=false``).
- ``nbdcopy`` from ``nbdkit curl``: nbdkit serves the URL as an NBD export over a Unix
  socket the harness listens on and hands over (socket activation, so nbdkit is ready
  before nbdcopy connects, without waiting loops); nbdcopy copies it. nbdkit 1.32's curl
  plugin serializes requests and offers no multi-conn, so it is one stream; nbdcopy's
  request size (default 256 KiB, one HTTP request each) is raised to 4 MiB, about twice as
  fast here. Both are flags of the benchmark.

Secrets never reach an argument list: the cookie goes through files readable by the
owner only. Each tool's stdout and stderr go to a log file.
"""

import json
import os
import socket
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ferry_shared.credentials import Secret
from line_rate_bench.processes import Child, Exit
from line_rate_bench.results import RunFailedError, RunResult


@dataclass(frozen=True)
class PeerJob:
    """One copy for a peer: source URL and trust, the cookie files, the target, the deadline."""

    url: str
    ca_file: Path
    cookie_file: Path  # "vmware_soap_session=…", no newline
    header_file: Path  # "Cookie: vmware_soap_session=…"
    target: Path
    log_dir: Path
    capacity: int
    timeout: float


class Peer(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def process_names(self) -> tuple[str, ...]:
        """The processes whose peak RSS :meth:`run` reports, in that order."""
        ...

    def describe(self) -> str:
        """The command it runs (placeholders for the URL, files and target)."""
        ...

    def run(self, job: PeerJob) -> RunResult: ...


def write_cookie_files(directory: Path, cookie: Secret) -> tuple[Path, Path]:
    """The cookie file and the curl header file, both mode 0600, in ``directory``."""
    cookie_file, header_file = directory / "session-cookie", directory / "session-header"
    for path, text in ((cookie_file, cookie.reveal()), (header_file, f"Cookie: {cookie.reveal()}\n")):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(text)
    return cookie_file, header_file


class Curl:
    name = "curl -o"
    process_names = ("curl",)

    def describe(self) -> str:
        return "curl --silent --show-error --fail --header @HEADERS --cacert CA --output TARGET URL"

    def run(self, job: PeerJob) -> RunResult:
        argv = ["curl", "--silent", "--show-error", "--fail", "--header", f"@{job.header_file}",
                "--cacert", str(job.ca_file), "--output", str(job.target), job.url]  # fmt: skip
        return _single(self.name, argv, job)


@dataclass(frozen=True)
class QemuImg:
    readahead: int
    name = "qemu-img convert"
    process_names = ("qemu-img",)

    def describe(self) -> str:
        return (
            f"qemu-img convert -m 1 -f raw -O raw --object secret,id=cookie,file=COOKIE "
            f'\'json:{{"file.driver":"https","file.url":URL,"file.cookie-secret":"cookie",'
            f'"file.sslverify":false,"file.readahead":{self.readahead}}}\' TARGET'
        )

    def run(self, job: PeerJob) -> RunResult:
        source = {"file.driver": "https", "file.url": job.url, "file.cookie-secret": "cookie",
                  "file.sslverify": False, "file.readahead": self.readahead}  # fmt: skip
        argv = ["qemu-img", "convert", "-m", "1", "-f", "raw", "-O", "raw",
                "--object", f"secret,id=cookie,file={job.cookie_file}",
                "json:" + json.dumps(source), str(job.target)]  # fmt: skip
        return _single(self.name, argv, job)


@dataclass(frozen=True)
class NbdCopy:
    request_size: int
    name = "nbdcopy from nbdkit curl"
    process_names = ("nbdkit", "nbdcopy")

    def describe(self) -> str:
        return (
            "nbdkit --foreground --readonly curl url=URL cookie=+COOKIE cainfo=CA "
            f"(socket-activated on SOCKET) + nbdcopy --request-size={self.request_size} "
            "'nbd+unix:///?socket=SOCKET' TARGET"
        )

    def run(self, job: PeerJob) -> RunResult:
        with tempfile.TemporaryDirectory(prefix="line-rate-nbd-") as sockets:  # short path: AF_UNIX limit
            path = Path(sockets) / "nbd.sock"
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
                listener.bind(str(path))
                listener.listen(16)
                env = {k: v for k, v in os.environ.items() if k != "LISTEN_FDNAMES"} | {"LISTEN_FDS": "1"}
                server_argv = ["sh", "-c", _NBDKIT_PARENT, "sh",
                               "nbdkit", "--foreground", "--readonly", "curl",
                               f"url={job.url}", f"cookie=+{job.cookie_file}", f"cainfo={job.ca_file}"]  # fmt: skip
                client_argv = ["nbdcopy", f"--request-size={self.request_size}",
                               f"nbd+unix:///?socket={path}", str(job.target)]  # fmt: skip
                started = time.perf_counter()
                server = Child("nbdkit", server_argv, job.log_dir / "nbdkit.log", env=env, listen_fd=listener.fileno())
                try:
                    client = Child("nbdcopy", client_argv, job.log_dir / "nbdcopy.log")
                    copied = client.wait(job.timeout)
                    seconds = time.perf_counter() - started
                finally:
                    served = server.stop()
        _check(copied, client, job.timeout)
        return RunResult(job.capacity, seconds, (served.peak_rss, copied.peak_rss))


# nbdkit (1.32 as Debian builds it) asks for SIGTERM when its parent exits (PR_SET_PDEATHSIG), so it
# cannot be handed to the harness like the other tools. A small shell stays its parent for the whole
# copy: it sets LISTEN_PID for socket activation, passes SIGTERM on, and exits after nbdkit, so its
# wait4 figure is nbdkit's peak RSS (or its own ≈1 MiB, whichever is larger).
_NBDKIT_PARENT = """
sh -c 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"' sh "$@" &
child=$!
trap 'kill -TERM "$child"' TERM
wait "$child"
status=$?
if [ "$status" -gt 128 ]; then wait "$child"; status=$?; fi
exit "$status"
"""


def _single(name: str, argv: Sequence[str], job: PeerJob) -> RunResult:
    started = time.perf_counter()
    child = Child(name, argv, job.log_dir / f"{argv[0]}.log")
    ended = child.wait(job.timeout)
    seconds = time.perf_counter() - started
    _check(ended, child, job.timeout)
    return RunResult(job.capacity, seconds, (ended.peak_rss,))


def _check(ended: Exit, child: Child, timeout: float) -> None:
    if ended.timed_out:
        raise RunFailedError(f"{ended.name} hung: killed after {timeout:.0f} s (log {child.log_path})")
    if ended.returncode != 0:
        raise RunFailedError(
            f"{ended.name} exited with {ended.returncode} (log {child.log_path}): {child.log_tail(3)!r}"
        )
