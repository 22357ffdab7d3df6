"""Schemathesis against the API's own OpenAPI schema, with each role's key over a store with trained
agents: no input it generates may produce a 5xx, and every response must match the documented schema
(a viewer's or an operator's 403 included)."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from app import create_app
from mlops.auth import create_key
from mlops.data.generate import generate_market
from mlops.pipeline.retrain import retrain
from mlops.stores import init_stores
from tests.conftest import make_settings

pytestmark = pytest.mark.slow
ROLES = ("viewer", "operator", "admin")


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Any:
    store = make_settings(tmp_path_factory.mktemp("schema"), drift_report=False)
    init_stores(store)
    generate_market(store, symbol="SYNTH", n_bars=900)
    retrain(store, actor="test", agent="market_insight")
    keys = {
        role: create_key(store, name=f"schemathesis-{role}-{secrets.token_hex(4)}", role=role, actor="test").key
        for role in ROLES
    }
    app = create_app(store, dispatch=False)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return schema, keys


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.mark.parametrize(
    ("role", "mode", "examples"),
    [("admin", "positive", 20), ("admin", "negative", 20), ("operator", "positive", 8), ("viewer", "positive", 8)],
)
def test_no_input_makes_the_api_fail_or_lie_about_its_schema(
    api_schema: Any, role: str, mode: str, examples: int
) -> None:
    """Positive: inputs the schema allows; negative: inputs it forbids (those must be 4xx, never 5xx).
    The admin reaches every endpoint; the lower roles check their own endpoints and the documented 403s."""
    api_schema, keys = api_schema
    headers = {"Authorization": f"Bearer {keys[role]}"}
    failures: dict[str, str] = {}
    seen: set[int] = set()
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 25
    for operation in operations:
        if mode == "negative" and not (operation.path_parameters or operation.query or operation.body):
            continue  # nothing to get wrong (GET /api/health)

        @given(case=operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode)))
        @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def exercise(case: Any) -> None:
            seen.add(case.call_and_validate(headers=headers, checks=CHECKS).status_code)

        try:
            exercise()
        except Exception as exc:  # collect every operation's failure, then report them together
            failures[operation.label] = str(exc)[:2000]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
    # Negative inputs include a malformed Authorization header (401); the others carry the role's key.
    assert any(200 <= code < 300 for code in seen) and (mode == "negative" or 401 not in seen), f"{role}: {seen}"
    assert (403 in seen) == (role != "admin"), f"{role}: {sorted(seen)}"
