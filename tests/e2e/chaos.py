"""The chaos loop: a five-VM cold migration on a stack of real processes, one seeded fault
in the middle of it, and the checks every run must pass.

A :class:`ChaosStack` is nats-server (file store, fixed port), ferry-vcsim with
:func:`chaos_model`, the inventory, planner and kubevirt-writer services and two transfer
workers, each on a fixed port so a restarted process is found where it was, and a local
directory target. A supervisor thread plays the orchestrator: a service that exits on its
own is started again (and counted). :func:`run_once` takes a seed, draws a
:class:`Fault` from it, migrates every VM of the model into a namespace of its own, lets
the fault strike at the drawn moment, and checks afterwards that

- the migration ended within :data:`RECOVERY_DEADLINE` seconds of the fault (nothing stuck);
- every VM is Completed with disks byte-identical to the simulator's flat files, or Failed
  with a non-empty reason (no other end is acceptable: nothing was cancelled);
- no source VM that was powered on is left off unless its VM was migrated (read through
  pyVmomi), and every migrated source is off;
- a failed VM left no directory on the target.

Used by ``tests/e2e/test_chaos.py`` (one test per seed) and ``benchmarks/chaos.py`` (the
table in ``docs/reliability.md``).
"""

import random
import secrets
import shutil
import ssl
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from ferry_peers.nats_server import NatsServer, start_nats_server
from ferry_peers.ports import free_port
from ferry_peers.processes import ManagedProcess, stop_all
from ferry_peers.security import LocalSecurity
from ferry_peers.services import SERVICE_MODULES, ServiceProcess
from ferry_peers.vcsim import Vcsim, start_vcsim
from ferry_testpeers.waiting import wait_for

from .harness import Stack

MiB = 1024 * 1024
FAULT_KINDS = ("planner", "inventory", "kubevirt-writer", "transfer-worker", "nats-server")
"""What a run breaks; seed ``s`` breaks ``FAULT_KINDS[s % 5]`` so every kind is covered evenly."""
WORKERS = ("transfer-0", "transfer-1")
PROCESSES = ("inventory", "planner", "kubevirt-writer", *WORKERS)
FAULT_WINDOW = (0.3, 6.0)
"""Seconds after the migration starts within which the fault strikes (the migration takes about 8 s
unharmed on a quiet machine)."""
DOWNTIME = (0.5, 4.0)
"""Seconds a killed process (or nats-server) stays down before it is started again."""
RECOVERY_DEADLINE = 90.0
"""Seconds after the fault within which the migration must have ended."""
INVENTORY_TIMEOUT = 30.0
"""Seconds the inventory may take to show a power state changed in vSphere."""
SETTLE_TIMEOUT = 20.0
"""Seconds a failed VM's source may take to be powered on again and its directory to go."""
BANDWIDTH_PER_CONNECTION = 2 * MiB
"""Bytes per second of one datastore read connection, so copies last long enough to be hit."""
ENV = {
    "FERRY_TRANSFER_RANGE_SIZE": str(MiB),
    "FERRY_TRANSFER_CHUNK_SIZE": str(MiB),
    "FERRY_TRANSFER_PROGRESS_INTERVAL": "0.25",
    "FERRY_TRANSFER_CONNECTIONS_PER_HOST": "2",
}
"""Small ranges, so a disk is spread over both workers and a killed worker leaves some behind."""


def _vm(name: str, host: str, power_state: str, disks: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "name": name, "cluster": "C0", "host": host, "power_state": power_state, "guest_id": "rhel9_64Guest",
        "num_cpu": 1, "memory_mb": 512, "cbt": True, "disks": disks, "nics": [{"network": "VM Network"}], **spec,
    }  # fmt: skip


def _disk(mib: int, seed: int, datastore: str = "LocalDS_0") -> dict[str, Any]:
    return {"capacity": f"{mib}MiB", "datastore": datastore, "content": {"kind": "random", "seed": seed}}


