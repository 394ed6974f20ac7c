"""The slot where Ferry's copy plugs into the benchmark.

A Ferry runner is any callable ``runner(workers, case) -> RunResult`` (see
:class:`FerryRunner`): it copies ``case.source`` into the raw file ``case.target`` with
``workers`` workers and reports the bytes it read, the wall time and each worker's peak
RSS. The harness checks the copy against the source and deletes it afterwards. Pass it as
``--ferry package.module:attribute``; without one the benchmark measures the peers only.
"""

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from ferry_shared.credentials import Secret
from line_rate_bench.results import RunResult
from line_rate_bench.simulator import SourceDisk


@dataclass(frozen=True)
class FerryCase:
    """Everything a Ferry runner needs for one copy (vCenter, disk, where to write)."""

    key: str  # "a", "b" or "c"
    title: str
    source: SourceDisk  # URL, VM moref, disk key, change ID, backing file, capacity
    sdk_url: str
    username: str
    password: Secret
    thumbprint_sha256: str
    ca_file: Path
    session_cookie: Secret  # "vmware_soap_session=…" of the harness's own session
    bandwidth_per_connection: int  # the simulator's cap for this case (0 = none)
    target: Path  # write the raw copy here; it does not exist yet
    timeout: float  # seconds the copy may take before the harness counts it as hung


@runtime_checkable
class FerryRunner(Protocol):
    def __call__(self, workers: int, case: FerryCase) -> RunResult: ...


def load_runner(spec: str) -> FerryRunner:
    """The callable named by ``module:attribute`` (e.g. ``ferry_transfer.benchmark:run``)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise SystemExit(f"--ferry wants MODULE:CALLABLE (e.g. ferry_transfer.benchmark:run), got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise SystemExit(f"--ferry {spec}: cannot import {module_name}: {error}") from error
    runner = getattr(module, attribute, None)
    if not isinstance(runner, FerryRunner):
        raise SystemExit(f"--ferry {spec}: {module_name} has no callable {attribute!r}")
    return runner
