"""Predictions from a deployed agent for the trading platform, with a cache of the deployed version's
metadata keyed by the newest `model_deployments` row of the agent: every alias move writes one, so a
promotion or rollback invalidates it on the next request, in every replica. The registry stays the
source of truth: an entry is also asked again once it is `serving_cache_seconds` old, so no process
serves a version the registry no longer has behind the alias (moved outside Skippy, or by a process
killed before its row committed) for longer than that."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from mlops.agents.specs import Hyperparameters, get_spec
from mlops.db import session_scope
from mlops.db.models import ModelDeployment, ModelRun, PredictionLog
from mlops.errors import InvalidRequestError, NotFoundError
from mlops.logs import get_logger
from mlops.settings import AGENTS, Settings

if TYPE_CHECKING:
    import pandas as pd

log = get_logger(__name__)
MAX_ROWS = 10_000
MAX_BARS = 5_000
ALIASES = ("champion", "challenger")


@dataclass(frozen=True)
class ServedModel:
    agent_type: str
    alias: str
    version: int
    hyperparameters: Hyperparameters
    model_uri: str
    base_rate: float | None = None  # the training tail rate (MLflow param `base_rate`), for positions


@dataclass(frozen=True)
class PredictionRow:
    timestamp: datetime | None
    probability: float
    position: float


@dataclass(frozen=True)
class Prediction:
    agent_type: str
    alias: str
    model_version: int
    model_uri: str
    symbol: str | None
    predictions: list[PredictionRow]


_lock = threading.Lock()
# (stores, agent, alias) → (watermark, when it was read from the registry (monotonic seconds), the model)
_served: dict[tuple[str, str, str, str], tuple[tuple[Any, ...], float, ServedModel | None]] = {}
_clock = time.monotonic


def _watermark(settings: Settings, agent: str | None) -> tuple[Any, ...]:
    """Changes whenever an alias moves or a version is registered (for `agent`, or any)."""
    deployments = select(func.max(ModelDeployment.id))
    versions = select(func.max(ModelRun.model_version), func.count(ModelRun.model_version))
    if agent is not None:
        deployments = deployments.where(ModelDeployment.agent_type == agent)
        versions = versions.where(ModelRun.agent_type == agent)
    with session_scope(settings.app_db_url) as session:
        return (session.scalar(deployments), *session.execute(versions).one())


def deployed_model(settings: Settings, agent: str, alias: str = "champion") -> ServedModel:
    """The version behind `alias` with its hyperparameters (positions depend on them), cached."""
    from tracking import registry
    from tracking.runs import run_params

    spec = get_spec(agent)
    if alias not in ALIASES:
        raise InvalidRequestError(f"unknown alias {alias!r}; aliases: {', '.join(ALIASES)}")
    key = (settings.app_db_url, settings.tracking_uri, agent, alias)
    mark = _watermark(settings, agent)
    now = _clock()
    with _lock:
        hit = _served.get(key)
    if hit is not None and hit[0] == mark and now - hit[1] < settings.serving_cache_seconds:
        served = hit[2]
    else:
        version = registry.alias_version(settings, agent, alias)
        served = None
        if version is not None:
            info = registry.get_version(settings, agent, version)
            params = run_params(settings, info.run_id) if info and info.run_id else {}
            hp = spec.hyperparameters_from_params(params)
            base_rate = spec.base_rate_from_params(params)
            served = ServedModel(agent, alias, version, hp, f"models:/{agent}/{version}", base_rate)
        with _lock:
            _served[key] = (mark, now, served)
    if served is None:
        raise NotFoundError(f"{agent} has no {alias}: retrain it first (POST /api/mlops/retrain)")
    return served


def warm_up(settings: Settings) -> list[str]:
    """Load MLflow, the champions' metadata and their models now, so that the first prediction or promotion
    after a start does not pay for them (over 10 s under load). Returns what was loaded; a failure is
    logged and left to the request that needs it, which reports it properly."""
    from tracking import registry

    loaded = []
    for agent in AGENTS:
        try:
            served = deployed_model(settings, agent)
            registry.load_version(settings, agent, served.version)
            loaded.append(f"{agent} v{served.version}")
        except NotFoundError:
            continue  # no champion yet
        except Exception as exc:
            log.warning("warm-up could not load a champion", agent_type=agent, error=str(exc)[:500])
    return loaded


def _feature_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    from mlops.data.features import FEATURE_NAMES

    if not rows:
        raise InvalidRequestError("features: give at least one row")
    if len(rows) > MAX_ROWS:
        raise InvalidRequestError(f"features: at most {MAX_ROWS} rows per request, got {len(rows)}")
    problems = []
    for i, row in enumerate(rows):
        missing = [f for f in FEATURE_NAMES if f not in row]
        if missing:
            problems.append(f"row {i}: missing {', '.join(missing)}")
            continue
        bad = [f for f in FEATURE_NAMES if not isinstance(row[f], int | float) or not np.isfinite(row[f])]
        if bad:
            problems.append(f"row {i}: not a finite number: {', '.join(bad)}")
    if problems:
        shown = "; ".join(problems[:10]) + (f"; ... {len(problems) - 10} more" if len(problems) > 10 else "")
        raise InvalidRequestError(f"features: {shown} (expected columns: {', '.join(FEATURE_NAMES)})")
    return pd.DataFrame([{f: float(r[f]) for f in FEATURE_NAMES} for r in rows])


def _latest_features(settings: Settings, symbol: str, n_bars: int) -> pd.DataFrame:
    """Features of the newest `n_bars` bars computed over the symbol's whole history, as training
    computes them: RSI and MACD are exponential averages that remember every bar, and `gap` depends on
    the share of bars so far whose open repeats the previous close, so a short tail of history gives
    different values (61 bars gave an rsi_14 0.17 away from training's). 20,000 bars take ~25 ms."""
    from mlops.data.features import WARMUP_BARS, compute_features
    from mlops.data.store import load_bars

    if not 1 <= n_bars <= MAX_BARS:
        raise InvalidRequestError(f"n_bars must be between 1 and {MAX_BARS}, got {n_bars}")
    bars = load_bars(settings.app_db_url, symbol)
    features = compute_features(bars).dropna().tail(n_bars)
    if features.empty:
        raise InvalidRequestError(f"{symbol} has {len(bars)} bars; features need at least {WARMUP_BARS + 1}")
    return features


def predict(
    settings: Settings,
    *,
    agent: str,
    requested_by: str,
    features: list[dict[str, Any]] | None = None,
    symbol: str | None = None,
    n_bars: int = 1,
    alias: str = "champion",
) -> Prediction:
    """Probabilities and the positions they imply, from the version behind `alias`, on feature rows
    or on the newest `n_bars` bars of `symbol`. Each answer is recorded with the version that gave it."""
    import numpy as np
    import pandas as pd

    from mlops.data.features import FEATURE_NAMES
    from tracking import registry

    if features is None and symbol is None:
        raise InvalidRequestError("give features (rows of feature values) or symbol (predict on its newest bars)")
    if features is not None and symbol is not None:
        raise InvalidRequestError("give either features or symbol, not both")
    spec = get_spec(agent)
    served = deployed_model(settings, agent, alias)
    frame = _feature_frame(features) if features is not None else _latest_features(settings, str(symbol), n_bars)
    model = registry.load_version(settings, agent, served.version)
    p = np.asarray(model.predict(frame[list(FEATURE_NAMES)]), dtype=float).reshape(-1)
    if not np.all(np.isfinite(p)):
        bad = [int(i) for i in np.flatnonzero(~np.isfinite(p))[:10]]
        raise InvalidRequestError(f"row(s) {bad} give no finite probability: feature values far outside any seen")
    positions = spec.positions(p, served.hyperparameters, served.base_rate)
    stamps: list[datetime | None] = (
        [ts.to_pydatetime() for ts in pd.DatetimeIndex(frame.index)] if symbol is not None else [None] * len(p)
    )
    with session_scope(settings.app_db_url) as session:
        session.add(
            PredictionLog(
                agent_type=agent,
                model_version=served.version,
                alias=alias,
                symbol=symbol,
                n_rows=len(p),
                mean_probability=float(p.mean()),
                requested_by=requested_by,
            )
        )
    rows = [PredictionRow(t, float(pi), float(pos)) for t, pi, pos in zip(stamps, p, positions, strict=True)]
    return Prediction(agent, alias, served.version, served.model_uri, symbol, rows)
