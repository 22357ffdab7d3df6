"""Pure ASGI middleware: the request body size limit, and the audit row of a mutating call that no
service audited — refused by authentication, role, validation or the size limit, or an endpoint with
no use case behind it. A request that reached a service (retrain, sweep, promote, ...) is audited by
that service, with the same row the CLI or a job would write; this middleware adds nothing to it."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import error_response
from mlops import audit
from mlops.settings import Settings

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
NOT_AUDITED = ("/api/mlops/predict",)  # served predictions are recorded in prediction_log instead
RESULT_BYTES = 16_384
_redact = audit.redact


def _decode(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return {"bytes": len(body)}


def _summarise_parameters(body: Any) -> Any:
    """Bulk uploads (market bars) are audited by size, not copied into the log."""
    if isinstance(body, dict) and isinstance(body.get("bars"), list):
        return body | {"bars": f"{len(body['bars'])} bars"}
    return body


class GuardAndAudit:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.limit = settings.api_max_body_bytes

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
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.limit:
                await self._too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        await self._call_audited(scope, receive, send, bytes(body))

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"request body larger than {self.limit} bytes (SKIPPY_API_MAX_BODY_BYTES)"
        await error_response(413, "too_large", message)(scope, receive, send)
        if scope["method"] in MUTATING:
            await self._audit(scope, None, {"body": "not read: too large"}, 413, {"error": "too_large"})

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
        result = _decode(bytes(response)) if code is not None else {"error": "no response"}
        await self._audit(
            scope,
            state.get("principal"),
            {"body": _redact(_summarise_parameters(_decode(body)))},
            code,
            _redact(result if isinstance(result, dict) else {"value": result}),
        )

    async def _audit(
        self, scope: Scope, who: Any, parameters: dict[str, Any], code: int | None, result: dict[str, Any]
    ) -> None:
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        client = scope.get("client")
        await anyio.to_thread.run_sync(
            lambda: audit.record(
                self.settings,
                actor=f"api:{who.name}" if who is not None else "anonymous",
                action=f"{scope['method']} {scope['path']}",
                parameters=parameters | {"query": query},
                status_code=code,
                result=result,
                client=client[0] if client else None,
            )
        )
