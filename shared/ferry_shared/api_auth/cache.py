"""A small time-bounded cache of review answers, keyed on digests (never on tokens)."""

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")

MAX_TTL_SECONDS = 10.0
"""The longest an answer of the Kubernetes API is trusted without asking again."""


def digest(secret: str) -> str:
    """A SHA-256 of ``secret``: a cache key from which the secret cannot be read back."""
    return hashlib.sha256(secret.encode()).hexdigest()


class TtlCache(Generic[V]):
    """Answers kept for ``ttl`` seconds (at most :data:`MAX_TTL_SECONDS`), ``size`` at most."""

    def __init__(self, ttl: float = MAX_TTL_SECONDS, size: int = 4096, clock: Callable[[], float] = time.monotonic):
        if not 0 <= ttl <= MAX_TTL_SECONDS:
            raise ValueError(f"a review answer may be cached for at most {MAX_TTL_SECONDS} s, not {ttl}")
        self._ttl, self._size, self._clock = ttl, size, clock
        self._entries: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()

    def get(self, key: Hashable) -> tuple[bool, V | None]:
        """``(True, value)`` for a fresh entry, ``(False, None)`` otherwise."""
        found = self._entries.get(key)
        if found is None:
            return False, None
        expires, value = found
        if self._clock() >= expires:
            del self._entries[key]
            return False, None
        return True, value

    def put(self, key: Hashable, value: V) -> None:
        self._entries[key] = (self._clock() + self._ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
