"""Create, read, list and delete the writer's objects on one cluster, as plain dicts.

:class:`Cluster` runs each blocking Kubernetes client call in a worker thread with a
request timeout and turns its failure into a permanent or temporary error (see
:mod:`.failures`). The "already exists" and "not found" answers the writer expects
are results, not errors: ``create`` returns None for a taken name, ``get`` None for a
missing object, ``delete`` False when there was nothing to delete.
"""

import asyncio
import json
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes.client import ApiClient, CoreV1Api, CustomObjectsApi, V1DeleteOptions, V1Preconditions
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from ferry_kubevirt_writer.adapters.kubernetes.failures import Call, failure
from ferry_kubevirt_writer.adapters.kubernetes.resources import Resource

T = TypeVar("T")
Body = dict[str, Any]
CONFLICT, NOT_FOUND = 409, 404


def _decoded(response: Any) -> Body:
    try:
        body: Body = json.loads(response.data)
        return body
    finally:
        response.release_conn()


class Cluster:
    """One target cluster's API, for the objects the writer manages."""

    def __init__(self, api: ApiClient, server: str, request_timeout: float) -> None:
        self.api = api
        self.server = server  # for messages: the URL without credentials
        self.request_timeout = request_timeout
        self._core = CoreV1Api(api)
        self._custom = CustomObjectsApi(api)

    async def create(self, resource: Resource, namespace: str, body: Body) -> Body | None:
        """The created object, or None when its name is already taken."""
        call = Call("create", resource, namespace, str(body["metadata"]["name"]))
        return await self._run(call, self._create, resource, namespace, body)

    async def get(self, resource: Resource, namespace: str, name: str) -> Body | None:
        """The object, or None when there is none."""
        return await self._run(Call("get", resource, namespace, name), self._get, resource, namespace, name)

    async def delete(self, resource: Resource, namespace: str, name: str, uid: str = "") -> bool:
        """Delete (only the object with ``uid``, when given); False when there was none."""
        call = Call("delete", resource, namespace, name)
        return await self._run(call, self._delete, resource, namespace, name, uid)

    async def find(self, resource: Resource, namespace: str, label_selector: str) -> list[Body]:
        """The objects matching ``label_selector``; none when the resource is not served."""
        call = Call("list", resource, namespace)
        return await self._run(call, self._find, resource, namespace, label_selector)

    async def _run(self, call: Call, blocking: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.to_thread(blocking, *args)
        except (ApiException, HTTPError, OSError) as error:
            raise failure(error, self.server, call) from error

    def _raw(self, verb: str, resource: Resource, **arguments: Any) -> Any:
        """Call ``<verb>_namespaced_<snake>`` of the core API or the custom-object one
        (whose ``read`` is ``get``); the unread response."""
        options: dict[str, Any] = {"_preload_content": False, "_request_timeout": self.request_timeout}
        if resource.group:
            method = getattr(self._custom, f"{'get' if verb == 'read' else verb}_namespaced_custom_object")
            custom = {"group": resource.group, "version": resource.version, "plural": resource.plural}
            return method(**custom, **arguments, **options)
        return getattr(self._core, f"{verb}_namespaced_{resource.snake}")(**arguments, **options)

    def _create(self, resource: Resource, namespace: str, body: Body) -> Body | None:
        try:
            return _decoded(self._raw("create", resource, namespace=namespace, body=body))
        except ApiException as error:
            if error.status == CONFLICT:
                return None
            raise

    def _get(self, resource: Resource, namespace: str, name: str) -> Body | None:
        try:
            return _decoded(self._raw("read", resource, namespace=namespace, name=name))
        except ApiException as error:
            if error.status == NOT_FOUND:
                return None
            raise

    def _delete(self, resource: Resource, namespace: str, name: str, uid: str) -> bool:
        options = V1DeleteOptions(
            propagation_policy="Background", preconditions=V1Preconditions(uid=uid) if uid else None
        )
        try:
            _decoded(self._raw("delete", resource, namespace=namespace, name=name, body=options))
        except ApiException as error:
            if error.status == NOT_FOUND:
                return False
            raise
        return True

    def _find(self, resource: Resource, namespace: str, label_selector: str) -> list[Body]:
        try:
            listed = _decoded(self._raw("list", resource, namespace=namespace, label_selector=label_selector))
        except ApiException as error:
            if error.status == NOT_FOUND:  # the resource is not served: nothing of it exists
                return []
            raise
        items: list[Body] = listed.get("items") or []
        return items
