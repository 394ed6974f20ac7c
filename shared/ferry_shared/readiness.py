"""Readiness: whether each long-running part of a service can do its work now.

A part that can fail while the process lives on (a durable consumer whose fetches fail,
a KV watch that broke, a mirror still loading) keeps a :class:`Health` and registers its
:meth:`Health.check` in the service's :class:`Readiness` under a name; ``/readyz``
(:mod:`ferry_shared.health`) answers 503 with every failing check's reason. A check
returns None when ready, else a short reason a person can act on.

``run_service`` registers the NATS connection and the service's consumers; a service's
``bootstrap`` adds its own parts through ``ServiceParts.readiness``.
"""

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime

from ferry_shared.messages import utc_now

ReadinessCheck = Callable[[], str | None]
"""Returns None when ready, else a short reason why not."""


class Readiness(Mapping[str, ReadinessCheck]):
    """The named readiness checks of one service; a name is registered once."""

    def __init__(self, checks: Mapping[str, ReadinessCheck] | None = None) -> None:
        self._checks: dict[str, ReadinessCheck] = {}
        for name, check in (checks or {}).items():
            self.add(name, check)

    def add(self, name: str, check: ReadinessCheck) -> None:
        if name in self._checks:
            raise ValueError(f"readiness check {name!r} is registered twice")
        self._checks[name] = check

    def extend(self, other: Mapping[str, ReadinessCheck]) -> None:
        for name, check in other.items():
            self.add(name, check)

    def failing(self) -> dict[str, str]:
        """The reason of every check that fails now."""
        return {name: reason for name, check in self._checks.items() if (reason := check()) is not None}

    def __getitem__(self, name: str) -> ReadinessCheck:
        return self._checks[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._checks)

    def __len__(self) -> int:
        return len(self._checks)


class Health:
    """What one long-running loop knows of itself: ready, or not ready since when and why.

    The loop calls :meth:`ready` after each success and :meth:`not_ready` after each
    failure; the time kept is the first failure's, so the reason says how long it has lasted.
    """

    def __init__(self, *, not_ready: str | None = None, clock: Callable[[], datetime] = utc_now) -> None:
        """``not_ready``: the reason it starts not ready with (None: it starts ready)."""
        self._clock = clock
        self._reason = not_ready
        self._since = clock()

    @property
    def is_ready(self) -> bool:
        return self._reason is None

    def ready(self) -> None:
        self._reason = None

    def not_ready(self, reason: str) -> None:
        if self._reason is None:
            self._since = self._clock()
        self._reason = reason

    def check(self) -> str | None:
        """None when ready, else the reason and since when (a :data:`ReadinessCheck`)."""
        if self._reason is None:
            return None
        return f"{self._reason} (since {self._since:%Y-%m-%dT%H:%M:%SZ})"
