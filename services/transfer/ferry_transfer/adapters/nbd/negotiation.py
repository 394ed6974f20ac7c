"""The NBD handshake: fixed newstyle option haggling up to the transmission phase.

Called once per connection by :meth:`.client.NbdClient.open` on a freshly opened stream.
Asks for structured replies (if wanted), then ``NBD_OPT_GO`` with an ``NBD_INFO_BLOCK_SIZE``
request, which promises the server that we honour its block sizes. Falls back to
``NBD_OPT_EXPORT_NAME`` only when the server does not know GO or speaks plain (non-fixed)
newstyle. With an :class:`.tls.NbdTls`, ``NBD_OPT_STARTTLS`` comes first and the rest runs
over TLS (:mod:`.tls`); a server that requires TLS from a client without it is refused with
a message saying so. Oldstyle servers are not supported.
"""

import asyncio
import ssl
import struct

from .errors import NbdHandshakeError, NbdProtocolError
from .protocol import (
    CLIENT_FLAGS,
    EXPORT_NAME_REPLY,
    EXPORT_NAME_ZEROES,
    IHAVEOPT,
    INFO_BLOCK_SIZE,
    INFO_EXPORT,
    INFO_TYPE,
    NBDMAGIC,
    OLDSTYLE_MAGIC,
    OPTION_REPLY_ERROR_BIT,
    OPTION_REPLY_HEADER,
    OPTION_REPLY_MAGIC,
    SERVER_GREETING,
    BlockSizes,
    ClientFlag,
    ExportInfo,
    HandshakeFlag,
    Info,
    Option,
    OptionReply,
    TransmissionFlag,
    pack_go_data,
    pack_option,
)
from .tls import NbdTls, NbdTlsError, start_tls

MAX_OPTION_REPLY = 64 * 1024
"""Longest option reply payload we accept (real ones are a few bytes to 4 KiB)."""


async def negotiate(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    export_name: str,
    structured_replies: bool,
    peer: str,
    tls: NbdTls | None = None,
) -> ExportInfo:
    """Run the handshake; the stream is in the transmission phase when this returns."""
    magic, second_magic, raw_flags = SERVER_GREETING.unpack(await reader.readexactly(SERVER_GREETING.size))
    if magic != NBDMAGIC:
        raise NbdHandshakeError(f"{peer} is not an NBD server (greeting {magic:#x})")
    if second_magic == OLDSTYLE_MAGIC:
        raise NbdHandshakeError(f"{peer} speaks oldstyle NBD, which this client does not support")
    if second_magic != IHAVEOPT:
        raise NbdHandshakeError(f"{peer} sent an unknown handshake magic {second_magic:#x}")
    server_flags = HandshakeFlag(raw_flags)
    no_zeroes = HandshakeFlag.NO_ZEROES in server_flags
    client_flags = ClientFlag(0)
    if HandshakeFlag.FIXED_NEWSTYLE in server_flags:
        client_flags |= ClientFlag.FIXED_NEWSTYLE
    if no_zeroes:
        client_flags |= ClientFlag.NO_ZEROES
    writer.write(CLIENT_FLAGS.pack(client_flags))

    if HandshakeFlag.FIXED_NEWSTYLE not in server_flags:
        if tls is not None:
            raise NbdTlsError(f"{peer} speaks plain newstyle NBD, which has no TLS")
        return await _export_name(reader, writer, export_name, no_zeroes=no_zeroes, structured=False)
    if tls is None:
        return await _options(reader, writer, export_name, structured_replies, no_zeroes, peer)
    await start_tls(reader, writer, tls, peer=peer)
    try:
        return await _options(reader, writer, export_name, structured_replies, no_zeroes, peer)
    except (ssl.SSLError, asyncio.IncompleteReadError) as error:
        # TLS 1.3: the server judges our certificate after the handshake, and hangs up on a bad one.
        why = error.reason if isinstance(error, ssl.SSLError) else "it hung up"
        raise NbdTlsError(
            f"{peer} ended the session right after TLS was set up ({why}): it did not accept this client's "
            "certificate; is it signed by the sink's NBD CA?"
        ) from error


async def _options(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    export_name: str,
    structured_replies: bool,
    no_zeroes: bool,
    peer: str,
) -> ExportInfo:
    structured = structured_replies and await _structured_replies(reader, writer, peer)
    info = await _go(reader, writer, export_name, structured=structured, peer=peer)
    if info is None:  # the server does not know NBD_OPT_GO
        return await _export_name(reader, writer, export_name, no_zeroes=no_zeroes, structured=structured)
    return info


async def _structured_replies(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str) -> bool:
    writer.write(pack_option(Option.STRUCTURED_REPLY))
    reply, payload = await _read_option_reply(reader, Option.STRUCTURED_REPLY, peer)
    if reply == OptionReply.ACK:
        return True
    if reply & OPTION_REPLY_ERROR_BIT:
        return False  # ERR_UNSUP and friends: the server will send simple replies only
    raise NbdProtocolError(f"{peer} answered NBD_OPT_STRUCTURED_REPLY with reply type {reply} ({payload!r})")


