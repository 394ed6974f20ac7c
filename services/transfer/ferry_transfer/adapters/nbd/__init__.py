"""NBD client adapter: writes and reads target volumes through any NBD server.

``NbdClient`` is the entry point; see :mod:`.client`. Errors are in :mod:`.errors`.
"""

from .client import NbdClient
from .errors import NbdConnectionError, NbdError, NbdHandshakeError, NbdProtocolError
from .protocol import BlockSizes, TransmissionFlag
from .tls import NbdTls, NbdTlsError, client_context, directory_context

__all__ = [
    "BlockSizes",
    "NbdClient",
    "NbdConnectionError",
    "NbdError",
    "NbdHandshakeError",
    "NbdProtocolError",
    "NbdTls",
    "NbdTlsError",
    "TransmissionFlag",
    "client_context",
    "directory_context",
]
