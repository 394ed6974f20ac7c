"""Follow one pod's state as the API server changes it: a list, then a watch from the
list's resourceVersion (resumed when the server ends it, re-listed after 410 Gone).

Used by the writer to wait for its sink pod. The blocking client runs in a daemon
thread that hands every state over to the event loop; leaving the context stops the
thread and cuts its connection at once, so a deadline or a cancelled handler never
waits for the server.
"""

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from kubernetes.client import CoreV1Api
from kubernetes.client.exceptions import ApiException
from kubernetes.watch import Watch
from urllib3.exceptions import HTTPError, ProtocolError, ReadTimeoutError

from ferry_kubevirt_writer.adapters.kubernetes.failures import Call, failure
from ferry_kubevirt_writer.adapters.kubernetes.objects import Body, Cluster
from ferry_kubevirt_writer.adapters.kubernetes.resources import PODS

log = logging.getLogger(__name__)

WATCH_SECONDS = 55  # the server ends each watch after this; it is resumed at once
CONNECT_SECONDS = 10
GONE = 410
State = Body | None  # None: the pod does not exist
Item = State | BaseException


class _PodFeed:
    """The thread that lists and watches one pod."""

    def __init__(self, cluster: Cluster, namespace: str, name: str, queue: "asyncio.Queue[Item]") -> None:
        self._core = CoreV1Api(cluster.api)
        self._namespace = namespace
        self._selector = f"metadata.name={name}"
        self._queue = queue
        self._loop = asyncio.get_running_loop()
        self._stopping = threading.Event()
        self._watch: Watch | None = None
        self._thread = threading.Thread(target=self._run, name=f"watch pod {namespace}/{name}", daemon=True)
        self._timeout = cluster.request_timeout

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if (watch := self._watch) is not None:
            watch.stop()  # type: ignore[no-untyped-call]  # shuts the socket: a blocked read ends now

    def _emit(self, item: Item) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens any more
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    def _run(self) -> None:
        try:
            version = self._list()
            while not self._stopping.is_set():
                version = self._follow(version)
        except Exception as error:  # noqa: BLE001 - handed to the waiting coroutine
            if not self._stopping.is_set():
                self._emit(error)

    def _list(self) -> str:
        response: Any = self._core.list_namespaced_pod(
            self._namespace, field_selector=self._selector, _preload_content=False, _request_timeout=self._timeout
        )
        try:
            listed: Body = json.loads(response.data)
        finally:
            response.release_conn()
        items = listed.get("items") or []
        self._emit(items[0] if items else None)
        return str(listed["metadata"]["resourceVersion"])

    def _follow(self, version: str) -> str:
        """Watch from ``version`` until the server ends the watch; the version to resume from."""
        watch = self._watch = Watch(return_type="object")  # type: ignore[no-untyped-call]
        if self._stopping.is_set():
            return version
        try:
            for event in watch.stream(  # type: ignore[no-untyped-call]
                self._core.list_namespaced_pod,
                self._namespace,
                field_selector=self._selector,
                resource_version=version,
                allow_watch_bookmarks=True,
                timeout_seconds=WATCH_SECONDS,
                _request_timeout=(CONNECT_SECONDS, WATCH_SECONDS + self._timeout),
            ):
                version = self._handle(event) or version
        except ApiException as error:
            if error.status != GONE:
                raise
            return self._list()
        except (ProtocolError, ReadTimeoutError):
            if self._stopping.is_set():
                raise
            log.info("the watch of pod %s dropped; resuming", self._selector)
        return version

    def _handle(self, event: dict[str, Any]) -> str:
        raw = event.get("raw_object")
        if not isinstance(raw, dict):
            return ""
        if event.get("type") in ("ADDED", "MODIFIED"):
            self._emit(raw)
        elif event.get("type") == "DELETED":
            self._emit(None)
        return str((raw.get("metadata") or {}).get("resourceVersion") or "")


@contextlib.asynccontextmanager
async def pod_states(cluster: Cluster, namespace: str, name: str) -> AsyncIterator[AsyncIterator[State]]:
    """Every state of pod ``namespace/name``, the current one first; raises the
    permanent or temporary error of a failed watch."""
    queue: asyncio.Queue[Item] = asyncio.Queue()
    feed = _PodFeed(cluster, namespace, name, queue)
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
