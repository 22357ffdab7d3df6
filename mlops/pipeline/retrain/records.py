"""A retrain's app-DB records: its data quality report; then, once a version is registered, the drift
baseline (computed while the version is validated and logged), feature importance, performance history
and the run's verdict (written before any alias moves, so a run killed later keeps it); and how the run
ended."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pandas as pd
from sqlalchemy import update

from mlops.agents.training import Dataset, TrainedAgent
from mlops.data.features import FEATURE_NAMES
from mlops.db import session_scope
from mlops.db.models import DriftBaseline, FeatureImportance, ModelPerformanceHistory, ModelRun, TrainingDataQuality
from mlops.pipeline.locks import release_lock
from mlops.pipeline.quality import QualityReport
from mlops.pipeline.validation import ValidationDecision
from mlops.settings import Settings

REPORTED = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "sharpe_ratio",
    "max_drawdown",
    "turnover",
    "buy_hold_sharpe_ratio",
    "total_return",
)


def bars_end(bars: pd.DataFrame) -> datetime | None:
    """The newest bar's timestamp (UTC) of a frame indexed by time, or None when it is empty."""
    return pd.Timestamp(bars.index.max()).to_pydatetime() if len(bars) else None


def _window_bounds(data: Dataset, part: str) -> tuple[datetime | None, datetime | None]:
    window = data.window(part)
    if window is None:
        return None, None
    return pd.Timestamp(window[0]).to_pydatetime(), pd.Timestamp(window[1]).to_pydatetime()


def record_quality(
    settings: Settings,
    run_id: int,
    agent: str,
    symbol: str,
    data: Dataset,
    quality: QualityReport,
    data_end: datetime | None,
) -> None:
    """The run's data quality report, and the newest bar its data held (`model_runs.data_end`)."""
    sizes = data.splits.sizes()
    with session_scope(settings.app_db_url) as session:
        session.execute(update(ModelRun).where(ModelRun.id == run_id).values(data_end=data_end))
        session.add(
            TrainingDataQuality(
                model_run_id=run_id,
                agent_type=agent,
                symbol=symbol,
                n_bars=data.n_bars,
                n_train=sizes["train"],
                n_validation=sizes["validation"],
                n_test=sizes["test"],
                n_non_finite=data.n_non_finite,
                n_duplicate_ts=data.n_duplicate_ts,
                positive_share=quality.positive_share,
                passed=quality.passed,
                problems=quality.problems,
                checks=quality.checks,
            )
        )


def drift_baseline_job(settings: Settings, trained: TrainedAgent, data: Dataset) -> Callable[[], dict[str, Any]]:
    """The computation of the training window's drift baseline (drift.baseline: bins, the bootstrap nulls,
    ...), its inputs read now: the call touches no pandas object and nothing the retrain goes on to use."""
    from drift.baseline import compute_baseline

    x_train = data.features.to_numpy()[data.splits.train]
    return partial(
        compute_baseline,
        x_train,
        list(FEATURE_NAMES),
        trained.predict(x_train),
        baseline_sharpe=trained.test["sharpe_ratio"],
        periods_per_year=data.periods_per_year,
        baseline_returns=trained.test_returns,
        risk_free_rate=settings.risk_free_rate,
        bins=settings.drift_bins,
        seed=settings.seed,
        floor=settings.drift_floor,
        windows=(*settings.drift_null_windows, settings.drift_window_bars),
        draws=settings.drift_null_draws,
        prediction_draws=settings.drift_null_prediction_draws,
        block_share=settings.drift_null_block_share,
    )


def start_drift_baseline(settings: Settings, trained: TrainedAgent, data: Dataset) -> Future[dict[str, Any]]:
    """The drift baseline, computed in a worker thread while the retrain validates, logs and registers: its
    time is numpy's, mostly outside the GIL; theirs is Python's and the stores'. `record_training` waits
    for it (and raises what it raised), so the baseline row is still written before any alias moves."""
    job = drift_baseline_job(settings, trained, data)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drift-baseline")
    try:
        return executor.submit(job)
    finally:
        executor.shutdown(wait=False)  # the thread ends with its one task


def record_training(
    settings: Settings,
    run_id: int,
    agent: str,
    version: int,
    trained: TrainedAgent,
    data: Dataset,
    symbol: str,
    decision: ValidationDecision,
    pending_baseline: Future[dict[str, Any]] | None = None,
) -> None:
    """The registered version's drift baseline (started with `start_drift_baseline`, else started here),
    feature importance, performance history and the run's verdict, in one transaction."""
    pending = pending_baseline or start_drift_baseline(settings, trained, data)
    baseline = pending.result()
    reference_start, reference_end = _window_bounds(data, "train")
    with session_scope(settings.app_db_url) as session:
        session.add(
            DriftBaseline(
                agent_type=agent,
                model_version=version,
                symbol=symbol,
                reference_start=reference_start,
                reference_end=reference_end,
                payload=baseline,
            )
        )
        for rank, (feature, importance, std) in enumerate(trained.importance, start=1):
            session.add(
                FeatureImportance(
                    agent_type=agent,
                    model_version=version,
                    model_run_id=run_id,
                    feature=feature,
                    importance=importance,
                    importance_std=std,
                    rank=rank,
                )
            )
        for window, metrics in (("validation", trained.validation), ("test", trained.test)):
            start, end = _window_bounds(data, window)
            session.add(
                ModelPerformanceHistory.from_metrics(
                    metrics,
                    agent_type=agent,
                    model_version=version,
                    model_run_id=run_id,
                    window=window,
                    window_start=start,
                    window_end=end,
                )
            )
        row = session.get_one(ModelRun, run_id)
        row.model_version = version
        row.validation = decision.record()  # before any alias moves: a run killed later keeps its verdict
        row.metrics = {k: trained.validation[k] for k in (*REPORTED, "val_loss")} | {
            f"test_{k}": trained.test[k] for k in REPORTED
        }


def record_outcome(
    settings: Settings,
    run_id: int,
    agent: str,
    *,
    status: str,
    deployment: str | None,
    error: str | None,
    validation: dict[str, object] | None = None,
) -> int | None:
    """End the run (never overwriting an outcome already recorded) and release its agent's lock, in one
    transaction; returns the run's model version, if one was registered."""
    with session_scope(settings.app_db_url) as session:
        row = session.get_one(ModelRun, run_id)
        if row.status in ("queued", "running"):
            row.status, row.deployment_status, row.error = status, deployment, error
            row.finished_at = datetime.now(UTC)
            if validation is not None:
                row.validation = validation
        release_lock(session, agent, run_id)
        return row.model_version
