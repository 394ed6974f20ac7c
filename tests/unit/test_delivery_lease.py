"""A delivery's lease: in-progress acks well inside the ack wait while the block runs, none after."""

import asyncio
from typing import cast

from nats.aio.client import Client
from nats.aio.msg import Msg

from ferry_shared.bus.delivery import RENEWALS_PER_ACK_WAIT, Delivery


class Connection:
    """Records what the message publishes (its acks)."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    async def publish(self, subject: str, payload: bytes = b"", **_: object) -> None:
        self.published.append((subject, payload))


async def test_a_lease_renews_every_fifth_of_the_ack_wait_and_stops_with_the_block() -> None:
    connection = Connection()
    msg = Msg(_client=cast(Client, connection), subject="ferry.cmd.transfer.copy_range", reply="$JS.ACK.x")
    delivery = Delivery(msg, attempt=1, ack_wait=0.5)
    async with delivery.lease():
        await asyncio.sleep(0.5 * 0.9)  # most of one ack wait
    renewals = len(connection.published)
    assert RENEWALS_PER_ACK_WAIT - 2 <= renewals <= RENEWALS_PER_ACK_WAIT
    assert {payload for _, payload in connection.published} == {b"+WPI"}
    await asyncio.sleep(0.2)
    assert len(connection.published) == renewals
