"""The closed loop end to end on the synthetic market (issue 12, "Done when"): a champion trained on a
calm regime; a volatile regime appended; the scheduler fires the drift check at its scheduled second;
the job dispatcher runs it in a worker process; it is critical → a JSON webhook and an SMTP server on
loopback receive the alert (sent by that short-lived worker before it exits) → a retrain with trigger
`drift` is queued and run by the dispatcher → the gate promotes or rejects → `model_deployments`,
`alerts`, the job history and the scheduled execution tell the story; the inline CLI check that follows
reacts the same way and the cool-down holds. With `mlops_auto_retrain` off, the alert arrives and no
retrain runs. Real processes, real servers, real SQLite stores."""

from __future__ import annotations

import email
import email.policy
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mlops.alerts import list_alerts
from mlops.data.generate import generate_market
from mlops.db import session_scope
from mlops.db.models import AlertDelivery, ModelDeployment, ModelRun
from mlops.flags import set_flag
from mlops.jobs import JobRecord, list_jobs
from mlops.jobs.dispatcher import Dispatcher
from mlops.jobs.reactions import AUTOMATION
from mlops.jobs.service import TERMINAL
from mlops.pipeline.market import generate_bars
from mlops.pipeline.retrain import retrain
from mlops.scheduler import Scheduler, list_executions
from mlops.settings import Settings
from tests.alerts.loopback import HttpRecorder, SmtpRecorder, http_recorder, smtp_recorder
from tests.factories import store

pytestmark = pytest.mark.slow
NEVER = "0 0 29 2 *"  # the other schedules: 29 February at midnight, not during a test
VOL_FEATURES = ("vol_5", "vol_20", "vol_60", "hl_range")


@dataclass
class Market:
    """A store whose champion (market_insight v1) was trained on a calm regime that a volatile one followed,
    with the alert channels pointed at the loopback servers."""

    settings: Settings
    webhook: HttpRecorder
    smtp: SmtpRecorder

    def posted(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.webhook.requests]

    def mails(self) -> list[Message]:
        return [email.message_from_bytes(m.content, policy=email.policy.default) for m in self.smtp.messages]


@pytest.fixture
def market(tmp_path: Path, empty_mlflow_store: Path) -> Iterator[Market]:
    with http_recorder() as webhook, smtp_recorder() as smtp:
        settings = store(
            tmp_path,
            mlflow_store=empty_mlflow_store,
            drift_report=False,
            sharpe_tolerance=10.0,  # the first champion is not under test here
            min_accuracy=0.0,
            alert_webhook_url=webhook.url("/hooks/skippy"),
            alert_smtp_url=f"smtp://127.0.0.1:{smtp.port}",
            alert_email_to=["ops@example.com"],
            scheduler_poll_seconds=0.5,
            **{f"schedule_{name}": NEVER for name in ("retrain_market_insight", "retrain_risk_assessor",
                                                     "weekly_validation", "champion_watch")},
        )  # fmt: skip
        generate_market(settings, symbol="SYNTH", n_bars=1200, regime="normal")
        first = retrain(settings, actor="test", agent="market_insight")
        assert first.deployment_status == "promoted", first.reason
        generate_bars(settings, actor="test", symbol="SYNTH", n_bars=250, regime="volatile", append=True)
        yield Market(settings, webhook, smtp)


@dataclass
class Automation:
    """The scheduler (its drift check due a few seconds from now, once) and the job dispatcher, running."""

    settings: Settings
    fire_at: datetime


def start_automation(settings: Settings) -> tuple[Automation, Callable[[], None]]:
    fire_at = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
    settings = settings.model_copy(
        update={"schedule_drift_check": f"{fire_at.second} {fire_at.minute} {fire_at.hour} * * *"}
    )  # six fields, seconds first: this second of every day, i.e. once during the test
    scheduler, dispatcher = Scheduler(settings), Dispatcher(settings, poll_seconds=0.2)
    scheduler.start()
    dispatcher.start()

    def stop() -> None:
        scheduler.stop()
        dispatcher.stop()

    return Automation(settings, fire_at), stop


