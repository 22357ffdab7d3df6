"""The two sides of a drift check, loaded and scored: the stored baseline of the champion's training
window, and the current window of bars with the champion's predicted probabilities and the excess
returns its positions earn there (what drift.registry.Window holds)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from drift.registry import Window
from mlops.agents.metrics import net_returns, risk_free_per_bar
from mlops.agents.specs import AgentSpec
from mlops.data.features import FEATURE_NAMES, compute_features, next_bar_returns
from mlops.data.store import load_bars
from mlops.db import session_scope
from mlops.db.models import DriftBaseline
from mlops.errors import NotFoundError
from mlops.pipeline.scoring import version_probabilities, version_recipe
from mlops.settings import Settings


@dataclass(frozen=True)
class StoredBaseline:
    """The reference side, stored when the model was trained (drift.baseline.compute_baseline's payload)."""

    symbol: str
    payload: dict[str, Any]
    reference_start: datetime | None
    reference_end: datetime | None


@dataclass(frozen=True)
class CurrentWindow:
    bars: pd.DataFrame  # every bar of the symbol: a position's return needs the bars after the window's last
    features: pd.DataFrame  # the newest rows of features, one per bar of the window

    @property
    def start(self) -> datetime | None:
        return self.features.index[0].to_pydatetime() if len(self.features) else None

    @property
    def end(self) -> datetime | None:
        return self.features.index[-1].to_pydatetime() if len(self.features) else None


def load_baseline(settings: Settings, agent: str, version: int) -> StoredBaseline:
    with session_scope(settings.app_db_url) as session:
        row = session.scalars(
            select(DriftBaseline).where(DriftBaseline.agent_type == agent, DriftBaseline.model_version == version)
        ).first()
        if row is None:
            raise NotFoundError(
                f"{agent} v{version} has no drift baseline (trained before baselines existed): retrain it"
            )
        return StoredBaseline(row.symbol, dict(row.payload), row.reference_start, row.reference_end)


def load_window(settings: Settings, symbol: str, window_bars: int) -> CurrentWindow:
    """The newest `window_bars` feature rows of `symbol` (fewer when the store holds fewer)."""
    bars = load_bars(settings.app_db_url, symbol)
    return CurrentWindow(bars, compute_features(bars).tail(window_bars))


def score_window(
    settings: Settings, spec: AgentSpec, version: int, baseline: StoredBaseline, current: CurrentWindow
) -> Window:
    """The window as the statistics see it: its features, the champion's probabilities on them, and the
    per-bar excess returns of the positions those imply, with the configured fill and the symbol's cost.
    The newest bars have no realised return yet and count for the predictions only."""
    features = current.features
    probabilities = version_probabilities(settings, spec, version, features)
    recipe = version_recipe(settings, spec, version)
    nxt = next_bar_returns(current.bars, fill=settings.execution_fill).reindex(features.index).to_numpy()
    usable = np.isfinite(nxt)
    positions = spec.positions(probabilities, recipe.hyperparameters, recipe.base_rate)[usable]
    ppy = float(baseline.payload["periods_per_year"])
    returns = net_returns(positions, nxt[usable], settings.cost_bps_for(baseline.symbol))
    excess = returns - risk_free_per_bar(settings.risk_free_rate, ppy)  # excess, as every Sharpe here
    return Window({n: features[n].to_numpy() for n in FEATURE_NAMES}, probabilities, excess)
