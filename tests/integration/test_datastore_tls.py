"""DatastoreReader's TLS against a tiny local HTTPS server that records every byte a client sends.

A wrong pinned thumbprint must end the connection after the handshake, before any request
byte (so the session cookie) is written; the right one reads. Insecure mode reads without a
warning per request.
"""

import contextlib
import socket
import ssl
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ferry_shared.pki import Authority
from ferry_shared.vsphere.trust import certificate_thumbprint
from ferry_transfer.adapters.datastore import DatastoreReader
from ferry_transfer.domain.errors import SourceReadError

COOKIE = "vmware_soap_session=secret-session-value"
CONTENT = bytes(range(256)) * 64
WRONG_PIN = ":".join(["AB"] * 32)


@dataclass
class RecordingServer:
    """Accepts TLS connections; answers each ranged GET with 206; keeps what each connection sent."""

    listener: socket.socket
    context: ssl.SSLContext
    thumbprint: str
    received: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.listener.getsockname()[1]}/folder/vm/vm-flat.vmdk?dcPath=DC0&dsName=ds"

    def serve(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return  # closed: the test is over
            threading.Thread(target=self._connection, args=(raw,), daemon=True).start()

    def _connection(self, raw: socket.socket) -> None:
        sent = bytearray()
        try:
            raw.settimeout(5)
            with self.context.wrap_socket(raw, server_side=True) as tls:
                while chunk := tls.recv(65536):
                    sent += chunk
                    if b"\r\n\r\n" in sent:
                        self._answer(tls, bytes(sent))
        except (OSError, ssl.SSLError):
            pass  # a client that refused the certificate ends the handshake or the connection
        finally:
            with self.lock:
                self.received.append(bytes(sent))

    def _answer(self, tls: ssl.SSLSocket, request: bytes) -> None:
        head = request.split(b"\r\n\r\n", 1)[0].decode()
        wanted = next(line for line in head.split("\r\n") if line.lower().startswith("range:"))
        first, last = (int(n) for n in wanted.split("=", 1)[1].split("-"))
        body = CONTENT[first : last + 1]
        tls.sendall(
            f"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {first}-{last}/{len(CONTENT)}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )

    def connections(self) -> list[bytes]:
        with self.lock:
            return list(self.received)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RecordingServer]:
    authority = Authority.create("test datastore CA")
    issued = authority.issue("datastore", server_names=["127.0.0.1"])
    (tmp_path / "cert.pem").write_bytes(issued.cert_pem)
    (tmp_path / "key.pem").write_bytes(issued.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    der = ssl.PEM_cert_to_DER_cert(issued.cert_pem.decode())
    listener = socket.create_server(("127.0.0.1", 0))
    recording = RecordingServer(listener, context, certificate_thumbprint(der))
    thread = threading.Thread(target=recording.serve, daemon=True)
    thread.start()
    try:
        yield recording
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accept (close alone would not)
        listener.close()
        thread.join(timeout=5)


def unverified() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def test_a_wrong_pinned_thumbprint_sends_no_request_byte_so_no_cookie(server: RecordingServer) -> None:
    async with DatastoreReader(
        server.url, session_cookie=COOKIE, ssl_context=unverified(), pinned_thumbprint=WRONG_PIN
    ) as reader:
        with pytest.raises(SourceReadError) as caught:
            await reader.read(0, 4096)
    assert caught.value.code == "thumbprint_mismatch" and not caught.value.retryable
    assert server.thumbprint in caught.value.message
    connections = server.connections()
    assert connections, "the reader never reached the server"
    assert connections == [b""] * len(connections), "a request was sent to a server with the wrong certificate"


async def test_the_right_pinned_thumbprint_reads_and_sends_the_cookie(server: RecordingServer) -> None:
    async with DatastoreReader(
        server.url, session_cookie=COOKIE, ssl_context=unverified(), pinned_thumbprint=server.thumbprint
    ) as reader:
        assert await reader.read(100, 200) == CONTENT[100:300]
    assert any(COOKIE.encode() in sent for sent in server.connections())  # the recorder does see requests


async def test_insecure_mode_reads_without_a_warning_per_request(server: RecordingServer) -> None:
    with warnings.catch_warnings(record=True) as caught:
        async with DatastoreReader(server.url, session_cookie=COOKIE, insecure=True) as reader:
            for offset in (0, 4096, 8192):
                assert await reader.read(offset, 100) == CONTENT[offset : offset + 100]
    assert [str(warning.message) for warning in caught] == []
