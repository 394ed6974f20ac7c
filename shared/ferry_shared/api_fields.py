"""Constrained string types for the fields and parameters of Ferry's HTTP APIs (pydantic).

Every name and reference a request carries is one of these, so it is checked before
anything is stored or looked up, and its rule appears in the OpenAPI document:

- :data:`Dns1123Label`: Ferry's own resources (providers, maps, plans, migrations) and
  Kubernetes names that are labels (namespaces, target VM names); checked with
  :mod:`ferry_shared.dns1123`.
- :data:`Dns1123Subdomain`: other Kubernetes object names (StorageClasses).
- :data:`SourceRef`: a source object by name or id (a vSphere VM, network, datastore, host):
  vSphere names may hold spaces and most characters, but never control characters;
  1 to :data:`MAX_REF` characters.
- :data:`ObjectId`: an inventory record by id or name, up to :data:`MAX_ID` characters.
- :data:`ShortText`, :data:`LongText`: settings such as user names, URLs and paths: no
  control characters, a maximum length; :data:`PemText` allows line breaks.

Refusals say which rule failed and show at most :data:`SHOWN` characters of the value. Pure.
"""

import re
from typing import Annotated, Any

from pydantic import AfterValidator, WithJsonSchema

from ferry_shared.dns1123 import (
    LABEL_PATTERN,
    MAX_LABEL,
    MAX_SUBDOMAIN,
    SUBDOMAIN_PATTERN,
    is_dns1123_label,
    is_dns1123_subdomain,
)

MAX_REF = 255
"""Longest source name or id accepted (vSphere's own names stop at 80)."""
MAX_ID = 1024
"""Longest inventory record id accepted."""
MAX_LONG = 4096
"""Longest URL or path accepted."""
MAX_PEM = 65536
"""Longest CA bundle accepted."""
SHOWN = 40
"""How many characters of a refused value an answer repeats."""

_CONTROL = "\\x00-\\x1f\\x7f"
_NO_CONTROL = re.compile(f"[^{_CONTROL}]*")
_NO_CONTROL_BUT_LINES = re.compile("[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]*")


def shown(value: str) -> str:
    """``value`` as an answer may repeat it: quoted, escaped, cut to :data:`SHOWN` characters."""
    if len(value) <= SHOWN:
        return repr(value)
    return f"{value[:SHOWN]!r}… ({len(value)} characters)"


def _label(value: str) -> str:
    if not is_dns1123_label(value):
        raise ValueError(
            f"{shown(value)} is not a DNS-1123 label: lower-case letters, digits and '-', "
            f"starting and ending with a letter or digit, at most {MAX_LABEL} characters"
        )
    return value


def _subdomain(value: str) -> str:
    if not is_dns1123_subdomain(value):
        raise ValueError(
            f"{shown(value)} is not a DNS-1123 subdomain: DNS-1123 labels joined by '.', "
            f"at most {MAX_SUBDOMAIN} characters"
        )
    return value


def _optional_label(value: str) -> str:
    return value and _label(value)


def _checked_text(pattern: re.Pattern[str], max_length: int, min_length: int, what: str) -> Any:
    def check(value: str) -> str:
        if not min_length <= len(value) <= max_length:
            raise ValueError(f"{shown(value)} must be {min_length} to {max_length} characters long")
        if pattern.fullmatch(value) is None:
            raise ValueError(f"{shown(value)} must not contain {what}")
        return value

    return AfterValidator(check)


def _schema(pattern: str, max_length: int, min_length: int = 0) -> WithJsonSchema:
    schema: dict[str, Any] = {"type": "string", "pattern": pattern, "maxLength": max_length}
    if min_length:
        schema["minLength"] = min_length
    return WithJsonSchema(schema)


Dns1123Label = Annotated[str, AfterValidator(_label), _schema(f"^{LABEL_PATTERN}$", MAX_LABEL, 1)]
OptionalDns1123Label = Annotated[str, AfterValidator(_optional_label), _schema(f"^({LABEL_PATTERN})?$", MAX_LABEL)]
Dns1123Subdomain = Annotated[str, AfterValidator(_subdomain), _schema(f"^{SUBDOMAIN_PATTERN}$", MAX_SUBDOMAIN, 1)]
SourceRef = Annotated[
    str,
    _checked_text(_NO_CONTROL, MAX_REF, 1, "control characters"),
    _schema(f"^[^{_CONTROL}]+$", MAX_REF, 1),
]

ObjectId = Annotated[
    str,
    _checked_text(_NO_CONTROL, MAX_ID, 1, "control characters"),
    _schema(f"^[^{_CONTROL}]+$", MAX_ID, 1),
]
"""An inventory record's id or name (``namespace/name`` for namespaced target objects)."""

ShortText = Annotated[
    str, _checked_text(_NO_CONTROL, MAX_REF, 0, "control characters"), _schema(f"^[^{_CONTROL}]*$", MAX_REF)
]
"""A user name, a kubeconfig context, a thumbprint…: at most 255 characters, no control characters."""
LongText = Annotated[
    str, _checked_text(_NO_CONTROL, MAX_LONG, 0, "control characters"), _schema(f"^[^{_CONTROL}]*$", MAX_LONG)
]
"""A URL or a path: at most 4,096 characters, no control characters."""
PemText = Annotated[
    str,
    _checked_text(_NO_CONTROL_BUT_LINES, MAX_PEM, 0, "control characters other than line breaks and tabs"),
    _schema("^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]*$", MAX_PEM),
]
"""PEM certificates: at most 64 KiB, line breaks allowed."""


def _matching(regex: str, max_length: int, rule: str) -> tuple[AfterValidator, WithJsonSchema]:
    """A check that ``regex`` matches the whole value (or the value is empty), and its schema."""
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if value and (len(value) > max_length or compiled.fullmatch(value) is None):
            raise ValueError(f"{shown(value)} is not {rule}")
        return value

    return AfterValidator(check), _schema(f"^({regex})?$", max_length)


_URL = _matching(f"[^{_CONTROL} ]+", MAX_LONG, f"a URL or host without spaces, at most {MAX_LONG} characters")
Url = Annotated[str, _URL[0], _URL[1]]
"""``https://host/sdk`` or just a host, or empty."""
_THUMBPRINT = _matching(
    "((sha256|SHA256)=?)?([: ]*[0-9A-Fa-f]){64}[: ]*", MAX_REF, "a SHA-256 thumbprint (64 hex digits, AB:CD:…)"
)
Thumbprint = Annotated[str, _THUMBPRINT[0], _THUMBPRINT[1]]
"""A certificate's SHA-256 thumbprint, hex with optional ``:`` or spaces between, or empty."""
_NAD = _matching(
    f"{LABEL_PATTERN}/{SUBDOMAIN_PATTERN}",
    MAX_LABEL + 1 + MAX_SUBDOMAIN,
    "'namespace/name' of a NetworkAttachmentDefinition (DNS-1123 names)",
)
NadRef = Annotated[str, _NAD[0], _NAD[1]]
"""A NetworkAttachmentDefinition as ``namespace/name``, or empty."""
