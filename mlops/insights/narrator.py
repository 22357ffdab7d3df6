"""Generating the explanations in the background, after the work they explain.

A narrator claims a `pending` insight with a conditional update (pending, attempts left, no live lease →
`claimed_until` = now + lease, attempts + 1): of several threads or processes exactly one wins, so each
insight is generated once. It then asks the API (mlops/insights/generate.py) and stores the text (status
`generated`, the linked alerts get it), or the masked error: with attempts left the row stays `pending`
and `claimed_until` doubles as its retry time; after the last attempt it is `template` for good (the
template text stays what everyone sees). A process that dies mid-call leaves its lease to run out.
A narrator without a key generates nothing: it ends as `template` the pending insights that a process with
a key recorded and no narrator with a key took in time (`give_up_keyless`), so none stays pending forever.

Who generates: a `Narrator` thread in each long-lived process (API server, `skippy scheduler`), next to the
alert Courier, woken at once when this process records a pending insight and every few seconds otherwise;
`generate_now` for `skippy ai insight --generate`.
"""

from __future__ import annotations

import weakref
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update

from mlops.audit import audited
from mlops.db import session_scope
from mlops.db.models import Insight
from mlops.errors import NotFoundError
from mlops.insights.generate import GenerationError, ask
from mlops.insights.records import InsightRecord, Subject, get_insight
from mlops.insights.service import NO_KEY, lock_row, show_on_alerts
from mlops.logs import get_logger
from mlops.periodic import Periodic
from mlops.settings import Settings

log = get_logger(__name__)
ATTEMPTS = 3
RETRY_SECONDS = (30.0, 120.0)  # after the 1st and 2nd failed attempt
POLL_SECONDS = 5.0
ORPHAN_GRACE_SECONDS = 60.0  # how long past its due time a pending insight waits for a narrator with a key


def lease_seconds(settings: Settings) -> float:
    """A claim outlives one attempt (connect + answer, each bounded by the timeout) with room to spare."""
    return 2 * settings.insight_timeout_seconds + 30.0


def _now() -> datetime:
    return datetime.now(UTC)


def _due(now: datetime) -> ColumnElement[bool]:
    return and_(
        Insight.status == "pending",
        Insight.attempts < ATTEMPTS,
        or_(Insight.claimed_until.is_(None), Insight.claimed_until < now),
    )


def claim(settings: Settings, insight_id: int, *, force: bool = False) -> int | None:
    """Take insight `insight_id` for one attempt; returns the attempt's number, or None when it is not due
    or someone holds it. `force`: also a `template` one (a person asked), unless someone holds it."""
    now = _now()
    due = _due(now)
    if force:
        free = or_(Insight.claimed_until.is_(None), Insight.claimed_until < now)
        due = or_(due, and_(Insight.status.in_(("template", "pending")), free))
    with session_scope(settings.app_db_url) as session:
        claimed = session.execute(
            update(Insight)
            .where(Insight.id == insight_id, due)
            .values(
                status="pending",
                claimed_until=now + timedelta(seconds=lease_seconds(settings)),
                attempts=Insight.attempts + 1,
            )
        )
        if not claimed.rowcount:  # type: ignore[attr-defined]
            return None
        return session.scalar(select(Insight.attempts).where(Insight.id == insight_id))


def attempt(settings: Settings, insight_id: int, *, force: bool = False) -> str | None:
    """One attempt at one insight: claim, ask, record. Returns its status after it, or None when it was not
    due or someone else holds it. Never raises for the API's failures (they are recorded)."""
    attempts = claim(settings, insight_id, force=force)
    if attempts is None:
        return None
    with session_scope(settings.app_db_url) as session:
        row = session.get_one(Insight, insight_id)
        subject, subject_id, facts = row.subject, row.subject_id, dict(row.facts or {})
    try:
        text, error = ask(settings, subject, facts), None
    except GenerationError as exc:
        text, error = None, str(exc)
    with session_scope(settings.app_db_url) as session:
        lock_row(session, subject, subject_id)  # before any read (see lock_row)
        row = session.get_one(Insight, insight_id)
        if row.status != "pending" or row.attempts != attempts:  # our lease ran out and another took it
            return None
        row.claimed_until = None
        if text is not None:
            row.text, row.status, row.error = text, "generated", None
            row.model, row.generated_at = settings.insight_model, _now()
            show_on_alerts(session, row)
        else:
            row.error = error
            final = attempts >= ATTEMPTS  # a forced attempt too: a failed one leaves the retries to the narrator
            row.status = "template" if final else "pending"
            if not final:
                delay = RETRY_SECONDS[min(attempts, len(RETRY_SECONDS)) - 1]
                row.claimed_until = _now() + timedelta(seconds=delay)
        status = row.status
    log.log(
        20 if text is not None else 30,
        "insight generated" if text is not None else "insight not generated",
        insight_id=insight_id,
        attempt=attempts,
        status=status,
        error=error,
    )
    return status


def give_up_abandoned(settings: Settings) -> int:
    """End as `template` the insights whose narrator died during their last allowed attempt."""
    now = _now()
    with session_scope(settings.app_db_url) as session:
        done = session.execute(
            update(Insight)
            .where(Insight.status == "pending", Insight.attempts >= ATTEMPTS, Insight.claimed_until < now)
            .values(
                status="template",
                claimed_until=None,
                error="the process generating it stopped during its last attempt (its claim ran out)",
            )
        )
        return int(done.rowcount)  # type: ignore[attr-defined]


