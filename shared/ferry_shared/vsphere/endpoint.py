"""Where a vCenter is: host, port and SOAP path, parsed from a provider's ``url``.

Accepts ``https://vc.example.com/sdk``, ``https://vc.example.com:8443``, ``vc.example.com``
and IP addresses; used by the TLS probe and the session opener.
"""

from dataclasses import dataclass
from urllib.parse import urlsplit

from ferry_shared.vsphere.errors import INVALID_SETTINGS, ProviderError

DEFAULT_PORT = 443
DEFAULT_PATH = "/sdk"


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int = DEFAULT_PORT
    path: str = DEFAULT_PATH

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_endpoint(url: str) -> Endpoint:
    """The endpoint of ``url``; a :class:`ProviderError` when it is not an https URL or host."""
    text = url.strip()
    if not text:
        raise ProviderError(INVALID_SETTINGS, "the provider has no url; set it to vCenter's address")
    if "://" not in text:
        text = f"https://{text}"
    parts = urlsplit(text)
    if parts.scheme != "https":
        raise ProviderError(INVALID_SETTINGS, f"the url {url!r} must use https (vCenter's SDK is served over TLS)")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError as error:
        raise ProviderError(INVALID_SETTINGS, f"the url {url!r} has an invalid port") from error
    if not parts.hostname:
        raise ProviderError(INVALID_SETTINGS, f"the url {url!r} has no host name")
    return Endpoint(host=parts.hostname, port=port, path=parts.path.rstrip("/") or DEFAULT_PATH)