def wait_for(what: str, found: Callable[[], Any], timeout: float = 40.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def ended(settings: Settings, kind: str) -> list[JobRecord]:
    return [j for j in list_jobs(settings, kind=kind) if j.status in TERMINAL]


def kinds_posted(market: Market) -> list[str]:
    return [p["kind"] for p in market.posted()]


def delivered(settings: Settings, alert_id: int) -> dict[str, str]:
    with session_scope(settings.app_db_url) as session:
        rows = session.scalars(select(AlertDelivery).where(AlertDelivery.alert_id == alert_id))
        return {r.channel: r.status for r in rows}


def test_critical_drift_alerts_people_and_retrains_through_the_gate(market: Market) -> None:
    settings = market.settings
    automation, stop = start_automation(settings)
    try:
        (drift_job,) = wait_for("the scheduled drift check to end", lambda: ended(settings, "drift"))
        (retrain_job,) = wait_for("the loop's retrain to end", lambda: ended(settings, "retrain"))
        outcome_kind = "retrain_promoted" if retrain_job.status == "succeeded" else "retrain_rejected"
        both = {"drift_critical", outcome_kind}
        wait_for("the webhook to receive both alerts", lambda: both <= set(kinds_posted(market)))
        mailed = ["drift_critical"] + (["retrain_rejected"] if outcome_kind == "retrain_rejected" else [])  # warning+
        wait_for("the e-mails", lambda: len(market.smtp.messages) >= len(mailed))
        (execution,) = wait_for(
            "the execution to settle",
            lambda: [e for e in list_executions(settings, job_name="drift_check") if e.status != "running"],
        )
    finally:
        stop()

    # The scheduler ran the drift check at its scheduled second, as `scheduler`, and recorded what it found.
    assert (execution.trigger, execution.requested_by, execution.status) == ("schedule", "scheduler", "succeeded")
    assert execution.scheduled_for == automation.fire_at and execution.job_ids == [drift_job.id]
    assert "market_insight critical" in execution.result["summary"]

    # The drift job: critical, and its result says what the loop did about it.
    assert (drift_job.requested_by, drift_job.status) == ("scheduler", "succeeded")
    (check,) = drift_job.result["checks"]
    assert (check["agent_type"], check["model_version"], check["status"]) == ("market_insight", 1, "critical")
    (reaction,) = drift_job.result["reactions"]
    assert reaction["kind"] == "drift_critical" and reaction["retrain"]["queued"] is True
    assert reaction["retrain"]["job_id"] == retrain_job.id

    # People were told: the webhook got the alert as JSON, the SMTP server as an e-mail, both sent.
    alert = next(a for a in list_alerts(settings, kind="drift_critical"))
    assert (alert.severity, alert.agent_type, alert.id) == ("critical", "market_insight", reaction["alert_id"])
    posted = next(p for p in market.posted() if p["kind"] == "drift_critical")
    assert (posted["id"], posted["severity"], posted["agent"]) == (alert.id, "critical", "market_insight")
    assert posted["message"] == alert.message and "Critical drift of market_insight v1 on SYNTH" in alert.message
    assert any(f"feature {f} kl_divergence" in alert.message for f in VOL_FEATURES) and "adj. p" in alert.message
    assert f"Retrain queued as job {retrain_job.id}" in alert.message
    assert posted["details"]["check_id"] == check["check_id"]
    mail = next(m for m in market.mails() if "drift_critical" in str(m["Subject"]))
    assert "[Skippy CRITICAL] drift_critical on market_insight" in str(mail["Subject"])
    assert "ops@example.com" in str(mail["To"]) and market.smtp.messages[0].rcpt_tos == ["ops@example.com"]
    assert delivered(settings, alert.id) == {"webhook": "sent", "email": "sent"}

    # The retrain: queued by automation with trigger drift, judged by the ordinary gate.
    assert retrain_job.requested_by == AUTOMATION and retrain_job.parameters["trigger"] == "drift"
    assert retrain_job.status in ("succeeded", "rejected"), retrain_job.error
    with session_scope(settings.app_db_url) as session:
        run = session.get_one(ModelRun, retrain_job.model_run_id)
        assert (run.trigger, run.requested_by, run.model_version) == ("drift", AUTOMATION, 2)
        champion_moves = [
            (d.to_version, d.actor, d.model_run_id)
            for d in session.scalars(
                select(ModelDeployment).where(ModelDeployment.alias == "champion").order_by(ModelDeployment.id)
            )
        ]
    outcome = next(a for a in list_alerts(settings, kind=outcome_kind))
    assert outcome.details["job_id"] == retrain_job.id and outcome.details["trigger"] == "drift"
    if retrain_job.status == "succeeded":  # promoted: the deployment history names the loop's run
        assert run.deployment_status == "promoted" and champion_moves[-1] == (2, AUTOMATION, run.id)
        assert outcome.severity == "info" and "v2 is the champion now" in outcome.message
    else:  # rejected: the champion never changed, and people hear why
        assert run.deployment_status == "rejected" and [v for v, *_ in champion_moves] == [1]
        assert outcome.severity == "warning" and run.error and run.error in outcome.message
        assert "the champion v1 stays" in outcome.message
    assert [str(m["Subject"]).split(" on ")[0] for m in market.mails()] == [
        f"[Skippy {'CRITICAL' if kind == 'drift_critical' else 'WARNING'}] {kind}" for kind in mailed
    ]  # e-mail is for warnings and up: a promotion (info) reaches the webhook only

    # The job history tells it in order: the scheduler's check, then the loop's retrain.
    assert [(j.kind, j.requested_by) for j in reversed(list_jobs(settings))] == [
        ("drift", "scheduler"),
        ("retrain", AUTOMATION),
    ]

    # An inline check from the CLI reacts the same way, and the cool-down holds: no second retrain.
    output = cli_drift(market)
    critical = "critical alert drift_critical" in output
    assert critical or retrain_job.status == "succeeded", output  # rejected: the same champion, the same bars
    if critical:
        assert "No retrain queued: cool-down" in output
        again = next(a for a in list_alerts(settings, kind="drift_critical"))
        assert again.id == alert.id and again.count == 2  # deduplicated: a repeat notifies no one
        assert kinds_posted(market).count("drift_critical") == 1
        skipped = next(a for a in list_alerts(settings, kind="auto_retrain_skipped"))
        assert skipped.severity == "info" and skipped.details["skipped"] == "cooldown"
        assert "auto_retrain_skipped" in kinds_posted(market)  # sent before the CLI process returned
    assert len(list_jobs(settings, kind="retrain")) == 1


def cli_drift(market: Market) -> str:
    """`skippy ai drift --agent market_insight` in this process, its settings from the environment."""
    from typer.testing import CliRunner

    from mlops.cli import app
    from mlops.settings import get_settings

    env: dict[str, str | None] = {
        "SKIPPY_HOME": str(market.settings.home),
        "SKIPPY_DRIFT_REPORT": "false",
        "SKIPPY_ALERT_WEBHOOK_URL": market.webhook.url("/hooks/skippy"),
        "MLFLOW_TRACKING_URI": None,
        "DATABASE_URL": None,
        "COLUMNS": "250",
    }
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["ai", "drift", "--agent", "market_insight"], env=env)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.stderr
    return " ".join(result.stdout.split())


