"""Checks a target before watching it: is the API server reachable and trusted, which of
the watched resources does it serve, and may these credentials list and watch them.
Called by the watcher session in a worker thread (the client blocks).

Permissions are asked with SelfSubjectAccessReviews, so one ``forbidden`` status names
every missing verb and resource at once instead of one per attempt.
"""

from dataclasses import dataclass

from kubernetes.client import (
    ApiClient,
    AuthenticationV1Api,
    AuthorizationV1Api,
    CustomObjectsApi,
    V1ResourceAttributes,
    V1SelfSubjectAccessReview,
    V1SelfSubjectAccessReviewSpec,
    V1SelfSubjectReview,
    VersionApi,
)
from kubernetes.client.exceptions import ApiException, NotFoundException
from urllib3.exceptions import HTTPError

from ferry_inventory.adapters.kubernetes.resources import ALL, Resource
from ferry_shared.kubernetes.failures import FORBIDDEN, KUBEVIRT_MISSING, TargetError, classify

TIMEOUT = (10, 30)
VERBS = ("list", "watch")


@dataclass(frozen=True)
class Cluster:
    """What the probe found: the server's version, the resources to watch, and the
    optional ones it does not serve."""

    version: str
    resources: tuple[Resource, ...]
    missing: tuple[Resource, ...]


def _served(api: ApiClient, resource: Resource) -> bool:
    if not resource.custom:
        return True
    try:
        api_group = CustomObjectsApi(api)
        listing = api_group.get_api_resources(resource.group, resource.version, _request_timeout=TIMEOUT)
    except NotFoundException:
        return False
    return any(r.name == resource.plural for r in listing.resources)


def _allowed(api: ApiClient, resource: Resource, verb: str) -> bool:
    attributes = V1ResourceAttributes(verb=verb, group=resource.group, resource=resource.plural)
    review = V1SelfSubjectAccessReview(spec=V1SelfSubjectAccessReviewSpec(resource_attributes=attributes))
    answer = AuthorizationV1Api(api).create_self_subject_access_review(review, _request_timeout=TIMEOUT)
    return bool(answer.status and answer.status.allowed)


def _user(api: ApiClient) -> str:
    """Who the server takes us for, when it says (anonymous users may not ask)."""
    try:
        authentication = AuthenticationV1Api(api)
        review = authentication.create_self_subject_review(V1SelfSubjectReview(), _request_timeout=TIMEOUT)
    except ApiException:
        return ""
    info = review.status.user_info if review.status else None
    return str(info.username or "") if info else ""


def _check_permissions(api: ApiClient, server: str, resources: tuple[Resource, ...]) -> None:
    wanted = [(verb, resource) for resource in resources for verb in VERBS]
    missing = [f"{verb} {resource.display}" for verb, resource in wanted if not _allowed(api, resource, verb)]
    if not missing:
        return
    user = _user(api)
    who = f"user '{user}'" if user else "the kubeconfig's user"
    if user == "system:anonymous":
        who += " (the server did not accept any credentials from the kubeconfig)"
    raise TargetError(
        FORBIDDEN,
        f"{who} may not {', '.join(missing)} (cluster-wide) on the API server at {server}; bind it to a "
        "ClusterRole that allows get, list and watch on these resources",
    )


def probe(api: ApiClient, server: str) -> Cluster:
    """Probe the target at ``server`` (for messages); raises :class:`TargetError`."""
    doing = "reading its version"
    try:
        version = VersionApi(api).get_code(_request_timeout=TIMEOUT).git_version
        doing = "discovering its APIs"
        served = {resource: _served(api, resource) for resource in ALL}
        missing = tuple(r for r, is_served in served.items() if not is_served)
        if any(r.required for r in missing):
            raise TargetError(
                KUBEVIRT_MISSING,
                f"the cluster at {server} does not serve KubeVirt's VirtualMachine API (kubevirt.io/v1); "
                "install KubeVirt on it, or choose a cluster that has it",
            )
        resources = tuple(r for r in ALL if served[r])
        doing = "checking permissions"
        _check_permissions(api, server, resources)
    except (ApiException, HTTPError, OSError) as error:
        raise classify(error, server, doing) from error
    return Cluster(version=str(version or "unknown"), resources=resources, missing=missing)
