"""Recording insights where the work ends: cheap app-DB writes only, never the network, never an exception.

    note_retrain   at the end of every retrain (promoted, challenger, rejected, failed): the run's facts and
                   template; `pending` when a key is set (a narrator generates the text later), else `template`
    note_drift     for a critical drift check, with the drift_critical alert it raised
    link_alert     an alert about a run or check (the retrain alerts of job_ended): it gets the generated text

An alert's `message` keeps the template's words it was raised with; its `insight` column is set when the
generated text arrives (or at once, when it is already there). Linking a deduplicated alert to a newer run or
check clears the older subject's text from it: the alert's message now describes the newer one."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from mlops.db import session_scope
from mlops.db.models import Alert, Insight
from mlops.insights.facts import drift_facts, retrain_facts
from mlops.insights.records import Subject
from mlops.insights.templates import template_for
from mlops.logs import get_logger
from mlops.settings import Settings

log = get_logger(__name__)
NO_KEY = "no OPENAI_API_KEY: the template text is the explanation"


def lock_row(session: Session, subject: str, subject_id: str) -> None:
    """Take the insight row's write lock for the rest of this transaction (PostgreSQL: the row; SQLite: the
    database's write lock, first thing, as mlops.alerts.service does), so that linking an alert and storing
    the generated text never interleave: every alert linked gets the text."""
    session.execute(
        update(Insight)
        .where(Insight.subject == subject, Insight.subject_id == subject_id)
        .values(attempts=Insight.attempts)
    )


def about(alert: Alert, subject: str, subject_id: str) -> bool:
    """Whether the alert (as last raised) is about this run or check: a deduplicated alert moves on."""
    details = alert.details or {}
    key = "check_id" if subject == "drift" else "model_run_id"
    return str(details.get(key)) == subject_id


def show_on_alerts(session: Session, row: Insight) -> None:
    """Put the generated text on the linked alerts still about this subject."""
    if row.text is None:
        return
    for alert_id in row.alert_ids or []:
        alert = session.get(Alert, int(alert_id))
        if alert is not None and about(alert, row.subject, row.subject_id):
            alert.insight = row.text


def _link(session: Session, row: Insight, alert_id: int) -> None:
    if alert_id not in (row.alert_ids or []):
        row.alert_ids = [*(row.alert_ids or []), alert_id]  # a new list: the JSON column sees the change
    alert = session.get(Alert, alert_id)
    if alert is not None:
        alert.insight = row.text if row.status == "generated" else None


def _insert_if_absent(session: Session, values: dict[str, Any]) -> None:
    """Insert the insight row unless one for its subject exists. PostgreSQL's row lock (`lock_row`) locks
    nothing while the row does not exist, so two processes noting one subject can both get here: the
    second's insert waits for the first's commit and then does nothing (instead of failing on
    uq_insights_subject and losing its alert link)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(
            pg_insert(Insight).values(values).on_conflict_do_nothing(index_elements=["subject", "subject_id"])
        )
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(
            sqlite_insert(Insight).values(values).on_conflict_do_nothing(index_elements=["subject", "subject_id"])
        )
    else:
        session.execute(insert(Insight).values(values))


def _note(
    settings: Settings,
    subject: Subject,
    subject_id: str,
    build: Callable[[Session], dict[str, Any] | None],
    alert_ids: Iterable[int | None],
) -> None:
    linked = [int(a) for a in alert_ids if a is not None]
    mine = (Insight.subject == subject) & (Insight.subject_id == subject_id)
    with session_scope(settings.app_db_url) as session:
        lock_row(session, subject, subject_id)
        row = session.scalars(select(Insight).where(mine)).first()
        if row is None:
            facts = build(session)
            if facts is None:
                log.warning("no insight: nothing to explain", subject=subject, subject_id=subject_id)
                return
            keyed = settings.openai_api_key is not None
            values: dict[str, Any] = {
                "subject": subject,
                "subject_id": subject_id,
                "agent_type": facts.get("agent"),
                "facts": facts,
                "template": template_for(subject, facts),
                "status": "pending" if keyed else "template",
                "error": None if keyed else NO_KEY,
                "alert_ids": [],
            }
            _insert_if_absent(session, values)
            # Ours or a concurrent writer's row, locked now that it exists (PostgreSQL; SQLite holds its lock).
            row = session.scalars(select(Insight).where(mine).with_for_update()).one()
        for alert_id in linked:
            _link(session, row, alert_id)
        pending = row.status == "pending"
    if pending:
        from mlops.insights.narrator import wake_narrators

        wake_narrators(settings.app_db_url)


def _safely(what: str, call: Callable[[], None], **context: Any) -> None:
    try:
        call()
    except Exception:  # an explanation must never fail the work it explains
        log.exception(f"could not record the {what} insight", **context)


def note_retrain(settings: Settings, run_id: int, alert_ids: Iterable[int | None] = ()) -> None:
    """Record model run `run_id`'s insight (once; later calls only link `alert_ids`). Never raises."""
    _safely(
        "retrain",
        lambda: _note(settings, "retrain", str(run_id), lambda s: retrain_facts(settings, s, run_id), alert_ids),
        model_run_id=run_id,
    )


def note_drift(settings: Settings, check_id: str, alert_ids: Iterable[int | None] = ()) -> None:
    """Record critical drift check `check_id`'s insight (once; later calls only link `alert_ids`). Never raises."""
    _safely(
        "drift",
        lambda: _note(settings, "drift", check_id, lambda s: drift_facts(s, check_id), alert_ids),
        check_id=check_id,
    )


def link_alert(settings: Settings, subject: Subject, subject_id: Any, alert_id: int | None) -> None:
    """Link an alert to the insight of a run or check (recording the insight first if it is missing, e.g. a
    run its dead worker never ended). Never raises."""
    if alert_id is None:
        return
    if subject == "retrain":
        note_retrain(settings, int(subject_id), [alert_id])
    else:
        note_drift(settings, str(subject_id), [alert_id])