def test_with_auto_retrain_off_the_alert_arrives_and_no_retrain_runs(market: Market) -> None:
    settings = market.settings
    set_flag(settings, "mlops_auto_retrain", False, "cli:ops")
    _, stop = start_automation(settings)
    try:
        (drift_job,) = wait_for("the scheduled drift check to end", lambda: ended(settings, "drift"))
        wait_for("the webhook to receive the alert", lambda: "drift_critical" in kinds_posted(market))
        wait_for("the e-mail", lambda: market.smtp.messages)
        time.sleep(1.0)  # a few more dispatcher ticks: anything queued would have started by now
    finally:
        stop()

    assert drift_job.status == "succeeded" and drift_job.result["checks"][0]["status"] == "critical"
    (reaction,) = drift_job.result["reactions"]
    assert reaction["retrain"]["skipped"] == "flag_off" and reaction["retrain"]["job_id"] is None
    (alert,) = list_alerts(settings)
    assert (alert.kind, alert.severity) == ("drift_critical", "critical")
    assert "No retrain queued: automatic retraining is off (flag mlops_auto_retrain)" in alert.message
    assert kinds_posted(market) == ["drift_critical"] and market.posted()[0]["message"] == alert.message
    assert "drift_critical" in str(market.mails()[0]["Subject"])
    assert list_jobs(settings, kind="retrain") == []
    with session_scope(settings.app_db_url) as session:
        assert [r.trigger for r in session.scalars(select(ModelRun))] == ["manual"]  # the first champion only
        champion = select(ModelDeployment.to_version).where(ModelDeployment.alias == "champion")
        assert list(session.scalars(champion)) == [1]
