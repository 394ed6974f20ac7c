"""Child processes timed by the benchmark, with each one's peak RSS from ``wait4``.

``ru_maxrss`` of a process counts the memory it had before its ``exec``: a program
started straight from this (large) Python process reports Python's RSS, whether spawned
with vfork or fork. So every tool is started by a tiny ``sh`` that runs it in the
background, reports its pid on a pipe and turns into ``/bin/echo`` (a shell could reap a
tool that ends at once; echo reaps nothing). This process is a child subreaper
(``PR_SET_CHILD_SUBREAPER``), so the tool becomes its child when the launcher is gone,
and ``wait4`` on it reports the tool's own peak RSS (plus the ≈1 MiB of the shell it was
forked from).

stdin is /dev/null, stdout and stderr go to a log file, and a listening socket can be
handed over as fd 3 (systemd-style socket activation). A child is waited for on its pidfd
with a deadline, so a hung tool is killed rather than waited on forever.
"""

import contextlib
import ctypes
import fcntl
import functools
import os
import select
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

LISTEN_FD = 3  # SD_LISTEN_FDS_START
_PID_FD = 4  # where the launcher shell writes the tool's pid
_LAUNCHER = '"$@" 4>&- & exec /bin/echo $! >&4'
_PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Exit:
    """How a child ended: exit code (negative: killed by that signal), peak RSS, and whether it hung."""

    name: str
    returncode: int
    peak_rss: int  # bytes
    timed_out: bool

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


@functools.cache
def _become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(error)}")


class Child:
    """One started program; call :meth:`wait` (or :meth:`stop`) exactly once."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        listen_fd: int | None = None,
    ) -> None:
        _become_subreaper()
        self.name = name
        self.log_path = log_path
        read_end, write_end = os.pipe()
        handed = {_PID_FD: write_end} | ({LISTEN_FD: listen_fd} if listen_fd is not None else {})
        # move each fd above the targets first: dup2 onto itself would keep close-on-exec set
        spares = {target: fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _PID_FD + 1) for target, fd in handed.items()}
        actions: list[tuple[int, int, str, int, int] | tuple[int, int, int]] = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log_path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600),
            (os.POSIX_SPAWN_DUP2, 1, 2),
            *((os.POSIX_SPAWN_DUP2, spare, target) for target, spare in spares.items()),
        ]
        try:
            launcher = os.posix_spawn(
                "/bin/sh",
                ["sh", "-c", _LAUNCHER, "sh", *argv],
                dict(env if env is not None else os.environ),
                file_actions=actions,
            )
        finally:
            for fd in (write_end, *spares.values()):
                os.close(fd)
        with os.fdopen(read_end, "rb") as pid_pipe:
            pid_line = pid_pipe.read()  # EOF when the launcher exits
        _, status, _ = os.wait4(launcher, 0)
        if os.waitstatus_to_exitcode(status) != 0 or not pid_line.strip().isdigit():
            raise OSError(f"could not start {name}: the launcher shell exited with status {status}")
        self.pid = int(pid_line)  # now our child: the launcher is gone and we are the subreaper
        self._pidfd = os.pidfd_open(self.pid)

    def signal(self, signum: signal.Signals) -> None:
        """Send ``signum`` unless the child has exited already (the pidfd makes this race-free)."""
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(self._pidfd, signum)

    def wait(self, timeout: float) -> Exit:
        """Wait up to ``timeout`` seconds for the exit (then SIGKILL it), reap it, return how it ended."""
        poller = select.poll()
        poller.register(self._pidfd, select.POLLIN)
        try:
            timed_out = not poller.poll(max(timeout, 0.0) * 1000)
        except BaseException:  # e.g. Ctrl-C: the tool ignores SIGINT (started in the background by sh)
            self.signal(signal.SIGKILL)
            os.wait4(self.pid, 0)
            os.close(self._pidfd)
            raise
        if timed_out:
            self.signal(signal.SIGKILL)
        _, status, usage = os.wait4(self.pid, 0)
        os.close(self._pidfd)
        return Exit(self.name, os.waitstatus_to_exitcode(status), usage.ru_maxrss * 1024, timed_out)

    def stop(self, grace: float = 10.0) -> Exit:
        """SIGTERM, then :meth:`wait` up to ``grace`` seconds (SIGKILL after that)."""
        self.signal(signal.SIGTERM)
        return self.wait(grace)

    def log_tail(self, lines: int = 8) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
