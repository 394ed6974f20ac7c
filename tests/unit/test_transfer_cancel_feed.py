"""Where a transfer worker's cancellation feed starts its next consumer: at a time first, then
right after the last stream sequence it read (so a NATS restart loses no cancel and replays none)."""

from datetime import UTC, datetime

from nats.js.api import AckPolicy, DeliverPolicy

from ferry_shared.migrations import VmCancelRequested
from ferry_transfer.adapters.cancel_feed import FeedPosition

SINCE = datetime(2024, 5, 1, tzinfo=UTC)


def test_the_first_consumer_replays_from_a_time_and_later_ones_from_after_the_last_event_read() -> None:
    position = FeedPosition(SINCE)
    first = position.consumer_config(inactive=60)
    assert (first.deliver_policy, first.opt_start_time, first.opt_start_seq) == (
        DeliverPolicy.BY_START_TIME,
        SINCE,
        None,
    )
    assert first.filter_subject == VmCancelRequested.subject and first.ack_policy == AckPolicy.NONE
    assert first.inactive_threshold == 60

    position.saw(41)
    position.saw(17)  # never backwards
    again = position.consumer_config(inactive=60)
    assert (again.deliver_policy, again.opt_start_seq, again.opt_start_time) == (
        DeliverPolicy.BY_START_SEQUENCE,
        42,
        None,
    )


def test_a_stream_recreated_under_the_worker_is_replayed_from_the_time_again() -> None:
    position = FeedPosition(SINCE)
    position.saw(41)
    assert not position.stream_reset(41)
    assert position.stream_reset(3)
    assert position.consumer_config(inactive=60).deliver_policy == DeliverPolicy.BY_START_TIME
