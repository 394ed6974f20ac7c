"""Follow one pod's state as the API server changes it: a list, then a watch from the
list's resourceVersion (resumed when the server ends it, re-listed after 410 Gone), by
:class:`~ferry_shared.kubernetes.list_watch.ListWatch`.

Used by the writer to wait for its sink pod. The blocking client runs in a daemon
thread that hands every state over to the event loop; leaving the context stops the
thread and cuts its connection at once, so a deadline or a cancelled handler never
waits for the server.
"""

import asyncio
import contextlib
import functools
from collections.abc import AsyncGenerator, AsyncIterator

from kubernetes.client import CoreV1Api
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from ferry_kubevirt_writer.adapters.kubernetes.failures import Call, failure
from ferry_kubevirt_writer.adapters.kubernetes.objects import Body, Cluster
from ferry_kubevirt_writer.adapters.kubernetes.resources import PODS
from ferry_shared.kubernetes.list_watch import ListWatch, body

State = Body | None  # None: the pod does not exist
Item = State | BaseException


@contextlib.asynccontextmanager
async def pod_states(cluster: Cluster, namespace: str, name: str) -> AsyncIterator[AsyncIterator[State]]:
    """Every state of pod ``namespace/name``, the current one first; raises the
    permanent or temporary error of a failed watch."""
    queue: asyncio.Queue[Item] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def emit(item: Item) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens any more
            loop.call_soon_threadsafe(queue.put_nowait, item)

    feed = ListWatch(
        f"watch pod {namespace}/{name}",
        functools.partial(CoreV1Api(cluster.api).list_namespaced_pod, namespace),
        query={"field_selector": f"metadata.name={name}"},
        decode=body,
        listed=lambda items: emit(items[0] if items else None),
        changed=lambda kind, pod: emit(None if kind == "DELETED" else pod),
        failed=emit,
        request_timeout=cluster.request_timeout,
    )
    call = Call("watch", PODS, namespace, name)

    async def states() -> AsyncGenerator[State, None]:
        while True:
            item = await queue.get()
            if isinstance(item, ApiException | HTTPError | OSError):
                raise failure(item, cluster.server, call) from item
            if isinstance(item, BaseException):
                raise item
            yield item

    feed.start()
    stream = states()
    try:
        yield stream
    finally:
        feed.stop()
        await stream.aclose()
