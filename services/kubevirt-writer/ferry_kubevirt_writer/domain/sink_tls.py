"""The TLS identity of a VM's disk-sink pod: the name its certificate is for, and the
Secret that carries the certificate into the pod.

The writer issues each sink a server certificate from Ferry's NBD CA before the pod
exists, so the certificate cannot name the pod's IP (known only once the pod runs). It
names a fixed per-VM DNS name instead, :func:`sink_server_name`, under ``.invalid`` (a
name that never resolves, RFC 6761): it is only ever compared, never looked up. The
transfer connects to the pod's IP and verifies the certificate for that name, which
travels in the sink's location; so a worker reaches the sink of this VM in this namespace
and no other, even when a pod IP is reused. The Secret holds the files qemu-nbd's
``tls-creds-x509`` object reads from its directory; the pod mounts it read-only. Pure:
called by :mod:`.sink_pod` (the mount and qemu-nbd's arguments) and by the Kubernetes
adapter (the Secret).
"""

import base64
from typing import Any

from ferry_kubevirt_writer.domain.sink_names import sink_labels, sink_pod_name
from ferry_shared import labels
from ferry_shared.target_vm import TargetVm

TLS_DIR = "/etc/ferry/nbd-tls"
"""Where the sink's containers see the Secret's files."""
CA_CERT, SERVER_CERT, SERVER_KEY = "ca-cert.pem", "server-cert.pem", "server-key.pem"
"""The file names qemu-nbd's ``tls-creds-x509,dir=…`` expects (``endpoint=server``)."""
TLS_VOLUME = "nbd-tls"
SECRET_MODE = 0o440
"""Readable by the sink's user through the pod's fsGroup, by nobody else in the pod."""
_NAME_SUFFIX = ".nbd.ferry.invalid"


def sink_server_name(vm: TargetVm) -> str:
    """``<sink pod>.<namespace>.nbd.ferry.invalid``: the name the sink's certificate is for."""
    return f"{sink_pod_name(vm.name)}.{vm.namespace}{_NAME_SUFFIX}"


def sink_secret_name(vm: TargetVm) -> str:
    """``<sink pod>-tls`` (a Secret name may be 253 characters; a pod name is at most 63)."""
    return f"{sink_pod_name(vm.name)}-tls"


def sink_secret(migration: str, vm: TargetVm, *, ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> dict[str, Any]:
    """The ``v1`` Secret with the sink's certificate, key and the CA that signs its clients."""
    files = {CA_CERT: ca_pem, SERVER_CERT: cert_pem, SERVER_KEY: key_pem}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": sink_secret_name(vm),
            "namespace": vm.namespace,
            "labels": sink_labels(migration, vm),
            "annotations": {labels.MIGRATION: migration, labels.SOURCE_VM_ID: vm.source_vm_id},
        },
        "data": {name: base64.b64encode(content).decode() for name, content in files.items()},
    }


def tls_volume(vm: TargetVm) -> dict[str, Any]:
    return {"name": TLS_VOLUME, "secret": {"secretName": sink_secret_name(vm), "defaultMode": SECRET_MODE}}


def tls_mount() -> dict[str, Any]:
    return {"name": TLS_VOLUME, "mountPath": TLS_DIR, "readOnly": True}


def qemu_nbd_tls_arguments() -> list[str]:
    """qemu-nbd's arguments for TLS with a client certificate required (``verify-peer=on``)."""
    return ["--object", f"tls-creds-x509,id=tls0,dir={TLS_DIR},endpoint=server,verify-peer=on", "--tls-creds=tls0"]
