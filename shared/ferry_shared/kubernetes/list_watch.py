"""Listing, then watching, Kubernetes objects in a thread of their own.

The Kubernetes client blocks, so a :class:`ListWatch` runs it in a daemon thread: one
list, then a watch from the list's resourceVersion, resumed where it ended whenever the
server closes it, and a new list after ``410 Gone``. The listed objects and every later
change go to callbacks, called in that thread; a failure ends the thread and goes to
``failed`` (unless it was stopping). :meth:`ListWatch.stop` cuts the watch's connection,
so a blocked read ends at once. Used by the kubevirt-writer to follow its sink pod, and
by the test suite's stand-in for a node.
"""

import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes.watch import Watch
from urllib3.exceptions import ProtocolError, ReadTimeoutError

log = logging.getLogger(__name__)

Body = dict[str, Any]
GONE = 410
CONNECT_SECONDS = 10
CHANGES = ("ADDED", "MODIFIED", "DELETED")


class ListWatch:
    """Lists and watches ``list_call(**query)`` (a ``list_…`` method of the client, its
    positional arguments bound) until stopped or failed."""

    def __init__(
        self,
        name: str,
        list_call: Callable[..., Any],
        *,
        query: Mapping[str, str],
        listed: Callable[[list[Body]], None],
        changed: Callable[[str, Body], None],
        failed: Callable[[Exception], None],
        watch_seconds: int = 55,
        request_timeout: float = 30.0,
    ) -> None:
        """``query``: the selectors (``field_selector``, ``label_selector``); ``listed``
        gets the items of each list, ``changed`` each ``ADDED``/``MODIFIED``/``DELETED``
        object; the server ends each watch after ``watch_seconds`` (it is resumed at once)."""
        self._list_call = list_call
        self._query = dict(query)
        self._listed = listed
        self._changed = changed
        self._failed = failed
        self._watch_seconds = watch_seconds
        self._request_timeout = request_timeout
        self._stopping = threading.Event()
        self._watch: Watch | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end and cut its watch connection; safe to call again."""
        self._stopping.set()
        if (watch := self._watch) is not None:
            watch.stop()  # type: ignore[no-untyped-call]  # shuts the socket: a blocked read ends now

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            version = self._list()
            while not self._stopping.is_set():
                version = self._follow(version)
        except Exception as error:  # noqa: BLE001 - handed to the owner
            if not self._stopping.is_set():
                self._failed(error)

    def _list(self) -> str:
        response: Any = self._list_call(**self._query, _preload_content=False, _request_timeout=self._request_timeout)
        try:
            listed: Body = json.loads(response.data)
        finally:
            response.release_conn()
        self._listed(list(listed.get("items") or []))
        return str(listed["metadata"]["resourceVersion"])

    def _follow(self, version: str) -> str:
        """Watch from ``version`` until the server ends the watch; the version to resume from."""
        watch = self._watch = Watch(return_type="object")  # type: ignore[no-untyped-call]
        if self._stopping.is_set():  # set before this watch existed, so stop() could not cut it
            return version
        try:
            for event in watch.stream(  # type: ignore[no-untyped-call]
                self._list_call,
                **self._query,
                resource_version=version,
                allow_watch_bookmarks=True,
                timeout_seconds=self._watch_seconds,
                _request_timeout=(CONNECT_SECONDS, self._watch_seconds + self._request_timeout),
            ):
                raw = event.get("raw_object")
                if not isinstance(raw, dict):
                    continue
                version = str((raw.get("metadata") or {}).get("resourceVersion") or version)
                if event.get("type") in CHANGES:
                    self._changed(str(event["type"]), raw)
        except ApiException as error:
            if error.status != GONE:
                raise
            return self._list()
        except (ProtocolError, ReadTimeoutError):
            if self._stopping.is_set():
                raise
            log.info("%s: the watch dropped; resuming", self._thread.name)
        return version
