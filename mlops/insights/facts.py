"""What an insight is built from: the facts of one retrain or one critical drift check, read from the app DB
rows the work already wrote (no MLflow, no model, no recomputation). The template and the prompt are both
made from these facts alone, so what the model is told is exactly what the template says, and nothing else.

Facts hold numbers, names and short texts written by this project (the gate's verdict); an error text (a
failed retrain's) is masked (`mask`) before it is cut, so no configured secret or store URL reaches a prompt."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mlops.db.models import DriftMetric, FeatureImportance, ModelRun
from mlops.errors import brief
from mlops.settings import Settings

TOP_FEATURES = 5
MAX_ERROR = 400
HEADLINE = ("accuracy", "sharpe_ratio", "max_drawdown", "total_return", "buy_hold_sharpe_ratio")

# What each feature measures, for the template's and the model's "what it likely means" (mlops/data/features.py).
FEATURE_MEANING = {
    "ret_1": "the 1-bar log return",
    "ret_5": "the 5-bar log return",
    "ret_20": "the 20-bar log return, the recent trend",
    "vol_5": "5-bar rolling volatility",
    "vol_20": "20-bar rolling volatility",
    "vol_60": "60-bar rolling volatility",
    "rsi_14": "the 14-bar RSI, overbought or oversold momentum",
    "macd_hist": "the MACD histogram, shifts in momentum",
    "bb_pctb": "Bollinger %b, where the close sits in its recent band",
    "hl_range": "the high-low range of a bar, intrabar volatility",
    "gap": "the opening gap from the previous close",
    "volume_z": "the volume z-score, unusual trading activity",
    "ma_dist_20": "the distance of the close from its 20-bar moving average",
}


def _secrets(settings: Settings) -> list[str]:
    values: list[str] = []
    for secret in (settings.openai_api_key, settings.model_key):
        if secret is not None:
            values.append(secret.get_secret_value())
    for url in (settings.app_db_url, settings.tracking_uri, settings.optuna_storage, settings.openai_base_url):
        if url:
            values.append(url)
    return [v for v in values if v]


_URL_CREDENTIALS = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@]+@")
_KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_\-*]{4,}")


def mask(settings: Settings, text: str) -> str:
    """`text` with every configured secret (API keys, channel URLs, store URLs) replaced by `***`, any URL's
    credentials and anything shaped like an API key (`sk-...`) too: what an error may carry to a prompt or
    a stored record."""
    from mlops.alerts.channels import redactor
    from mlops.alerts.secrets import MASK, Redactor

    masked = redactor(settings)(text)
    masked = Redactor((s, False) for s in _secrets(settings))(masked)
    masked = _URL_CREDENTIALS.sub(lambda m: m.group(1) + MASK + "@", masked)
    return _KEY_LIKE.sub("sk-" + MASK, masked)


def masked_brief(settings: Settings, text: str, limit: int) -> str:
    """`text` masked, then cut to `limit`: in that order, because a secret straddling the cut would no longer
    match once cut, and its first characters would survive."""
    return brief(mask(settings, text), limit)


def _round(value: Any, digits: int = 4) -> Any:
    """Rounded for a prompt; NaN/inf as None (PostgreSQL's JSON has no NaN, and it explains nothing)."""
    if isinstance(value, float):
        return round(value, digits) if math.isfinite(value) else None
    return value


def _headline(metrics: dict[str, Any], prefix: str = "test_") -> dict[str, float]:
    return {k: _round(float(metrics[prefix + k])) for k in HEADLINE if isinstance(metrics.get(prefix + k), int | float)}


def _importance(session: Session, agent: str, version: int | None) -> list[FeatureImportance]:
    if version is None:
        return []
    query = (
        select(FeatureImportance)
        .where(FeatureImportance.agent_type == agent, FeatureImportance.model_version == version)
        .order_by(FeatureImportance.rank)
    )
    return list(session.scalars(query))


def _previous(session: Session, run: ModelRun) -> ModelRun | None:
    """The version this run is compared with: the champion its gate scored, else the newest earlier run of
    the agent that passed the gate (the champion then, as far as the app DB knows)."""
    champion = (run.validation or {}).get("champion_version")
    query = select(ModelRun).where(ModelRun.agent_type == run.agent_type, ModelRun.id != run.id)
    if champion is not None:
        query = query.where(ModelRun.model_version == int(champion))
    else:
        query = query.where(ModelRun.id < run.id, ModelRun.status == "succeeded", ModelRun.model_version.is_not(None))
    return session.scalars(query.order_by(ModelRun.id.desc()).limit(1)).first()


def _importance_facts(session: Session, run: ModelRun, previous: ModelRun | None) -> dict[str, Any]:
    mine = _importance(session, run.agent_type, run.model_version)
    theirs = {r.feature: r for r in _importance(session, run.agent_type, previous.model_version if previous else None)}
    top = []
    for r in mine[:TOP_FEATURES]:
        before = theirs.get(r.feature)
        top.append(
            {
                "feature": r.feature,
                "meaning": FEATURE_MEANING.get(r.feature, r.feature),
                "rank": r.rank,
                "importance": _round(r.importance, 5),
                "previous_rank": before.rank if before else None,
                "previous_importance": _round(before.importance, 5) if before else None,
            }
        )
    previous_top = [f for f, r in theirs.items() if r.rank <= TOP_FEATURES]
    return {
        "measure": "mean increase of the held-out log loss when the feature is shuffled",
        "top": top,
        "previous_version": previous.model_version if previous and theirs else None,
        "new_in_top": [
            t["feature"] for t in top if t["previous_rank"] is not None and t["previous_rank"] > TOP_FEATURES
        ],
        "left_top": sorted(set(previous_top) - {t["feature"] for t in top}),
    }


def _gate_facts(validation: dict[str, Any] | None) -> dict[str, Any] | None:
    if not validation:
        return None
    champion = validation.get("champion_version")
    comparison = validation.get("comparison") or "none"
    against = "the naive baselines (no champion yet)" if comparison == "none" else f"champion v{champion}"
    checks = [
        {
            "check": name,
            "passed": bool(c.get("passed")),
            "rule": c.get("rule"),
            "value": _round(c.get("value")),
            "baseline": _round(c.get("baseline")),
            "ci": [_round(x) for x in c["ci"]] if c.get("ci") else None,
            "p_value": _round(c.get("p_value")),
        }
        for name, c in (validation.get("checks") or {}).items()
    ]
    m = validation.get("metrics") or {}
    return {
        "passed": bool(validation.get("passed")),
        "against": against,
        "comparison": comparison,
        "verdict": brief(str(validation.get("verdict") or ""), 800),
        "checks": checks,
        "always_long_sharpe": _round(m.get("gate_always_long_sharpe")),
        "candidate_sharpe": _round(m.get("gate_candidate_sharpe")),
        "champion_sharpe": _round(m.get("gate_champion_sharpe")),
    }


def outcome(run: ModelRun) -> str:
    """promoted | challenger | rejected | rejected_data_quality | failed | cancelled (a run not ended: its status)."""
    if run.status == "succeeded":
        return "promoted" if run.deployment_status == "promoted" else "challenger"
    if run.status == "rejected":
        return "rejected" if run.validation else "rejected_data_quality"
    return run.status


def retrain_facts(settings: Settings, session: Session, run_id: int) -> dict[str, Any] | None:
    """The facts of model run `run_id`, or None when there is no such run."""
    run = session.get(ModelRun, run_id)
    if run is None:
        return None
    previous = _previous(session, run)
    facts: dict[str, Any] = {
        "agent": run.agent_type,
        "run_id": run.id,
        "trigger": run.trigger,
        "symbol": run.symbol,
        "outcome": outcome(run),
        "status": run.status,
        "deployment_status": run.deployment_status,
        "model_version": run.model_version,
        "metrics": _headline(run.metrics or {}),
        "previous": None,
        "gate": _gate_facts(run.validation),
        "importance": _importance_facts(session, run, previous) if run.model_version is not None else None,
        "error": None,
    }
    if previous is not None:
        facts["previous"] = {
            "version": previous.model_version,
            "metrics": _headline(previous.metrics or {}),
            "note": "its own held-out window, not the same bars",
        }
    if run.error and (run.status == "failed" or (run.status == "rejected" and not run.validation)):
        facts["error"] = masked_brief(settings, run.error, MAX_ERROR)
    return facts


# --- drift ---------------------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%d") if value is not None else None


def _psi_words(psi: float | None) -> str | None:
    """The usual reading of a population stability index."""
    if psi is None:
        return None
    return "a large shift" if psi >= 0.25 else "a moderate shift" if psi >= 0.1 else "a small shift"


def _feature_item(row: DriftMetric) -> dict[str, Any]:
    d = row.details or {}
    psi = d.get("psi")
    return {
        "feature": row.feature,
        "meaning": FEATURE_MEANING.get(row.feature or "", row.feature),
        "statistic": row.statistic,
        "value": _round(row.value),
        "warning_threshold": row.warning_threshold,
        "critical_threshold": row.critical_threshold,
        "p_value": _round(d.get("p_value"), 6),
        "adjusted_p": _round(d.get("adjusted_p"), 6),
        "null_percentile": _round(d.get("null_percentile"), 2),
        "psi": _round(psi),
        "shift": _psi_words(psi),
    }


def _prediction_item(row: DriftMetric) -> dict[str, Any]:
    d = row.details or {}
    ref, cur = d.get("reference_mean"), d.get("current_mean")
    direction = None
    if ref is not None and cur is not None:
        direction = "higher" if cur > ref else "lower" if cur < ref else "unchanged"
    return {
        "status": row.status,
        "statistic": row.statistic,
        "value": _round(row.value),
        "critical_threshold": row.critical_threshold,
        "p_value": _round(d.get("p_value"), 6),
        "reference_mean_probability": _round(ref),
        "current_mean_probability": _round(cur),
        "direction": direction,
    }


def _performance_item(row: DriftMetric) -> dict[str, Any]:
    d = row.details or {}
    return {
        "status": row.status,
        "degradation": _round(row.value),
        "critical_threshold": row.critical_threshold,
        "p_value": _round(d.get("p_value"), 6),
        "baseline_sharpe": _round(d.get("baseline_sharpe")),
        "current_sharpe": _round(d.get("current_sharpe")),
        "bars": d.get("n"),
        "significant": d.get("significant"),
    }


def drift_facts(session: Session, check_id: str) -> dict[str, Any] | None:
    """The facts of drift check `check_id` (its stored rows), or None when there is no such check."""
    rows = list(session.scalars(select(DriftMetric).where(DriftMetric.check_id == check_id).order_by(DriftMetric.id)))
    if not rows:
        return None
    first = rows[0]
    features = [r for r in rows if r.drift_type == "feature" and r.feature is not None]
    critical = sorted((r for r in features if r.status == "critical"), key=lambda r: -(r.value or 0.0))
    summaries = {r.drift_type: r for r in rows if r.feature is None}
    statuses = [r.status for r in summaries.values()]
    prediction, performance = summaries.get("prediction"), summaries.get("performance")
    return {
        "agent": first.agent_type,
        "check_id": check_id,
        "model_version": first.model_version,
        "symbol": first.symbol,
        "status": "critical" if "critical" in statuses else (statuses[0] if statuses else "unknown"),
        "reference_window": [_iso(first.reference_start), _iso(first.reference_end)],
        "current_window": [_iso(first.current_start), _iso(first.current_end)],
        "features_checked": len(features),
        "critical_features": [_feature_item(r) for r in critical],
        "warning_features": [r.feature for r in features if r.status == "warning"],
        "prediction": _prediction_item(prediction) if prediction is not None else None,
        "performance": _performance_item(performance) if performance is not None else None,
        "feature_direction": "not recorded: a check stores how far each distribution moved (KL, PSI), not "
        "which way; the check's Evidently report shows the two histograms",
    }
