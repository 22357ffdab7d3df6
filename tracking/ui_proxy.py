"""The MLflow UI, read-only: a reverse proxy in front of a real `mlflow server`.

`mlflow server` has no authentication of its own without extra packages (its `basic-auth` app needs
flask-wtf), and its REST API moves aliases: left open, anyone who can reach the UI's port could deploy a
model with no key, past the promotion gate and the audit trail. So `skippy up` runs `mlflow server` on a
Unix socket in a private folder (only this user can connect to it) and serves this proxy on the UI port.
Reads pass — GET, HEAD, OPTIONS, and the POSTs the UI uses to search (`runs/search`,
`logged-models/search`, GraphQL queries, ...); every other request is refused with 403 and a message
saying where writes go. The list of allowed POSTs is an allow-list: an endpoint a later MLflow adds is
refused until it is known to be a read.

No MLflow import here: the proxy only speaks HTTP (httpx to the socket, Starlette to the browser), and
MLflow's own host and origin checks still apply, since the client's Host and Origin are passed on.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

log = logging.getLogger(__name__)

REFUSAL = (
    "the MLflow UI is read-only here: model aliases move only through the audited, role-checked gate "
    "(`skippy ai promote` / `skippy ai rollback`, or POST /api/mlops/promote and /api/mlops/rollback with an "
    "operator key), and runs, models and experiments are written by Skippy's retrain and sweep services"
)
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# POSTs that only read. Segments are plain words, so a path with `..`, `//` or an encoded slash never matches.
READ_ONLY_POSTS = re.compile(
    r"/(?:ajax-)?api/[23]\.0/(?:"
    r"mlflow/(?:[a-z-]+/)*(?:search|search-datasets|get-latest-versions)"
    r"|mlflow/traces/(?:batchGetInfos|metrics|calculate-filter-correlation)"
    r"|jobs/search"
    r")"
)
GRAPHQL = "/graphql"
MUTATION = re.compile(rb"\bmutation\b", re.IGNORECASE)
MAX_BODY_BYTES = 1024 * 1024  # the UI's searches are small JSON bodies
# Hop-by-hop headers (RFC 9110 §7.6.1) are the connection's, not the message's.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


def is_read(method: str, path: str, body: bytes, query: bytes) -> bool:
    """Whether a request to `mlflow server` only reads. GraphQL is read unless it names a mutation (MLflow
    has only an echo mutation today; a later one would not get through)."""
    if path == GRAPHQL:
        return method in READ_METHODS | {"POST"} and not MUTATION.search(body + b" " + query)
    if method in READ_METHODS:
        return True
    return method == "POST" and READ_ONLY_POSTS.fullmatch(path) is not None


def create_proxy_app(socket_path: str) -> Starlette:
    """The proxy as an ASGI app, forwarding to the `mlflow server` listening on `socket_path`."""
    clients: list[httpx.AsyncClient] = []

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        transport = httpx.AsyncHTTPTransport(uds=socket_path)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost", timeout=120.0) as client:
            clients.append(client)
            yield

    async def forward(request: Request) -> Response:
        declared = request.headers.get("content-length", "")
        body = None if declared.isdigit() and int(declared) > MAX_BODY_BYTES else await _read_body(request)
        if body is None:
            message = f"a request to the MLflow UI may carry at most {MAX_BODY_BYTES} bytes"
            return JSONResponse({"error_code": "RESOURCE_EXHAUSTED", "message": message}, status_code=413)
        if not is_read(request.method, request.url.path, body, request.url.query.encode()):
            return _refused(request)
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        target = raw_path.decode("latin-1") + (f"?{request.url.query}" if request.url.query else "")
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP | {"content-length"}]
        client = clients[0]
        try:
            upstream = await client.send(
                client.build_request(request.method, target, headers=headers, content=body), stream=True
            )
        except httpx.TransportError:
            return JSONResponse(
                {
                    "error_code": "TEMPORARILY_UNAVAILABLE",
                    "message": "the MLflow server behind the UI is not answering (it takes 20-60 s to start)",
                },
                status_code=503,
                headers={"Retry-After": "5"},
            )
        response = StreamingResponse(
            upstream.aiter_raw(), status_code=upstream.status_code, background=BackgroundTask(upstream.aclose)
        )
        response.raw_headers = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in upstream.headers.multi_items()
            if k.lower() not in HOP_BY_HOP
        ]
        return response

    methods = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"]
    return Starlette(routes=[Route("/{path:path}", forward, methods=methods)], lifespan=lifespan)


async def _read_body(request: Request) -> bytes | None:
    """The request body, or None past MAX_BODY_BYTES (a chunked body has no Content-Length to check first)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _refused(request: Request) -> JSONResponse:
    log.warning("mlflow ui: refused %s %s (read-only)", request.method, request.url.path)
    # MLflow's own error shape, so that the UI shows the message.
    return JSONResponse({"error_code": "PERMISSION_DENIED", "message": REFUSAL}, status_code=403)


class ReadOnlyUI:
    """The proxy served by uvicorn in a background thread of the calling process (`skippy up`), so that
    stopping that process's API stops it too. Signals stay with the main thread's server."""

    def __init__(self, socket_path: str, host: str, port: int) -> None:
        import uvicorn

        # log_config=None: the API's uvicorn in the same process configures logging; this one leaves it be.
        config = uvicorn.Config(create_proxy_app(socket_path), host=host, port=port, log_config=None, access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="mlflow-ui-proxy", daemon=True)

    def start(self, timeout: float = 15.0) -> None:
        """Serve, returning once the port is bound; raise if it could not be."""
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the MLflow UI proxy could not serve on port {self.server.config.port}")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout)
