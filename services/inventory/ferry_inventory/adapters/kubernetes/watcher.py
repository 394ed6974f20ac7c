"""The :class:`~ferry_inventory.domain.ports.Watcher` of a Kubernetes (KubeVirt) target,
made by the inventory service's bootstrap for providers of type ``kubernetes``.

It builds a client configuration from the provider's kubeconfig (or the pod's service
account), runs a :class:`Session` until stop is set, and after any failure reports the
failure as an ``error`` status and tries again with capped exponential back-off. A busy API
server (:class:`TargetBusyError`) leaves the provider ``connecting`` for its first
:data:`BUSY_TRIES` answers in a row; then it is an error too, so nobody waits forever.
"""

import asyncio
import logging

from kubernetes.client import Configuration

from ferry_inventory.adapters.kubernetes.session import Session
from ferry_inventory.domain.ports import InventorySink, StatusReporter
from ferry_shared.credentials import Secret
from ferry_shared.kubernetes.failures import TargetBusyError, TargetError, safe_url
from ferry_shared.kubernetes.kubeconfig import configuration_for
from ferry_shared.providers import ProviderPhase, ProviderSpec, ProviderStatus
from ferry_shared.retry import Backoff, pause

log = logging.getLogger(__name__)

FIRST_RETRY = 1.0
MAX_RETRY = 60.0
BUSY_TRIES = 5
"""Busy answers in a row (about 30 s with the default back-off) reported as still connecting."""


def reported_status(failure: TargetError, busy_in_a_row: int) -> ProviderStatus:
    """The status a failure is reported as: a busy server's first answers keep the provider
    connecting, later ones make it an error."""
    return failure.status() if busy_in_a_row <= BUSY_TRIES else TargetError.status(failure)


class KubernetesWatcher:
    """Keeps one Kubernetes target's namespaces, storage classes, NADs and VMs live."""

    def __init__(
        self,
        spec: ProviderSpec,
        kubeconfig: str | None,
        *,
        retry_initial: float = FIRST_RETRY,
        retry_max: float = MAX_RETRY,
    ) -> None:
        """``kubeconfig``: the provider's kubeconfig text, or None for the pod's service
        account (as is ``spec.in_cluster``); failures are retried after ``retry_initial``
        seconds, doubled after each one up to ``retry_max``."""
        self._spec = spec
        self._retry = (retry_initial, retry_max)
        self._kubeconfig = None if kubeconfig is None or spec.in_cluster else Secret(kubeconfig)

    def __repr__(self) -> str:
        return f"KubernetesWatcher({self._spec.name!r})"

    async def run(self, sink: InventorySink, status: StatusReporter, stop: asyncio.Event) -> None:
        backoff = Backoff(*self._retry)
        await status.report(ProviderStatus(phase=ProviderPhase.CONNECTING))
        last_failure: ProviderStatus | None = None
        busy = 0
        while not stop.is_set():
            session: Session | None = None
            try:
                configuration = await asyncio.to_thread(self._configuration)
                session = Session(configuration, safe_url(str(configuration.host)), sink, status)
                await session.run(stop)
            except TargetError as failure:
                if stop.is_set():
                    return
                if session is not None and session.reached_ready:
                    backoff.reset()
                    last_failure = None
                    busy = 0
                busy = busy + 1 if isinstance(failure, TargetBusyError) else 0
                delay = backoff.next()
                log.warning("Kubernetes target %s: %s; retrying in %.0fs", self._spec.name, failure, delay)
                reported = reported_status(failure, busy)
                if reported != last_failure:  # the same failure again is no news
                    last_failure = reported
                    await status.report(last_failure)
                await pause(delay, stop=stop)

    def _configuration(self) -> Configuration:
        return configuration_for(self._spec, self._kubeconfig)
