"""Kubernetes authentication and authorization: TokenReview, then SubjectAccessReview.

A bearer token is whatever the cluster accepts (a ServiceAccount token, an OIDC token…);
the apiserver says who holds it (``authentication.k8s.io/v1`` TokenReview) and whether
they may do the Ferry verb on the Ferry resource (``authorization.k8s.io/v1``
SubjectAccessReview, API group ``ferry.dev``, in Ferry's namespace when it is set, so that
both ClusterRoleBindings and RoleBindings there grant). Answers are cached for at most
10 s, keyed on a SHA-256 of the token. The blocking client runs in worker threads.
"""

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from ferry_shared.api_auth.access import GROUP
from ferry_shared.api_auth.cache import MAX_TTL_SECONDS, TtlCache, digest
from ferry_shared.api_auth.ports import AccessCheck, AuthUnavailableError, Caller, Decision
from ferry_shared.credentials import Secret


def kube_api_client(kubeconfig: Path | None) -> ApiClient:
    """The service's own Kubernetes client: from ``kubeconfig``, or the pod's service account."""
    configuration = client.Configuration()
    if kubeconfig is None:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)  # type: ignore[no-untyped-call]
    return ApiClient(configuration)


class KubernetesAuthenticator:
    """Reviews tokens and access with the Kubernetes API at ``api``."""

    mode = "kubernetes"

    def __init__(
        self,
        api: ApiClient,
        namespace: str = "",
        ttl: float = MAX_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._authentication = client.AuthenticationV1Api(api)
        self._authorization = client.AuthorizationV1Api(api)
        self._namespace = namespace or None
        self._callers: TtlCache[Caller | None] = TtlCache(ttl, clock=clock)
        self._decisions: TtlCache[Decision] = TtlCache(ttl, clock=clock)

    async def authenticate(self, token: Secret) -> Caller | None:
        key = digest(token.reveal())
        fresh, caller = self._callers.get(key)
        if fresh:
            return caller
        review = client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token.reveal()))
        answer = await self._ask("tokenreviews", self._authentication.create_token_review, review)
        status = answer.status
        caller = None
        if status is not None and status.authenticated and status.user is not None and status.user.username:
            user = status.user
            extra = tuple(sorted((k, tuple(v or ())) for k, v in (user.extra or {}).items()))
            caller = Caller(user=user.username, groups=tuple(user.groups or ()), uid=user.uid or "", extra=extra)
        self._callers.put(key, caller)
        return caller

    async def authorize(self, caller: Caller, check: AccessCheck) -> Decision:
        key = (caller, check)
        fresh, decision = self._decisions.get(key)
        if fresh and decision is not None:
            return decision
        spec = client.V1SubjectAccessReviewSpec(
            user=caller.user,
            groups=list(caller.groups) or None,
            uid=caller.uid or None,
            extra={k: list(v) for k, v in caller.extra} or None,
        )
        if check.resource is not None:
            spec.resource_attributes = client.V1ResourceAttributes(
                group=GROUP, resource=check.resource, verb=check.verb, name=check.name, namespace=self._namespace
            )
        else:
            spec.non_resource_attributes = client.V1NonResourceAttributes(path=check.path, verb=check.verb)
        review = client.V1SubjectAccessReview(spec=spec)
        answer = await self._ask("subjectaccessreviews", self._authorization.create_subject_access_review, review)
        status = answer.status
        decision = Decision(allowed=bool(status and status.allowed), reason=(status.reason or "") if status else "")
        self._decisions.put(key, decision)
        return decision

    @staticmethod
    async def _ask(what: str, call: Callable[[Any], Any], body: object) -> Any:
        try:
            return await asyncio.to_thread(call, body)
        except ApiException as error:
            # The exception's text repeats the answer's headers and body: kept out of the chain.
            hint = "; may the service account create them (RBAC)?" if error.status == 403 else ""
            raise AuthUnavailableError(f"the Kubernetes API refused {what} (HTTP {error.status}){hint}") from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise AuthUnavailableError(f"the Kubernetes API did not answer {what} ({type(error).__name__})") from None
