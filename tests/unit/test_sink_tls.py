"""TLS for disk sinks without a network: a worker without NBD TLS credentials refuses a
sink that requires them, the local bundle makes the NBD CA and the transfer's client
identity once, and a sink's certificate names only that sink."""

import ssl
from pathlib import Path

import pytest
from cryptography import x509

from ferry_kubevirt_writer.adapters.sink_certificates import SinkCertificates
from ferry_kubevirt_writer.domain.sink_tls import sink_server_name
from ferry_peers.security import LocalSecurity
from ferry_shared.migrations import SinkLocation
from ferry_shared.target_vm import TargetDisk, TargetVm
from ferry_transfer.adapters.nbd import directory_context
from ferry_transfer.adapters.sink_factory import SinkFactory, SinkOptions
from ferry_transfer.domain.errors import SinkUnavailable

DISK = TargetDisk(key=1, source_file="a.vmdk", capacity_bytes=1 << 20)
VM = TargetVm(name="web-1", namespace="apps", source_provider="vc", source_vm_id="vm-42", source_vm_name="Web 1",
              plan="p1", memory_mib=1024, disks=(DISK,))  # fmt: skip


async def test_a_worker_without_nbd_tls_credentials_refuses_a_sink_that_requires_tls() -> None:
    sink = SinkLocation(disk_key=1, kind="nbd", size_bytes=1 << 20, host="127.0.0.1", port=1, export="disk",
                        tls_server_name="web-1-disk-sink.apps.nbd.ferry.invalid")  # fmt: skip
    with pytest.raises(SinkUnavailable) as caught:
        async with SinkFactory(SinkOptions()).open(sink):
            pass
    assert caught.value.code == "sink_tls_unconfigured" and not caught.value.retryable
    assert "sink nbds://127.0.0.1:1/disk requires TLS but FERRY_TRANSFER_NBD_TLS_DIR is not set" in str(caught.value)


def test_the_local_bundle_makes_the_nbd_ca_and_client_once_and_gives_each_service_its_part(tmp_path: Path) -> None:
    directory = tmp_path / "security"
    security = LocalSecurity.create(directory)
    files = sorted(p.relative_to(directory).as_posix() for p in directory.glob("nbd-*/*.pem"))
    assert files == ["nbd-ca/ca-cert.pem", "nbd-ca/ca-key.pem", "nbd-transfer/ca-cert.pem",
                     "nbd-transfer/client-cert.pem", "nbd-transfer/client-key.pem"]  # fmt: skip
    assert all((directory / f).stat().st_mode & 0o777 == 0o600 for f in files)
    before = {f: (directory / f).read_bytes() for f in files}
    LocalSecurity.create(directory)
    assert {f: (directory / f).read_bytes() for f in files} == before
    writer, transfer = security.service_env("kubevirt-writer"), security.service_env("transfer")
    assert writer["FERRY_WRITER_NBD_CA_DIR"] == str(security.nbd_ca_dir) and "FERRY_TRANSFER_NBD_TLS_DIR" not in writer
    assert transfer["FERRY_TRANSFER_NBD_TLS_DIR"] == str(security.nbd_client_dir)
    assert "FERRY_WRITER_NBD_CA_DIR" not in transfer
    assert "nbd" not in " ".join(security.service_env("planner")).lower()
    assert isinstance(directory_context(security.nbd_client_dir), ssl.SSLContext)


def test_a_sinks_certificate_is_for_its_own_name_only_and_signed_by_the_nbd_ca(tmp_path: Path) -> None:
    security = LocalSecurity.create(tmp_path / "security")
    issued = SinkCertificates.load(security.nbd_ca_dir).issue(sink_server_name(VM))
    cert = x509.load_pem_x509_certificate(issued.cert_pem)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert names == ["web-1-disk-sink.apps.nbd.ferry.invalid"]
    assert cert.issuer == x509.load_pem_x509_certificate(issued.ca_pem).subject
    assert issued.ca_pem == (security.nbd_ca_dir / "ca-cert.pem").read_bytes()


def test_a_missing_nbd_ca_file_is_named() -> None:
    with pytest.raises(FileNotFoundError, match=r"lacks ca-cert\.pem, ca-key\.pem"):
        SinkCertificates.load(Path("/nonexistent"))
