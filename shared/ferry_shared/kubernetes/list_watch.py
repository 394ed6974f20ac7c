"""Listing, then watching, Kubernetes objects in a thread of their own: Ferry's one
list-then-watch.

The Kubernetes client blocks, so a :class:`ListWatch` runs it in a daemon thread: a list
(in pages), then a watch from the list's resourceVersion with bookmarks, resumed from
the last version seen whenever the server ends it (``timeout_seconds``), the watch
stays silent past its read timeout (a quiet watch only means nothing happened) or its
connection drops (twice in a row without an event in between is a failure), and a new
list after ``410 Gone``, also when a list's pages expire half-way. Every object is
decoded by ``decode`` (skipped when it gives None); the listed objects and every later
change go to callbacks, called in that thread; any other failure ends the thread and
goes to ``failed`` (unless it was stopping). :meth:`ListWatch.stop` cuts the watch's
connection, so a blocked read ends at once.

Used by the inventory's Kubernetes feeds, by the kubevirt-writer to follow its sink
pod, and by the test suite's stand-in for a node.
"""

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import msgspec
from kubernetes.client.exceptions import ApiException
from kubernetes.watch import Watch
from urllib3.exceptions import ProtocolError, ReadTimeoutError

log = logging.getLogger(__name__)

Body = dict[str, Any]
T = TypeVar("T")
GONE = 410
CONNECT_SECONDS = 10
PAGE_SIZE = 500
CHANGES = ("ADDED", "MODIFIED", "DELETED")


class _ListMetadata(msgspec.Struct, frozen=True, rename="camel"):
    resource_version: str = ""
    continue_: str = msgspec.field(default="", name="continue")


class _Page(msgspec.Struct, frozen=True):
    """One page of a list: items stay raw so one odd object cannot spoil the page."""

    metadata: _ListMetadata = _ListMetadata()
    items: list[msgspec.Raw] = []


def body(raw: msgspec.Raw | Body) -> Body:
    """The ``decode`` of callers that read objects as plain JSON dicts."""
    if isinstance(raw, msgspec.Raw):
        decoded: Body = msgspec.json.decode(raw)
        return decoded
    return raw


class ListWatch(Generic[T]):
    """Lists and watches ``list_call(**query)`` (a ``list_…`` method of the client, its
    positional arguments bound) until stopped or failed."""

    def __init__(
        self,
        name: str,
        list_call: Callable[..., Any],
        *,
        decode: Callable[[msgspec.Raw | Body], T | None],
        listed: Callable[[list[T]], None],
        changed: Callable[[str, T], None],
        failed: Callable[[Exception], None],
        query: Mapping[str, str] | None = None,
        resource_version: str = "",
        watch_seconds: int = 55,
        request_timeout: float = 30.0,
        page_size: int = PAGE_SIZE,
    ) -> None:
        """``query``: the selectors (``field_selector``, ``label_selector``); ``decode``
        turns a listed item (raw JSON) or a watched object (a dict) into a ``T``, or None
        to skip it; ``listed`` gets the objects of each list, ``changed`` each
        ``ADDED``/``MODIFIED``/``DELETED`` object; ``resource_version``: watch from there
        without listing first (a resume); the server ends each watch after
        ``watch_seconds`` (it is resumed at once); ``request_timeout``: how long one
        list page may take, and how much longer than ``watch_seconds`` a watch may stay
        silent before it is resumed."""
        self.name = name
        self._list_call = list_call
        self._query = dict(query or {})
        self._decode = decode
        self._listed = listed
        self._changed = changed
        self._failed = failed
        self._start_version = resource_version
        self._watch_seconds = watch_seconds
        self._request_timeout = request_timeout
        self._page_size = page_size
        self._stopping = threading.Event()
        self._watch: Watch | None = None
        self._dropped = False  # the last watch dropped, and no event came since
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

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            version = self._start_version or self._list()
            while not self._stopping.is_set():
                version = self._follow(version)
        except Exception as error:  # noqa: BLE001 - handed to the owner
            if self._stopping.is_set():
                log.debug("%s ended while stopping: %s", self.name, type(error).__name__)
            else:
                self._failed(error)

    def _list(self) -> str:
        """List every object (in pages) and hand them over; the list's resourceVersion."""
        objects: list[T] = []
        token: str | None = None
        while True:
            try:
                page = self._page(token)
            except ApiException as error:
                if error.status != GONE or token is None:
                    raise
                log.info("%s: the list expired between pages; listing again", self.name)
                objects, token = [], None
                continue
            objects.extend(obj for item in page.items if (obj := self._decode(item)) is not None)
            token = page.metadata.continue_ or None
            if token is None:
                self._listed(objects)
                return page.metadata.resource_version

    def _page(self, token: str | None) -> _Page:
        response: Any = self._list_call(
            **self._query,
            limit=self._page_size,
            _continue=token,
            _preload_content=False,
            _request_timeout=(CONNECT_SECONDS, self._request_timeout),
        )
        try:
            return msgspec.json.decode(response.data, type=_Page)
        finally:
            response.release_conn()

    def _follow(self, version: str) -> str:
        """Watch from ``version`` until the server ends the watch, the connection drops or
        stays silent; the version to resume from."""
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
                version = self._handle(event) or version
                self._dropped = False
            self._dropped = False  # ended by the server: the connection works
        except ApiException as error:
            if error.status != GONE:
                raise
            log.info("%s: the watch expired (410 Gone); listing again", self.name)
            return self._list()
        except ReadTimeoutError:
            if self._stopping.is_set():
                raise
            log.info("%s: the watch was silent; resuming from %s", self.name, version)
        except ProtocolError:
            if self._stopping.is_set() or self._dropped:
                raise
            log.info("%s: the watch dropped; resuming from %s", self.name, version)
            self._dropped = True
        return version

    def _handle(self, event: Body) -> str:
        """Pass one watch event on; its resourceVersion ("" when it has none)."""
        raw = event.get("raw_object")
        if not isinstance(raw, dict):
            return ""
        metadata = raw.get("metadata")
        version = str(metadata.get("resourceVersion") or "") if isinstance(metadata, dict) else ""
        kind = event.get("type")
        if kind in CHANGES and (obj := self._decode(raw)) is not None:
            self._changed(str(kind), obj)
        return version
