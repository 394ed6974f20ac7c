"""A consumer process killed with SIGKILL mid-message: another process gets the message."""

import sys
from pathlib import Path

import pytest

from ferry_peers.nats_server import NatsServer
from ferry_peers.processes import ManagedProcess
from ferry_shared.bus.permissions import ADMIN
from ferry_shared.service import Bus
from ferry_testpeers.probe import DoProbeWork
from ferry_testpeers.waiting import wait_for

pytestmark = pytest.mark.nats


def journal_lines(journal: Path) -> list[list[str]]:
    return [line.split() for line in journal.read_text().splitlines()] if journal.exists() else []


def start_probe(nats_server: NatsServer, journal: Path, name: str, tmp_path: Path) -> ManagedProcess:
    argv = [sys.executable, "-m", "ferry_testpeers.probe", nats_server.url, str(journal), "2.0"]
    probe = ManagedProcess(name, argv, tmp_path / f"{name}.log", env=nats_server.security.nats_env(ADMIN))
    probe.wait_until(
        lambda: True if ["ready", str(probe.pid)] in journal_lines(journal) else None,
        timeout=30,
        what="consumer ready",
    )
    return probe


async def test_message_held_by_a_killed_consumer_is_redelivered_to_another(
    bus: Bus, nats_server: NatsServer, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.txt"
    first = start_probe(nats_server, journal, "probe-a", tmp_path)
    await bus.publisher.publish(DoProbeWork(message_id="w-1", work_id="w-1", hold_seconds=3600))
    wait_for(
        lambda: ["started", "w-1", str(first.pid), "1"] in journal_lines(journal),
        timeout=20,
        what="first consumer to start the work",
    )
    first.kill()

    second = start_probe(nats_server, journal, "probe-b", tmp_path)
    try:
        await bus.publisher.publish(DoProbeWork(message_id="w-2", work_id="w-2", hold_seconds=0))
        wait_for(
            lambda: ["started", "w-1", str(second.pid), "2"] in journal_lines(journal),
            timeout=20,
            what="the killed consumer's message to reach the second consumer",
        )
    finally:
        assert second.stop() == 0, second.log_tail()
    done = [line for line in journal_lines(journal) if line[0] == "done"]
    assert ["done", "w-2", str(second.pid), "1"] in done
    assert not any(line[1] == "w-1" and line[2] == str(first.pid) for line in done)
