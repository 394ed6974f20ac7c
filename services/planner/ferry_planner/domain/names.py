"""Kubernetes object names: DNS-1123 labels, and turning a VM name into one."""

import hashlib
import re

MAX_LABEL = 63
_VALID = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def is_dns1123_label(name: str) -> bool:
    """True when ``name`` is a valid DNS-1123 label (what a VirtualMachine name must be)."""
    return len(name) <= MAX_LABEL and bool(_VALID.match(name))


def to_dns1123_label(name: str) -> str:
    """A DNS-1123 label made from ``name``: lower-cased, other characters turned into
    ``-``, runs collapsed, trimmed to 63 characters. A name that changes gets a short
    hash suffix so two different source names cannot collapse into the same one."""
    if is_dns1123_label(name):
        return name
    cleaned = re.sub(r"[^a-z0-9-]+", "-", name.lower())
    cleaned = re.sub(r"-{2,}", "-", cleaned).strip("-") or "vm"
    suffix = hashlib.sha256(name.encode()).hexdigest()[:5]
    return f"{cleaned[: MAX_LABEL - len(suffix) - 1].rstrip('-')}-{suffix}"
