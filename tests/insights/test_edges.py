"""Insights at their edges: a secret straddling where an error is cut, a pending insight no narrator with a key
takes, two processes noting one subject at once (SQLite and PostgreSQL)."""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mlops.alerts import get_alert, raise_alert
from mlops.db import session_scope, upgrade_database
from mlops.db.models import Insight
from mlops.insights import Narrator, generate_pending, get_insight, note_retrain
from mlops.insights.facts import MAX_ERROR, retrain_facts
from mlops.insights.generate import GenerationError, ask
from mlops.insights.narrator import ORPHAN_GRACE_SECONDS
from mlops.insights.service import NO_KEY
from mlops.settings import Settings
from tests.conftest import make_settings
from tests.factories import model_run
from tests.insights.conftest import keyed, two_runs
from tests.insights.loopback import ChatServer, chat_server, expected_text

PASSWORD = "Pg5ecretPassw0rdLongEnough"
MODEL_KEY = "Zq9KEY" + "0f9e8d7c6b5a4321" * 2


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    upgrade_database(url)
    return url


def _leaks(text: str, secret: str) -> bool:
    """Whether the leading 6 characters of `secret` are in `text` (a cut keeps at least 6 of each here)."""
    return secret[:6] in text


def test_a_secret_straddling_the_cut_is_masked_whole(sqlite_url: str, tmp_path: Path, server: ChatServer) -> None:
    settings = keyed(tmp_path, sqlite_url, server, model_key=MODEL_KEY)
    url = f"postgresql://skippy:{PASSWORD}@db.internal:5432/skippy"
    # The password starts 10 characters before the cut, the model key 6: cutting first would keep both prefixes.
    errors = {
        "password": "E" * (MAX_ERROR - 10 - len("postgresql://skippy:")) + url + " refused the connection",
        "model key": "E" * (MAX_ERROR - 6) + MODEL_KEY + " was refused",
    }
    runs = {}
    with session_scope(settings.app_db_url) as session:
        for what, error in errors.items():
            runs[what] = model_run(session, status="failed", error=error).id
    for what, run_id in runs.items():
        note_retrain(settings, run_id)
        with session_scope(settings.app_db_url) as session:
            row = session.query(Insight).filter_by(subject="retrain", subject_id=str(run_id)).one()
            facts, template = row.facts, row.template
            assert facts == retrain_facts(settings, session, run_id)
        assert facts["error"].startswith("EEEE") and "more characters" in facts["error"], what
        for secret in (PASSWORD, MODEL_KEY):
            assert not _leaks(facts["error"], secret) and not _leaks(template, secret), what
    assert generate_pending(settings) == 2
    for request in server.requests:
        assert not _leaks(request.body.decode(), PASSWORD) and not _leaks(request.body.decode(), MODEL_KEY)

    # A refusal whose message carries the key across the 500-character cut of the recorded error ("HTTP 500: "
    # and the client's "Error code: 500 - " come first).
    refusal = "x" * (500 - len("HTTP 500: Error code: 500 - ") - 6) + MODEL_KEY
    with chat_server(status=500, message=refusal) as refusing:
        refused = keyed(tmp_path, sqlite_url, refusing, model_key=MODEL_KEY)
        with pytest.raises(GenerationError) as caught:
            ask(refused, "retrain", {"run_id": 1})
    error = str(caught.value)
    assert error.startswith("HTTP 500") and error.endswith("x***") and not _leaks(error, MODEL_KEY)


def _age(settings: Settings, run_id: int, seconds: float) -> None:
    """Make the insight of run `run_id` look recorded (and last due) `seconds` ago."""
    with session_scope(settings.app_db_url) as session:
        row = session.query(Insight).filter_by(subject="retrain", subject_id=str(run_id)).one()
        row.created_at = datetime.now(UTC) - timedelta(seconds=seconds)
        if row.claimed_until is not None:
            row.claimed_until = row.created_at


def test_a_narrator_without_a_key_ends_what_a_process_with_one_left_pending(
    sqlite_url: str, tmp_path: Path, server: ChatServer
) -> None:
    # `OPENAI_API_KEY=... skippy ai retrain` records pending insights; the server runs with no key.
    with_key = keyed(tmp_path, sqlite_url, server)
    first, second = two_runs(with_key)
    note_retrain(with_key, first)
    note_retrain(with_key, second)
    without = make_settings(tmp_path, database_url=sqlite_url)

    # Within the grace a narrator with a key would have: left as it is (and a fresh one too).
    _age(with_key, first, ORPHAN_GRACE_SECONDS - 20)
    assert generate_pending(without) == 0
    assert get_insight(without, "retrain", first).status == "pending"  # type: ignore[union-attr]

    # Past it: the template, saying why; the one still in its grace stays pending. Nothing was asked.
    _age(with_key, first, ORPHAN_GRACE_SECONDS + 5)
    narrator = Narrator(without, poll_seconds=0.05)
    narrator.start()
    try:
        for _ in range(200):
            record = get_insight(without, "retrain", first)
            if record is not None and record.status != "pending":
                break
            threading.Event().wait(0.05)
    finally:
        narrator.stop()
    record = get_insight(without, "retrain", first)
    assert record is not None and (record.status, record.error, record.text) == ("template", NO_KEY, record.template)
    assert get_insight(without, "retrain", second).status == "pending"  # type: ignore[union-attr]
    assert server.requests == []


def test_concurrent_notes_of_one_subject_keep_every_alert_link(
    db_url: str, tmp_path: Path, server: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = keyed(tmp_path, db_url, server)
    _, second = two_runs(settings)
    alerts = []
    for kind in ("retrain_rejected", "job_failed"):
        alert = raise_alert(
            settings, severity="warning", kind=kind, agent="market_insight", message=f"{kind}.",
            details={"model_run_id": second}, key=f"{kind}{second}",
        )  # fmt: skip
        assert alert is not None
        alerts.append(alert.id)

    # Both notes read "no row yet" before either inserts (PostgreSQL: the row lock locks nothing then; SQLite's
    # write lock makes the second wait, so the barrier times out and the notes run one after the other).
    barrier = threading.Barrier(2)
    from mlops.insights import service

    real = service.retrain_facts

    def slow_facts(*args: Any) -> Any:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=2.0)
        return real(*args)

    monkeypatch.setattr(service, "retrain_facts", slow_facts)
    threads = [threading.Thread(target=note_retrain, args=(settings, second, [a])) for a in alerts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    with session_scope(settings.app_db_url) as session:
        rows = session.query(Insight).filter_by(subject="retrain", subject_id=str(second)).all()
        assert len(rows) == 1 and sorted(rows[0].alert_ids) == sorted(alerts)
    assert generate_pending(settings) == 1
    assert [get_alert(settings, a).insight for a in alerts] == [expected_text({"run_id": second})] * 2
