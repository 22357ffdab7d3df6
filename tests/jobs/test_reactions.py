"""The closed loop's rules one by one, on small stores (SQLite and Postgres): a critical drift alerts and
queues a retrain with trigger drift; the flag off alerts and queues nothing; the cool-down; no loop
retrain after a rejected one until new bars arrive; never two at once; the end of an automatic retrain
alerts by its trigger with the right severity, once per job whoever ends it; the weekly validation's
findings; the validation and watch job kinds."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from mlops.data.generate import generate_market
from mlops.data.store import last_bar_time
from mlops.db import session_scope
from mlops.db.models import Alert, AuditLog, Job, ModelRun
from mlops.errors import UnknownAgentError
from mlops.flags import set_flag
from mlops.jobs import get_job, submit_retrain, submit_validation, submit_watch
from mlops.jobs.reactions import AUTOMATION, auto_retrain, react_to_checkups, react_to_drift, retrain_blocker
from mlops.jobs.service import finish_job, reap_dead_jobs
from mlops.jobs.worker import run_job
from mlops.pipeline.checkup import Checkup
from mlops.pipeline.drift import DriftCheck, DriftRow
from mlops.processes import HOSTNAME
from mlops.settings import Settings
from tests.factories import job as job_row
from tests.factories import model_run
from tests.factories import store as new_store


def _store(home: Path, mlflow_store: Path, db_url: str | None = None) -> Settings:
    settings = new_store(
        home,
        mlflow_store=mlflow_store,
        database_url=db_url,
        mlflow_tracking_uri=f"sqlite:///{home / 'mlflow.db'}",  # MLflow on SQLite either way: it is not under test
    )
    generate_market(settings, symbol="SYNTH", n_bars=300)
    return settings


@pytest.fixture
def both(db_url: str, tmp_path: Path, empty_mlflow_store: Path) -> Settings:
    """A store holding 300 bars of SYNTH, its app DB on SQLite and on Postgres: for the rules that query."""
    return _store(tmp_path, empty_mlflow_store, db_url)


@pytest.fixture
def settings(tmp_path: Path, empty_mlflow_store: Path) -> Settings:
    """The same store on SQLite only."""
    return _store(tmp_path, empty_mlflow_store)


# --- factories of this module: a drift check's outcome and the rows the loop reads ----------------------


def _feature(name: str, kl: float, status: str, adjusted_p: float) -> DriftRow:
    tested = {"p_value": adjusted_p / 4, "adjusted_p": adjusted_p, "null_percentile": 99.9, "tested": True}
    return DriftRow("feature", "kl_divergence", name, kl, 0.05, 0.1, status, tested)


def drift_check(agent: str = "market_insight", version: int = 1, *, critical: bool = True) -> DriftCheck:
    """A check as `execute_drift_check` returns it: vol_5 and vol_20 critical (and the predictions) when
    `critical`, every statistic ok otherwise."""
    vol = "critical" if critical else "ok"
    features = [
        _feature("vol_5", 0.42 if critical else 0.01, vol, 0.004 if critical else 0.6),
        _feature("vol_20", 0.31 if critical else 0.02, vol, 0.006 if critical else 0.7),
        _feature("ret_1", 0.02, "ok", 0.8),
    ]
    deciding = features[0]
    rows = [
        *features,
        DriftRow(
            "feature", "kl_divergence", None, deciding.value, 0.05, 0.1, vol,
            {"deciding_feature": "vol_5", "deciding_p_value": 0.001, "deciding_adjusted_p": 0.004},
        ),
        DriftRow("prediction", "wasserstein", None, 0.21 if critical else 0.02, 0.1, 0.15, vol, {"p_value": 0.002}),
        DriftRow("performance", "sharpe_degradation", None, 0.01, 0.02, 0.05, "ok", {"p_value": 0.4}),
    ]  # fmt: skip
    now = datetime.now(UTC)
    return DriftCheck(
        "c" * 16, agent, version, "SYNTH", vol if critical else "ok", 250, now - timedelta(days=250), now, rows
    )


def alerts(settings: Settings, kind: str | None = None) -> list[Alert]:
    with session_scope(settings.app_db_url) as session:
        query = select(Alert).order_by(Alert.id)
        rows = list(session.scalars(query.where(Alert.kind == kind) if kind else query))
        session.expunge_all()
        return rows


def jobs(settings: Settings, kind: str = "retrain") -> list[Job]:
    with session_scope(settings.app_db_url) as session:
        rows = list(session.scalars(select(Job).where(Job.kind == kind).order_by(Job.id)))
        session.expunge_all()
        return rows


def newest_bar(settings: Settings) -> datetime:
    found = last_bar_time(settings.app_db_url, "SYNTH")
    assert found is not None
    return found[0]


def loop_run(settings: Settings, **overrides: Any) -> int:
    with session_scope(settings.app_db_url) as session:
        return model_run(session, **({"trigger": "drift", "requested_by": AUTOMATION} | overrides)).id


# --- findings ------------------------------------------------------------------------------------------


def test_critical_drift_alerts_and_queues_a_drift_retrain(both: Settings) -> None:
    settings = both
    reactions = react_to_drift(settings, [drift_check(), drift_check("risk_assessor", 3, critical=False)])

    assert [(r.agent_type, r.kind, r.severity) for r in reactions] == [("market_insight", "drift_critical", "critical")]
    (alert,) = alerts(settings)
    assert (alert.kind, alert.severity, alert.agent_type, alert.id) == (
        "drift_critical", "critical", "market_insight", reactions[0].alert_id,
    )  # fmt: skip
    # It names each critical statistic with its value and its test; the ordinary feature is left out.
    assert "Critical drift of market_insight v1 on SYNTH (250 bars" in alert.message
    assert "feature vol_5 kl_divergence 0.42 (critical > 0.1; p 0.001, adj. p 0.004)" in alert.message
    assert "feature vol_20 kl_divergence 0.31" in alert.message and "ret_1" not in alert.message
    assert "prediction drift wasserstein 0.21 (critical > 0.15; p 0.002)" in alert.message
    assert [c["feature"] for c in alert.details["critical"]] == ["vol_5", "vol_20", None]
    assert alert.details["check_id"] == "c" * 16 and alert.details["model_version"] == 1

    (queued,) = jobs(settings)
    retrain = reactions[0].retrain
    assert retrain is not None and retrain.queued and retrain.job_id == queued.id
    assert queued.requested_by == AUTOMATION and queued.parameters["trigger"] == "drift"
    assert queued.agent_type == "market_insight" and queued.status == "queued"
    assert f"Retrain queued as job {queued.id} (run {queued.model_run_id}, trigger drift)" in alert.message
    assert alert.details["auto_retrain"] == {
        "agent_type": "market_insight",
        "queued": True, "skipped": None, "reason": retrain.reason, "job_id": queued.id,
        "model_run_id": queued.model_run_id, "trigger": "drift",
    }  # fmt: skip
    with session_scope(settings.app_db_url) as session:
        run = session.get_one(ModelRun, queued.model_run_id)
        assert (run.trigger, run.status, run.requested_by) == ("drift", "queued", AUTOMATION)
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "retrain queued")).one()
        assert audit.actor == AUTOMATION and audit.parameters["trigger"] == "drift"


def test_with_the_flag_off_the_alert_says_so_and_nothing_is_queued(settings: Settings) -> None:
    set_flag(settings, "mlops_auto_retrain", False, "cli:test")
    (reaction,) = react_to_drift(settings, [drift_check()])

    assert reaction.retrain is not None and not reaction.retrain.queued and reaction.retrain.skipped == "flag_off"
    (alert,) = alerts(settings)  # the finding only: switching the loop off is a choice, not news
    assert alert.kind == "drift_critical" and alert.severity == "critical"
    assert "No retrain queued: automatic retraining is off (flag mlops_auto_retrain)" in alert.message
    assert "`skippy flags set mlops_auto_retrain on`" in alert.message
    assert alert.details["auto_retrain"]["skipped"] == "flag_off"
    assert jobs(settings) == []


def test_a_retrain_that_cannot_be_queued_does_not_stop_the_alert(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKIPPY_FLAG_MLOPS_AUTO_RETRAIN", "maybe")
    (reaction,) = react_to_drift(settings, [drift_check()])
    assert reaction.retrain is not None and reaction.retrain.skipped == "refused"
    assert "SKIPPY_FLAG_MLOPS_AUTO_RETRAIN='maybe' is neither on nor off" in reaction.retrain.reason
    critical, skipped = alerts(settings)
    assert (critical.kind, critical.severity) == ("drift_critical", "critical")
    assert "No retrain queued: the retrain could not be queued: SKIPPY_FLAG_" in critical.message
    assert (skipped.kind, skipped.severity) == ("auto_retrain_skipped", "warning")  # something is wrong
    assert jobs(settings) == []


def test_a_scheduled_retrain_is_automatic_too_and_holds_the_loop_back(both: Settings) -> None:
    settings = both
    run_id = loop_run(settings, trigger="scheduled", requested_by="scheduler")
    held = auto_retrain(settings, "market_insight", "drift")
    assert not held.queued and held.skipped == "cooldown"
    assert f"automatic retrain run {run_id} (trigger scheduled)" in held.reason


def test_one_loop_retrain_per_agent_per_cooldown(both: Settings) -> None:
    settings = both
    # A person's retrain does not hold the loop back (a scheduled one does: below).
    loop_run(settings, trigger="manual", requested_by="cli:alice")
    first = auto_retrain(settings, "market_insight", "drift")
    assert first.queued and first.job_id is not None
    finish_job(settings, first.job_id, "failed", error="worker process exited with code -9")

    again = auto_retrain(settings, "market_insight", "performance")  # another trigger counts the same
    assert not again.queued and again.skipped == "cooldown"
    assert f"automatic retrain run {first.model_run_id} (trigger drift)" in again.reason
    assert "at most one per 24 h (SKIPPY_AUTO_RETRAIN_COOLDOWN_HOURS)" in again.reason
    assert auto_retrain(settings, "risk_assessor", "drift").queued  # per agent

    with session_scope(settings.app_db_url) as session:  # the cool-down has passed
        session.execute(
            update(ModelRun)
            .where(ModelRun.id == first.model_run_id)
            .values(created_at=datetime.now(UTC) - timedelta(hours=24, minutes=1))
        )
    assert auto_retrain(settings, "market_insight", "performance").queued
    shorter = settings.model_copy(update={"auto_retrain_cooldown_hours": 0.5})
    assert retrain_blocker(shorter, "market_insight") is not None  # the one just queued holds the lock


def test_a_skipped_loop_retrain_is_an_alert_of_its_own(settings: Settings) -> None:
    loop_run(settings)  # a loop retrain a minute ago: the next critical drift is within the cool-down
    (reaction,) = react_to_drift(settings, [drift_check()])
    assert reaction.retrain is not None and reaction.retrain.skipped == "cooldown"
    critical, skipped = alerts(settings)
    assert critical.kind == "drift_critical" and "No retrain queued: cool-down" in critical.message
    assert (skipped.kind, skipped.severity, skipped.agent_type) == ("auto_retrain_skipped", "info", "market_insight")
    assert skipped.message.startswith("market_insight: no automatic retrain after critical drift (check cccc")
    assert "cool-down" in skipped.message and skipped.details["skipped"] == "cooldown"
    assert jobs(settings) == []


def test_after_a_rejected_loop_retrain_none_until_new_bars(both: Settings) -> None:
    settings = both
    long_ago = datetime.now(UTC) - timedelta(days=3)  # outside the cool-down
    rejected = loop_run(settings, status="rejected", created_at=long_ago, data_end=newest_bar(settings))
    held = auto_retrain(settings, "market_insight", "drift")
    assert not held.queued and held.skipped == "rejected_without_new_bars"
    assert f"the automatic retrain run {rejected} of market_insight was rejected by the gate" in held.reason
    assert "no new SYNTH bars since market_insight v1 was trained" in held.reason
    assert jobs(settings) == []

    generate_market(settings, symbol="SYNTH", n_bars=3, append=True)
    assert retrain_blocker(settings, "market_insight") is None
    assert auto_retrain(settings, "market_insight", "drift").queued


def test_only_a_newer_judged_loop_retrain_lifts_the_hold(settings: Settings) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=3)
    rejected = loop_run(settings, status="rejected", created_at=long_ago, data_end=newest_bar(settings))
    loop_run(settings, status="failed", created_at=long_ago, model_version=None)  # never judged: the verdict stands
    assert retrain_blocker(settings, "market_insight") == (
        "rejected_without_new_bars",
        f"the automatic retrain run {rejected} of market_insight was rejected by the gate and no new SYNTH bars "
        f"since market_insight v1 was trained (through {newest_bar(settings):%Y-%m-%d %H:%M} UTC): "
        "none until new bars arrive",
    )
    loop_run(settings, status="succeeded", created_at=long_ago, data_end=newest_bar(settings))
    assert retrain_blocker(settings, "market_insight") is None


def test_an_agent_with_a_retrain_queued_is_not_queued_twice(both: Settings) -> None:
    settings = both
    mine = submit_retrain(settings, agent="market_insight", actor="cli:alice")
    held = auto_retrain(settings, "market_insight", "drift")
    assert not held.queued and held.skipped == "in_flight"
    assert f"already queued or running (run {mine.model_run_id})" in held.reason
    react_to_drift(settings, [drift_check()])
    react_to_drift(settings, [drift_check()])
    assert [j.id for j in jobs(settings)] == [mine.id]


def test_the_weekly_validations_findings(settings: Settings) -> None:
    checkups = [
        Checkup("market_insight", 4, "degraded", True, "market_insight v4: Sharpe 0.12 on 180 unseen bars vs 1.4 "
                "held out, p 0.003 < 0.05", {"p_value": 0.003}, unseen_bars=180),
        Checkup("risk_assessor", 2, "failed", False, "risk_assessor v2: 3 bars with a NaN or infinite price",
                {"quality": {"problems": ["3 bars with a NaN or infinite price or volume"]}}),
        Checkup("market_insight", 3, "ok", False, "no significant degradation"),
        Checkup("risk_assessor", 1, "insufficient", False, "12 unseen bars; 30 needed", required_bars=30),
        Checkup("market_insight", None, "no_champion", False, "market_insight has no champion to validate"),
    ]  # fmt: skip
    degraded, failed = react_to_checkups(settings, checkups)

    assert (degraded.kind, degraded.severity, degraded.agent_type) == (
        "performance_degraded",
        "critical",
        "market_insight",
    )
    assert degraded.message.startswith(
        "Performance of market_insight v4 degraded significantly (weekly validation): Sharpe 0.12 on 180 unseen"
    )
    assert degraded.retrain is not None and degraded.retrain.queued
    (queued,) = jobs(settings)
    assert queued.agent_type == "market_insight" and queued.parameters["trigger"] == "performance"
    assert f"Retrain queued as job {queued.id}" in degraded.message

    assert (failed.kind, failed.severity, failed.agent_type) == ("validation_failed", "critical", "risk_assessor")
    assert failed.retrain is None and "No automatic retrain" in failed.message
    assert failed.message.startswith("Weekly validation of risk_assessor v2 failed: 3 bars with a NaN")
    stored = {a.kind: a for a in alerts(settings)}
    assert set(stored) == {"performance_degraded", "validation_failed"}
    assert stored["validation_failed"].details["checkup"]["quality"]["problems"]
    assert stored["performance_degraded"].details["auto_retrain"]["job_id"] == queued.id


# --- the end of an automatic retrain ------------------------------------------------------------------

VERDICT = "rejected against champion v1 (champion scored): beats_champion_sharpe FAILED: -0.4 [-0.9, 0.1], p 0.93"


def retrain_job(settings: Settings, trigger: str, agent: str = "market_insight") -> int:
    """A running retrain job of `trigger`, with its running model run."""
    with session_scope(settings.app_db_url) as session:
        run = model_run(session, agent_type=agent, status="running", trigger=trigger, model_version=None)
        return job_row(
            session,
            kind="retrain",
            agent_type=agent,
            status="running",
            parameters={"symbol": "SYNTH", "hyperparameters": {}, "trigger": trigger},
            model_run_id=run.id,
            requested_by=AUTOMATION if trigger in ("drift", "performance") else "scheduler",
        ).id


def retrain_result(status: str, deployment: str | None, version: int | None = 2) -> dict[str, Any]:
    reason = VERDICT if status == "rejected" else "passed against champion v1: beats_champion_sharpe ok"
    return {
        "agent_type": "market_insight",
        "status": status,
        "deployment_status": deployment,
        "model_version": version,
        "reason": reason,
        "champion_version": 1,
        "validation": {"passed": status == "succeeded", "verdict": reason},
    }


# (trigger, how it ended, its deployment) → the alert (kind, severity), or None
ENDINGS: list[tuple[str, str, str | None, tuple[str, str] | None]] = [
    ("scheduled", "rejected", "rejected", ("retrain_rejected", "info")),  # routine: not a page
    ("drift", "rejected", "rejected", ("retrain_rejected", "warning")),
    ("performance", "rejected", "rejected", ("retrain_rejected", "warning")),
    ("scheduled", "failed", None, ("retrain_failed", "warning")),
    ("drift", "failed", None, ("retrain_failed", "warning")),
    ("drift", "succeeded", "promoted", ("retrain_promoted", "info")),  # the answer to the critical alert
    ("scheduled", "succeeded", "promoted", None),  # routine: the deployment history shows it
    ("drift", "cancelled", None, None),  # a person's decision
    ("manual", "rejected", "rejected", None),  # a person's retrain: that person watches it
    ("api", "failed", None, None),
]


def test_the_end_of_an_automatic_retrain_alerts_by_trigger(both: Settings) -> None:
    settings = both
    for trigger, status, deployment, expected in ENDINGS:
        case = f"{trigger} {status}"
        job_id = retrain_job(settings, trigger)
        error = {"rejected": VERDICT, "failed": "TrainingDivergedError: loss became nan at epoch 3"}.get(status)
        result = retrain_result(status, deployment) if status != "cancelled" else None
        assert finish_job(settings, job_id, status, result=result, error=error), case
        raised = [a for a in alerts(settings) if a.details.get("job_id") == job_id]
        assert [(a.kind, a.severity) for a in raised] == ([expected] if expected else []), case
        if expected is None:
            continue
        (alert,) = raised
        job = get_job(settings, job_id)
        assert alert.agent_type == "market_insight" and alert.details["trigger"] == trigger, case
        assert alert.details["model_run_id"] == job.model_run_id, case
        assert f"The {trigger} retrain of market_insight (job {job_id}, run {job.model_run_id})" in alert.message
        if status == "rejected":
            assert VERDICT in alert.message and alert.details["verdict"] == VERDICT, case
            assert alert.details["validation"]["verdict"] == VERDICT and "the champion v1 stays" in alert.message
            loop_note = "no automatic retrain of it until new bars arrive"
            assert (loop_note in alert.message) == (trigger != "scheduled"), case
        elif status == "failed":
            assert "failed: TrainingDivergedError: loss became nan at epoch 3; nothing was deployed" in alert.message
        else:
            assert "passed the gate: v2 is the champion now" in alert.message, case
    assert len(alerts(settings)) == sum(1 for *_, expected in ENDINGS if expected)


def test_a_job_end_reacts_once_whoever_ends_it(both: Settings) -> None:
    settings = both
    job_id = retrain_job(settings, "drift")
    assert finish_job(settings, job_id, "rejected", result=retrain_result("rejected", "rejected"), error=VERDICT)
    assert not finish_job(settings, job_id, "failed", error="worker process exited with code 1")  # too late
    (alert,) = alerts(settings)
    assert (alert.kind, alert.count) == ("retrain_rejected", 1)
    assert get_job(settings, job_id).status == "rejected"


def test_a_dead_workers_automatic_retrain_alerts_through_the_reaper(settings: Settings) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    job_id = retrain_job(settings, "scheduled", agent="risk_assessor")
    with session_scope(settings.app_db_url) as session:
        session.execute(update(Job).where(Job.id == job_id).values(pid=gone.pid, hostname=HOSTNAME))
    assert reap_dead_jobs(settings) == [job_id]
    assert reap_dead_jobs(settings) == []
    (alert,) = alerts(settings)
    assert (alert.kind, alert.severity, alert.agent_type) == ("retrain_failed", "warning", "risk_assessor")
    assert f"worker process {gone.pid} on {HOSTNAME} died before finishing" in alert.message


# --- the validation and watch job kinds --------------------------------------------------------------


@pytest.fixture
def handlers() -> Iterator[None]:
    """run_job installs signal handlers for its work: put the test process's back."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM)}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


