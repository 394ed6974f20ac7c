"""Benchmark: copying a vSphere disk at line rate — Ferry against curl, qemu-img and nbdcopy.

One command on one machine: starts ferry-vcsim with a dense disk and a sparse CBT disk,
logs in once for the session cookie, and copies each case's disk from the simulator's
datastore endpoint (``GET /folder/…-flat.vmdk``) to a local raw file with every tool:

  (a) the dense disk (default 4 GiB of random data);
  (b) the sparse disk (default 16 GiB, 10% allocated, CBT on);
  (c) the dense disk with the simulator capping each connection (default 100 MiB/s).

Peers: ``curl -o``, ``qemu-img convert`` over HTTPS, ``nbdcopy`` from ``nbdkit curl``;
Ferry with 1, 2 and 4 workers (a NATS server and that many ``python -m ferry_transfer``
processes; another runner with ``--ferry MODULE:CALLABLE``, none with ``--ferry ''``; with
``--baseline CHECKOUT`` also the workers of an older checkout, in the same runs). Each copy is checked byte for
byte against the simulator's file and deleted. Prints per case MiB/s (disk size / wall
time; median and range of --runs), the ratio to the best peer and to curl, and the peak
RSS of each process (from wait4); writes results.json and throughput.png to --out.

    .venv/bin/python services/transfer/benchmarks/line_rate.py [--quick] [--runs 3] [--out var/line-rate]
"""

import argparse
import functools
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from line_rate_bench import cases, chart, ferry_runner, report, space
from line_rate_bench.ferry_slot import FerryRunner, load_runner
from line_rate_bench.harness import CaseResult, Settings, run_case
from line_rate_bench.peers import Curl, NbdCopy, Peer, QemuImg
from line_rate_bench.simulator import start_simulator

DEFAULT_FERRY_RUNNER = "line_rate_bench.ferry_runner:run"
"""NATS plus N ``python -m ferry_transfer`` workers copying one disk (see ferry_runner.py)."""

TOOLS = ("curl", "qemu-img", "nbdkit", "nbdcopy")
UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def say(text: str) -> None:
    print(text, flush=True)


def parse_size(text: str) -> int:
    """``4GiB``, ``512M``, ``16g`` (binary units) or a number of bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", text.lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (use e.g. 4GiB, 512MiB)")
    return int(float(match[1]) * UNITS[match[2]])


def parse_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small disks (512 MiB dense, 2 GiB sparse)")
    parser.add_argument("--dense-size", type=parse_size, help="dense disk of (a) and (c) (default 4GiB)")
    parser.add_argument("--sparse-size", type=parse_size, help="sparse CBT disk of (b) (default 16GiB)")
    parser.add_argument("--cap-mib", type=float, default=100.0, help="per-connection cap of (c), MiB/s")
    parser.add_argument("--runs", type=int, default=3, help="copies per tool and case (median reported)")
    parser.add_argument("--cases", type=parse_list, default=["a", "b", "c"], help="subset, e.g. a,c")
    parser.add_argument("--peers", type=parse_list, default=["curl", "qemu-img", "nbdcopy"], help="subset of peers")
    parser.add_argument("--workers", type=parse_list, default=["1", "2", "4"], help="Ferry worker counts")
    parser.add_argument(
        "--ferry",
        metavar="MODULE:CALLABLE",
        default=DEFAULT_FERRY_RUNNER,
        help="Ferry runner (see line_rate_bench/ferry_slot.py); empty: measure the peers only",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        action="append",
        default=[],
        metavar="CHECKOUT",
        help="also run the workers of this checkout (a git worktree of an older commit) in the same runs; repeatable",
    )
    parser.add_argument("--state-dir", type=Path, help="parent of the simulator's state (default /dev/shm if room)")
    parser.add_argument("--target-dir", type=Path, help="where copies go (default /dev/shm if room, per case)")
    parser.add_argument("--out", type=Path, default=Path("var/line-rate"), help="results.json, throughput.png, logs")
    parser.add_argument("--timeout", type=float, help="seconds one copy may take (default 60 + size / 10 MiB/s)")
    parser.add_argument("--qemu-readahead", type=parse_size, default=8 * cases.MiB, help="qemu curl driver readahead")
    parser.add_argument("--nbdcopy-request-size", type=parse_size, default=4 * cases.MiB, help="nbdcopy request size")
    return parser.parse_args()


def baseline_runner(tree: Path) -> tuple[str, FerryRunner]:
    """``ferry@<commit>``: the default runner with the workers' code from ``tree``."""
    if not (tree / "services" / "transfer" / "ferry_transfer").is_dir():
        raise SystemExit(f"--baseline {tree}: not a Ferry checkout (no services/transfer/ferry_transfer)")
    revision = ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"]
    head = subprocess.run(revision, check=False, capture_output=True, text=True)
    label = f"ferry@{head.stdout.strip()}" if head.returncode == 0 else f"ferry@{tree.name}"
    return label, functools.partial(ferry_runner.run_from, tree.resolve())


