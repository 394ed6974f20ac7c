"""One resource's list-then-watch, run in a daemon thread because the Kubernetes client
blocks. Started and stopped by the watcher session, which receives what it sees.

A feed lists the resource (in pages), hands over the whole list, then watches from the
list's resourceVersion with bookmarks, resuming from the last version it saw whenever
the server ends a watch (``timeout_seconds``) or the connection drops once. A 410 Gone
(version too old) is answered with a fresh list. Any other failure ends the feed and is
handed over as :class:`Failed`; :meth:`Feed.stop` interrupts a blocked read at once.
"""

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.watch import Watch
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from ferry_inventory.adapters.kubernetes.objects import OBJECT_TYPES, KubeObject, ObjectList
from ferry_inventory.adapters.kubernetes.resources import Resource

log = logging.getLogger(__name__)

WATCH_SECONDS = 55  # the server ends each watch after this; it is resumed at once
CONNECT_SECONDS = 10
READ_SECONDS = 60
PAGE_SIZE = 500
GONE = 410


@dataclass(frozen=True)
class Listed:
    """Every object of a resource, from a (re-)list."""

    resource: Resource
    objects: list[KubeObject]


@dataclass(frozen=True)
class Observed:
    """One watch event: ``ADDED``, ``MODIFIED`` or ``DELETED``."""

    resource: Resource
    event: str
    obj: KubeObject


@dataclass(frozen=True)
class Failed:
    resource: Resource
    error: Exception


FeedItem = Listed | Observed | Failed
Emit = Callable[[FeedItem], None]


class Feed:
    """Lists and watches one resource until stopped or failed."""

    def __init__(self, api: ApiClient, resource: Resource, emit: Emit, *, resource_version: str = "") -> None:
        """``resource_version``: watch from there without listing first (a resume)."""
        self.resource = resource
        self._api = api
        self._emit = emit
        self._start_version = resource_version
        self._stopping = threading.Event()
        self._watch: Watch | None = None
        self._thread = threading.Thread(target=self._run, name=f"watch {resource.display}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the feed to end and cut its watch connection; safe to call again."""
        self._stopping.set()
        if (watch := self._watch) is not None:
            watch.stop()  # type: ignore[no-untyped-call]

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            version = self._start_version or self._list()
            while not self._stopping.is_set():
                version = self._follow(version)
        except Exception as error:  # noqa: BLE001 - handed to the session, which reports it and reconnects
            if self._stopping.is_set():
                log.debug("feed of %s ended while stopping: %s", self.resource.display, type(error).__name__)
            else:
                self._emit(Failed(self.resource, error))

    def _list(self) -> str:
        """List every object (in pages) and hand them over; the list's resourceVersion."""
        objects: list[KubeObject] = []
        token: str | None = None
        while True:
            try:
                page = self._page(token)
            except ApiException as error:
                if error.status != GONE or token is None:
                    raise
                log.info("the list of %s expired between pages; listing again", self.resource.display)
                objects, token = [], None
                continue
            objects.extend(obj for item in page.items if (obj := self._decode(item)) is not None)
            token = page.metadata.continue_ or None
            if token is None:
                self._emit(Listed(self.resource, objects))
                return page.metadata.resource_version

    def _page(self, token: str | None) -> ObjectList:
        func, args = self.resource.list_call(self._api)
        response = func(
            *args,
            limit=PAGE_SIZE,
            _continue=token,
            _preload_content=False,
            _request_timeout=(CONNECT_SECONDS, READ_SECONDS),
        )
        try:
            return msgspec.json.decode(response.data, type=ObjectList)
        finally:
            response.release_conn()

    def _follow(self, version: str) -> str:
        """Watch from ``version`` until the server ends the watch; the version to resume from."""
        func, args = self.resource.list_call(self._api)
        watch = self._watch = Watch(return_type="object")  # type: ignore[no-untyped-call]
        if self._stopping.is_set():
            return version
        dropped = False
        while True:
            try:
                for event in watch.stream(  # type: ignore[no-untyped-call]
                    func,
                    *args,
                    resource_version=version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=WATCH_SECONDS,
                    _request_timeout=(CONNECT_SECONDS, WATCH_SECONDS + READ_SECONDS),
                ):
                    version = self._handle(event) or version
                    dropped = False
                return version
            except ApiException as error:
                if error.status != GONE:
                    raise
                log.info("watch of %s expired (410 Gone); listing it again", self.resource.display)
                return self._list()
            except (ProtocolError, ReadTimeoutError):
                if self._stopping.is_set() or dropped:
                    raise
                log.info("watch of %s dropped; resuming from %s", self.resource.display, version)
                dropped = True

    def _handle(self, event: dict[str, Any]) -> str:
        """Pass one watch event on; its resourceVersion."""
        raw = event.get("raw_object")
        metadata = raw.get("metadata") if isinstance(raw, dict) else None
        version = str(metadata.get("resourceVersion", "")) if isinstance(metadata, dict) else ""
        kind = event.get("type")
        if kind in ("ADDED", "MODIFIED", "DELETED") and (obj := self._decode(raw)) is not None:
            self._emit(Observed(self.resource, str(kind), obj))
        return version

    def _decode(self, raw: msgspec.Raw | Any) -> KubeObject | None:
        kind = OBJECT_TYPES[self.resource.key]
        try:
            if isinstance(raw, msgspec.Raw):
                return msgspec.json.decode(raw, type=kind)
            return msgspec.convert(raw, type=kind)
        except msgspec.ValidationError as error:
            log.warning("skipping a %s the inventory cannot read: %s", self.resource.display, error)
            return None
