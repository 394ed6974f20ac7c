"""Hands out the :class:`~ferry_kubevirt_writer.domain.ports.TargetWriter` of a target
provider: a directory writer for ``local``, a cluster writer for ``kubernetes``.

The cluster writer's client is built from the provider's kubeconfig secret (read from
the credentials bucket on every command, so a replaced kubeconfig takes effect at once)
or from the pod's service account, and kept while that secret stays the same.
"""

import asyncio
from pathlib import Path

from kubernetes.client import ApiClient

from ferry_kubevirt_writer.adapters.kubernetes.objects import Cluster
from ferry_kubevirt_writer.adapters.kubernetes.writer import KubernetesTargetWriter
from ferry_kubevirt_writer.adapters.local_target import LocalTargetWriter
from ferry_kubevirt_writer.adapters.sink_certificates import SinkCertificates
from ferry_kubevirt_writer.domain.ports import TargetWriter
from ferry_shared.credentials import CredentialStore, Secret
from ferry_shared.errors import PermanentError
from ferry_shared.kubernetes.failures import TargetError, safe_url
from ferry_shared.kubernetes.kubeconfig import configuration_for
from ferry_shared.providers import ProviderSpec

ClientKey = tuple[ProviderSpec, Secret | None]


class TargetWriterFactory:
    """The writers of target providers, with one API client per provider."""

    def __init__(
        self,
        credentials: CredentialStore,
        *,
        sink_image: str,
        sink_ready_timeout: float,
        request_timeout: float,
        certificates: SinkCertificates | None = None,
        transfer_namespace: str = "ferry",
        local_roots: tuple[Path, ...] = (),
    ) -> None:
        """``local_roots``: the only directories local targets may write into (none: local targets are refused)."""
        self._credentials = credentials
        self._certificates = certificates
        self._transfer_namespace = transfer_namespace
        self._local_roots = local_roots
        self._sink_image = sink_image
        self._ready_timeout = sink_ready_timeout
        self._request_timeout = request_timeout
        self._clusters: dict[str, tuple[ClientKey, Cluster]] = {}

    async def writer_for(self, target: ProviderSpec) -> TargetWriter:
        if target.type == "local":
            return LocalTargetWriter(Path(target.path), self._local_roots)
        if target.type == "kubernetes":
            cluster = await self._cluster(target)
            return KubernetesTargetWriter(
                cluster,
                sink_image=self._sink_image,
                sink_ready_timeout=self._ready_timeout,
                certificates=self._certificates,
                transfer_namespace=self._transfer_namespace,
            )
        raise PermanentError(
            "not_a_target", f"provider '{target.name}' is a {target.type} provider, which cannot be a migration target"
        )

    async def _cluster(self, target: ProviderSpec) -> Cluster:
        key: ClientKey = (target, await self._credentials.get(target.name))
        known = self._clusters.get(target.name)
        if known is not None and known[0] == key:
            return known[1]
        try:
            configuration = await asyncio.to_thread(configuration_for, *key)
        except TargetError as error:
            raise PermanentError(error.code, f"target provider '{target.name}': {error.message}") from error
        cluster = Cluster(ApiClient(configuration), safe_url(str(configuration.host)), self._request_timeout)
        self._clusters[target.name] = (key, cluster)
        if known is not None:
            known[1].api.close()  # type: ignore[no-untyped-call]
        return cluster

    def close(self) -> None:
        """Close every API client."""
        for _, cluster in self._clusters.values():
            cluster.api.close()  # type: ignore[no-untyped-call]
        self._clusters.clear()
