"""Issue 11, item 1: an audit trail that cannot be skipped or poisoned. Each finding of the security
probe is replayed as it was found, through the real ASGI stack (or a real uvicorn server for the slow
client), on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Text, cast, func, select, text

from app import create_app
from app.middleware import slow_client_protocol
from mlops.audit import MAX_CHARS, MAX_DEPTH, AuditRecord, audited, list_audit, record, redact
from mlops.auth import authenticate, create_key
from mlops.db import session_scope
from mlops.db.models import AuditLog
from mlops.errors import AuthenticationError
from mlops.jobs.service import enqueue
from mlops.settings import Settings
from tests.conftest import make_settings

KEY_LIKE = "sk_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0u1v"  # the shape of a real key: 43 characters


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


@dataclass
class Api:
    client: TestClient
    settings: Settings
    keys: dict[str, str]

    def headers(self, role: str | None) -> dict[str, str]:
        auth = {"Authorization": f"Bearer {self.keys[role]}"} if role else {}
        return auth | {"content-type": "application/json"}

    def send(self, method: str, path: str, body: str | bytes, role: str | None = "operator") -> Any:
        return self.client.request(method, path, headers=self.headers(role), content=body)

    def newest(self) -> AuditRecord:
        return list_audit(self.settings, limit=1)[0]

    def stored_text(self, row_id: int) -> str:
        """The row as the database holds it (what a reader of the table, or a backup, sees)."""
        with session_scope(self.settings.app_db_url) as session:
            row = session.execute(
                select(cast(AuditLog.parameters, Text), cast(AuditLog.result, Text), AuditLog.action).where(
                    AuditLog.id == row_id
                )
            ).one()
        return " ".join(str(part) for part in row)


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Api]:
    settings = make_settings(tmp_path, database_url=db_url)
    keys = {
        role: create_key(settings, name=f"{role}-key", role=role, actor="test").key
        for role in ("viewer", "operator", "admin")
    }
    with TestClient(create_app(settings, dispatch=False, warm=False), raise_server_exceptions=False) as client:
        yield Api(client, settings, keys)


# --- audit bypass: a deep body cannot skip the row -----------------------------------------------


def test_a_body_nested_600_deep_does_not_skip_the_audit_of_a_key_revocation(api: Api) -> None:
    victim = create_key(api.settings, name="victim", role="viewer", actor="test").key
    response = api.send("DELETE", "/api/admin/keys/victim", deep(600), role="admin")
    assert response.status_code == 200, response.text
    with pytest.raises(AuthenticationError):
        authenticate(api.settings, victim)
    row = api.newest()
    assert (row.actor, row.action, row.parameters) == ("api:admin-key", "key revoke", {"name": "victim"})
    assert row.result["role"] == "viewer" and "error" not in row.result


def test_a_body_nested_600_deep_does_not_skip_the_audit_of_a_job_cancel(api: Api) -> None:
    job = enqueue(api.settings, kind="retrain", actor="test", agent="market_insight", parameters={})
    response = api.send("POST", f"/api/mlops/jobs/{job.id}/cancel", deep(600))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    row = api.newest()
    assert (row.actor, row.action, row.parameters) == ("api:operator-key", "job cancel", {"job_id": job.id})
    assert row.result["status"] == "cancelled"


def test_a_refused_body_nested_600_deep_is_audited_capped(api: Api) -> None:
    """No service takes it (422), so the middleware writes the row: with the body, capped in depth."""
    body = '{"agent_type": "market_insight", "hyperparameters": ' + deep(600) + "}"
    assert api.send("POST", "/api/mlops/retrain", body).status_code == 422
    row = api.newest()
    assert (row.actor, row.action, row.status_code) == ("api:operator-key", "POST /api/mlops/retrain", 422)
    assert row.parameters["bytes"] == len(body) and len(row.parameters["sha256"]) == 64
    nested = row.parameters["body"]["hyperparameters"]
    levels = 2  # the row's parameters, and the body in them
    while isinstance(nested, list):
        nested, levels = nested[0], levels + 1
    assert levels == MAX_DEPTH and nested == f"<nested deeper than {MAX_DEPTH} levels>"


# --- audit poisoning: what an anonymous caller can put into the log -----------------------------


def test_an_anonymous_body_nested_260_deep_cannot_break_the_audit_listing(api: Api) -> None:
    body = deep(260).encode()
    assert api.send("POST", "/api/mlops/retrain", body, role=None).status_code == 401
    row = api.newest()
    assert row.actor == "anonymous" and row.status_code == 401
    assert "body" not in row.parameters  # size and hash only: nothing of the caller's own
    assert row.parameters["bytes"] == len(body)
    for params in ({}, {"limit": 1}, {"limit": 1000}, {"action": "retrain"}, {"actor": "anonymous"}):
        listing = api.client.get("/api/admin/audit", headers=api.headers("admin"), params=params)
        assert listing.status_code == 200, listing.text
        assert listing.json()["items"][0]["id"] == row.id


def test_anonymous_10_mb_bodies_add_a_few_bytes_each_to_the_log(api: Api) -> None:
    filler = "x" * (api.settings.api_max_body_bytes - 100)
    body = json.dumps({"agent_type": "market_insight", "note": filler}).encode()
    for _ in range(3):
        assert api.send("POST", "/api/mlops/retrain", body, role=None).status_code == 401
    with session_scope(api.settings.app_db_url) as session:
        rows = session.execute(
            select(func.length(cast(AuditLog.parameters, Text)) + func.length(cast(AuditLog.result, Text)))
            .order_by(AuditLog.id.desc())
            .limit(3)
        ).all()
    assert len(rows) == 3 and all(size < 1_000 for (size,) in rows), rows


def test_an_authenticated_refused_body_is_kept_within_the_caps(api: Api) -> None:
    body = json.dumps({"agent_type": "nope", "notes": ["y" * 5_000] * 50, "wide": {str(i): i for i in range(500)}})
    assert api.send("POST", "/api/mlops/retrain", body).status_code == 422
    row = api.newest()
    assert len(api.stored_text(row.id)) < 2 * MAX_CHARS
    kept = row.parameters["body"]
    assert kept["agent_type"] == "nope" and len(kept["wide"]) == 101  # 100 entries and what was left out
    assert kept["wide"]["<truncated>"] == "400 more entries"


# --- keys in the audit log ----------------------------------------------------------------------


def test_keys_in_query_strings_are_redacted(api: Api) -> None:
    for role, status in ((None, 401), ("viewer", 403), ("operator", 422)):
        response = api.client.post(
            "/api/mlops/retrain",
            params={"api_key": KEY_LIKE, "note": f"mine is {KEY_LIKE}!", "agent": "x"},
            headers=api.headers(role),
            json={},
        )
        assert response.status_code == status, response.text
        row = api.newest()
        assert row.parameters["query"] == {"api_key": "<redacted>", "note": "mine is <redacted>!", "agent": "x"}
        assert KEY_LIKE not in api.stored_text(row.id)


def test_secret_fields_in_a_refused_body_are_redacted_by_any_name_and_by_shape(api: Api) -> None:
    body = {
        "agent_type": "nope",  # refused: 422, so the middleware writes the row
        "access_token": "t0ken",
        "Authorization": "Bearer abc",
        "secret": "s3cret",
        "apiKey": "k3y",
        "nested": [{"DB_PASSWORD": "pw", "client_secret": {"deep": "x"}}],
        "comment": f"Bearer {KEY_LIKE}",
        "name": "desk",
    }
    response = api.send("POST", "/api/mlops/retrain", json.dumps(body))
    assert response.status_code == 422
    row = api.newest()
    assert row.parameters["body"] == {
        "agent_type": "nope",
        "access_token": "<redacted>",
        "Authorization": "<redacted>",
        "secret": "<redacted>",
        "apiKey": "<redacted>",
        "nested": [{"DB_PASSWORD": "<redacted>", "client_secret": "<redacted>"}],
        "comment": "Bearer <redacted>",
        "name": "desk",
    }
    stored = api.stored_text(row.id)
    assert all(s not in stored for s in ("t0ken", "abc", "s3cret", "k3y", "pw", KEY_LIKE))


def test_a_key_in_a_path_is_redacted(api: Api) -> None:
    """`DELETE /api/admin/keys/<a key pasted instead of its name>` by a viewer: refused, path kept, key not."""
    assert api.send("DELETE", f"/api/admin/keys/{KEY_LIKE}", b"", role="viewer").status_code == 403
    row = api.newest()
    assert row.action == "DELETE /api/admin/keys/<redacted>" and KEY_LIKE not in api.stored_text(row.id)


def test_services_redact_their_parameters_and_results(api: Api) -> None:
    with audited(
        api.settings, actor="cli:ops", action="test action", parameters={"token": "t", "text": KEY_LIKE}
    ) as result:
        result.update(created={"apiKey": KEY_LIKE}, echo=f"key={KEY_LIKE}", when=datetime(2030, 1, 1, tzinfo=UTC))
    row = api.newest()
    assert row.parameters == {"token": "<redacted>", "text": "<redacted>"}
    when = "2030-01-01T00:00:00+00:00"
    assert row.result == {"created": {"apiKey": "<redacted>"}, "echo": "key=<redacted>", "when": when}


# --- every row can be written and read back ------------------------------------------------------


def test_a_row_with_nul_bytes_and_odd_values_is_written_and_listed(api: Api) -> None:
    """PostgreSQL text refuses NUL and its JSON refuses NaN: the row must still be written."""
    record(
        api.settings,
        actor="api:a\x00b",
        action="DELETE /api/admin/keys/a\x00b",
        parameters={"name": "a\x00b", "path": Path("/tmp/x"), "tags": {"b"}, "score": math.nan, 3: "three"},
        status_code=404,
        result={"error": "no key named 'a\x00b'", "big": 10**30},
        client="127.0.0.1",
    )
    row = api.newest()
    assert (row.actor, row.action) == ("api:a\\x00b", "DELETE /api/admin/keys/a\\x00b")
    assert row.parameters == {"name": "a\\x00b", "path": "/tmp/x", "tags": ["b"], "score": "nan", "3": "three"}
    assert row.result == {"error": "no key named 'a\\x00b'", "big": 10**30}


def test_the_listing_survives_rows_written_around_the_caps(api: Api) -> None:
    """Rows put into the table without `record` (an older version, a hand edit): too deep for pydantic
    (300 levels), too deep for Python's json (2,000 levels), not an object. Reading never fails."""
    insert = text(
        "INSERT INTO audit_log (actor, action, parameters, status_code, result, created_at) "
        "VALUES ('old', :action, :parameters, 401, '{}', :now)"
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    with session_scope(api.settings.app_db_url) as session:
        for action, parameters in (("deep", deep(300)), ("deeper", deep(2_000)), ("scalar", "42")):
            session.execute(insert, {"action": action, "parameters": parameters, "now": now})
    rows = {r.action: r for r in list_audit(api.settings, actor="old")}
    assert rows["scalar"].parameters == {"value": 42}
    assert "unreadable" in rows["deeper"].parameters
    assert rows["deep"].parameters["value"][0][0]  # capped, still a nested list
    listing = api.client.get("/api/admin/audit", headers=api.headers("admin"), params={"actor": "old"})
    assert listing.status_code == 200, listing.text
    assert [i["action"] for i in listing.json()["items"]] == ["scalar", "deeper", "deep"]


def test_redact_is_iterative_and_capped() -> None:
    nested: Any = "bottom"
    for _ in range(100_000):  # far past the recursion limit
        nested = {"a": [nested]}
    kept = redact(nested)
    json.dumps(kept)  # and JSON-safe
    levels = 0
    while isinstance(kept, dict | list):
        kept, levels = (kept["a"] if isinstance(kept, dict) else kept[0]), levels + 1
    assert levels == MAX_DEPTH and kept.startswith("<nested deeper")
    many = redact(["z" * 10_000] * 1_000)
    assert len(many) == 101 and many[-1] == "<900 more items>"
    kept_text = [s for s in many[:-1] if s != "<truncated>"]
    assert sum(len(s) for s in kept_text) <= MAX_CHARS + 100 and many[-2] == "<truncated>"


# --- slow clients -----------------------------------------------------------------------------------


@pytest.fixture
def server(api: Api) -> Iterator[tuple[str, int]]:
    """The app behind a real uvicorn server (the test client cannot send less than its Content-Length)."""
    import uvicorn

    settings = api.settings.model_copy(update={"api_read_timeout_seconds": 0.5})
    app = create_app(settings, dispatch=False, warm=False)
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", lifespan="off", http=slow_client_protocol(0.5))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield listening.getsockname()
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listening.close()


def test_a_body_shorter_than_its_content_length_is_answered_408_and_the_connection_closed(
    api: Api, server: tuple[str, int]
) -> None:
    host, port = server
    with socket.create_connection((host, port), timeout=20) as conn:
        conn.sendall(
            b"POST /api/mlops/retrain?token=" + KEY_LIKE.encode() + b" HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n" + b'{"agent_type": '
        )
        answer = read_until_closed(conn)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and b"connection: close" in head.lower()
    assert json.loads(body)["error"] == "timeout" and b"SKIPPY_API_READ_TIMEOUT_SECONDS" in body
    row = api.newest()
    assert (row.actor, row.action, row.status_code) == ("anonymous", "POST /api/mlops/retrain", 408)
    assert row.parameters["bytes_received"] == len(b'{"agent_type": ')
    assert row.parameters["query"] == {"token": "<redacted>"}


def read_until_closed(conn: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a hang fails on the socket timeout)."""
    answer = b""
    while chunk := conn.recv(65536):
        answer += chunk
    return answer


@pytest.mark.parametrize("sent", [b"", b"POST /api/mlops/retrain HTTP/1.1\r\nHost: x\r\nContent-Ty"])
def test_a_connection_without_a_whole_request_head_is_closed(server: tuple[str, int], sent: bytes) -> None:
    with socket.create_connection(server, timeout=20) as conn:
        conn.sendall(sent)
        assert read_until_closed(conn) == b""


def test_a_kept_alive_connection_gets_the_deadline_again_for_its_next_request(server: tuple[str, int]) -> None:
    with socket.create_connection(server, timeout=20) as conn:
        conn.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.recv(65536).startswith(b"HTTP/1.1 ")
        conn.sendall(b"GET /api/health HTTP/1.1\r\nHo")
        assert read_until_closed(conn) == b""
