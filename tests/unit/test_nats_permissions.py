"""Each service's NATS identity may publish every message its code constructs, and consume its commands."""

import ast
from pathlib import Path

import pytest

from ferry_shared import subjects
from ferry_shared.bus.permissions import SERVICE_BUS, service_permissions
from ferry_shared.messages import Message

REPO = Path(__file__).resolve().parents[2]
PACKAGES = {
    subjects.INVENTORY: "services/inventory/ferry_inventory",
    subjects.PLANNER: "services/planner/ferry_planner",
    subjects.TRANSFER: "services/transfer/ferry_transfer",
    subjects.KUBEVIRT_WRITER: "services/kubevirt-writer/ferry_kubevirt_writer",
}


def _message_classes() -> dict[str, type[Message]]:
    found: dict[str, type[Message]] = {}
    pending = list(Message.__subclasses__())
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        if isinstance(getattr(cls, "subject", None), str):
            found[cls.__name__] = cls
    return found


def _constructed(service: str) -> set[type[Message]]:

    classes = _message_classes()
    made = set()
    for source in (REPO / PACKAGES[service]).rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in classes:
                made.add(classes[node.func.id])
    return made


@pytest.mark.parametrize("service", subjects.SERVICES)
def test_a_service_may_publish_every_message_it_constructs(service: str) -> None:
    made = _constructed(service)
    assert made, f"no message constructed in {PACKAGES[service]}?"
    assert {cls.subject for cls in made} <= set(service_permissions(service).publish)


@pytest.mark.parametrize("service", subjects.SERVICES)
def test_a_service_publishes_nothing_it_does_not_construct(service: str) -> None:
    listed = {cls for cls in SERVICE_BUS[service].publishes if cls.__name__ != "MessageFailed"}
    assert listed <= _constructed(service)


def test_only_the_planner_commands_the_writer() -> None:
    writer_commands = subjects.commands_of(subjects.KUBEVIRT_WRITER).removesuffix(">")
    for service in subjects.SERVICES:
        sends = [s for s in service_permissions(service).publish if s.startswith(writer_commands)]
        assert bool(sends) == (service == subjects.PLANNER), service
    assert subjects.commands_of(subjects.KUBEVIRT_WRITER) in service_permissions(subjects.TRANSFER).publish_deny


def test_each_service_creates_its_durable_on_its_own_commands_only() -> None:
    for service in (subjects.INVENTORY, subjects.TRANSFER, subjects.KUBEVIRT_WRITER):
        creates = [s for s in service_permissions(service).publish if ".CONSUMER.CREATE.FERRY_COMMANDS" in s]
        assert creates == [
            f"$JS.API.CONSUMER.CREATE.FERRY_COMMANDS.{subjects.durable_name(service)}.{subjects.commands_of(service)}"
        ]
