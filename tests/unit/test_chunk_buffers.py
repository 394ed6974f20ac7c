"""Chunk buffers are reused from range to range, and no more are kept than asked."""

from ferry_transfer.adapters.chunk_buffers import ChunkBuffers


def test_a_returned_buffer_is_lent_again() -> None:
    buffers = ChunkBuffers(keep=4)
    with buffers.lease(1024, 2) as (first, second):
        assert len(first) == len(second) == 1024 and first is not second
    assert buffers.free == 2
    with buffers.lease(1024, 2) as again:
        assert {id(buffer) for buffer in again} == {id(first), id(second)}
        assert buffers.free == 0


def test_buffers_of_another_size_are_not_mixed_up() -> None:
    buffers = ChunkBuffers(keep=4)
    with buffers.lease(1024, 1):
        pass
    with buffers.lease(2048, 1) as (bigger,):
        assert len(bigger) == 2048


def test_at_most_keep_buffers_are_kept() -> None:
    buffers = ChunkBuffers(keep=3)
    with buffers.lease(64, 5):
        pass
    assert buffers.free == 3
    without = ChunkBuffers(keep=0)
    with without.lease(64, 2):
        pass
    assert without.free == 0