def give_up_keyless(settings: Settings) -> int:
    """Without a key, end as `template` (the reason: no key) the pending insights another process recorded
    with one and no narrator with a key took: those due (no live lease, retry time passed) for
    `ORPHAN_GRACE_SECONDS` more, so that a narrator with a key, if one runs, has had its turn first."""
    now = _now()
    cutoff = now - timedelta(seconds=ORPHAN_GRACE_SECONDS)
    waited = or_(Insight.claimed_until < cutoff, and_(Insight.claimed_until.is_(None), Insight.created_at < cutoff))
    with session_scope(settings.app_db_url) as session:
        done = session.execute(
            update(Insight)
            .where(Insight.status == "pending", waited)
            .values(status="template", claimed_until=None, error=NO_KEY)
        )
        return int(done.rowcount)  # type: ignore[attr-defined]


def generate_pending(settings: Settings, limit: int = 20) -> int:
    """Attempt every due insight (oldest first, at most `limit`); returns how many were generated. Without
    a key nothing is generated: the pending insights left waiting become `template` (`give_up_keyless`)."""
    if settings.openai_api_key is None:
        with session_scope(settings.app_db_url) as session:  # a read first: writes take SQLite's one write lock
            waiting = session.scalar(select(Insight.id).where(Insight.status == "pending").limit(1))
        if waiting is not None:
            give_up_abandoned(settings)
            give_up_keyless(settings)
        return 0
    give_up_abandoned(settings)
    with session_scope(settings.app_db_url) as session:
        due = session.scalars(
            select(Insight.id).where(_due(_now())).order_by(Insight.created_at, Insight.id).limit(limit)
        ).all()
    return sum(attempt(settings, insight_id) == "generated" for insight_id in due)


def generate_now(settings: Settings, subject: Subject, subject_id: object, *, actor: str) -> InsightRecord:
    """Generate the insight of a run or check now, within the timeout (`skippy ai insight --generate`), unless
    it is generated already or another process holds it; returns it as it stands after. A failed attempt
    keeps it `pending` for the narrator's retries while it has attempts left. Without a key it is returned
    as is (its error says so). Unknown → NotFoundError. Audited: a person's write and an external call."""
    parameters = {"subject": subject, "subject_id": str(subject_id)}
    with audited(settings, actor=actor, action="insight generate", parameters=parameters) as audit:
        record = _generate_now(settings, subject, subject_id)
        audit.update(status=record.status, error=record.error)
    return record


def _generate_now(settings: Settings, subject: Subject, subject_id: object) -> InsightRecord:
    record = get_insight(settings, subject, subject_id)
    if record is None:
        raise NotFoundError(_missing(subject, subject_id))
    if record.status == "generated" or settings.openai_api_key is None:
        return record
    with session_scope(settings.app_db_url) as session:
        insight_id = session.scalar(
            select(Insight.id).where(Insight.subject == subject, Insight.subject_id == str(subject_id))
        )
    if insight_id is not None:
        attempt(settings, insight_id, force=True)  # None: someone holds it, or it waits for its retry time
    found = get_insight(settings, subject, subject_id)
    assert found is not None
    return found


def _missing(subject: str, subject_id: object) -> str:
    if subject == "retrain":
        return f"no insight for model run {subject_id}: runs get one when they end (`skippy ai runs` lists them)"
    return f"no insight for drift check {subject_id}: only critical checks get one (`skippy ai drift-history`)"


def require_insight(settings: Settings, subject: Subject, subject_id: object) -> InsightRecord:
    """The insight of a run or check, or NotFoundError naming what is missing."""
    record = get_insight(settings, subject, subject_id)
    if record is None:
        raise NotFoundError(_missing(subject, subject_id))
    return record


_NARRATORS: weakref.WeakSet[Narrator] = weakref.WeakSet()


def wake_narrators(url: str | None = None) -> None:
    """Wake this process's narrators (of app DB `url`, or all): an insight is pending (a retrain or a drift
    check just ended here)."""
    for narrator in list(_NARRATORS):
        if url is None or narrator.settings.app_db_url == url:
            narrator.wake()


class Narrator(Periodic):
    """A daemon thread that generates due insights, woken by `wake` or every `poll_seconds`."""

    thread_name = "skippy-insight-narrator"

    def __init__(self, settings: Settings, poll_seconds: float = POLL_SECONDS) -> None:
        super().__init__(poll_seconds)
        self.settings = settings

    def start(self) -> None:
        if self.settings.openai_api_key is None:
            # It still runs: pending insights recorded by a process with a key end as templates, not pending.
            log.info("insights: no OPENAI_API_KEY, explanations are the template texts")
        super().start()
        _NARRATORS.add(self)

    def stop(self, timeout: float = 5.0) -> None:
        _NARRATORS.discard(self)
        super().stop(timeout)

    def starting(self) -> None:
        if self.settings.openai_api_key is not None:
            import openai  # noqa: F401 - its ~1 s import is paid here at start, not next to the first retrain

    def round(self) -> None:
        generate_pending(self.settings)
