"""What the tests' stand-ins for a kubelet (:mod:`sink_node`, :mod:`release_node`) share:
projecting a Secret volume as files, and choosing a pod IP on the host's loopback network."""

import base64
import os
import random
import socket
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from kubernetes.client import CoreV1Api

Body = dict[str, Any]


def project_secret(core: CoreV1Api, namespace: str, source: Mapping[str, Any], into: Path, *, group: int = 0) -> Path:
    """The Secret of a pod's ``secret`` volume source as files under ``into``, as a kubelet
    projects them: its ``items`` (or every key), with their paths and modes (``defaultMode``,
    0644 by default), owned by root and the pod's ``fsGroup``."""
    secret = core.read_namespaced_secret(source["secretName"], namespace)
    data = {key: base64.b64decode(value) for key, value in (secret.data or {}).items()}
    default_mode = int(source.get("defaultMode", 0o644))
    items = source.get("items") or [{"key": key, "path": key} for key in data]
    into.mkdir(parents=True, exist_ok=True)
    for item in items:
        if item["key"] not in data:
            raise KeyError(f"Secret {namespace}/{source['secretName']} has no key {item['key']!r}")
        file = into / str(item["path"])
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(data[item["key"]])
        os.chown(file, 0, group)
        file.chmod(int(item.get("mode", default_mode)))
    return into


def bindable(ip: str, port: int) -> bool:
    """Whether a server could listen on ``ip:port`` now."""
    with socket.socket() as probe:
        try:
            probe.bind((ip, port))
        except OSError:
            return False
    return True


def free_loopback_address(ports: Collection[int], taken: Collection[str]) -> str:
    """A loopback address (any of 127/8 works on Linux), away from 127.0.0.x and from
    ``taken``, on which every one of ``ports`` is free."""
    for _ in range(100):
        ip = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
        if ip not in taken and all(bindable(ip, port) for port in ports):
            return ip
    raise RuntimeError(f"no loopback address with ports {sorted(ports)} free")
