"""The measuring loop: for each case, every peer and every Ferry worker count, ``runs`` times.

Runs are interleaved (run 1 of every tool, then run 2, …) so that load from elsewhere on
the machine spreads over the tools instead of landing on one. Each copy goes to a fresh
target file that is checked against the simulator's flat file and then deleted. A tool
that fails or hangs, or whose copy is wrong, gets no figure and is not run again.
"""

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from ferry_shared.credentials import Secret
from line_rate_bench import space
from line_rate_bench.cases import CaseSpec, MiB
from line_rate_bench.ferry_slot import FerryCase, FerryRunner
from line_rate_bench.peers import Peer, PeerJob, write_cookie_files
from line_rate_bench.results import RunFailedError, RunResult, Series
from line_rate_bench.simulator import Simulator, SourceDisk
from line_rate_bench.verify import first_difference

Say = Callable[[str], None]


@dataclass(frozen=True)
class Settings:
    runs: int
    workers: tuple[int, ...]
    peers: tuple[Peer, ...]
    ferry: FerryRunner | None
    target_dir: Path | None  # None: /dev/shm when it has room, else /tmp (per case)
    log_dir: Path
    timeout: float | None  # per copy; None: 60 s + 10 MiB/s over the disk
    baselines: tuple[tuple[str, FerryRunner], ...] = ()  # (label, runner): older Ferrys, in the same runs


@dataclass
class CaseResult:
    spec: CaseSpec
    placement: space.Placement
    source: SourceDisk
    series: list[Series]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]


def run_case(simulator: Simulator, spec: CaseSpec, settings: Settings, say: Say) -> CaseResult:
    placement = space.choose(settings.target_dir, spec.capacity + 64 * MiB, f"case ({spec.key})'s copy")
    say(f"({spec.key}) {spec.title}: copies in {placement.path} ({placement.reason})")
    timeout = settings.timeout or 60 + spec.capacity / (10 * MiB)
    load_before = os.getloadavg()
    simulator.set_bandwidth(spec.bandwidth_per_connection)
    try:
        source = simulator.disk(spec.vm)
        work = Path(tempfile.mkdtemp(prefix="line-rate-", dir=placement.path))
        try:
            series = _measure(simulator, spec, source, settings, work, timeout, say)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    finally:
        simulator.set_bandwidth(0)
    return CaseResult(spec, placement, source, series, load_before, os.getloadavg())


def _measure(
    simulator: Simulator, spec: CaseSpec, source: SourceDisk, settings: Settings, work: Path, timeout: float, say: Say
) -> list[Series]:
    cookie = simulator.cookie_header_value
    cookie_file, header_file = write_cookie_files(work, cookie)
    log_dir = settings.log_dir / f"case-{spec.key}"
    log_dir.mkdir(parents=True, exist_ok=True)
    target = work / "target.raw"
    job = PeerJob(source.url, simulator.ca_file, cookie_file, header_file, target, log_dir, spec.capacity, timeout)
    copies: list[tuple[Series, Callable[[], RunResult]]] = [
        (Series(peer.name, None, True, peer.process_names), partial(peer.run, job)) for peer in settings.peers
    ]
    if settings.ferry is not None:
        vcsim = simulator.vcsim
        case = FerryCase(
            key=spec.key,
            title=spec.title,
            source=source,
            sdk_url=vcsim.sdk_url,
            username=vcsim.username,
            password=Secret(vcsim.password),
            thumbprint_sha256=vcsim.thumbprint_sha256,
            ca_file=vcsim.certificate_path,
            session_cookie=cookie,
            bandwidth_per_connection=spec.bandwidth_per_connection,
            target=target,
            timeout=timeout,
        )
        copies += [
            (Series("ferry", workers, False), partial(settings.ferry, workers, case)) for workers in settings.workers
        ]
        for label, baseline in settings.baselines:
            copies += [(Series(label, n, False), partial(baseline, n, case)) for n in settings.workers]
    for run in range(1, settings.runs + 1):
        for series, copy in copies:
            if series.failures or series.invalid:
                continue
            simulator.keep_alive()
            target.unlink(missing_ok=True)
            try:
                result = _copy(copy)
                if not target.is_file():
                    raise RunFailedError(f"it reported success but wrote no {target}")
                checked = time.monotonic()
                difference = first_difference(target, source.path_on_disk)
                check_seconds = time.monotonic() - checked
            except RunFailedError as error:
                series.failures.append(str(error))
                say(f"  ({spec.key}) {_label(series)} run {run}: FAILED: {error}")
                continue
            finally:
                target.unlink(missing_ok=True)
            series.runs.append(result)
            speed = spec.capacity / MiB / result.seconds
            if difference is not None:
                series.invalid = difference
                say(f"  ({spec.key}) {_label(series)} run {run}: WRONG COPY, figure void: {difference}")
            else:
                say(
                    f"  ({spec.key}) {_label(series)} run {run}: {result.seconds:.2f} s, {speed:.0f} MiB/s "
                    f"(copy checked in {check_seconds:.1f} s)"
                )
    return [series for series, _ in copies]


def _copy(copy: Callable[[], RunResult]) -> RunResult:
    try:
        result = copy()
    except RunFailedError:
        raise
    except Exception as error:
        raise RunFailedError(f"{type(error).__name__}: {error}") from error
    if result.seconds <= 0:
        raise RunFailedError(f"the runner reported {result.seconds} s for a copy")
    return result


def _label(series: Series) -> str:
    return series.tool if series.workers is None else f"{series.tool}, {series.workers} worker(s)"