def test_validation_and_watch_jobs_are_queued_like_the_others(settings: Settings) -> None:
    with pytest.raises(UnknownAgentError, match="unknown agent 'alpha'; known agents: market_insight, risk_assessor"):
        submit_validation(settings, agent="alpha", actor="scheduler")
    with pytest.raises(UnknownAgentError):
        submit_watch(settings, agent="alpha", actor="scheduler")
    assert jobs(settings, "validation") == [] and jobs(settings, "watch") == []
    every = submit_validation(settings, agent=None, actor="scheduler")
    one = submit_watch(settings, agent="risk_assessor", actor="api:ops")
    assert (every.kind, every.agent_type, every.requested_by, every.status) == (
        "validation",
        None,
        "scheduler",
        "queued",
    )
    assert (one.kind, one.agent_type, one.requested_by) == ("watch", "risk_assessor", "api:ops")
    with session_scope(settings.app_db_url) as session:
        actions = [(a.action, a.actor) for a in session.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert ("validation queued", "scheduler") in actions and ("watch queued", "api:ops") in actions


def test_a_validation_with_no_champion_anywhere_runs_and_finds_nothing(settings: Settings, handlers: None) -> None:
    queued = submit_validation(settings, agent=None, actor="scheduler")
    assert run_job(settings, queued.id) == 0
    done = get_job(settings, queued.id)
    assert done.status == "succeeded", done.error
    assert done.result == {"checkups": [], "reactions": [], "errors": []}
    assert alerts(settings) == []


def test_a_failed_safety_check_is_an_alert(settings: Settings) -> None:
    """A drift check, weekly validation or champion watch that fails must not go unnoticed (a watch failing
    hour after hour would leave a bad champion in place); a cancelled one is a person's call."""
    for kind, status in (("watch", "failed"), ("validation", "cancelled")):
        with session_scope(settings.app_db_url) as session:
            job_id = job_row(session, kind=kind, agent_type=None, status="running", requested_by="scheduler").id
        finish_job(settings, job_id, status, error="KeyError: 'previous champion artifact'")
    (alert,) = alerts(settings)
    assert (alert.kind, alert.severity, alert.agent_type) == ("watch_failed", "warning", None)
    assert "The champion watch (auto-rollback) job" in alert.message and "previous champion artifact" in alert.message