def chaos_model() -> dict[str, Any]:
    """Five VMs on two hosts, 72 MiB of real data: powered on with Tools (guest shutdown),
    on without Tools (hard power-off), and off; one with two disks, one sparse."""
    extents = [{"offset": 0, "length": MiB}, {"offset": 6 * MiB, "length": 2 * MiB}]
    sparse = {"kind": "extents", "seed": 9, "extents": extents}
    return {
        "datacenters": [
            {
                "name": "DC0",
                "datastores": [{"name": "LocalDS_0"}, {"name": "LocalDS_1", "type": "NFS"}],
                "networks": [{"name": "VM Network"}],
                "clusters": [{"name": "C0", "hosts": [{"name": "DC0_C0_H0"}, {"name": "DC0_C0_H1"}]}],
                "vms": [
                    _vm("db-01", "DC0_C0_H0", "poweredOn", [_disk(12, 1), _disk(8, 2, "LocalDS_1")]),
                    _vm("app-01", "DC0_C0_H0", "poweredOn", [_disk(16, 3)], guest={"tools": "notRunning"}),
                    _vm("web-01", "DC0_C0_H1", "poweredOff", [_disk(12, 4)]),
                    _vm("web-02", "DC0_C0_H1", "poweredOn", [_disk(12, 5, "LocalDS_1")]),
                    _vm("cache-01", "DC0_C0_H1", "poweredOff",
                        [{"capacity": "12MiB", "datastore": "LocalDS_0", "content": sparse}]),
                ],
            }
        ]
    }  # fmt: skip


def initial_power() -> dict[str, str]:
    return {vm["name"]: vm["power_state"] for vm in chaos_model()["datacenters"][0]["vms"]}


@dataclass(frozen=True)
class Fault:
    """What breaks, when (seconds after the migration starts) and for how long."""

    kind: str
    process: str
    at: float
    down: float

    @property
    def label(self) -> str:
        return f"{self.kind} ({self.process})" if self.kind == "transfer-worker" else self.kind


def draw_fault(seed: int) -> Fault:
    rng = random.Random(seed)
    kind = FAULT_KINDS[seed % len(FAULT_KINDS)]
    process = rng.choice(WORKERS) if kind == "transfer-worker" else kind
    at, down = round(rng.uniform(*FAULT_WINDOW), 2), round(rng.uniform(*DOWNTIME), 2)
    return Fault(kind=kind, process=process, at=at, down=down)


@dataclass
class RunResult:
    """What one run saw: its outcome, each VM's end, the time from the fault to the end,
    and every check that did not hold (empty when the run passed)."""

    seed: int
    fault: Fault
    outcome: str = "stuck"
    """succeeded (every VM Completed) | failed (some VM Failed, with a reason) | stuck | broken (a check failed)."""
    vms: dict[str, tuple[str, str]] = field(default_factory=dict)
    """VM name → (phase, reason) at the end."""
    at_fault: dict[str, str] = field(default_factory=dict)
    """VM name → phase when the fault struck."""
    hit_running: bool = True
    """False when the migration had already ended when the fault struck."""
    recover_seconds: float | None = None
    elapsed: float = 0.0
    """Seconds from the migration's start to its end (or to giving up)."""
    wall: float = 0.0
    """Seconds of the whole run: sources powered on again, plan, migration, checks."""
    problems: list[str] = field(default_factory=list)
    restarts: list[str] = field(default_factory=list)
    """Services that exited on their own during the run (and were started again)."""
    logs: str = ""

    @property
    def passed(self) -> bool:
        return not self.problems and self.outcome in ("succeeded", "failed")

    def report(self) -> str:
        lines = [
            f"seed {self.seed}: {self.fault} → {self.outcome}: the migration took {self.elapsed:.1f}s, "
            f"ended {self.recover_seconds}s after the fault; the run took {self.wall:.1f}s",
            f"  phases when the fault struck: {self.at_fault}"
            + ("" if self.hit_running else " (the migration had already ended)"),
        ]
        lines += [f"  {name}: {phase} {reason!r}" for name, (phase, reason) in self.vms.items()]
        lines += [f"  services that exited on their own: {self.restarts}"] if self.restarts else []
        lines += [f"  PROBLEM: {problem}" for problem in self.problems]
        lines += [f"  where: {self.logs}"] if self.logs else []
        return "\n".join(lines)


