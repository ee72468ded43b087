"""Real receivers for notifications: an HTTP webhook endpoint and an SMTP server (aiosmtpd), on 127.0.0.1
for component tests, or on the stack's bridge address (`stack.network.host_ip`), where pods reach them."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import threading
import warnings
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.infra.processes import free_port, wait_until

# AUTH over plain SMTP is on purpose (the tests have no certificates): aiosmtpd says so on every
# connection, in a warning and a log line.
warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
warnings.filterwarnings("ignore", message="Session.login_data is deprecated")
logging.getLogger("mail.log").setLevel(logging.ERROR)


@dataclass
class Hook:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class WebhookReceiver:
    """Records every POST; answers with the next status of `statuses` (then 200), or `fixed` for a path."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.received: list[Hook] = []
        self.statuses: list[int] = []
        self.fixed: dict[str, int] = {}  # path -> status it always answers
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with receiver.lock:
                    receiver.received.append(Hook(self.path, dict(self.headers.items()), body))
                    status = receiver.fixed.get(self.path) or (
                        receiver.statuses.pop(0) if receiver.statuses else 200
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, name="webhook", daemon=True).start()

    def url(self, path: str = "/hook") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def hooks(self, path: str | None = None) -> list[Hook]:
        with self.lock:
            return [h for h in self.received if path is None or h.path == path]

    def wait_for(self, path: str, count: int = 1, timeout: float = 60) -> list[Hook]:
        wait_until(lambda: len(self.hooks(path)) >= count, timeout, f"{count} POST(s) to {path}")
        return self.hooks(path)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: EmailMessage
    login: str | None


@dataclass
class _Inbox:
    mails: list[Mail] = field(default_factory=list)
    logins: dict[int, str] = field(default_factory=dict)  # session id -> login

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        self.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), parsed, login))
        return "250 OK"


class SmtpServer:
    """aiosmtpd on `host` requiring AUTH (over plain SMTP: there is no TLS in the tests)."""

    def __init__(self, username: str, password: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.inbox = _Inbox()
        self.username, self.password = username, password

        def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            good = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == (
                username, password)  # fmt: skip
            return AuthResult(success=good, handled=False, auth_data=data if good else None)

        port = port or free_port(host)  # aiosmtpd connects to its own port once started: it must be known
        self.controller = Controller(self.inbox, hostname=host, port=port, authenticator=authenticate,
                                     auth_required=True, auth_require_tls=False)  # fmt: skip
        self.controller.start()
        self.port = self.controller.port

    @property
    def mails(self) -> list[Mail]:
        return list(self.inbox.mails)

    def wait_for(self, count: int = 1, timeout: float = 60) -> list[Mail]:
        wait_until(lambda: len(self.inbox.mails) >= count, timeout, f"{count} email(s)")
        return self.mails

    def stop(self) -> None:
        self.controller.stop()
