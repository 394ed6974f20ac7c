"""NBD wire format: magic numbers, codes, flags and the fixed-size headers.

Pure data and struct packing, no I/O; :mod:`.negotiation` and :mod:`.connection` read
and write these. Values follow the NBD protocol document (NetworkBlockDevice/nbd,
``doc/proto.md``). Everything on the wire is big-endian.
"""

import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Final

NBDMAGIC: Final = 0x4E42444D41474943  # "NBDMAGIC"
IHAVEOPT: Final = 0x49484156454F5054  # "IHAVEOPT"
OLDSTYLE_MAGIC: Final = 0x00420281861253
OPTION_REPLY_MAGIC: Final = 0x3E889045565A9
REQUEST_MAGIC: Final = 0x25609513
SIMPLE_REPLY_MAGIC: Final = 0x67446698
STRUCTURED_REPLY_MAGIC: Final = 0x668E33EF

MAX_STRING: Final = 4096
"""Longest export name or message the protocol allows."""
DEFAULT_MAX_PAYLOAD: Final = 32 * 1024 * 1024
"""Maximum read/write payload when the server states none (the spec's interoperable limit)."""


class HandshakeFlag(IntFlag):
    FIXED_NEWSTYLE = 1 << 0
    NO_ZEROES = 1 << 1


class ClientFlag(IntFlag):
    FIXED_NEWSTYLE = 1 << 0
    NO_ZEROES = 1 << 1


class TransmissionFlag(IntFlag):
    HAS_FLAGS = 1 << 0
    READ_ONLY = 1 << 1
    SEND_FLUSH = 1 << 2
    SEND_FUA = 1 << 3
    ROTATIONAL = 1 << 4
    SEND_TRIM = 1 << 5
    SEND_WRITE_ZEROES = 1 << 6
    SEND_DF = 1 << 7
    CAN_MULTI_CONN = 1 << 8
    SEND_RESIZE = 1 << 9
    SEND_CACHE = 1 << 10
    SEND_FAST_ZERO = 1 << 11


class Option(IntEnum):
    EXPORT_NAME = 1
    ABORT = 2
    LIST = 3
    STARTTLS = 5
    INFO = 6
    GO = 7
    STRUCTURED_REPLY = 8


class OptionReply(IntEnum):
    ACK = 1
    SERVER = 2
    INFO = 3
    META_CONTEXT = 4
    ERR_UNSUP = 2**31 + 1
    ERR_POLICY = 2**31 + 2
    ERR_INVALID = 2**31 + 3
    ERR_PLATFORM = 2**31 + 4
    ERR_TLS_REQD = 2**31 + 5
    ERR_UNKNOWN = 2**31 + 6
    ERR_SHUTDOWN = 2**31 + 7
    ERR_BLOCK_SIZE_REQD = 2**31 + 8
    ERR_TOO_BIG = 2**31 + 9


OPTION_REPLY_ERROR_BIT: Final = 1 << 31


class Info(IntEnum):
    EXPORT = 0
    NAME = 1
    DESCRIPTION = 2
    BLOCK_SIZE = 3


class Command(IntEnum):
    READ = 0
    WRITE = 1
    DISC = 2
    FLUSH = 3
    TRIM = 4
    CACHE = 5
    WRITE_ZEROES = 6
    BLOCK_STATUS = 7


class CommandFlag(IntFlag):
    NONE = 0
    FUA = 1 << 0
    NO_HOLE = 1 << 1
    DF = 1 << 2
    REQ_ONE = 1 << 3
    FAST_ZERO = 1 << 4


class ReplyType(IntEnum):
    NONE = 0
    OFFSET_DATA = 1
    OFFSET_HOLE = 2
    BLOCK_STATUS = 5
    ERROR = 2**15 + 1
    ERROR_OFFSET = 2**15 + 2


REPLY_FLAG_DONE: Final = 1 << 0
REPLY_TYPE_ERROR_BIT: Final = 1 << 15


class Errno(IntEnum):
    """The error values the protocol defines (Linux numbering, whatever the server's OS)."""

    EPERM = 1
    EIO = 5
    ENOMEM = 12
    EINVAL = 22
    ENOSPC = 28
    EOVERFLOW = 75
    ENOTSUP = 95
    ESHUTDOWN = 108


def errno_name(code: int) -> str:
    try:
        return Errno(code).name
    except ValueError:
        return f"E#{code}"


# Handshake and option haggling.
SERVER_GREETING = struct.Struct(">QQH")  # NBDMAGIC, IHAVEOPT, handshake flags
CLIENT_FLAGS = struct.Struct(">I")
OPTION_HEADER = struct.Struct(">QII")  # IHAVEOPT, option, length
OPTION_REPLY_HEADER = struct.Struct(">QIII")  # magic, option, reply type, length
EXPORT_NAME_REPLY = struct.Struct(">QH")  # size, transmission flags (+124 zeroes unless NO_ZEROES)
EXPORT_NAME_ZEROES: Final = 124
INFO_TYPE = struct.Struct(">H")
INFO_EXPORT = struct.Struct(">HQH")  # type, size, transmission flags
INFO_BLOCK_SIZE = struct.Struct(">HIII")  # type, minimum, preferred, maximum

# Transmission.
REQUEST = struct.Struct(">IHHQQI")  # magic, command flags, type, cookie, offset, length
REPLY_MAGIC = struct.Struct(">I")
SIMPLE_REPLY_REST = struct.Struct(">IQ")  # error, cookie
STRUCTURED_REPLY_REST = struct.Struct(">HHQI")  # flags, type, cookie, payload length
OFFSET_PREFIX = struct.Struct(">Q")
OFFSET_HOLE = struct.Struct(">QI")
ERROR_PREFIX = struct.Struct(">IH")  # error, message length


def pack_option(option: Option, data: bytes = b"") -> bytes:
    return OPTION_HEADER.pack(IHAVEOPT, option, len(data)) + data


def pack_go_data(export_name: str, infos: tuple[Info, ...]) -> bytes:
    """Payload of NBD_OPT_GO/NBD_OPT_INFO: name length, name, count of info requests, the requests."""
    name = export_name.encode()
    if len(name) > MAX_STRING:
        raise ValueError(f"export name is {len(name)} bytes; NBD allows at most {MAX_STRING}")
    requested = b"".join(INFO_TYPE.pack(info) for info in infos)
    return struct.pack(">I", len(name)) + name + struct.pack(">H", len(infos)) + requested


def pack_request(command: Command, flags: CommandFlag, cookie: int, offset: int, length: int) -> bytes:
    return REQUEST.pack(REQUEST_MAGIC, flags, command, cookie, offset, length)


@dataclass(frozen=True)
class BlockSizes:
    """The server's block size constraints (spec defaults when it states none)."""

    minimum: int = 1
    preferred: int = 4096
    maximum: int = DEFAULT_MAX_PAYLOAD


@dataclass(frozen=True)
class ExportInfo:
    """What negotiation learnt about the export."""

    name: str
    size: int
    flags: TransmissionFlag
    block_sizes: BlockSizes
    structured_replies: bool