class ChaosStack:
    """The processes of one stack, their fixed ports, and a supervisor restarting what exits."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.target_root = work_dir / "target"
        self.target_root.mkdir(parents=True, exist_ok=True)
        security = LocalSecurity.create(work_dir / "security")
        self.nats: NatsServer = start_nats_server(work_dir / "nats", security=security)
        self.nats_port = int(self.nats.url.rsplit(":", 1)[1])
        self.vcsim: Vcsim = start_vcsim(
            work_dir / "vcsim", password=secrets.token_urlsafe(12), model=chaos_model(),
            bandwidth_per_connection=BANDWIDTH_PER_CONNECTION,
        )  # fmt: skip
        self.ports = {name: free_port() for name in PROCESSES}
        self.processes: dict[str, ManagedProcess] = {}
        self.down: set[str] = set()
        """Processes deliberately stopped by a fault (the supervisor leaves them alone)."""
        self.exits: list[str] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        for name in PROCESSES:
            self._launch(name)
        for name in PROCESSES:
            self._wait_ready(name)
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)
        self._supervisor.start()
        self._setup_providers()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    @property
    def security(self) -> LocalSecurity:
        return self.nats.security

    def _launch(self, name: str) -> None:
        module = SERVICE_MODULES["transfer" if name in WORKERS else name]
        service = "transfer" if name in WORKERS else name
        env = {**ENV, **self.security.service_env(service), **self.nats.service_env(service),
               "FERRY_HTTP_PORT": str(self.ports[name]), "FERRY_HTTP_HOST": "127.0.0.1"}  # fmt: skip
        env["FERRY_LOCAL_TARGET_ROOTS"] = str(self.target_root)
        argv = [sys.executable, "-m", module]
        self.processes[name] = ManagedProcess(name, argv, self.work_dir / "logs" / f"{name}.log", env=env)

    def _wait_ready(self, name: str, timeout: float = 60.0) -> None:
        self.processes[name].wait_until(lambda: _ready(self.url(name)), timeout=timeout, what="ready")

    def _supervise(self) -> None:
        while not self._stopping.wait(0.2):
            with self._lock:
                for name, process in self.processes.items():
                    if name not in self.down and process.process.poll() is not None:
                        self.exits.append(f"{name} (exit {process.process.returncode})")
                        process.stop()
                        self._launch(name)

    def kill(self, name: str) -> None:
        with self._lock:
            self.down.add(name)
            self.processes[name].kill()

    def start(self, name: str) -> None:
        with self._lock:
            self._launch(name)
            self.down.discard(name)

    def restart_nats(self, down: float) -> None:
        """SIGKILL nats-server and start it again on the same port with the same store."""
        self.nats.process.kill()
        time.sleep(down)
        self.nats = start_nats_server(self.work_dir / "nats", security=self.security, port=self.nats_port)

    def healthy(self) -> bool:
        return all(_ready(self.url(name)) for name in PROCESSES) and self.nats.process.process.poll() is None

    def stop(self) -> None:
        self._stopping.set()
        self._supervisor.join()
        stop_all(self.processes.values())
        self.vcsim.stop()
        self.nats.stop()

    def harness(self) -> Stack:
        services = {name: ServiceProcess(name, self.processes[name], self.url(name)) for name in PROCESSES}
        return Stack(self.nats, self.vcsim, services, self.work_dir)

    def _setup_providers(self) -> None:
        stack = self.harness()
        added = stack.add_vcenter("vcenter", password=self.vcsim.password, thumbprint=self.vcsim.thumbprint_sha256)
        assert added.returncode == 0, added.stderr
        stack.ok("provider", "add", "target", "--type", "local", "--path", str(self.target_root))
        stack.wait_provider("vcenter", "ready")
        stack.wait_provider("target", "ready")
        stack.ok("map", "network", "create", "net", "--source", "vcenter", "--target", "target",
                 "--pair", "VM Network=pod")  # fmt: skip
        stack.ok("map", "storage", "create", "sto", "--source", "vcenter", "--target", "target",
                 "--pair", "LocalDS_0=standard", "--pair", "LocalDS_1=standard")  # fmt: skip

    def logs(self) -> str:
        return str(self.work_dir / "logs")


def _ready(url: str) -> bool | None:
    try:
        return True if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200 else None
    except httpx.HTTPError:
        return None


@contextmanager
def vsphere(vcsim: Vcsim) -> Iterator[Any]:
    """A pyVmomi session to the simulator."""
    host, port = vcsim.host.rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(vcsim.certificate_path))
    context.check_hostname = False
    service = SmartConnect(host=host, port=int(port), user=vcsim.username, pwd=vcsim.password, sslContext=context)
    try:
        yield service.RetrieveContent()
    finally:
        Disconnect(service)


def source_vms(content: Any) -> dict[str, Any]:
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return {vm.name: vm for vm in view.view}
    finally:
        view.Destroy()


def power_states(vcsim: Vcsim) -> dict[str, str]:
    with vsphere(vcsim) as content:
        return {name: str(vm.runtime.powerState) for name, vm in source_vms(content).items()}


def restore_sources(stack: ChaosStack) -> None:
    """Power on again the sources the model has on (the run migrated them), and wait until
    the inventory sees it: the last check of a run (the inventory still follows vSphere
    after the fault), and what makes the next run start from the model's power states."""
    wanted = initial_power()
    with vsphere(stack.vcsim) as content:
        for name, vm in source_vms(content).items():
            if wanted[name] == "poweredOn" and vm.runtime.powerState != "poweredOn":
                task = vm.PowerOnVM_Task()
                wait_for(partial(_task_done, task), timeout=30, what=f"{name} to power on")

    seen: dict[str, str] = {}

    def inventory_agrees() -> bool | None:
        try:
            items = _get(f"{stack.url('inventory')}/api/v1/providers/vcenter/vms", stack.security.api_headers())[
                "items"
            ]
        except httpx.HTTPError:
            return None
        seen.clear()
        seen.update({vm["name"]: vm["power_state"] for vm in items})
        return seen == wanted or None

    try:
        wait_for(inventory_agrees, timeout=INVENTORY_TIMEOUT, what="the inventory to follow vSphere")
    except AssertionError as error:
        raise AssertionError(
            f"{error}: sources powered on again in vSphere ({wanted}) are still {seen} in the inventory"
        ) from None


