"""Real servers on loopback for the alert channels: an HTTP server that records every request (Slack,
PagerDuty, the generic webhook, apprise's json://) and answers from a script, and an SMTP server
(aiosmtpd) that records every message. Secrets used across the alert tests live here too."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import select

from mlops.db import session_scope
from mlops.db.models import AlertDelivery
from mlops.settings import Settings

# Every secret of the channel settings; none may appear in any output, log, answer or stored error.
SLACK_TOKEN = "XslackTOKEN9f3b2c"
PD_KEY = "pdROUTINGkey0123456789abcdef0123"
WEBHOOK_TOKEN = "whTOKENa8d7e6"
SMTP_PASSWORD = "smtpPASSw0rd77"
APPRISE_TOKEN = "appriseTOKENc0ffee"
SECRETS = (SLACK_TOKEN, PD_KEY, WEBHOOK_TOKEN, SMTP_PASSWORD, APPRISE_TOKEN)


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpRecorder:
    """Answers each request with the next status of `statuses` (then 200), echoing the path in a refusal's
    body (as servers do: it is how a secret in a URL reaches an error message). A handler waits for `gate`
    (when set) after setting `entered`."""

    port: int = 0
    requests: list[Request] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    gate: threading.Event | None = None
    entered: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, request: Request) -> int:
        with self._lock:
            self.requests.append(request)
            return self.statuses.pop(0) if self.statuses else 200

    def wait_for(self, n: int, timeout: float = 10.0) -> list[Request]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.requests)


@contextmanager
def http_recorder(**kwargs: Any) -> Iterator[HttpRecorder]:
    recorder = HttpRecorder(**kwargs)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(self.path, dict(self.headers), self.rfile.read(length))
            recorder.entered.set()
            if recorder.gate is not None:
                recorder.gate.wait(30)
            status = recorder.answer(request)
            body = b"ok" if status < 300 else f"refused {self.path}".encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    recorder.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        if recorder.gate is not None:
            recorder.gate.set()
        server.shutdown()
        server.server_close()


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    login: str | None


@dataclass
class SmtpRecorder:
    port: int
    messages: list[Mail] = field(default_factory=list)

    def wait_for(self, n: int, timeout: float = 10.0) -> list[Mail]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.messages)


@contextmanager
def smtp_recorder(*, password: str | None = None) -> Iterator[SmtpRecorder]:
    """aiosmtpd on loopback; with `password`, it offers AUTH over the plain connection and accepts only
    that password (any user)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    recorder = SmtpRecorder(port=free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            login = session.auth_data.decode() if isinstance(session.auth_data, bytes) else session.auth_data
            recorder.messages.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, login))
            return "250 OK"

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password.decode() == password
        return AuthResult(success=ok, auth_data=data.login if ok else None)

    options: dict[str, Any] = {}
    if password is not None:
        options = {"authenticator": authenticate, "auth_require_tls": False, "auth_required": True}
    controller = Controller(Handler(), hostname="127.0.0.1", port=recorder.port, **options)
    controller.start()
    try:
        yield recorder
    finally:
        controller.stop()


def deliveries(settings: Settings, alert_id: int) -> dict[str, AlertDelivery]:
    with session_scope(settings.app_db_url) as session:
        rows = session.scalars(select(AlertDelivery).where(AlertDelivery.alert_id == alert_id)).all()
        return {r.channel: r for r in rows}


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def settled(settings: Settings, alert_id: int, timeout: float = 10.0) -> dict[str, AlertDelivery]:
    """The alert's deliveries once none is pending or sending any more."""
    wait_until(lambda: all(d.status in ("sent", "failed") for d in deliveries(settings, alert_id).values()), timeout)
    return deliveries(settings, alert_id)
