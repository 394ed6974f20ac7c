"""The ``kubernetes`` credentials backend: each provider's secret is a Kubernetes Secret in
Ferry's own namespace, named ``ferry-provider-<provider>`` (made DNS-1123 safe), labelled
``ferry.dev/provider`` and as managed by Ferry, its value under the data key ``secret``.

Only the planner creates, replaces and deletes them (with the provider); the inventory and the
kubevirt-writer ``get`` them, so RBAC, not the bus, decides who reads a password. The
synchronous client runs in a worker thread. Errors name the Secret and the cause, never
its data.
"""

import asyncio
import base64
import binascii
from collections.abc import Callable
from typing import TypeVar

from kubernetes.client import ApiClient, CoreV1Api, V1ObjectMeta, V1Secret
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from ferry_shared.credentials import CredentialsUnreadableError, Secret
from ferry_shared.dns1123 import MAX_LABEL, to_dns1123_label
from ferry_shared.errors import TemporaryError
from ferry_shared.labels import MANAGED_BY_FERRY, PREFIX

PROVIDER_LABEL = f"{PREFIX}provider"
"""On every provider Secret: the provider's name (label-safe)."""
PROVIDER_ANNOTATION = f"{PREFIX}provider"
"""On every provider Secret: the provider's name, verbatim."""
DATA_KEY = "secret"
NAME_PREFIX = "ferry-provider-"
CREDENTIALS_UNAVAILABLE = "credentials_unavailable"
REPLACE_TRIES = 3
"""Times a write tries again when the Secret is created, changed or deleted meanwhile."""

T = TypeVar("T")


def secret_name(provider: str) -> str:
    """The name of ``provider``'s Secret (a DNS-1123 label: distinct providers get distinct names)."""
    return NAME_PREFIX + to_dns1123_label(provider)[: MAX_LABEL - len(NAME_PREFIX)].rstrip("-")


class KubernetesSecretStore:
    """A :class:`~ferry_shared.credentials.CredentialStore` of Secrets in ``namespace``."""

    def __init__(self, api: ApiClient, namespace: str, *, request_timeout: float = 10.0) -> None:
        self._core = CoreV1Api(api)
        self._namespace = namespace
        self._timeout = request_timeout

    async def put(self, provider: str, secret: Secret) -> None:
        name = secret_name(provider)
        metadata = V1ObjectMeta(
            name=name,
            namespace=self._namespace,
            labels={**MANAGED_BY_FERRY, PROVIDER_LABEL: to_dns1123_label(provider)},
            annotations={PROVIDER_ANNOTATION: provider},
        )
        body = V1Secret(
            metadata=metadata,
            type="Opaque",
            data={DATA_KEY: base64.b64encode(secret.reveal().encode()).decode()},
        )

        def create_or_replace() -> None:
            # A Secret already there (a new password, or one a deletion left) is replaced in
            # place at the version just read, so readers never find it missing meanwhile.
            for _ in range(REPLACE_TRIES):
                try:
                    self._core.create_namespaced_secret(self._namespace, body, _request_timeout=self._timeout)
                    return
                except ApiException as error:
                    if error.status != 409:
                        raise
                try:
                    current: V1Secret = self._core.read_namespaced_secret(
                        name, self._namespace, _request_timeout=self._timeout
                    )
                    metadata.resource_version = current.metadata.resource_version if current.metadata else None
                    self._core.replace_namespaced_secret(name, self._namespace, body, _request_timeout=self._timeout)
                    return
                except ApiException as error:
                    if error.status not in (404, 409):  # deleted or changed meanwhile: try again
                        raise
                metadata.resource_version = None
            raise TemporaryError(
                CREDENTIALS_UNAVAILABLE, f"Secret {self._namespace}/{name} kept changing while it was written; retry"
            )

        await self._call(provider, "write", create_or_replace)

    async def get(self, provider: str) -> Secret | None:
        name = secret_name(provider)

        def read() -> V1Secret | None:
            try:
                found: V1Secret = self._core.read_namespaced_secret(
                    name, self._namespace, _request_timeout=self._timeout
                )
            except ApiException as error:
                if error.status == 404:
                    return None
                raise
            return found

        found = await self._call(provider, "read", read)
        if found is None:
            return None
        annotations = found.metadata.annotations or {} if found.metadata else {}
        if annotations.get(PROVIDER_ANNOTATION) != provider:
            raise CredentialsUnreadableError(
                provider, f"Secret {self._namespace}/{name} is not the Secret Ferry stored for this provider"
            )
        encoded = (found.data or {}).get(DATA_KEY)
        if encoded is None:
            raise CredentialsUnreadableError(provider, f"Secret {self._namespace}/{name} has no '{DATA_KEY}' entry")
        try:
            return Secret(base64.b64decode(encoded, validate=True).decode())
        except (binascii.Error, UnicodeDecodeError):
            raise CredentialsUnreadableError(provider, f"Secret {self._namespace}/{name} holds no text") from None

    async def delete(self, provider: str) -> None:
        name = secret_name(provider)

        def remove() -> None:
            try:
                self._core.delete_namespaced_secret(name, self._namespace, _request_timeout=self._timeout)
            except ApiException as error:
                if error.status != 404:
                    raise

        await self._call(provider, "delete", remove)

    async def _call(self, provider: str, what: str, blocking: Callable[[], T]) -> T:
        name = f"{self._namespace}/{secret_name(provider)}"
        try:
            return await asyncio.to_thread(blocking)
        except ApiException as error:
            if error.status in (401, 403):
                raise CredentialsUnreadableError(
                    provider, f"this service may not {what} Secret {name} (HTTP {error.status}; check its RBAC)"
                ) from None
            raise TemporaryError(
                CREDENTIALS_UNAVAILABLE, f"cannot {what} Secret {name} of provider '{provider}': HTTP {error.status}"
            ) from None
        except (HTTPError, OSError) as error:
            raise TemporaryError(
                CREDENTIALS_UNAVAILABLE,
                f"cannot {what} Secret {name} of provider '{provider}': {type(error).__name__}",
            ) from None