def _task_done(task: Any) -> bool:
    return str(task.info.state) in ("success", "error")


def _gone(path: Path) -> bool:
    return not path.exists()


def _get(url: str, headers: dict[str, str] | None = None) -> Any:
    response = httpx.get(url, headers=headers, timeout=5)
    response.raise_for_status()
    return response.json()


def _post(url: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    response = httpx.post(url, json=body, headers=headers, timeout=10)
    assert response.status_code in (200, 201, 202), f"POST {url}: {response.status_code} {response.text}"
    return response.json()


def start_migration(stack: ChaosStack, seed: int) -> str:
    planner = f"{stack.url('planner')}/api/v1"
    auth = stack.security.api_headers()
    names = list(initial_power())
    plan = f"chaos-{seed}"
    _post(f"{planner}/plans", {
        "name": plan, "source_provider": "vcenter", "target_provider": "target", "network_map": "net",
        "storage_map": "sto", "target_namespace": plan, "vms": [{"ref": name} for name in names],
    }, auth)  # fmt: skip
    wait_for(lambda: _get(f"{planner}/plans/{plan}", auth)["status"].get("ready") or None, timeout=30,
             what=f"plan {plan} to be ready")  # fmt: skip
    started: dict[str, Any] = _post(f"{planner}/migrations", {"plan": plan}, auth)
    return str(started["name"])


def _migration(stack: ChaosStack, name: str) -> dict[str, Any] | None:
    """The migration as the planner shows it, or None while the planner cannot answer."""
    try:
        response = httpx.get(
            f"{stack.url('planner')}/api/v1/migrations/{name}", headers=stack.security.api_headers(), timeout=3
        )
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    found: dict[str, Any] = response.json()
    return found


def _answer(stack: ChaosStack, name: str) -> str:
    """What the planner answers for a migration (when it does not show it)."""
    try:
        response = httpx.get(
            f"{stack.url('planner')}/api/v1/migrations/{name}", headers=stack.security.api_headers(), timeout=3
        )
    except httpx.HTTPError as error:
        return f"nothing ({type(error).__name__}: {error})"
    return f"{response.status_code} {response.text[:200]}"


def strike(stack: ChaosStack, fault: Fault) -> None:
    if fault.kind == "nats-server":
        stack.restart_nats(fault.down)
        return
    stack.kill(fault.process)
    time.sleep(fault.down)
    stack.start(fault.process)


def run_once(stack: ChaosStack, seed: int) -> RunResult:
    """One migration with one fault; returns what happened and which checks failed."""
    fault = draw_fault(seed)
    result = RunResult(seed=seed, fault=fault, logs=stack.logs())
    entered = time.monotonic()
    try:
        _run(stack, seed, result)
    except (AssertionError, httpx.HTTPError) as error:  # setting up the run failed: say where
        result.outcome = "broken"
        result.problems.append(f"{type(error).__name__}: {error}")
    finally:
        result.wall = time.monotonic() - entered
    return result


def _run(stack: ChaosStack, seed: int, result: RunResult) -> None:
    fault = result.fault
    restore_sources(stack)
    exits_before = len(stack.exits)
    began = time.monotonic()
    name = start_migration(stack, seed)
    time.sleep(fault.at)
    if (snapshot := _migration(stack, name)) is not None:
        result.at_fault = {vm["vm_name"]: vm["phase"] for vm in snapshot["vms"]}
        result.hit_running = snapshot["phase"] == "Running"
    struck = time.monotonic()
    striking = threading.Thread(target=strike, args=(stack, fault), daemon=True)
    striking.start()

    final = None
    while time.monotonic() - struck < RECOVERY_DEADLINE:
        found = _migration(stack, name)
        if found is not None and found["phase"] != "Running":
            final = found
            break
        time.sleep(0.25)
    result.elapsed = time.monotonic() - began
    result.restarts = stack.exits[exits_before:]
    if final is None:
        last = _migration(stack, name)
        result.vms = {vm["vm_name"]: (vm["phase"], vm["reason"]) for vm in (last or {}).get("vms", [])}
        result.problems.append(f"migration {name} did not end within {RECOVERY_DEADLINE:.0f}s of the fault")
        if last is None:
            result.problems.append(f"the planner answers {_answer(stack, name)} for it")
        ends = {vm: result.vms.get(vm, ("unknown to the planner", ""))[0] for vm in initial_power()}
        result.problems += _power_problems(stack, ends)
        striking.join()
        return
    result.recover_seconds = round(time.monotonic() - struck, 1)
    striking.join()
    result.vms = {vm["vm_name"]: (vm["phase"], vm["reason"]) for vm in final["vms"]}
    result.problems += check(stack, final, stack.target_root / f"chaos-{seed}")
    try:
        wait_for(stack.healthy, timeout=60, what="every process to be ready again", interval=0.5)
        restore_sources(stack)
    except AssertionError as error:
        result.problems.append(f"after the run: {error}")
    phases = {phase for phase, _ in result.vms.values()}
    if result.problems:
        result.outcome = "broken"
    else:
        result.outcome = "succeeded" if phases == {"Completed"} else "failed"


def check(stack: ChaosStack, migration: dict[str, Any], namespace_dir: Path) -> list[str]:
    """Every check of an ended migration; the problems found (empty: all held)."""
    problems: list[str] = []
    control = stack.vcsim.control_url
    failed = []
    for vm in migration["vms"]:
        label = vm["vm_name"]
        if vm["phase"] == "Completed":
            problems += _disk_problems(control, vm)
        elif vm["phase"] == "Failed":
            failed.append(vm)
            if not str(vm.get("reason") or "").strip():
                problems.append(f"{label} Failed without a reason")
        else:
            problems.append(f"{label} ended {vm['phase']} ({vm.get('reason')!r}): only Completed or Failed may")
    problems += _power_problems(stack, {vm["vm_name"]: vm["phase"] for vm in migration["vms"]})
    for vm in failed:
        directory = namespace_dir / vm["target_name"]
        try:
            wait_for(partial(_gone, directory), timeout=SETTLE_TIMEOUT, what=f"{directory} to go")
        except AssertionError:
            left = sorted(path.name for path in directory.iterdir())
            problems.append(f"{vm['vm_name']} Failed but left {directory} ({left})")
    return problems


def _disk_problems(control: str, vm: dict[str, Any]) -> list[str]:
    sources = {disk["key"]: disk for disk in _get(f"{control}/vms/{vm['vm_name']}")["disks"]}
    if sorted(d["key"] for d in vm["disks"]) != sorted(sources):
        return [f"{vm['vm_name']}: the migration's disks {vm['disks']} are not the source's {sorted(sources)}"]
    problems = []
    for index, disk in enumerate(vm["disks"]):
        expected = Path(sources[disk["key"]]["path_on_disk"]).read_bytes()
        path = Path(vm["location"]) / f"disk-{index}.raw"
        actual = path.read_bytes() if path.exists() else b""
        if actual[: len(expected)] != expected or any(actual[len(expected) :]) or len(actual) < len(expected):
            first = next((i for i, (a, b) in enumerate(zip(actual, expected, strict=False)) if a != b), None)
            problems.append(f"{vm['vm_name']} disk {index} ({path}) differs from the source "
                            f"({len(actual)} vs {len(expected)} bytes, first difference at {first})")  # fmt: skip
    return problems


def _power_problems(stack: ChaosStack, ends: dict[str, str]) -> list[str]:
    """Migrated sources are off; every other source is back to its power state before the
    run. ``ends``: VM name → the phase it ended in (or is stuck in)."""
    wanted = initial_power()

    def wrong() -> list[str]:
        found = power_states(stack.vcsim)
        return [
            f"{name} is {found[name]} after ending {ends[name]} (it was {wanted[name]} before the run)"
            for name in ends
            if found[name] != ("poweredOff" if ends[name] == "Completed" else wanted[name])
        ]

    try:
        wait_for(lambda: not wrong() or None, timeout=SETTLE_TIMEOUT, what="the sources' power states", interval=0.5)
    except AssertionError:
        return wrong()
    return []


def clean_target(stack: ChaosStack, seed: int) -> None:
    """Remove a passed run's migrated VMs from the target (disk space; the next run has its own namespace)."""
    shutil.rmtree(stack.target_root / f"chaos-{seed}", ignore_errors=True)


class StackPool:
    """Hands out a stack per run: the previous one if its run passed and it is healthy,
    else a fresh one (so a run never inherits an earlier run's damage)."""

    def __init__(self, root: Path, runs_per_stack: int = 10) -> None:
        self.root = root
        self.runs_per_stack = runs_per_stack
        self.stack: ChaosStack | None = None
        self.used = 0
        self.started = 0

    def run(self, seed: int) -> RunResult:
        if self.stack is not None and (self.used >= self.runs_per_stack or not self.stack.healthy()):
            self.close()
        if self.stack is None:
            self.started += 1
            self.stack = ChaosStack(self.root / f"stack-{self.started}")
            self.used = 0
        self.used += 1
        result = run_once(self.stack, seed)
        if result.passed:
            clean_target(self.stack, seed)
        else:
            self.close()
        return result

    def close(self) -> None:
        if self.stack is not None:
            self.stack.stop()
            self.stack = None


def run_many(root: Path, seeds: list[int], on_result: Callable[[RunResult], None]) -> list[RunResult]:
    pool = StackPool(root)
    results = []
    try:
        for seed in seeds:
            result = pool.run(seed)
            on_result(result)
            results.append(result)
    finally:
        pool.close()
    return results


def table(results: list[RunResult], command: str) -> str:
    """docs/reliability.md: runs, faults by kind, outcomes, time to recover."""
    recover = [r.recover_seconds for r in results if r.recover_seconds is not None]
    lines = ["# Reliability under faults", "",
             f"Made by `{command}` (the chaos loop of `tests/e2e/chaos.py`; `make test` runs the same",
             "runs as `tests/e2e/test_chaos.py`). Each run migrates five VMs (72 MiB of data, two transfer",
             "workers, a local directory target) and, at a seeded moment, SIGKILLs one service and starts",
             "it again, or SIGKILLs nats-server and starts it on the same port and store. A run passes when",
             f"the migration ends within {RECOVERY_DEADLINE:.0f} s of the fault, every VM is Completed with",
             "identical bytes or Failed with a reason, no source is left off unmigrated, and a failed VM",
             "left nothing on the target.", "",
             f"Runs: {len(results)}; passed: {sum(r.passed for r in results)}.", "",
             "| fault | runs | succeeded | failed with reason | stuck | broken | recover median (s) | max (s) |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for kind in FAULT_KINDS:
        chosen = [r for r in results if r.fault.kind == kind]
        times = [r.recover_seconds for r in chosen if r.recover_seconds is not None]
        counts = [sum(r.outcome == outcome for r in chosen) for outcome in ("succeeded", "failed", "stuck", "broken")]
        lines.append(f"| {kind} | {len(chosen)} | {' | '.join(map(str, counts))} | {_median(times)} | {_max(times)} |")
    counts = [sum(r.outcome == outcome for r in results) for outcome in ("succeeded", "failed", "stuck", "broken")]
    cells = " | ".join(map(str, counts))
    lines.append(f"| **all** | {len(results)} | {cells} | {_median(recover)} | {_max(recover)} |")
    lines += ["", "Time to recover: from the fault to the migration's end.", "", "## Runs", "",
              "| seed | fault | at (s) | down (s) | outcome | recover (s) | VMs not Completed / problems |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        notes = [f"{n}: {p} ({reason})" for n, (p, reason) in r.vms.items() if p != "Completed"] + r.problems
        notes += [f"exited on its own: {', '.join(r.restarts)}"] if r.restarts else []
        cell = "; ".join(notes).replace("|", "\\|").replace("\n", " ") or "-"
        lines.append(f"| {r.seed} | {r.fault.label} | {r.fault.at} | {r.fault.down} | {r.outcome} "
                     f"| {r.recover_seconds if r.recover_seconds is not None else '-'} | {cell} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.1f}" if values else "-"


def _max(values: list[float]) -> str:
    return f"{max(values):.1f}" if values else "-"
