"""App database tables. MLflow owns params/metrics/artifacts/versions; these rows mirror what the
API lists and hold what MLflow has no place for (job lifecycle, deployments, quality, drift)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps are UTC, and come back aware on every backend (SQLite drops the offset it was
    given, so a naive value read from it is UTC by construction)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
        datetime: UTCDateTime(),
    }


class MarketBar(Base):
    __tablename__ = "market_bars"
    __table_args__ = (UniqueConstraint("symbol", "ts", name="uq_market_bars_symbol_ts"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32))
    ts: Mapped[datetime]
    open: Mapped[float] = mapped_column(Float)
    high: Mapped[float] = mapped_column(Float)
    low: Mapped[float] = mapped_column(Float)
    close: Mapped[float] = mapped_column(Float)
    volume: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(64), default="import")


class ModelRun(Base):
    __tablename__ = "model_runs"
    __table_args__ = (
        Index("ix_model_runs_agent_created", "agent_type", "created_at"),
        Index("ix_model_runs_status", "status"),
        Index("ix_model_runs_updated", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    trigger: Mapped[str] = mapped_column(String(16), default="manual")
    requested_by: Mapped[str] = mapped_column(String(128), default="cli")
    symbol: Mapped[str | None] = mapped_column(String(32))
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64), index=True)
    mlflow_experiment_id: Mapped[str | None] = mapped_column(String(64))
    model_version: Mapped[int | None]
    deployment_status: Mapped[str | None] = mapped_column(String(16))
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The promotion gate's verdict: comparison made, paired test, naive baselines, rule in words.
    validation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    # The newest bar the run's data held: a scheduled retrain with no bar after its champion's is skipped.
    data_end: Mapped[datetime | None]
    pid: Mapped[int | None]
    hostname: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # Set on every insert and update (ORM or Core `update()`): the API's list cache keys on it.
    updated_at: Mapped[datetime | None] = mapped_column(default=utcnow, onupdate=utcnow)


class AgentLock(Base):
    """At most one retrain per agent, queued or running: the primary key is the lock. A queued run's
    lock has no process (pid/hostname null) until its worker starts it."""

    __tablename__ = "agent_locks"

    agent_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_run_id: Mapped[int] = mapped_column(ForeignKey("model_runs.id"))
    pid: Mapped[int | None]
    hostname: Mapped[str | None] = mapped_column(String(255))
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelDeployment(Base):
    __tablename__ = "model_deployments"
    __table_args__ = (Index("ix_model_deployments_agent_created", "agent_type", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_type: Mapped[str] = mapped_column(String(32))
    alias: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))  # promote | rollback | challenger | retire
    from_version: Mapped[int | None]
    to_version: Mapped[int]
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text, default="")
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    model_run_id: Mapped[int | None] = mapped_column(ForeignKey("model_runs.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FeatureImportance(Base):
    __tablename__ = "feature_importance"
    __table_args__ = (Index("ix_feature_importance_agent_version", "agent_type", "model_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_type: Mapped[str] = mapped_column(String(32))
    model_version: Mapped[int]
    model_run_id: Mapped[int | None] = mapped_column(ForeignKey("model_runs.id"))
    feature: Mapped[str] = mapped_column(String(64))
    importance: Mapped[float]
    importance_std: Mapped[float]
    rank: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelPerformanceHistory(Base):
    __tablename__ = "model_performance_history"
    __table_args__ = (Index("ix_perf_history_agent_recorded", "agent_type", "recorded_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_type: Mapped[str] = mapped_column(String(32))
    model_version: Mapped[int]
    model_run_id: Mapped[int | None] = mapped_column(ForeignKey("model_runs.id"))
    window: Mapped[str] = mapped_column(String(16))  # validation | test | live | paper
    window_start: Mapped[datetime | None]
    window_end: Mapped[datetime | None]
    n_samples: Mapped[int]
    accuracy: Mapped[float | None]
    precision: Mapped[float | None]
    recall: Mapped[float | None]
    f1: Mapped[float | None]
    log_loss: Mapped[float | None]
    sharpe_ratio: Mapped[float | None]
    max_drawdown: Mapped[float | None]
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)

    @classmethod
    def from_metrics(cls, metrics: dict[str, float], **columns: Any) -> ModelPerformanceHistory:
        """A row whose metric columns come from a `score()` dict (which is also kept whole)."""
        named = ("accuracy", "precision", "recall", "f1", "log_loss", "sharpe_ratio", "max_drawdown")
        return cls(n_samples=int(metrics["n_samples"]), metrics=metrics, **{k: metrics[k] for k in named}, **columns)


class TrainingDataQuality(Base):
    __tablename__ = "training_data_quality"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_run_id: Mapped[int] = mapped_column(ForeignKey("model_runs.id"), index=True)
    agent_type: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(32))
    n_bars: Mapped[int]
    n_train: Mapped[int]
    n_validation: Mapped[int]
    n_test: Mapped[int]
    n_non_finite: Mapped[int]
    n_duplicate_ts: Mapped[int]
    positive_share: Mapped[float | None]
    passed: Mapped[bool] = mapped_column(Boolean)
    problems: Mapped[list[Any]] = mapped_column(default=list)
    checks: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class HyperparameterSweep(Base):
    __tablename__ = "hyperparameter_sweeps"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    agent_type: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str | None] = mapped_column(String(32))
    parameter_grid: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    study_name: Mapped[str | None] = mapped_column(String(128))
    parent_run_id: Mapped[str | None] = mapped_column(String(64))
    objective_metric: Mapped[str] = mapped_column(String(64), default="sharpe_ratio")
    direction: Mapped[str] = mapped_column(String(8), default="maximize")
    n_trials: Mapped[int] = mapped_column(default=0)
    n_complete: Mapped[int] = mapped_column(default=0)
    n_failed: Mapped[int] = mapped_column(default=0)
    best_trial_number: Mapped[int | None]
    best_value: Mapped[float | None]
    best_params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Selection bias of the winner: Deflated Sharpe Ratio for the number of trials, and its inputs.
    selection: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    requested_by: Mapped[str] = mapped_column(String(128), default="cli")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class SweepResult(Base):
    __tablename__ = "sweep_results"
    __table_args__ = (UniqueConstraint("sweep_id", "trial_number", name="uq_sweep_results_trial"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sweep_id: Mapped[int] = mapped_column(ForeignKey("hyperparameter_sweeps.id"), index=True)
    trial_number: Mapped[int]
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    objective_value: Mapped[float | None]
    status: Mapped[str] = mapped_column(String(16))
    child_run_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    duration_seconds: Mapped[float | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DriftMetric(Base):
    __tablename__ = "drift_metrics"
    __table_args__ = (
        Index("ix_drift_metrics_agent_time", "agent_type", "computed_at"),
        Index("ix_drift_metrics_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    check_id: Mapped[str] = mapped_column(String(64), index=True)
    symbol: Mapped[str | None] = mapped_column(String(32))
    agent_type: Mapped[str] = mapped_column(String(32))
    model_version: Mapped[int | None]
    drift_type: Mapped[str] = mapped_column(String(16))  # feature | prediction | performance
    feature: Mapped[str | None] = mapped_column(String(64))
    statistic: Mapped[str] = mapped_column(String(32))
    value: Mapped[float | None]
    warning_threshold: Mapped[float]
    critical_threshold: Mapped[float]
    status: Mapped[str] = mapped_column(String(16))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reference_start: Mapped[datetime | None]
    reference_end: Mapped[datetime | None]
    current_start: Mapped[datetime | None]
    current_end: Mapped[datetime | None]
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)


class DriftBaseline(Base):
    """The reference side of drift checks for one model version (see drift/baseline.py)."""

    __tablename__ = "drift_baselines"
    __table_args__ = (UniqueConstraint("agent_type", "model_version", name="uq_drift_baselines_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_type: Mapped[str] = mapped_column(String(32))
    model_version: Mapped[int]
    symbol: Mapped[str] = mapped_column(String(32))
    reference_start: Mapped[datetime | None]
    reference_end: Mapped[datetime | None]
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StoreBinding(Base):
    """The store of a kind ("mlflow", "optuna") this app database belongs to: its URL (password masked) and the id
    written into that store itself, so that a command pointed at another store stops before writing."""

    __tablename__ = "store_bindings"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    store_id: Mapped[str] = mapped_column(String(64))
    bound_at: Mapped[datetime] = mapped_column(default=utcnow)


class FeatureFlag(Base):
    """Runtime switches (mlops_auto_retrain, mlops_drift_detection, mlops_hyperparameter_sweeps)."""

    __tablename__ = "feature_flags"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    description: Mapped[str] = mapped_column(Text, default="")
    updated_by: Mapped[str] = mapped_column(String(128), default="system")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """An API key: only its SHA-256 is stored (keys are 256-bit random, so a slow hash adds nothing)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # viewer | operator | admin
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # first characters, to recognise a key in lists
    created_by: Mapped[str] = mapped_column(String(128), default="cli")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class AuditLog(Base):
    """One row per mutating call (API, CLI): who, what, with which parameters, and how it ended."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_created", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    actor: Mapped[str] = mapped_column(String(128))  # API key name, or cli:<user>
    action: Mapped[str] = mapped_column(String(128))  # e.g. "POST /api/mlops/retrain"
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status_code: Mapped[int | None]
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    client: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Job(Base):
    """Background work (retrain, sweep, drift) run by a worker process. A retrain's exclusivity is its
    agent's lock (`agent_locks`), taken when the job is submitted: the API's 409."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_created", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # retrain | sweep | drift | validation | watch
    agent_type: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(128), default="cli")
    model_run_id: Mapped[int | None] = mapped_column(ForeignKey("model_runs.id"))
    sweep_id: Mapped[int | None] = mapped_column(ForeignKey("hyperparameter_sweeps.id"))
    timeout_seconds: Mapped[float]
    pid: Mapped[int | None]
    hostname: Mapped[str | None] = mapped_column(String(255))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class PredictionLog(Base):
    """One row per prediction request served: which version answered whom, on what."""

    __tablename__ = "prediction_log"
    __table_args__ = (Index("ix_prediction_log_agent_created", "agent_type", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_type: Mapped[str] = mapped_column(String(32))
    model_version: Mapped[int]
    alias: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str | None] = mapped_column(String(32))
    n_rows: Mapped[int]
    mean_probability: Mapped[float | None]
    requested_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScheduledExecution(Base):
    """One execution of a scheduled job (or of a manual trigger of one). The unique key (job, scheduled_for)
    is the claim: of several schedulers on one database, the one whose insert lands runs it, exactly once."""

    __tablename__ = "scheduled_executions"
    __table_args__ = (UniqueConstraint("job_name", "scheduled_for", name="uq_scheduled_executions_slot"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_name: Mapped[str] = mapped_column(String(64))  # retrain_market_insight | ... | weekly_validation
    scheduled_for: Mapped[datetime]
    trigger: Mapped[str] = mapped_column(String(16), default="schedule")  # schedule | manual
    requested_by: Mapped[str] = mapped_column(String(128), default="scheduler")
    # running → succeeded | rejected | failed | skipped (queued work: running until its jobs end)
    status: Mapped[str] = mapped_column(String(16), default="running")
    job_ids: Mapped[list[Any]] = mapped_column(default=list)  # the queue jobs it submitted
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)  # summary for people and the API
    error: Mapped[str | None] = mapped_column(Text)
    hostname: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class Alert(Base):
    """Something people should know. Deduplicated: the same (kind, agent, key) unacknowledged within
    `alert_dedup_seconds` raises `count` and `last_seen` instead of a new alert and new notifications."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_dedup", "dedup_key", "last_seen"),
        Index("ix_alerts_created", "first_seen"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    severity: Mapped[str] = mapped_column(String(16))  # info | warning | critical
    kind: Mapped[str] = mapped_column(String(64))  # drift_critical | performance_degraded | retrain_rejected | ...
    agent_type: Mapped[str | None] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    dedup_key: Mapped[str] = mapped_column(String(255))
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    count: Mapped[int] = mapped_column(default=1)
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    acknowledged_at: Mapped[datetime | None]
    # The generated plain-language explanation, added when it arrives (the message carries the template's)
    insight: Mapped[str | None] = mapped_column(Text)


class AlertDelivery(Base):
    """One alert to one channel: the outbox a background sender drains, with retries and backoff."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        UniqueConstraint("alert_id", "channel", name="uq_alert_deliveries_channel"),
        Index("ix_alert_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"))
    channel: Mapped[str] = mapped_column(String(32))  # slack | pagerduty | email | webhook | apprise
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sending | sent | failed
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_until: Mapped[datetime | None]  # a sender's lease on a `sending` row
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChampionLook(Base):
    """One look of the auto-rollback test at a champion on probation: at most one per (champion, look)."""

    __tablename__ = "champion_looks"
    __table_args__ = (UniqueConstraint("agent_type", "champion_version", "look", name="uq_champion_looks_look"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_type: Mapped[str] = mapped_column(String(32))
    champion_version: Mapped[int]
    previous_version: Mapped[int]
    look: Mapped[int]  # 1, 2, ...: the planned looks of the probation
    n_bars: Mapped[int]
    alpha: Mapped[float]  # this look's share of auto_rollback_alpha
    p_value: Mapped[float | None]
    difference: Mapped[float | None]  # annualised Sharpe, new champion − previous
    decision: Mapped[str] = mapped_column(String(16))  # keep | rollback
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DashboardSession(Base):
    """A dashboard login: the browser holds the token in an HttpOnly cookie, only its SHA-256 is stored.
    The session acts with its key's role; revoking the key ends its sessions."""

    __tablename__ = "dashboard_sessions"
    __table_args__ = (Index("ix_dashboard_sessions_expires", "expires_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))  # double-submit: the page echoes it in a header
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    client: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]  # logout


class Insight(Base):
    """A plain-language explanation of one retrain (subject `retrain`, the model run's id) or one critical
    drift check (subject `drift`, the check id). The template text is written at once; a background
    writer replaces it with generated text when an OpenAI-compatible API answers."""

    __tablename__ = "insights"
    __table_args__ = (
        UniqueConstraint("subject", "subject_id", name="uq_insights_subject"),
        Index("ix_insights_status", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(16))  # retrain | drift
    subject_id: Mapped[str] = mapped_column(String(64))
    agent_type: Mapped[str | None] = mapped_column(String(32))
    facts: Mapped[dict[str, Any]] = mapped_column(default=dict)  # what the prompt and the template are built from
    template: Mapped[str] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)  # the generated explanation
    # pending (generation to do) | generated | template (no key, or generation failed: `error` says why)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    model: Mapped[str | None] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    alert_ids: Mapped[list[Any]] = mapped_column(default=list)  # alerts that get the generated text
    claimed_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    generated_at: Mapped[datetime | None]
