"""Kubernetes object names: DNS-1123 labels and subdomains, and turning any name into a label.

The planner checks plan, provider, migration and target VM names with these and
sanitizes source VM names; the kubevirt-writer checks the names it is sent before it
builds objects from them. The checks use ``re.fullmatch``: ``re.match`` with ``$``
would accept a name ending in a newline. Pure.
"""

import hashlib
import re

MAX_LABEL = 63
MAX_SUBDOMAIN = 253

LABEL_PATTERN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
"""A DNS-1123 label, unanchored (for ``fullmatch``, or anchored in a JSON schema)."""
SUBDOMAIN_PATTERN = rf"{LABEL_PATTERN}(\.{LABEL_PATTERN})*"
"""A DNS-1123 subdomain, unanchored."""

_LABEL = re.compile(LABEL_PATTERN)
_SUBDOMAIN = re.compile(SUBDOMAIN_PATTERN)
_HASH_LENGTH = 5


def is_dns1123_label(name: str) -> bool:
    """True when ``name`` is a DNS-1123 label (a namespace, a VirtualMachine, PVC or
    DataVolume name, a Ferry name): at most 63 lower-case letters, digits and ``-``,
    starting and ending with a letter or digit."""
    return len(name) <= MAX_LABEL and _LABEL.fullmatch(name) is not None


def is_dns1123_subdomain(name: str) -> bool:
    """True when ``name`` is a DNS-1123 subdomain (most other object names): parts like
    labels joined by ``.``, at most 253 characters in all (as Kubernetes checks it)."""
    return len(name) <= MAX_SUBDOMAIN and _SUBDOMAIN.fullmatch(name) is not None


def to_dns1123_label(name: str) -> str:
    """A DNS-1123 label made from ``name``: lower-cased, other characters turned into
    ``-``, runs collapsed, trimmed to 63 characters. A name that changes gets a short
    hash suffix so two different source names cannot collapse into the same one."""
    if is_dns1123_label(name):
        return name
    cleaned = re.sub(r"[^a-z0-9-]+", "-", name.lower())
    cleaned = re.sub(r"-{2,}", "-", cleaned).strip("-") or "vm"
    suffix = hashlib.sha256(name.encode()).hexdigest()[:_HASH_LENGTH]
    return f"{cleaned[: MAX_LABEL - len(suffix) - 1].rstrip('-')}-{suffix}"
