"""A child process with its own log file, started and stopped deliberately."""

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class ProcessFailedError(RuntimeError):
    """A managed process exited or never became ready; the message quotes its log."""


class ManagedProcess:
    """Runs a program with stdout/stderr in ``log_path``; stop() sends SIGTERM, then SIGKILL."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        signal_group: bool = False,
    ) -> None:
        """``signal_group``: stop signals go to the process's whole group, for wrappers such as
        ``unshare --fork`` that do not pass SIGTERM on to the program they run."""
        self.name = name
        self._signal_group = signal_group
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            list(argv),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 30) -> str:
        """The last lines the process wrote."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_until(self, probe: Callable[[], T | None], *, timeout: float, what: str) -> T:
        """Return probe()'s first non-None value; fail if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            result = probe()
            if result is not None:
                return result
            if self.process.poll() is not None:
                self.stop()
                raise ProcessFailedError(
                    f"{self.name} exited with code {self.process.returncode} before {what}; "
                    f"its log ({self.log_path}) ends with:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise ProcessFailedError(
                    f"{self.name} did not reach '{what}' within {timeout:.0f}s; "
                    f"its log ({self.log_path}) ends with:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the process (to test crash recovery)."""
        if self.process.poll() is None:
            self._signal(signal.SIGKILL)
            self.process.wait()
        self._log.close()

    def _signal(self, number: signal.Signals) -> None:
        if self._signal_group:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, number)
        else:
            self.process.send_signal(number)

    def terminate(self) -> None:
        """Send SIGTERM without waiting (see :func:`stop_all`)."""
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait up to ``timeout``, then SIGKILL; returns the exit code."""
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait()
        self._log.close()
        return self.process.returncode


def stop_all(processes: Iterable[ManagedProcess], timeout: float = 10.0) -> list[int]:
    """Stop several processes at once: SIGTERM to all, then wait for each (they drain in parallel)."""
    chosen = list(processes)
    for process in chosen:
        process.terminate()
    return [process.stop(timeout) for process in chosen]
