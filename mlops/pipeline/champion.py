"""The champion's out-of-sample side of the promotion gate.

A champion may only be scored on bars it never learned from. It is scored as it is on the candidate's
held-out window when that window lies outside the champion's own training and validation windows and
both were trained on the same symbol; otherwise its recipe (hyperparameters) is refitted on the
candidate's training split — a walk-forward comparison of recipes on the same bars. Which of the two
was done is recorded with the decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import select

from mlops.agents.metrics import net_returns
from mlops.agents.specs import AgentSpec, Hyperparameters
from mlops.agents.training import Dataset, build_dataset, train_agent, training_options
from mlops.db import session_scope
from mlops.db.models import DriftBaseline, ModelPerformanceHistory, ModelRun
from mlops.pipeline.scoring import version_probabilities, version_recipe
from mlops.pipeline.validation import Scored
from mlops.settings import Settings


@dataclass(frozen=True)
class ChampionWindows:
    symbol: str | None
    train_start: datetime | None
    validation_end: datetime | None


def _aware(ts: datetime | None) -> pd.Timestamp | None:
    if ts is None:
        return None
    stamp = pd.Timestamp(ts)
    return stamp.tz_localize("UTC") if stamp.tz is None else stamp


def champion_windows(settings: Settings, agent: str, version: int) -> ChampionWindows:
    """Where `version` learned: its symbol, the start of its training window, the end of its validation."""
    with session_scope(settings.app_db_url) as session:
        symbol = session.scalar(
            select(ModelRun.symbol).where(ModelRun.agent_type == agent, ModelRun.model_version == version)
        )
        train_start = session.scalar(
            select(DriftBaseline.reference_start).where(
                DriftBaseline.agent_type == agent, DriftBaseline.model_version == version
            )
        )
        validation_end = session.scalar(
            select(ModelPerformanceHistory.window_end).where(
                ModelPerformanceHistory.agent_type == agent,
                ModelPerformanceHistory.model_version == version,
                ModelPerformanceHistory.window == "validation",
            )
        )
    return ChampionWindows(symbol, train_start, validation_end)


def is_out_of_sample(windows: ChampionWindows, symbol: str, start: pd.Timestamp, end: pd.Timestamp) -> bool:
    """True when bars [start, end] of `symbol` lie outside the champion's training and validation windows."""
    train_start, validation_end = _aware(windows.train_start), _aware(windows.validation_end)
    if windows.symbol != symbol or train_start is None or validation_end is None:
        return False  # unknown or other market: never assume the champion has not seen these bars
    return bool(start > validation_end or end < train_start)


def scored(
    spec: AgentSpec,
    hp: Hyperparameters,
    p: np.ndarray,
    data: Dataset,
    rows: np.ndarray,
    cost_bps: float,
    base_rate: float | None,
) -> Scored:
    """A model's probabilities on `rows` turned into positions (with its own recipe) and net returns."""
    positions = spec.positions(p, hp, base_rate)
    return Scored(
        p=p,
        positions=positions,
        returns=net_returns(positions, data.next_returns[rows], cost_bps),
        tail_share=hp.risk_threshold if spec.name == "risk_assessor" else None,
    )


def champion_out_of_sample(
    settings: Settings,
    spec: AgentSpec,
    version: int,
    *,
    bars: pd.DataFrame,
    data: Dataset,
    symbol: str,
    candidate: Hyperparameters | None = None,
    rows: np.ndarray | None = None,
) -> tuple[Scored, str, str]:
    """The champion's (or its recipe's) output on `rows` (default: the candidate's test rows), the
    comparison made, and a note saying why when it had to be refitted."""
    rows = data.splits.test if rows is None else rows
    recipe = version_recipe(settings, spec, version)
    hp = recipe.hyperparameters
    start, end = data.features.index[rows[0]], data.features.index[rows[-1]]
    # The champion's validation labels look `purge` bars past its validation window: the compared bars must
    # start that far after it (the bar `purge` rows before the first compared one is past it).
    guard = data.features.index[max(int(rows[0]) - data.splits.purge, 0)]
    windows = champion_windows(settings, spec.name, version)
    cost = settings.cost_bps_for(symbol)
    if is_out_of_sample(windows, symbol, guard, end):
        p = version_probabilities(settings, spec, version, data.features.iloc[rows])
        return scored(spec, hp, p, data, rows, cost, recipe.base_rate), "champion_scored", ""
    # Walk-forward: the champion's hyperparameters trained on the candidate's training split.
    own = build_dataset(bars, spec, hp, data.features, fill=data.fill)  # features do not depend on hp
    if len(own.splits.train) == 0 or own.features.index[own.splits.train[-1]] >= start:
        raise ValueError(f"no training bars before {start:%Y-%m-%d} to refit v{version}'s recipe on")
    refit = train_agent(spec, hp, own, importance=False, **training_options(settings, symbol))
    p = refit.predict(own.features.to_numpy()[rows])
    if windows.symbol != symbol:
        why = f"v{version} was trained on {windows.symbol or 'an unknown symbol'}, the candidate on {symbol}"
    elif windows.validation_end is None:
        why = f"v{version} has no recorded training windows"
    else:
        why = f"the bars from {start:%Y-%m-%d} are inside v{version}'s training/validation window"
    if candidate is not None and candidate == hp:
        why += "; the candidate has the champion's own recipe, so the refit is the candidate itself"
    return scored(spec, hp, p, own, rows, cost, own.base_rate), "champion_refit", f": {why}"
