"""One resource's list-then-watch, by the shared
:class:`~ferry_shared.kubernetes.list_watch.ListWatch` in a daemon thread (the Kubernetes
client blocks). Started and stopped by the watcher session, which receives what it sees.

A feed hands over the resource's whole list (again after any re-list), then each watch
event, as typed objects (:mod:`.objects`; an object the inventory cannot read is logged
and skipped). Any failure the list-then-watch does not recover from ends the feed and
is handed over as :class:`Failed`; :meth:`Feed.stop` interrupts a blocked read at once.
"""

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from kubernetes.client import ApiClient

from ferry_inventory.adapters.kubernetes.objects import OBJECT_TYPES, KubeObject
from ferry_inventory.adapters.kubernetes.resources import Resource
from ferry_shared.kubernetes.list_watch import ListWatch

log = logging.getLogger(__name__)

WATCH_SECONDS = 55  # the server ends each watch after this; it is resumed at once
READ_SECONDS = 60


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
        func, args = resource.list_call(api)
        self._list_watch = ListWatch(
            f"watch {resource.display}",
            functools.partial(func, *args),
            decode=self._decode,
            listed=lambda objects: emit(Listed(resource, objects)),
            changed=lambda event, obj: emit(Observed(resource, event, obj)),
            failed=lambda error: emit(Failed(resource, error)),
            resource_version=resource_version,
            watch_seconds=WATCH_SECONDS,
            request_timeout=READ_SECONDS,
        )

    def start(self) -> None:
        self._list_watch.start()

    def stop(self) -> None:
        """Ask the feed to end and cut its watch connection; safe to call again."""
        self._list_watch.stop()

    def join(self, timeout: float) -> None:
        self._list_watch.join(timeout)

    @property
    def alive(self) -> bool:
        return self._list_watch.alive

    def _decode(self, raw: msgspec.Raw | dict[str, Any]) -> KubeObject | None:
        kind = OBJECT_TYPES[self.resource.key]
        try:
            if isinstance(raw, msgspec.Raw):
                return msgspec.json.decode(raw, type=kind)
            return msgspec.convert(raw, type=kind)
        except msgspec.ValidationError as error:
            log.warning("skipping a %s the inventory cannot read: %s", self.resource.display, error)
            return None
