"""Deterministic message ids: the same thing said twice gets the same ``Nats-Msg-Id``, so
JetStream drops a retried publish, and two different things never share one.

Publishers build an id from what the message is about (``message_id("connect", provider,
generation)``); content too long or too free-form to be a part goes through
:func:`digest` first. Used by the inventory's store and the planner's commands.
"""

import hashlib
from urllib.parse import quote

DIGEST_CHARS = 32


def message_id(*parts: str) -> str:
    """The parts joined by ``:``, each percent-encoded first, so the join is one-to-one
    (``("a:b", "c")`` and ``("a", "b:c")`` differ) and safe in a header."""
    return ":".join(quote(part, safe="") for part in parts)


def digest(*chunks: bytes) -> str:
    """A short, stable hash of ``chunks`` (their boundaries included), for :func:`message_id`."""
    hasher = hashlib.sha256()
    for chunk in chunks:
        hasher.update(len(chunk).to_bytes(8, "big"))
        hasher.update(chunk)
    return hasher.hexdigest()[:DIGEST_CHARS]
