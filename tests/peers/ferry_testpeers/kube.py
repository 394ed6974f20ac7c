"""A real Kubernetes control plane for tests: etcd + kube-apiserver, RBAC on, client
certificates for authentication, and the KubeVirt, CDI and Multus CRDs installed.

Nothing else runs (no controller-manager, scheduler, kubelet or KubeVirt controllers):
tests that need those play them by writing ``/status`` themselves.
"""

import secrets
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml
from kubernetes import client, config
from kubernetes.client import ApiClient

from ferry_peers.binaries import peer_binary
from ferry_peers.ports import free_port
from ferry_peers.processes import ManagedProcess
from ferry_testpeers.pki import CertificateAuthority, KeyPair


@dataclass
class KubeControlPlane:
    """The running etcd and kube-apiserver, with an admin kubeconfig."""

    etcd: ManagedProcess
    apiserver: ManagedProcess
    url: str
    kubeconfig: Path
    ca: CertificateAuthority
    directory: Path

    def api_client(self) -> ApiClient:
        """A Kubernetes client authenticated as cluster admin (group system:masters)."""
        return new_client(self.kubeconfig)

    def user_kubeconfig(self, user: str, groups: tuple[str, ...] = ()) -> Path:
        """A kubeconfig for a client-certificate user (subject to RBAC)."""
        pair = self.ca.issue(f"user-{user}", common_name=user, organization=",".join(groups) or None)
        return write_kubeconfig(self.directory / f"{user}.kubeconfig", self.url, self.ca.cert_path, pair)

    def stop(self) -> None:
        self.apiserver.stop()
        self.etcd.stop()


def create_namespace(core: client.CoreV1Api, prefix: str) -> str:
    """A new namespace ``<prefix>-<random>`` for one test (it never finishes deleting here:
    no controller-manager empties it, so tests do not delete it)."""
    name = f"{prefix}-{secrets.token_hex(4)}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


def new_client(kubeconfig: Path) -> ApiClient:
    """A Kubernetes API client configured from ``kubeconfig``."""
    api: ApiClient = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    return api


def write_kubeconfig(path: Path, server: str, ca_cert: Path, user: KeyPair) -> Path:
    """Write a kubeconfig for ``server`` authenticating with ``user``'s certificate."""
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "ferry-test", "cluster": {"server": server, "certificate-authority": str(ca_cert)}}],
        "users": [{"name": "user", "user": {"client-certificate": str(user.cert), "client-key": str(user.key)}}],
        "contexts": [{"name": "ferry-test", "context": {"cluster": "ferry-test", "user": "user"}}],
        "current-context": "ferry-test",
    }
    path.write_text(yaml.safe_dump(document))
    path.chmod(0o600)
    return path


def _start_etcd(directory: Path) -> tuple[ManagedProcess, str]:
    client_port, peer_port = free_port(), free_port()
    client_url = f"http://127.0.0.1:{client_port}"
    argv = [
        str(peer_binary("etcd")),
        "--data-dir", str(directory / "etcd-data"),
        "--listen-client-urls", client_url,
        "--advertise-client-urls", client_url,
        "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
        "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
        "--initial-cluster", f"default=http://127.0.0.1:{peer_port}",
        "--unsafe-no-fsync=true",
        "--log-level", "warn",
    ]  # fmt: skip
    etcd = ManagedProcess("etcd", argv, directory / "etcd.log")

    def healthy() -> bool | None:
        try:
            with urllib.request.urlopen(f"{client_url}/health", timeout=1) as response:
                return True if b'"health":"true"' in response.read() else None
        except (urllib.error.URLError, OSError):
            return None

    etcd.wait_until(healthy, timeout=60, what="healthy")
    return etcd, client_url


def _start_apiserver(directory: Path, ca: CertificateAuthority, etcd_url: str) -> tuple[ManagedProcess, str]:
    serving = ca.issue("apiserver", common_name="kube-apiserver", server=True)
    sa = ca.service_account_keys()
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    argv = [
        str(peer_binary("kube-apiserver")),
        "--etcd-servers", etcd_url,
        "--cert-dir", str(directory / "apiserver-certs"),
        "--tls-cert-file", str(serving.cert),
        "--tls-private-key-file", str(serving.key),
        "--client-ca-file", str(ca.cert_path),
        "--secure-port", str(port),
        "--bind-address", "127.0.0.1",
        "--service-cluster-ip-range", "10.0.0.0/24",
        "--authorization-mode", "RBAC",
        "--disable-admission-plugins", "ServiceAccount",
        "--allow-privileged=true",
        "--service-account-issuer", "https://kubernetes.default.svc",
        "--service-account-key-file", str(sa.cert),
        "--service-account-signing-key-file", str(sa.key),
        "--enable-priority-and-fairness=false",
    ]  # fmt: skip
    apiserver = ManagedProcess("kube-apiserver", argv, directory / "kube-apiserver.log")
    return apiserver, url


def _wait_ready(apiserver: ManagedProcess, url: str, ca: CertificateAuthority, admin: KeyPair) -> None:
    context = ssl.create_default_context(cafile=str(ca.cert_path))
    context.load_cert_chain(str(admin.cert), str(admin.key))

    def ready() -> bool | None:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2, context=context) as response:
                return True if response.status == 200 else None
        except (urllib.error.URLError, OSError):
            return None

    apiserver.wait_until(ready, timeout=120, what="ready")


def install_crds(api: ApiClient, crd_dir: Path, timeout: float = 60.0) -> list[str]:
    """Create every CRD in ``crd_dir`` (plain create: the VM CRD is too big for apply)
    and wait until each is Established; returns their names."""
    extensions = client.ApiextensionsV1Api(api)
    names: list[str] = []
    for path in sorted(crd_dir.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document.get("kind") == "CustomResourceDefinition":
                extensions.create_custom_resource_definition(document)
                names.append(document["metadata"]["name"])
    deadline = time.monotonic() + timeout
    pending = set(names)
    while pending:
        for name in list(pending):
            crd = extensions.read_custom_resource_definition(name)
            conditions = (crd.status.conditions or []) if crd.status else []
            if any(c.type == "Established" and c.status == "True" for c in conditions):
                pending.discard(name)
        if pending and time.monotonic() > deadline:
            raise RuntimeError(f"CRDs not established within {timeout:.0f}s: {sorted(pending)}")
        if pending:
            time.sleep(0.1)
    return names


def start_control_plane(directory: Path, crd_dir: Path) -> KubeControlPlane:
    """Start etcd and kube-apiserver under ``directory`` and install the CRDs."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = CertificateAuthority(directory / "pki")
    admin = ca.issue("admin", common_name="ferry-admin", organization="system:masters")
    etcd, etcd_url = _start_etcd(directory)
    try:
        apiserver, url = _start_apiserver(directory, ca, etcd_url)
        try:
            _wait_ready(apiserver, url, ca, admin)
            kubeconfig = write_kubeconfig(directory / "admin.kubeconfig", url, ca.cert_path, admin)
            plane = KubeControlPlane(etcd, apiserver, url, kubeconfig, ca, directory)
            with plane.api_client() as api:
                install_crds(api, crd_dir)
            return plane
        except BaseException:
            apiserver.stop()
            raise
    except BaseException:
        etcd.stop()
        raise
