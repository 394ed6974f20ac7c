"""Structured reply chunks: decode one chunk, and reassemble a read from its chunks.

Pure functions used by the reader task in :mod:`.connection`. Anything the protocol does
not allow becomes an :class:`.errors.NbdProtocolError`, after which the connection hangs up.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from .errors import NbdProtocolError
from .protocol import (
    ERROR_PREFIX,
    MAX_STRING,
    OFFSET_HOLE,
    OFFSET_PREFIX,
    REPLY_FLAG_DONE,
    REPLY_TYPE_ERROR_BIT,
    Command,
    ReplyType,
)


@dataclass(frozen=True)
class StructuredChunk:
    """One decoded chunk: a data or hole range of a read, an error, or nothing."""

    done: bool
    offset: int = 0
    length: int = 0
    data: memoryview | None = None  # None with a length: a hole, reads as zeroes
    error: tuple[int, str] | None = None  # (NBD errno, message)


def unexpected_reply(peer: str, what: str) -> NbdProtocolError:
    return NbdProtocolError(f"{peer} violated the NBD protocol: {what}")


def parse_chunk(command: Command, flags: int, reply_type: int, payload: bytes, peer: str) -> StructuredChunk:
    """Decode the payload of one structured reply chunk for a request of ``command``."""
    done = bool(flags & REPLY_FLAG_DONE)
    if reply_type == ReplyType.NONE:
        if payload or not done:
            raise unexpected_reply(peer, "an NBD_REPLY_TYPE_NONE chunk with a payload or without the done flag")
        return StructuredChunk(done)
    if reply_type & REPLY_TYPE_ERROR_BIT:  # ERROR, ERROR_OFFSET and error types we do not know
        return StructuredChunk(done, error=_parse_error(reply_type, payload, peer))
    if command != Command.READ:
        raise unexpected_reply(peer, f"a chunk of type {reply_type} in reply to {command.name}")
    if reply_type == ReplyType.OFFSET_DATA:
        if len(payload) <= OFFSET_PREFIX.size:
            raise unexpected_reply(peer, "an NBD_REPLY_TYPE_OFFSET_DATA chunk without data")
        (offset,) = OFFSET_PREFIX.unpack_from(payload)
        data = memoryview(payload)[OFFSET_PREFIX.size :]
        return StructuredChunk(done, offset, len(data), data)
    if reply_type == ReplyType.OFFSET_HOLE:
        if len(payload) != OFFSET_HOLE.size:
            raise unexpected_reply(peer, f"an NBD_REPLY_TYPE_OFFSET_HOLE chunk of {len(payload)} bytes")
        offset, hole = OFFSET_HOLE.unpack(payload)
        if hole == 0:
            raise unexpected_reply(peer, "an empty hole")
        return StructuredChunk(done, offset, hole)
    raise unexpected_reply(peer, f"structured reply type {reply_type}, which we did not negotiate")


def _parse_error(reply_type: int, payload: bytes, peer: str) -> tuple[int, str]:
    if len(payload) < ERROR_PREFIX.size:
        raise unexpected_reply(peer, f"an error chunk of {len(payload)} bytes")
    code, message_length = ERROR_PREFIX.unpack_from(payload)
    trailer = OFFSET_PREFIX.size if reply_type == ReplyType.ERROR_OFFSET else 0
    if message_length > min(MAX_STRING, len(payload) - ERROR_PREFIX.size - trailer) or code == 0:
        raise unexpected_reply(peer, f"an error chunk with error {code} and a {message_length}-byte message")
    start = ERROR_PREFIX.size
    message = payload[start : start + message_length].decode(errors="replace")
    if reply_type == ReplyType.ERROR_OFFSET:
        (offset,) = OFFSET_PREFIX.unpack_from(payload, start + message_length)
        message = f"{message} (at offset {offset})" if message else f"at offset {offset}"
    return code, message


def assemble_read(offset: int, length: int, chunks: Sequence[StructuredChunk], peer: str) -> bytes:
    """The bytes of a successful read; the chunks must tile [offset, offset + length) exactly."""
    ordered = sorted(chunks, key=lambda chunk: chunk.offset)
    position = offset
    for chunk in ordered:
        if chunk.offset != position:
            raise unexpected_reply(peer, f"read chunks leave a gap or overlap at offset {position}")
        position += chunk.length
    if position != offset + length:
        raise unexpected_reply(peer, f"read chunks cover {position - offset} of {length} bytes")
    if len(ordered) == 1 and ordered[0].data is not None:
        return bytes(ordered[0].data)
    buffer = bytearray(length)  # holes stay zero
    for chunk in ordered:
        if chunk.data is not None:
            start = chunk.offset - offset
            buffer[start : start + chunk.length] = chunk.data
    return bytes(buffer)
