"""The scheduled retrain through the real retrain service (its run queued with the agent's lock, MLflow
store bound): skipped while the champion was trained on the newest bars, queued with trigger
`scheduled` once new bars arrive, and skipped naming the holder while that retrain is queued."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy import select

from mlops.data.store import last_bar_time, upsert_bars
from mlops.db import session_scope
from mlops.db.models import Job, ModelRun
from mlops.scheduler import run_scheduled, trigger, triggers
from tests.conftest import bars_frame
from tests.factories import deployment, model_run, store


def test_a_scheduled_retrain_waits_for_new_bars_and_never_queues_twice(
    tmp_path: Path, empty_mlflow_store: Path
) -> None:
    settings = store(tmp_path, mlflow_store=empty_mlflow_store)
    upsert_bars(settings.app_db_url, "SYNTH", bars_frame(300), source="test")
    newest = last_bar_time(settings.app_db_url, "SYNTH")
    assert newest is not None
    with session_scope(settings.app_db_url) as session:
        run = model_run(session, agent_type="market_insight", symbol="SYNTH", data_end=newest[0])
        deployment(session, agent_type="market_insight", to_version=run.model_version, model_run_id=run.id)
    retrain_trigger = triggers(settings)["retrain_market_insight"]
    night = datetime(2026, 11, 30, 2, 0, 1, tzinfo=UTC)

    stale = run_scheduled(settings, "retrain_market_insight", retrain_trigger, now=night)
    assert stale is not None and stale.status == "skipped"
    assert stale.result["reason"] == (
        f"no new SYNTH bars since market_insight v1 was trained (through {newest[0]:%Y-%m-%d %H:%M} UTC)"
    )

    bar = bars_frame(1).set_axis(pd.DatetimeIndex([newest[0] + timedelta(days=1)], tz=UTC))
    upsert_bars(settings.app_db_url, "SYNTH", bar, source="test")
    fresh = run_scheduled(settings, "retrain_market_insight", retrain_trigger, now=night + timedelta(days=1))
    assert fresh is not None and fresh.status == "running", fresh
    assert "newer than" in fresh.result["why"]
    with session_scope(settings.app_db_url) as session:
        (job,) = session.scalars(select(Job).where(Job.kind == "retrain")).all()
        queued = session.get(ModelRun, job.model_run_id)
        assert queued is not None
        assert fresh.job_ids == [job.id] and fresh.result["model_run_id"] == queued.id
        assert (job.status, job.requested_by, job.parameters["trigger"]) == ("queued", "scheduler", "scheduled")
        assert (queued.status, queued.trigger, queued.requested_by) == ("queued", "scheduled", "scheduler")
        queued_id, job_id = queued.id, job.id

    again = trigger(settings, "retrain_market_insight", actor="cli:alice")
    assert again.status == "skipped" and again.requested_by == "cli:alice"
    assert again.result["reason"] == (
        f"a retrain of market_insight is already queued or running: run {queued_id} (queued as job {job_id})"
    )
    with session_scope(settings.app_db_url) as session:
        assert len(session.scalars(select(Job)).all()) == 1


def test_a_rejected_scheduled_retrain_is_not_repeated_on_the_same_bars(
    tmp_path: Path, empty_mlflow_store: Path
) -> None:
    """Bars arrived since the champion, a scheduled retrain on them was rejected, and none came since (a
    weekend, a feed down): the next night's retrain would repeat the same verdict, so it is skipped."""
    settings = store(tmp_path, mlflow_store=empty_mlflow_store)
    upsert_bars(settings.app_db_url, "SYNTH", bars_frame(300), source="test")
    newest = last_bar_time(settings.app_db_url, "SYNTH")
    assert newest is not None
    with session_scope(settings.app_db_url) as session:
        older = newest[0] - timedelta(days=5)
        champion = model_run(session, agent_type="market_insight", symbol="SYNTH", data_end=older)
        deployment(session, agent_type="market_insight", to_version=champion.model_version, model_run_id=champion.id)
        rejected = model_run(
            session, agent_type="market_insight", symbol="SYNTH", data_end=newest[0], trigger="scheduled",
            status="rejected", requested_by="scheduler",
        )  # fmt: skip
        rejected_id = rejected.id
    night = datetime(2026, 11, 30, 2, 0, 1, tzinfo=UTC)
    retrain_trigger = triggers(settings)["retrain_market_insight"]
    skipped = run_scheduled(settings, "retrain_market_insight", retrain_trigger, now=night)
    assert skipped is not None and skipped.status == "skipped"
    reason = skipped.result["reason"]
    assert f"the automatic retrain run {rejected_id} of market_insight was rejected by the gate" in reason
    assert "none until new bars arrive" in reason
