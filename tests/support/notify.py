"""Real receivers for the notification tests: an SMTP server (aiosmtpd) with STARTTLS and
AUTH on a self-signed certificate, and an HTTP receiver (a threaded http.server) that keeps
every request and answers as told."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message as EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SMTP_USER = "blastwall"
SMTP_PASSWORD = "s3cret-pass"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1, signed by its own key: (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Mailbox:
    """What the SMTP server received: each message parsed, with its envelope."""

    messages: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    received: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        with self.received:
            self.messages.append(
                (str(envelope.mail_from), list(envelope.rcpt_tos), message_from_bytes(content))
            )
            number = len(self.messages)
            self.received.notify_all()
        return f"250 OK queued as {number}"

    def wait_for(self, count: int, timeout: float = 30.0) -> list[EmailMessage]:
        with self.received:
            self.received.wait_for(lambda: len(self.messages) >= count, timeout)
        return [m for _, _, m in self.messages]


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == SMTP_USER.encode()
        and auth_data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


@dataclass
class SmtpServer:
    host: str
    port: int
    cert: Path
    mailbox: Mailbox

    def settings(self, **more: Any) -> dict[str, Any]:
        """The settings of an `email` channel to this server (STARTTLS, AUTH)."""
        return {
            "host": self.host,
            "port": self.port,
            "from": "blastwall@example.org",
            "to": "oncall@example.org",
            "username": SMTP_USER,
            "password": SMTP_PASSWORD,
            "ca_file": str(self.cert),
            **more,
        }


def smtp_server(folder: Path) -> Iterator[SmtpServer]:
    """An SMTP server that requires STARTTLS, then AUTH (PLAIN or LOGIN)."""
    cert, key = self_signed(folder)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        server_hostname="localhost",
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        authenticator=_authenticate,
    )
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, cert, mailbox)
    finally:
        controller.stop()


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class Receiver:
    """An HTTP server on 127.0.0.1 that keeps every POST and answers with `answer(request)`
    (a status code; default 200). `hold` makes it keep requests waiting until released."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.answer: Callable[[Request], int] = lambda request: 200
        self.arrived = threading.Condition()
        self.release = threading.Event()
        self.release.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                headers = {k.lower(): v for k, v in self.headers.items()}
                request = Request(self.path, headers, self.rfile.read(length))
                with receiver.arrived:
                    receiver.requests.append(request)
                    receiver.arrived.notify_all()
                receiver.release.wait(60)
                status = receiver.answer(request)
                body = b'{"status":"success","message":"Event processed"}'
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the sender went away (a test killed it) while held
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self.arrived:
            self.requests.clear()
        self.answer = lambda request: 200
        self.release.set()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Request]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)

    def at(self, path: str) -> list[Request]:
        with self.arrived:
            return [r for r in self.requests if r.path == path]


WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def verify_standard_webhook(request: Request, secret: str = WEBHOOK_SECRET) -> bool:
    """Check a request's Standard Webhooks signature, as a receiver does (written from the
    specification, not from Blastwall's signer)."""
    webhook_id = request.headers["webhook-id"]
    timestamp = request.headers["webhook-timestamp"]
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = webhook_id.encode() + b"." + timestamp.encode() + b"." + request.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [s.split(",", 1)[1] for s in request.headers["webhook-signature"].split()]
    return any(hmac.compare_digest(expected, s) for s in offered)
