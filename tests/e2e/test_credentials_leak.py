"""Provider secrets at rest, end to end (``nats`` backend): a vCenter provider with a
distinctive password is added, used (the inventory connects, a VM migrates to a local
target through the transfer) and deleted, with the four services as processes on real
NATS. Then the password, in every encoding a dump could show it in, must be nowhere:
not in any file of the NATS store directory (the JetStream block files keep deleted
messages' bytes), not in a service log, not in an API answer, not in an event.

This holds without JetStream's own store encryption: the credentials bucket only ever
receives AES-GCM ciphertext, which the test checks while the provider exists.
"""

import asyncio
import base64
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nats.js.errors import NoKeysError

from ferry_peers.nats_server import NatsServer
from ferry_shared import subjects
from ferry_shared.bus.connection import connect
from ferry_testpeers.models import migration_model
from ferry_testpeers.plugin import VcsimFactory

from .harness import Stack, running_stack, stored_events

pytestmark = [pytest.mark.e2e, pytest.mark.nats, pytest.mark.vsphere]

VM = "web-01"


def encodings(secret: str) -> dict[str, bytes]:
    """``secret`` as it could appear in a file: raw, hex, UTF-16 and base64 (at each of the
    three alignments it could have inside a longer base64 text)."""
    raw = secret.encode()
    forms = {
        "utf-8": raw,
        "hex": raw.hex().encode(),
        "HEX": raw.hex().upper().encode(),
        "utf-16-le": secret.encode("utf-16-le"),
        "utf-16-be": secret.encode("utf-16-be"),
    }
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw)
        # Drop the characters the preceding bytes and the padding share: the rest is the
        # same whatever surrounds the secret.
        start = (shift * 8 + 5) // 6 + (1 if shift else 0)
        stable = encoded[start : (len(b"\0" * shift + raw) // 3) * 4]
        forms[f"base64+{shift}"] = stable
        forms[f"base64url+{shift}"] = stable.replace(b"+", b"-").replace(b"/", b"_")
    return forms


def leaks(secret: str, places: dict[str, bytes]) -> list[str]:
    return [f"{form} in {where}" for where, data in places.items() for form, text in encodings(secret).items()
            if text in data]  # fmt: skip


@pytest.fixture
def password() -> str:
    return f"Ferry-Leak-Check-{secrets.token_hex(8)}"


@pytest.fixture
def stack(
    nats_server: NatsServer,
    vcsim_factory: VcsimFactory,
    password: str,
    tmp_path: Path,
) -> Iterator[Stack]:
    with running_stack(nats_server, vcsim_factory(model=migration_model(), password=password), tmp_path) as stack:
        yield stack


async def credentials_bucket(server: NatsServer) -> dict[str, bytes]:
    connection = await connect(server.url, name="ferry-test", **server.connect_options())
    try:
        kv = await connection.jetstream().key_value(subjects.CREDENTIALS_BUCKET)
        try:
            keys = await kv.keys()
        except NoKeysError:
            return {}
        return {key: (await kv.get(key)).value or b"" for key in keys}
    finally:
        await connection.close()


def test_a_deleted_providers_password_is_nowhere(stack: Stack, password: str, tmp_path: Path) -> None:
    started = time.monotonic()
    target_dir = tmp_path / "local-target"
    target_dir.mkdir()
    assert stack.add_vcenter("vcenter", password=password, thumbprint=stack.vcsim.thumbprint_sha256).returncode == 0
    stack.ok("provider", "add", "target", "--type", "local", "--path", str(target_dir))
    stack.wait_provider("vcenter", "ready")  # the inventory logged in with the password
    stack.wait_provider("target", "ready")

    stored = asyncio.run(credentials_bucket(stack.nats))
    assert set(stored) == {"vcenter"}
    assert json.loads(stored["vcenter"])["format"] == "ferry.dev/credential/v1"
    assert not leaks(password, {"the credentials bucket": stored["vcenter"]})

    stack.ok("map", "network", "create", "net", "--source", "vcenter", "--target", "target", "--pair", "VM Network=pod")
    stack.ok("map", "storage", "create", "sto", "--source", "vcenter", "--target", "target",
             "--pair", "LocalDS_0=standard")  # fmt: skip
    plan = json.loads(stack.ok("plan", "create", "p1", "--source", "vcenter", "--target", "target",
                               "--network-map", "net", "--storage-map", "sto", "--namespace", "leak-check",
                               "--vm", VM, "--output", "json"))  # fmt: skip
    assert plan["status"]["ready"] is True, plan["status"]
    result = stack.cli("migrate", "p1", "--output", "json", timeout=180)
    assert result.returncode == 0, result.stderr or result.stdout
    migration = stack.get(stack.planner, "/migrations/p1-1")
    assert [vm["phase"] for vm in migration["vms"]] == ["Completed"], migration["vms"]
    assert all(disk["completed"] for disk in migration["vms"][0]["disks"])  # the transfer read the source
    stack.get(stack.planner, "/providers")
    stack.get(stack.inventory, "/providers/vcenter/vms")

    stack.ok("provider", "delete", "vcenter")
    assert asyncio.run(credentials_bucket(stack.nats)) == {}
    stack.get(stack.planner, "/providers")

    store = {f"NATS store file {path}": path.read_bytes() for path in stack.nats.store_dir.rglob("*") if path.is_file()}
    assert any("KV_ferry_credentials" in where for where in store), "the credentials stream has no files"
    logs = {f"log {path.name}": path.read_bytes() for path in (stack.work_dir / "logs").glob("*.log")}
    assert {"log planner.log", "log inventory.log", "log transfer.log"} <= set(logs)
    answers = {"API answers and CLI output": "\n".join(stack.responses).encode()}
    events = {"the events stream": json.dumps(stored_events(stack.nats)).encode()}
    assert leaks(password, {"a control sample": f"x{password}y".encode()}), "the search finds the raw string"
    found = leaks(password, {**store, **logs, **answers, **events})
    assert not found, found
    print(f"\ncredentials leak check took {time.monotonic() - started:.1f} s")
