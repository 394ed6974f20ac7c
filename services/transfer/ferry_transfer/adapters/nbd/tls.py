"""TLS for the NBD client: ``NBD_OPT_STARTTLS`` during the handshake, and the client's
x509 context (Ferry's NBD CA to verify the server, a client certificate to present).

:func:`.negotiation.negotiate` calls :func:`start_tls` first thing after the greeting when
the caller gave an :class:`NbdTls`; everything after it (structured replies, ``NBD_OPT_GO``,
transmission) runs inside the TLS session, as the NBD protocol's "TLS" section requires of
a client that insists on TLS. The client never falls back to plain text.
"""

import asyncio
import ssl
from dataclasses import dataclass
from pathlib import Path

from .errors import NbdHandshakeError, NbdProtocolError
from .protocol import OPTION_REPLY_HEADER, OPTION_REPLY_MAGIC, Option, OptionReply, pack_option


class NbdTlsError(NbdHandshakeError):
    """TLS could not be set up: the server does not offer it, or a certificate was refused
    (ours by the server, or the server's by us). Not cured by trying again."""


@dataclass(frozen=True)
class NbdTls:
    """Use TLS, verifying the server's certificate for ``server_name`` with ``context``."""

    context: ssl.SSLContext
    server_name: str


def client_context(ca_file: Path, cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A TLS 1.2+ client context that trusts only ``ca_file`` and presents ``cert_file``."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert_file), str(key_file))
    return context


CA_FILE, CERT_FILE, KEY_FILE = "ca-cert.pem", "client-cert.pem", "client-key.pem"


def directory_context(directory: Path) -> ssl.SSLContext:
    """:func:`client_context` from a directory holding ``ca-cert.pem``, ``client-cert.pem`` and
    ``client-key.pem`` (a mounted Secret); a missing file is named in the error."""
    missing = [name for name in (CA_FILE, CERT_FILE, KEY_FILE) if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"the NBD TLS directory {directory} lacks {', '.join(missing)}")
    return client_context(directory / CA_FILE, directory / CERT_FILE, directory / KEY_FILE)


async def start_tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tls: NbdTls, *, peer: str) -> None:
    """Ask for TLS with NBD_OPT_STARTTLS and run the TLS handshake on the same stream."""
    writer.write(pack_option(Option.STARTTLS))
    magic, echoed, reply, length = OPTION_REPLY_HEADER.unpack(await reader.readexactly(OPTION_REPLY_HEADER.size))
    if magic != OPTION_REPLY_MAGIC or echoed != Option.STARTTLS or length > 4096:
        raise NbdProtocolError(f"{peer} sent a malformed reply to NBD_OPT_STARTTLS")
    message = (await reader.readexactly(length)).decode(errors="replace")
    if reply != OptionReply.ACK:
        writer.write(pack_option(Option.ABORT))
        name = OptionReply(reply).name if reply in OptionReply._value2member_map_ else f"reply type {reply:#x}"
        raise NbdTlsError(
            f"{peer} does not offer TLS (NBD_OPT_STARTTLS answered {name}{': ' + message if message else ''})"
        )
    try:
        await writer.start_tls(tls.context, server_hostname=tls.server_name)
    except ssl.SSLError as error:
        raise NbdTlsError(f"TLS with {peer} (as {tls.server_name!r}) failed: {error.reason or error}") from error
