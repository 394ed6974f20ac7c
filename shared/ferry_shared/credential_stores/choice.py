"""Opens the credentials backend a service's settings name (``FERRY_CREDENTIALS_BACKEND``):
the keyring and the KV bucket for ``nats``, the service's own Kubernetes client and
namespace for ``kubernetes``. Called by the bootstraps of the services that read or write
provider secrets; a missing or broken keyring (or
cluster access) is a clear error at start.
"""

import asyncio
from pathlib import Path

from kubernetes.client import ApiClient, Configuration
from kubernetes.config import ConfigException, load_incluster_config, load_kube_config
from nats.js import JetStreamContext

from ferry_shared import subjects
from ferry_shared.bus.topology import ensure_kv
from ferry_shared.credential_stores.keyring import Keyring
from ferry_shared.credential_stores.kubernetes_store import KubernetesSecretStore
from ferry_shared.credential_stores.kv_store import EncryptedKvStore
from ferry_shared.credentials import CredentialStore
from ferry_shared.errors import FerryError
from ferry_shared.settings import ServiceSettings

POD_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class ClusterAccessError(FerryError):
    """The ``kubernetes`` backend cannot reach Ferry's own cluster (a startup error)."""

    def __init__(self, message: str) -> None:
        super().__init__("cluster_access_invalid", message)


async def open_credential_store(
    js: JetStreamContext, settings: ServiceSettings, *, rotate: bool = False
) -> CredentialStore:
    """The store of provider secrets chosen by ``settings``; see the module docstring.
    ``rotate`` (the planner, the one writer) first seals again under the newest key every
    secret of the ``nats`` backend sealed under an older one."""
    if settings.credentials_backend == "kubernetes":
        api = await asyncio.to_thread(own_api_client, settings.kubeconfig)
        return KubernetesSecretStore(api, await asyncio.to_thread(own_namespace, settings.namespace))
    keyring = await asyncio.to_thread(Keyring.load, settings.secrets_key_file)
    kv = await ensure_kv(js, subjects.CREDENTIALS_BUCKET, replicas=settings.jetstream_replicas)
    store = EncryptedKvStore(kv, keyring)
    if rotate:
        await store.reseal_all()
    return store


def own_api_client(kubeconfig: Path | None) -> ApiClient:
    """A client of the cluster Ferry runs in: from ``kubeconfig`` (``FERRY_KUBECONFIG``), else
    the pod's service account. Blocks (reads files)."""
    configuration = Configuration()
    try:
        if kubeconfig is not None:
            load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except (ConfigException, OSError) as error:
        where = f"the kubeconfig {kubeconfig} (FERRY_KUBECONFIG)" if kubeconfig else "the pod's service account"
        raise ClusterAccessError(
            f"the 'kubernetes' credentials backend cannot reach the cluster through {where}: {error}"
        ) from None
    return ApiClient(configuration)


def own_namespace(configured: str) -> str:
    """Ferry's namespace: ``FERRY_NAMESPACE``, else the pod's own. Blocks (reads a file)."""
    if configured:
        return configured
    try:
        return POD_NAMESPACE_FILE.read_text().strip()
    except OSError:
        raise ClusterAccessError(
            "FERRY_NAMESPACE is not set and Ferry is not running in a pod: the 'kubernetes' credentials "
            "backend needs the namespace of its Secrets"
        ) from None