async def _go(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, export_name: str, *, structured: bool, peer: str
) -> ExportInfo | None:
    writer.write(pack_option(Option.GO, pack_go_data(export_name, (Info.BLOCK_SIZE,))))
    size: int | None = None
    flags = TransmissionFlag(0)
    block_sizes = BlockSizes()
    while True:
        reply, payload = await _read_option_reply(reader, Option.GO, peer)
        if reply == OptionReply.INFO:
            if len(payload) < INFO_TYPE.size:
                raise NbdProtocolError(f"{peer} sent an NBD_REP_INFO without a type")
            (info_type,) = INFO_TYPE.unpack_from(payload)
            if info_type == Info.EXPORT:
                _, size, raw = _unpack_exact(INFO_EXPORT, payload, peer)
                flags = TransmissionFlag(raw)
            elif info_type == Info.BLOCK_SIZE:
                _, minimum, preferred, maximum = _unpack_exact(INFO_BLOCK_SIZE, payload, peer)
                block_sizes = _checked_block_sizes(minimum, preferred, maximum, peer)
            continue  # NAME, DESCRIPTION and future info types are not needed
        if reply == OptionReply.ACK:
            if size is None:
                raise NbdProtocolError(f"{peer} acknowledged NBD_OPT_GO without sending NBD_INFO_EXPORT")
            return ExportInfo(export_name, size, flags, block_sizes, structured)
        if reply == OptionReply.ERR_UNSUP:
            return None
        writer.write(pack_option(Option.ABORT))  # soft disconnect, as the spec asks of a client giving up
        refused = NbdTlsError if reply == OptionReply.ERR_TLS_REQD else NbdHandshakeError
        raise refused(_refusal(reply, payload, export_name, peer))


async def _export_name(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, export_name: str, *, no_zeroes: bool, structured: bool
) -> ExportInfo:
    writer.write(pack_option(Option.EXPORT_NAME, export_name.encode()))
    try:
        size, raw = EXPORT_NAME_REPLY.unpack(await reader.readexactly(EXPORT_NAME_REPLY.size))
        if not no_zeroes:
            await reader.readexactly(EXPORT_NAME_ZEROES)
    except asyncio.IncompleteReadError as e:
        raise NbdHandshakeError(
            f"the server closed the connection after NBD_OPT_EXPORT_NAME {export_name!r} (no such export?)"
        ) from e
    return ExportInfo(export_name, size, TransmissionFlag(raw), BlockSizes(), structured)


async def _read_option_reply(reader: asyncio.StreamReader, option: Option, peer: str) -> tuple[int, bytes]:
    magic, echoed, reply, length = OPTION_REPLY_HEADER.unpack(await reader.readexactly(OPTION_REPLY_HEADER.size))
    if magic != OPTION_REPLY_MAGIC:
        raise NbdProtocolError(f"{peer} sent a bad option reply magic {magic:#x}")
    if echoed != option:
        raise NbdProtocolError(f"{peer} replied to option {echoed} while we asked {option.name}")
    if length > MAX_OPTION_REPLY:
        raise NbdProtocolError(f"{peer} sent a {length}-byte reply to {option.name}")
    return reply, await reader.readexactly(length)


def _unpack_exact(layout: struct.Struct, payload: bytes, peer: str) -> tuple[int, ...]:
    if len(payload) != layout.size:
        raise NbdProtocolError(f"{peer} sent a {len(payload)}-byte info reply where {layout.size} were due")
    values: tuple[int, ...] = layout.unpack(payload)
    return values


def _checked_block_sizes(minimum: int, preferred: int, maximum: int, peer: str) -> BlockSizes:
    def power_of_two(value: int) -> bool:
        return value > 0 and value & (value - 1) == 0

    if not (power_of_two(minimum) and minimum <= 64 * 1024 and power_of_two(preferred) and preferred >= minimum):
        raise NbdProtocolError(f"{peer} sent impossible block sizes {minimum}/{preferred}/{maximum}")
    if maximum < minimum or (maximum != 0xFFFF_FFFF and maximum % minimum):
        raise NbdProtocolError(f"{peer} sent a maximum block size {maximum} that does not fit minimum {minimum}")
    return BlockSizes(minimum, preferred, maximum)


def _refusal(reply: int, payload: bytes, export_name: str, peer: str) -> str:
    message = payload.decode(errors="replace")
    try:
        name = OptionReply(reply).name
    except ValueError:
        name = f"reply type {reply:#x}"
    if reply == OptionReply.ERR_UNKNOWN:
        return f"{peer} has no export named {export_name!r} ({name}: {message})"
    if reply == OptionReply.ERR_TLS_REQD:
        return f"{peer} requires TLS, and this client was not given TLS credentials ({name})"
    return f"{peer} refused export {export_name!r}: {name}" + (f": {message}" if message else "")
