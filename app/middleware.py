"""Pure ASGI middleware: the request body size limit and read timeout, and the audit row of a mutating
call that no service audited — refused by authentication, role, validation or the size limit, or an endpoint with
no use case behind it. A request that reached a service (retrain, sweep, promote, ...) is audited by
that service, with the same row the CLI or a job would write; this middleware adds nothing to it."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qsl

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import error_response
from mlops import audit
from mlops.settings import Settings

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Served predictions are recorded in prediction_log instead; the dashboard's callbacks are mostly reads (its
# actions are audited by the services they call, its logins, logouts and refusals by dashboard/server.py).
NOT_AUDITED = ("/api/mlops/predict", "/mlops/")
RESULT_BYTES = 16_384


def _decode(body: bytes) -> Any:
    """A body as JSON if it parses (however deep: `audit.redact` caps it), else its size and hash."""
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return audit.body_digest(body)


def _summarise_parameters(body: Any) -> Any:
    """Bulk uploads (market bars) are audited by size, not copied into the log."""
    if isinstance(body, dict) and isinstance(body.get("bars"), list):
        return body | {"bars": f"{len(body['bars'])} bars"}
    return body


def _request_parameters(body: bytes, who: Any) -> dict[str, Any]:
    """What the row keeps of the body of a request no service took: its size and SHA-256 always, and
    the body itself (secrets out, capped) only when the caller had a valid key: an anonymous caller can
    put nothing of its own into the log."""
    kept: dict[str, Any] = audit.body_digest(body)
    if who is not None and body:
        kept["body"] = _summarise_parameters(_decode(body))
    return kept


class GuardAndAudit:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.limit = settings.api_max_body_bytes
        self.body_timeout = settings.api_read_timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await self._too_large(scope, receive, send)
            return
        if scope["method"] not in MUTATING:
            await self.app(scope, receive, send)
            return
        body, complete = bytearray(), False
        # The whole body within the timeout, not each chunk: a client trickling a byte at a time (or
        # sending less than its Content-Length) would otherwise hold the connection open for ever.
        with anyio.move_on_after(self.body_timeout):
            while not complete:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                body += message.get("body", b"")
                complete = len(body) > self.limit or not message.get("more_body", False)
        if not complete:
            await self._timed_out(scope, send, len(body))
            return
        if len(body) > self.limit:
            await self._too_large(scope, receive, send)
            return
        await self._call_audited(scope, receive, send, bytes(body))

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"request body larger than {self.limit} bytes (SKIPPY_API_MAX_BODY_BYTES)"
        await error_response(413, "too_large", message)(scope, receive, send)
        if scope["method"] in MUTATING:
            await self._audit(scope, None, {"body": "not read: too large"}, 413, {"error": "too_large"})

    async def _timed_out(self, scope: Scope, send: Send, received: int) -> None:
        """408, and the connection closed (the rest of the body will not be read); audited first."""
        seconds = f"{self.body_timeout:g}"
        parameters = {"body": f"not read: incomplete after {seconds} s", "bytes_received": received}
        await self._audit(scope, None, parameters, 408, {"error": "timeout"})
        message = f"request body not received within {seconds} s (SKIPPY_API_READ_TIMEOUT_SECONDS)"
        response = error_response(408, "timeout", message)
        response.headers["connection"] = "close"

        async def nothing_more() -> Message:
            return {"type": "http.disconnect"}

        await response(scope, nothing_more, send)

    async def _call_audited(self, scope: Scope, receive: Receive, send: Send, body: bytes) -> None:
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        status: dict[str, Any] = {"code": None}
        response = bytearray()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            elif message["type"] == "http.response.body" and len(response) < RESULT_BYTES:
                response.extend(message.get("body", b"")[: RESULT_BYTES - len(response)])
            await send(message)

        state = scope.setdefault("state", {})
        client = scope.get("client")
        with audit.request_scope(client[0] if client else None) as request:
            try:
                await self.app(scope, replay, capture)
            except Exception:
                status["code"] = status["code"] or 500  # the error handler answers 500 outside this middleware
                raise
            finally:
                if not request["audited"] and not scope["path"].startswith(NOT_AUDITED):
                    await self._audit_request(scope, state, body, status["code"], response)

    async def _audit_request(
        self, scope: Scope, state: dict[str, Any], body: bytes, code: int | None, response: bytearray
    ) -> None:
        who = state.get("principal")

        def outcome() -> tuple[dict[str, Any], dict[str, Any]]:  # in a thread: decoding 10 MB takes a while
            result = _decode(bytes(response)) if code is not None else {"error": "no response"}
            return _request_parameters(body, who), result if isinstance(result, dict) else {"value": result}

        parameters, result = await anyio.to_thread.run_sync(outcome)
        await self._audit(scope, who, parameters, code, result)

    async def _audit(
        self, scope: Scope, who: Any, parameters: dict[str, Any], code: int | None, result: dict[str, Any]
    ) -> None:
        """One row; `audit.record` takes the secrets out (by name and by shape) and caps every part."""
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        client = scope.get("client")
        await anyio.to_thread.run_sync(
            lambda: audit.record(
                self.settings,
                actor=f"api:{who.name}" if who is not None else "anonymous",
                action=f"{scope['method']} {scope['path']}",
                parameters=parameters | {"query": dict(query[: audit.MAX_ITEMS])},
                status_code=code,
                result=result,
                client=client[0] if client else None,
            )
        )


def slow_client_protocol(timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol with a deadline on request headers, which uvicorn has no setting for: a
    connection that has not sent a whole request head `timeout` seconds after it opened (or after its
    previous response) is closed, so a client sending nothing, or its headers a byte at a time, cannot
    hold a connection for ever. (The body's own deadline is `GuardAndAudit`'s; idle keep-alive
    connections are closed sooner by uvicorn's `timeout_keep_alive`.)"""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    class HeaderDeadlineProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            self._deadline = self.loop.call_later(timeout, self._headers_too_slow)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._deadline.cancel()
            self._deadline = self.loop.call_later(timeout, self._headers_too_slow)

        def connection_lost(self, exc: Exception | None) -> None:
            self._deadline.cancel()
            super().connection_lost(exc)

        def _headers_too_slow(self) -> None:
            if self.cycle is None or self.cycle.response_complete:  # no request being read or served
                self.transport.close()

    return HeaderDeadlineProtocol
