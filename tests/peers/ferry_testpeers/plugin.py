"""Pytest fixtures for the real peers. Loaded by ``tests/conftest.py``.

A peer that cannot start fails the test that needs it with the reason; nothing is
skipped. Markers (``nats``, ``vsphere``, ``kube``, ``e2e``) say which peers a test uses.
"""

import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import pytest_asyncio

from ferry_peers.binaries import PeerNotBuiltError
from ferry_peers.nats_server import NatsServer, start_nats_server
from ferry_peers.processes import ProcessFailedError
from ferry_peers.security import LocalSecurity
from ferry_peers.vcsim import Vcsim, start_vcsim
from ferry_shared.bus.connection import connect
from ferry_shared.bus.permissions import ADMIN
from ferry_shared.bus.publisher import Publisher
from ferry_shared.bus.topology import ensure_topology
from ferry_shared.service import Bus
from ferry_testpeers.kube import KubeControlPlane, start_control_plane
from ferry_testpeers.sink_node import SinkNode

PEER_ERRORS = (PeerNotBuiltError, ProcessFailedError, OSError)


def crd_directory() -> Path:
    """``$FERRY_CRD_DIR``, else ``shared/crds`` beside the repository."""
    if explicit := os.environ.get("FERRY_CRD_DIR"):
        return Path(explicit)
    repo = Path(__file__).resolve().parents[3]
    return repo.parent / "shared" / "crds"


@pytest.fixture(scope="session")
def local_security(tmp_path_factory: pytest.TempPathFactory) -> LocalSecurity:
    """The keys and certificates of the session's local stacks (see ``ferry_peers.security``)."""
    return LocalSecurity.create(tmp_path_factory.mktemp("security"))


@pytest.fixture(scope="session", autouse=True)
def secrets_key_in_environment(local_security: LocalSecurity) -> Iterator[None]:
    """The keyring of the credentials bucket in this process's environment, so every
    service bootstrapped in-process or started as a child process (they inherit it) reads
    the same sealed provider secrets."""
    os.environ["FERRY_SECRETS_KEY_FILE"] = str(local_security.secrets_key_file)
    yield
    os.environ.pop("FERRY_SECRETS_KEY_FILE", None)


@pytest.fixture
def nats_server(tmp_path_factory: pytest.TempPathFactory, local_security: LocalSecurity) -> Iterator[NatsServer]:
    """A fresh nats-server with JetStream and its own store, for one test, secured with the
    session's keys (which the services a test starts on it then share)."""
    try:
        server = start_nats_server(tmp_path_factory.mktemp("nats"), security=local_security)
    except PEER_ERRORS as error:
        pytest.fail(f"nats-server could not start: {error}", pytrace=False)
    yield server
    server.stop()


class RestartableNats:
    """A nats-server a test may stop and start again, on the same port and file store."""

    def __init__(self, work_dir: Path, security: LocalSecurity) -> None:
        self._work_dir = work_dir
        self._security = security
        self.server = start_nats_server(work_dir, security=security)

    @property
    def url(self) -> str:
        return self.server.url

    def connect_options(self, identity: str = ADMIN) -> dict[str, Any]:
        """See :meth:`NatsServer.connect_options` (the material survives restarts)."""
        return self.server.connect_options(identity)

    def restart(self) -> None:
        """Stop the server (SIGTERM) and start it again where it was; clients reconnect."""
        port = urlsplit(self.server.url).port
        self.server.stop()
        self.server = start_nats_server(self._work_dir, security=self._security, port=port)

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def restartable_nats_server(
    tmp_path_factory: pytest.TempPathFactory, local_security: LocalSecurity
) -> Iterator[RestartableNats]:
    """Like ``nats_server``, but the test may ``restart()`` it."""
    try:
        server = RestartableNats(tmp_path_factory.mktemp("nats"), local_security)
    except PEER_ERRORS as error:
        pytest.fail(f"nats-server could not start: {error}", pytrace=False)
    yield server
    server.stop()


VcsimFactory = Callable[..., Vcsim]


@pytest.fixture
def vcsim_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VcsimFactory]:
    """Starts simulators with a given model (``factory(model=…, tls=…)``); stops them after."""
    started: list[Vcsim] = []

    def start(model: dict[str, Any] | None = None, **options: Any) -> Vcsim:
        options.setdefault("password", secrets.token_urlsafe(12))
        try:
            simulator = start_vcsim(tmp_path_factory.mktemp("vcsim"), model=model, **options)
        except PEER_ERRORS as error:
            pytest.fail(f"ferry-vcsim could not start: {error}", pytrace=False)
        started.append(simulator)
        return simulator

    yield start
    for simulator in started:
        simulator.stop()


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeControlPlane]:
    """etcd + kube-apiserver (RBAC, client certificates) with the CRDs installed."""
    crds = crd_directory()
    if not crds.is_dir():
        pytest.fail(f"CRD directory {crds} is missing; set FERRY_CRD_DIR", pytrace=False)
    try:
        plane = start_control_plane(tmp_path_factory.mktemp("kube"), crds)
    except PEER_ERRORS as error:
        pytest.fail(f"the Kubernetes control plane could not start: {error}", pytrace=False)
    yield plane
    plane.stop()


@pytest.fixture
def sink_node(kube: KubeControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SinkNode]:
    """Plays the node for kubevirt-writer's disk-sink pods (qemu-nbd on loopback
    addresses, pod status written back), for one test; see :mod:`ferry_testpeers.sink_node`."""
    with kube.api_client() as api, SinkNode(api, tmp_path_factory.mktemp("sink-node")) as node:
        yield node


@pytest_asyncio.fixture
async def bus(nats_server: NatsServer) -> AsyncIterator[Bus]:
    """A connection to a fresh nats-server with Ferry's streams created, as the ``admin`` identity."""
    nc = await connect(nats_server.url, name="ferry-test", **nats_server.connect_options(ADMIN))
    js = nc.jetstream()
    await ensure_topology(js)
    yield Bus(nc=nc, js=js, publisher=Publisher(js))
    await nc.drain()


PEER_MARKERS = {
    "nats_server": "nats",
    "restartable_nats_server": "nats",
    "bus": "nats",
    "vcsim_factory": "vsphere",
    "kube": "kube",
    "sink_node": "kube",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with the peers its fixtures start, so ``-m kube`` etc. select
    exactly the tests that need that peer."""
    for item in items:
        for fixture, marker in PEER_MARKERS.items():
            if fixture in getattr(item, "fixturenames", ()) and item.get_closest_marker(marker) is None:
                item.add_marker(marker)
