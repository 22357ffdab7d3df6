"""One settings object for the whole project, read from the environment (and `.env`)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url

AGENTS: tuple[str, ...] = ("market_insight", "risk_assessor")


def normalise_db_url(url: str) -> str:
    """Pin Postgres URLs to psycopg2: SQLAlchemy 2.1 maps bare `postgresql://` to psycopg 3."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def is_postgres(url: str) -> bool:
    return url.startswith("postgresql")


def sibling_database(url: str, suffix: str) -> str:
    """The URL of a database beside `url` on the same server, named `<db>_<suffix>`."""
    parsed = make_url(url)
    return parsed.set(database=f"{parsed.database}_{suffix}").render_as_string(hide_password=False)


class Settings(BaseSettings):
    """Every knob of Skippy. Field `x` is read from env `SKIPPY_X` (case-insensitive); the store URLs
    also answer to the names MLflow and most tools use (DATABASE_URL, MLFLOW_TRACKING_URI)."""

    model_config = SettingsConfigDict(env_prefix="SKIPPY_", env_file=".env", extra="ignore", populate_by_name=True)

    home: Path = Field(default=Path(".skippy"), description="SKIPPY_HOME: folder of every embedded store")
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "SKIPPY_DATABASE_URL"),
        description="App database; default SQLite under home",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "SKIPPY_MLFLOW_TRACKING_URI"),
        description="MLflow store; default SQLite under home, or a sibling Postgres database",
    )
    optuna_storage_url: str | None = Field(
        default=None, validation_alias=AliasChoices("SKIPPY_OPTUNA_STORAGE"), description="Optuna storage"
    )
    env: Literal["development", "test", "production"] = "development"
    symbol: str = Field(default="SYNTH", description="Symbol the agents train on by default")

    # Training
    seed: int = 7
    early_stopping_patience: int = 10
    min_training_samples: int = 100
    min_class_share: float = 0.03
    divergence_factor: float = 10.0
    execution_fill: Literal["open", "close"] = Field(
        default="open",
        description="open: a position decided on bar t's close is entered at the open of t+1 and held to the "
        "open of t+2 (no trading at the price the features read); close: close t → close t+1 (optimistic)",
    )
    transaction_cost_bps: float = Field(
        default=2.0,
        ge=0,
        description="Cost per unit of turnover in basis points: half-spread plus fees of a liquid large-cap "
        "equity or major FX pair is about 0.5-2 bp a side, so 2 bp is a cautious default",
    )
    transaction_costs_bps: dict[str, float] = Field(
        default_factory=dict,
        description="Per-symbol cost overrides in bp, env JSON: SKIPPY_TRANSACTION_COSTS_BPS='{\"EURUSD\": 0.5}'",
    )
    risk_free_rate: float = Field(
        default=0.0, ge=-0.05, le=0.5, description="Annual risk-free rate subtracted per period in every Sharpe ratio"
    )
    missing_bars_warning_share: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Share of the series' own calendar slots without a bar above which data quality warns",
    )

    # Validation before deployment: the promotion gate (mlops/pipeline/validation.py)
    gate_alpha: float = Field(
        default=0.05, gt=0, le=1, description="A candidate replaces the champion when its paired test's p < this"
    )
    gate_require_edge: bool = Field(
        default=True,
        description="false: a candidate need not beat its naive baselines (still measured and recorded) — for demos "
        "and tests on small synthetic markets, never for money",
    )
    gate_bootstrap_replications: int = Field(default=2000, ge=100, le=100_000, description="Bootstrap draws")
    gate_confidence: float = Field(default=0.90, gt=0, lt=1, description="Two-sided CI of the gate's differences")
    promotion_mode: Literal["immediate", "staged"] = "immediate"
    staged_min_effect: float = Field(
        default=1.0, gt=0, description="Annualised Sharpe difference paper trading must be able to see (power 0.5)"
    )
    staged_max_paper_bars: int = Field(
        default=750, ge=10, description="Paper bars after which an unproven challenger is retired"
    )

    # Sweeps
    sweep_max_points: int = Field(default=1000, description="Largest grid a sweep may run")
    sweep_workers: int | None = Field(default=None, description="Worker processes; default = cores")
    sweep_trial_timeout_seconds: float = Field(default=600.0, description="A trial running longer fails")

    # Drift (DESIGN §8); thresholds are "value above → status"
    drift_window_bars: int = Field(default=250, description="Length of the current window")
    drift_min_window_bars: int = Field(default=30, description="Shorter windows are reported insufficient")
    drift_bins: int = 10
    drift_floor: float = 1e-6
    drift_kl_warning: float = 0.05
    drift_kl_critical: float = 0.1
    drift_wasserstein_warning: float = 0.1
    drift_wasserstein_critical: float = 0.15
    drift_sharpe_warning: float = 0.02
    drift_sharpe_critical: float = 0.05
    drift_significance: float = Field(
        default=0.05, description="Performance drift is critical when the Sharpe test's one-sided p is below this"
    )
    drift_sharpe_warning_p: float = Field(default=0.2, description="... and warning below this (floor 2 %)")
    drift_feature_critical_p: float = Field(
        default=0.005, description="A feature is critical when its BH-adjusted p is below this and KL >= critical"
    )
    drift_feature_warning_p: float = Field(default=0.05, description="... and warning below this (KL >= warning)")
    drift_prediction_critical_p: float = Field(
        default=0.005, description="Prediction drift is critical when its bootstrap p is below this (and W1/sd > 0.15)"
    )
    drift_prediction_warning_p: float = Field(default=0.05, description="... and warning below this (W1/sd > 0.1)")
    drift_null_draws: int = Field(
        default=10_000, ge=0, description="Bootstrap draws of each feature's KL null at training (0: no test)"
    )
    drift_null_prediction_draws: int = Field(default=2_000, ge=0, description="Draws of the prediction null")
    drift_null_windows: tuple[int, ...] = Field(
        default=(60, 250, 500), description="Window lengths a null is stored for (with drift_window_bars)"
    )
    drift_null_block_share: float = Field(
        default=1.0, gt=0, description="Mean bootstrap block length as a share of the window (>= Politis-White)"
    )
    drift_report: bool = Field(default=True, description="Write an Evidently report with each check")
    drift_report_rows: int = Field(default=5000, description="Row sample of the Evidently report")

    # Locks and the reaper
    lock_stale_seconds: int = 6 * 3600

    # API service and its background jobs
    api_host: str = "127.0.0.1"
    api_port: int = 5000
    mlflow_ui_port: int = 5001
    api_access_log: bool = Field(
        default=False,
        description="uvicorn's plain-text line per request (off: ~1-2 ms of CPU per request; the audit log keeps "
        "every mutating call, the JSON logs every job and alias move)",
    )
    job_max_concurrent: int = Field(default=2, description="Background jobs (retrain/sweep/drift) running at once")
    job_timeout_seconds: float = Field(default=3600.0, description="A background job running longer is killed")
    api_max_body_bytes: int = Field(default=10 * 1024 * 1024, description="Largest request body the API accepts")
    serving_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="Longest time a process serves a deployed version's metadata without asking the registry "
        "again (an alias move through Skippy is seen at once; one made outside it within this bound)",
    )
    api_read_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A client gets this long for a request's headers (else the connection is closed) and again "
        "for its body (else 408)",
    )
    model_key: SecretStr | None = Field(
        default=None,
        description="SKIPPY_MODEL_KEY: Fernet key(s), comma-separated (first encrypts, all decrypt); "
        "when set, model weights are encrypted inside the MLflow artifacts",
    )

    # Automation (DESIGN §9): the scheduler, the drift → retrain loop, auto-rollback. Cron expressions are UTC,
    # five fields (minute hour day month weekday) or six with seconds first.
    enable_mlops_jobs: bool = Field(
        default=False,
        validation_alias=AliasChoices("ENABLE_MLOPS_JOBS", "SKIPPY_ENABLE_MLOPS_JOBS"),
        description="Run the scheduler inside `skippy up` / `skippy serve` (also on when SKIPPY_ENV=production)",
    )
    schedule_retrain_market_insight: str = Field(default="0 2 * * *", description="Daily retrain, 02:00 UTC")
    schedule_retrain_risk_assessor: str = Field(default="0 3 * * *", description="Daily retrain, 03:00 UTC")
    schedule_drift_check: str = Field(default="0 */6 * * *", description="Drift check of every champion")
    schedule_weekly_validation: str = Field(default="0 4 * * 0", description="Weekly validation, Sunday 04:00")
    schedule_champion_watch: str = Field(
        default="30 * * * *", description="Auto-rollback test of each champion still on probation"
    )
    scheduler_poll_seconds: float = Field(default=5.0, gt=0, description="How often automation looks for work")
    auto_retrain_cooldown_hours: float = Field(
        default=24.0, ge=0, description="At most one automatic retrain per agent within this many hours"
    )
    auto_rollback_max_bars: int = Field(
        default=250,
        ge=5,
        description="A new champion is on probation for this many bars after its data (250: a year of daily bars; "
        "bench/rollback.py: shorter probations rarely catch even an inverted model)",
    )
    auto_rollback_alpha: float = Field(
        default=0.05,
        gt=0,
        lt=1,
        description="Bound on the false-rollback rate, spent across the probation's looks (a false rollback "
        "restores the previous, validated champion: cheaper than keeping a broken one)",
    )

    # Alerts: stored, deduplicated, routed by severity (info < warning < critical) to the configured channels
    alert_dedup_seconds: float = Field(
        default=86400.0,
        ge=0,
        description="An unacknowledged alert of the same kind and agent last seen within this window counts again "
        "instead of notifying again (a day: longer than every schedule but the weekly one, so a drift that "
        "persists check after check notifies once a day until someone acknowledges it)",
    )
    alert_retry_attempts: int = Field(default=5, ge=1, description="Sending attempts per channel before giving up")
    alert_retry_base_seconds: float = Field(default=2.0, gt=0, description="First retry delay; doubles each time")
    alert_timeout_seconds: float = Field(default=10.0, gt=0, description="One sending attempt's timeout")
    alert_slack_webhook_url: SecretStr | None = Field(default=None, description="Slack incoming webhook URL")
    alert_slack_min_severity: Literal["info", "warning", "critical"] = "warning"
    alert_pagerduty_routing_key: SecretStr | None = Field(default=None, description="PagerDuty Events API v2 key")
    alert_pagerduty_url: str = Field(
        default="https://events.pagerduty.com/v2/enqueue", description="PagerDuty Events API v2 endpoint"
    )
    alert_pagerduty_min_severity: Literal["info", "warning", "critical"] = "critical"
    alert_webhook_url: SecretStr | None = Field(default=None, description="Generic JSON webhook (POST)")
    alert_webhook_min_severity: Literal["info", "warning", "critical"] = "info"
    alert_smtp_url: SecretStr | None = Field(
        default=None, description="SMTP server, smtp://[user:password@]host[:port] (smtps:// for TLS; "
        "?starttls=true upgrades a plain connection)"
    )
    alert_email_from: str = Field(default="skippy@localhost", description="Sender of alert e-mails")
    alert_email_to: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Recipients, comma-separated or a JSON list"
    )
    alert_email_min_severity: Literal["info", "warning", "critical"] = "warning"
    alert_apprise_urls: list[SecretStr] = Field(
        default_factory=list, description="Any apprise URLs (Teams, Discord, Telegram, ...), env JSON list"
    )
    alert_apprise_min_severity: Literal["info", "warning", "critical"] = "warning"

    # Dashboard (/mlops): a login with an API key opens a session held in an HttpOnly cookie
    dashboard_session_hours: float = Field(
        default=12.0, gt=0, description="A dashboard session ends this long after login (then log in again)"
    )
    dashboard_refresh_seconds: float = Field(default=15.0, ge=2, description="How often dashboard pages refresh")
    mlflow_ui_url: str | None = Field(
        default=None,
        description="Base URL of the MLflow UI the dashboard links to; default: the dashboard's host on "
        "SKIPPY_MLFLOW_UI_PORT",
    )

    # Insights: a plain-language explanation of each retrain and each critical drift check, from an
    # OpenAI-compatible API when a key is set, else (and on any error or timeout) a deterministic template
    openai_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENAI_API_KEY", "SKIPPY_OPENAI_API_KEY"),
        description="OPENAI_API_KEY: turns generated insights on",
    )
    openai_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENAI_BASE_URL", "SKIPPY_OPENAI_BASE_URL"),
        description="OPENAI_BASE_URL: any OpenAI-compatible server (default: the OpenAI API)",
    )
    insight_model: str = Field(default="gpt-4o-mini", description="Chat model that writes the insights")
    insight_timeout_seconds: float = Field(
        default=20.0, gt=0, description="One generation's timeout; past it the template text stays"
    )

    log_level: str = "INFO"
    log_json: bool | None = Field(default=None, description="JSON logs; default: JSON unless stderr is a terminal")

    @field_validator("database_url", "mlflow_tracking_uri", "optuna_storage_url")
    @classmethod
    def _normalise(cls, value: str | None) -> str | None:
        return normalise_db_url(value) if value else value

    @model_validator(mode="after")
    def _absolute_home(self) -> Settings:
        self.home = self.home.expanduser().resolve()
        return self

    @field_validator("alert_email_to", mode="before")
    @classmethod
    def _recipients(cls, value: Any) -> Any:
        # Comma-separated is what people type; a JSON list works too. (Apprise URLs stay JSON-only: they hold commas.)
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("transaction_costs_bps")
    @classmethod
    def _non_negative_costs(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in value.items() if not v >= 0}
        if bad:
            raise ValueError(f"transaction costs must be >= 0 bp, got {bad}")
        return value

    def cost_bps_for(self, symbol: str | None) -> float:
        """The transaction cost of `symbol` in bp per unit of turnover: its override, else the default."""
        if symbol is None:
            return self.transaction_cost_bps
        return float(self.transaction_costs_bps.get(symbol, self.transaction_cost_bps))

    @property
    def app_db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'skippy.db'}"

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        if self.database_url and is_postgres(self.database_url):
            return sibling_database(self.database_url, "mlflow")
        return f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def optuna_storage(self) -> str:
        if self.optuna_storage_url:
            return self.optuna_storage_url
        if self.database_url and is_postgres(self.database_url):
            return sibling_database(self.database_url, "optuna")
        # A journal file, not SQLite: several worker processes write to it at once.
        return str(self.home / "optuna.journal")

    @property
    def model_key_value(self) -> str | None:
        """SKIPPY_MODEL_KEY in clear, or None (the field is a SecretStr so it never prints)."""
        return self.model_key.get_secret_value() if self.model_key else None

    @property
    def artifact_root(self) -> Path:
        return self.home / "mlartifacts"


@lru_cache
def get_settings() -> Settings:
    return Settings()
