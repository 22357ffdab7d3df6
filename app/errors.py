"""The one place that maps the project's errors to HTTP: every 4xx is JSON `{error, message}` and says
what was wrong; a database that cannot be reached is a 503 with `Retry-After`; anything unexpected is
logged with its traceback and answered 500 without details.

Every handler here is keyed by an exception class, so Starlette's ExceptionMiddleware answers and the
connection stays open; only the catch-all `Exception` handler runs in ServerErrorMiddleware, which
re-raises after answering (and the server then closes the keep-alive connection)."""

from __future__ import annotations

import sqlite3
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.schemas import ErrorBody
from mlops.errors import (
    HTTP_STATUS,
    SkippyError,
    brief,
)
from mlops.logs import get_logger

log = get_logger(__name__)

STATUS = HTTP_STATUS  # mlops/errors.py: the one map, shared with the dashboard
HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large", 415: "bad_media_type"}
RETRY_AFTER_SECONDS = 5

# SQLite errors that mean "the file cannot be used now", not "the statement is wrong" (no such table, ...).
_SQLITE_UNAVAILABLE = ("unable to open", "database is locked", "database table is locked", "disk i/o error")
# PostgreSQL SQLSTATE classes of a server that cannot serve: 08 connection exception, 53 insufficient
# resources (too many connections, disk full), 57 operator intervention (shutdown, cancelled by timeout).
_PG_UNAVAILABLE = ("08", "53", "57")


def unavailable(exc: BaseException) -> str | None:
    """What kind of outage `exc` (or an exception it was raised from) is — `connection refused or
    lost`, `database is locked`, ... — or None when it is not a store being unreachable. Never the
    driver's text: it can name hosts and carry credentials."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, PoolTimeoutError):
            return "no free database connection in the pool"
        if isinstance(current, DBAPIError):
            kind = _dbapi_unavailable(current)
            if kind is not None:
                return kind
        current = current.__cause__ or current.__context__
    return None


def _dbapi_unavailable(exc: DBAPIError) -> str | None:
    if exc.connection_invalidated:
        return "connection to the database lost"
    orig = exc.orig
    if isinstance(orig, sqlite3.OperationalError):
        text = str(orig).lower()
        return next((t for t in _SQLITE_UNAVAILABLE if t in text), None)
    driver = type(orig).__module__.split(".")[0]
    if driver in ("psycopg2", "psycopg"):
        code = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
        name = type(orig).__name__
        if code is None and name in ("OperationalError", "InterfaceError"):
            return "database connection refused or lost"  # libpq's own errors: connect, socket, SSL
        if code is not None and code.startswith(_PG_UNAVAILABLE):
            return "database server unavailable"
    return None


def error_response(status: int, error: str, message: str, details: list[dict[str, Any]] | None = None) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    body = ErrorBody(error=error, message=message, details=details).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    # A refused dict key is part of the location: escaped, so that the answer (and its audit row) carries
    # no control character.
    return ".".join(str(p).encode("unicode_escape").decode("ascii") for p in loc)


async def _skippy(request: Request, exc: Exception) -> JSONResponse:
    for kind, status, code in STATUS:
        if isinstance(exc, kind):
            return error_response(status, code, brief(str(exc)))
    return error_response(400, "bad_request", brief(str(exc)))


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if errors and errors[0]["type"] == "json_invalid":
        position = errors[0]["loc"][-1]
        reason = (errors[0].get("ctx") or {}).get("error", "invalid JSON")
        message = f"body: malformed JSON at character {position}: {reason}"
        return error_response(422, "validation_error", message, [{"field": "body", "message": message}])
    message = "; ".join(f"{_field(e['loc'])}: {e['msg']}" for e in errors[:10])
    details = [{"field": _field(e["loc"]), "message": e["msg"], "type": e["type"]} for e in errors[:50]]
    return error_response(422, "validation_error", message or "invalid request", details)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = HTTP_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = f"no endpoint {request.method} {request.url.path}; see /docs"
    response = error_response(exc.status_code, code, message)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _database(request: Request, exc: Exception) -> JSONResponse:
    kind = unavailable(exc)
    if kind is None:
        return await _unexpected(request, exc)
    log.warning("store unavailable", path=request.url.path, method=request.method, kind=kind, error=brief(str(exc)))
    message = f"a store is unavailable ({kind}); retry in {RETRY_AFTER_SECONDS} s (GET /api/health says which)"
    response = error_response(503, "unavailable", message)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error in request", path=request.url.path, method=request.method)
    return error_response(500, "internal", "internal error; the server log has the details")


def install(app: FastAPI) -> None:
    app.add_exception_handler(SkippyError, _skippy)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(DBAPIError, _database)
    app.add_exception_handler(PoolTimeoutError, _database)
    app.add_exception_handler(Exception, _unexpected)


def documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for error codes (so clients and schemathesis know them)."""
    text = {
        400: "The request body could not be parsed",
        401: "Missing or invalid API key",
        403: "The key's role is too low",
        404: "Not found",
        409: "Conflicts with the current state (e.g. already retraining), or the feature is switched off",
        413: "Request body too large",
        422: "Invalid request; the message names the field",
        503: "A store or the model key is unavailable",
    }
    return {c: {"model": ErrorBody, "description": text[c]} for c in codes}
