"""One connection to a Kubernetes target, from probe to stop or failure; the watcher runs
a new session after each failure.

The session probes the target, starts one :class:`Feed` thread per served resource and
turns what the feeds hand over (through an asyncio queue fed with
``call_soon_threadsafe``) into sink calls: one ``replace_all`` once every initial list
is in (and again after any re-list), then batched ``apply`` calls for watch events.
The status turns ready with counts per kind, and the counts follow changes (at most
once per :data:`COUNTS_INTERVAL`).
"""

import asyncio
import contextlib
import logging
from functools import partial

from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from ferry_inventory.adapters.kubernetes.feed import Failed, Feed, FeedItem, Listed, Observed
from ferry_inventory.adapters.kubernetes.probe import Cluster, probe
from ferry_inventory.adapters.kubernetes.resources import NADS, STORAGE_PROFILES
from ferry_inventory.adapters.kubernetes.state import Changes, TargetState
from ferry_inventory.adapters.kubernetes.threads import unless_stopped
from ferry_inventory.domain.ports import InventorySink, StatusReporter
from ferry_shared.kubernetes.failures import API_ERROR, TargetError, classify
from ferry_shared.providers import ProviderPhase, ProviderStatus

log = logging.getLogger(__name__)

COUNTS_INTERVAL = 2.0
STOP_GRACE = 5.0
Item = FeedItem | None  # None: stop was set


def _failure(item: Failed, server: str) -> TargetError:
    doing = f"watching {item.resource.display}"
    if isinstance(item.error, ApiException | HTTPError | OSError):
        return classify(item.error, server, doing)
    return TargetError(API_ERROR, f"{doing} on {server} failed unexpectedly ({type(item.error).__name__})")


class Session:
    """Watches one target over one API client until stop is set or a feed fails."""

    def __init__(self, config: Configuration, server: str, sink: InventorySink, status: StatusReporter):
        config.connection_pool_maxsize = 8  # a watch per resource, plus room
        config.retries = 0  # the watcher's back-off is the retry policy
        self._config = config
        self._server = server
        self._sink = sink
        self._status = status
        self._state = TargetState()
        self._queue: asyncio.Queue[Item] = asyncio.Queue()
        self._ready = ProviderStatus()
        self._reported_at = 0.0
        self.reached_ready = False

    async def run(self, stop: asyncio.Event) -> None:
        """Returns when ``stop`` is set; raises :class:`TargetError`."""
        api = ApiClient(self._config)
        try:
            cluster = await unless_stopped(stop, partial(probe, api, self._server), f"probe {self._server}")
            if cluster is not None:
                await self._follow(api, cluster, stop)
        finally:
            api.close()  # type: ignore[no-untyped-call]

    async def _follow(self, api: ApiClient, cluster: Cluster, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()

        def emit(item: FeedItem) -> None:
            try:
                loop.call_soon_threadsafe(self._queue.put_nowait, item)
            except RuntimeError:
                log.debug("event loop closed; dropped a %s of %s", type(item).__name__, item.resource.display)

        feeds = [Feed(api, resource, emit) for resource in cluster.resources]
        for feed in feeds:
            feed.start()
        waker = asyncio.create_task(self._wake_on(stop))
        try:
            if await self._load({feed.resource.key for feed in feeds}):
                await self._publish_ready(cluster)
                await self._keep_up()
        finally:
            waker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waker
            await _stop_feeds(feeds)

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._queue.put_nowait(None)

    async def _load(self, pending: set[str]) -> bool:
        """Take items until every feed has listed; False if stopped first."""
        while pending:
            item = await self._queue.get()
            if item is None:
                return False
            self._take(item, Changes())
            if isinstance(item, Listed):
                pending.discard(item.resource.key)
        await self._sink.replace_all(self._state.records())
        return True

    def _take(self, item: FeedItem, changes: Changes) -> None:
        if isinstance(item, Failed):
            raise _failure(item, self._server) from item.error
        if isinstance(item, Listed):
            self._state.replace(item.resource.key, item.objects)
        elif isinstance(item, Observed):
            self._state.observe(item.resource.key, item.event, item.obj, changes)

    async def _publish_ready(self, cluster: Cluster) -> None:
        missing = set(cluster.missing)
        reason = "cdi_missing" if STORAGE_PROFILES in missing else "multus_missing" if NADS in missing else ""
        notes = "".join(f"; {resource.missing}" for resource in cluster.missing)
        self._ready = ProviderStatus(
            phase=ProviderPhase.READY,
            reason=reason,
            message=f"watching Kubernetes {cluster.version} at {self._server}{notes}",
        )
        self.reached_ready = True
        await self._report_counts()

    async def _report_counts(self) -> None:
        self._ready = ProviderStatus(
            phase=ProviderPhase.READY,
            reason=self._ready.reason,
            message=self._ready.message,
            counts=self._state.counts(),
        )
        self._reported_at = asyncio.get_running_loop().time()
        await self._status.report(self._ready)

    def _counts_due_in(self) -> float | None:
        if self._state.counts() == self._ready.counts:
            return None
        return max(0.0, self._reported_at + COUNTS_INTERVAL - asyncio.get_running_loop().time())

    async def _keep_up(self) -> None:
        """Apply watch events in batches (whatever is queued) until stopped."""
        while True:
            try:
                first = await asyncio.wait_for(self._queue.get(), self._counts_due_in())
            except TimeoutError:
                await self._report_counts()
                continue
            batch = [first]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            changes, relisted = Changes(), False
            for item in batch:
                if item is None:
                    return
                self._take(item, changes)
                relisted = relisted or isinstance(item, Listed)
            if relisted:
                await self._sink.replace_all(self._state.records())
            elif changes:
                await self._sink.apply(changes.puts, changes.deletes)


async def _stop_feeds(feeds: list[Feed]) -> None:
    """Stop every feed, repeating the request (a watch may be between requests) until the
    threads end or :data:`STOP_GRACE` passes; stragglers are daemons and end on their own."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STOP_GRACE
    while (alive := [feed for feed in feeds if feed.alive]) and loop.time() < deadline:
        for feed in alive:
            feed.stop()
        await asyncio.sleep(0.05)
    for feed in alive:
        log.warning("the watch of %s did not stop in %.0fs; it ends later", feed.resource.display, STOP_GRACE)
