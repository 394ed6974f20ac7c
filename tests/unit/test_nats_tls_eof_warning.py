"""asyncio's warning at the end of every TLS connection nats-py upgraded is dropped; nothing else is."""

import logging

import pytest

from ferry_shared.bus.connection import UPGRADED_EOF_WARNING, quiet_upgraded_tls_eof


def test_only_the_upgraded_eof_warning_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    quiet_upgraded_tls_eof()
    quiet_upgraded_tls_eof()
    asyncio_log = logging.getLogger("asyncio")
    assert asyncio_log.filters.count(asyncio_log.filters[-1]) == 1
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        asyncio_log.warning(UPGRADED_EOF_WARNING)
        asyncio_log.warning("Task was destroyed but it is pending!")
    assert [record.getMessage() for record in caplog.records] == ["Task was destroyed but it is pending!"]