def pick_peers(names: list[str], args: argparse.Namespace) -> tuple[Peer, ...]:
    known: dict[str, Peer] = {
        "curl": Curl(),
        "qemu-img": QemuImg(args.qemu_readahead),
        "nbdcopy": NbdCopy(args.nbdcopy_request_size),
    }
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(f"unknown peer(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    return tuple(known[name] for name in names)


def tool_versions() -> dict[str, str]:
    versions = {}
    for tool in TOOLS:
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: run scripts/install-debs.sh")
        answer = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)
        versions[tool] = (answer.stdout or answer.stderr).splitlines()[0].strip()
    return versions


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "")
    meminfo = Path("/proc/meminfo").read_text().split()
    return {
        "cpus": cpuinfo.count("processor\t:"),
        "cpu_model": model,
        "mem_total_gib": round(int(meminfo[meminfo.index("MemTotal:") + 1]) / 1024**2, 1),
        "kernel": os.uname().release,
    }


def main() -> None:
    args = arguments()
    base = cases.QUICK if args.quick else cases.FULL
    sizes = cases.Sizes(
        dense=args.dense_size or base.dense,
        sparse=args.sparse_size or base.sparse,
        cap_per_connection=int(args.cap_mib * cases.MiB),
    )
    try:
        cases.validate(sizes)
    except ValueError as error:
        raise SystemExit(str(error)) from error
    specs = [spec for spec in cases.case_specs(sizes) if spec.key in args.cases]
    if not specs or args.runs < 1:
        raise SystemExit("nothing to do: --cases must name a, b and/or c, and --runs must be at least 1")
    if not all(w.isdigit() and int(w) > 0 for w in args.workers):
        raise SystemExit(f"--workers wants positive whole numbers separated by commas, got {','.join(args.workers)}")
    workers = tuple(int(w) for w in args.workers)
    peers = pick_peers(args.peers, args)
    ferry = load_runner(args.ferry) if args.ferry else None
    versions = tool_versions()
    command = shlex.join([".venv/bin/python", *sys.argv])
    say(f"$ {command}")
    say("tools: " + "; ".join(versions.values()))
    if ferry is None:
        say("Ferry: NOT MEASURED: no --ferry runner given (the Ferry side is not plugged in yet); peers only")

    state_need = sizes.dense + cases.sparse_allocated(sizes.sparse) + 256 * cases.MiB
    state = space.choose(args.state_dir, state_need, "the simulator's disks")
    started = datetime.now(UTC)
    results: list[CaseResult] = []
    baselines = tuple(baseline_runner(tree) for tree in args.baseline)
    for (label, _), tree in zip(baselines, args.baseline, strict=True):
        say(f"baseline: {label} from {tree}")
    settings = Settings(
        args.runs, workers, peers, ferry, args.target_dir, args.out / "logs", args.timeout, baselines=baselines
    )
    with tempfile.TemporaryDirectory(prefix="line-rate-vcsim-", dir=state.path) as state_dir:
        say(f"simulator state in {state_dir} ({state.reason}); building the disks …")
        with start_simulator(Path(state_dir), cases.model(sizes)) as simulator:
            say(f"simulator ready in {simulator.build_seconds:.1f} s at {simulator.vcsim.sdk_url}")
            for spec in specs:
                case_started = time.monotonic()
                result = run_case(simulator, spec, settings, say)
                results.append(result)
                say(f"\n({spec.key}) {spec.title} — {args.runs} run(s), copies in {result.placement.path}, "
                    f"load {result.load_before[0]:.1f} → {result.load_after[0]:.1f}, "
                    f"{time.monotonic() - case_started:.0f} s")  # fmt: skip
                say(report.table(result) + "\n")
            build_seconds = simulator.build_seconds

    header = {
        "command": command,
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "tools": versions,
        "runs": args.runs,
        "sizes": {"dense": sizes.dense, "sparse": sizes.sparse, "cap_per_connection": sizes.cap_per_connection},
        "state_dir": {"path": str(state.path), "reason": state.reason},
        "simulator_build_seconds": build_seconds,
        "workers": list(workers),
    }
    commands = {peer.name: peer.describe() for peer in peers}
    report.write(args.out / "results.json", report.document(results, header, commands, args.ferry))
    subtitle = f"{'quick sizes' if args.quick else 'full sizes'}, median of {args.runs}"
    chart.draw(results, workers, args.out / "throughput.png", subtitle)
    say(f"wrote {args.out / 'results.json'} and {args.out / 'throughput.png'}")


if __name__ == "__main__":
    main()
