"""Staged rollout: a validated candidate waits as `challenger` while both it and the champion are
paper-traded on bars neither has seen (after the challenger's held-out window). Once there are
`paper_trading_bars` such bars, the challenger is promoted if its Sharpe is at least the champion's."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy import select

from mlops.agents.specs import get_spec
from mlops.agents.training import build_dataset
from mlops.data.store import load_bars
from mlops.db import session_scope
from mlops.db.models import ModelPerformanceHistory, ModelRun
from mlops.errors import NotFoundError
from mlops.pipeline.deployments import promote
from mlops.pipeline.scoring import score_version
from mlops.settings import Settings


@dataclass(frozen=True)
class ChallengerEvaluation:
    agent_type: str
    challenger: int
    champion: int | None
    decision: str  # promoted | kept | waiting
    reason: str
    paper_bars: int
    challenger_metrics: dict[str, float] = field(default_factory=dict)
    champion_metrics: dict[str, float] = field(default_factory=dict)


def _trained_on(settings: Settings, agent: str, version: int) -> tuple[str, pd.Timestamp]:
    """The symbol a version was trained on and the end of its held-out test window."""
    with session_scope(settings.app_db_url) as session:
        symbol = session.scalar(
            select(ModelRun.symbol).where(ModelRun.agent_type == agent, ModelRun.model_version == version)
        )
        end = session.scalar(
            select(ModelPerformanceHistory.window_end).where(
                ModelPerformanceHistory.agent_type == agent,
                ModelPerformanceHistory.model_version == version,
                ModelPerformanceHistory.window == "test",
            )
        )
    if symbol is None or end is None:
        raise NotFoundError(f"{agent} v{version} has no training record in the app database")
    return symbol, pd.Timestamp(end).tz_localize("UTC") if pd.Timestamp(end).tz is None else pd.Timestamp(end)


def evaluate_challenger(settings: Settings, *, agent: str, actor: str = "paper-trading") -> ChallengerEvaluation:
    from tracking import registry

    spec = get_spec(agent)
    challenger = registry.alias_version(settings, agent, registry.CHALLENGER)
    if challenger is None:
        raise NotFoundError(f"{agent} has no challenger to evaluate")
    champion = registry.alias_version(settings, agent, registry.CHAMPION)
    if champion is None:
        promote(settings, agent=agent, version=challenger, actor=actor, reason="no champion: challenger promoted")
        return ChallengerEvaluation(agent, challenger, None, "promoted", "no champion: challenger promoted", 0)
    symbol, test_end = _trained_on(settings, agent, challenger)
    data = build_dataset(load_bars(settings.app_db_url, symbol), spec, spec.defaults)
    rows = np.flatnonzero(data.features.index > test_end)
    if len(rows) < settings.paper_trading_bars:
        reason = (
            f"paper trading needs {settings.paper_trading_bars} new {symbol} bars after {test_end:%Y-%m-%d %H:%M}; "
            f"{len(rows)} so far"
        )
        return ChallengerEvaluation(agent, challenger, champion, "waiting", reason, len(rows))
    mine = score_version(settings, spec, challenger, data, rows)
    theirs = score_version(settings, spec, champion, data, rows)
    start, end = data.features.index[rows[0]].to_pydatetime(), data.features.index[rows[-1]].to_pydatetime()
    with session_scope(settings.app_db_url) as session:
        for version, m in ((challenger, mine), (champion, theirs)):
            session.add(
                ModelPerformanceHistory.from_metrics(
                    m, agent_type=agent, model_version=version, window="paper", window_start=start, window_end=end
                )
            )
    summary = (
        f"paper trading on {len(rows)} {symbol} bars: challenger v{challenger} Sharpe {mine['sharpe_ratio']:.3f} "
        f"vs champion v{champion} {theirs['sharpe_ratio']:.3f}"
    )
    if mine["sharpe_ratio"] >= theirs["sharpe_ratio"]:
        promote(settings, agent=agent, version=challenger, actor=actor, reason=summary, metrics=mine)
        return ChallengerEvaluation(agent, challenger, champion, "promoted", summary, len(rows), mine, theirs)
    return ChallengerEvaluation(agent, challenger, champion, "kept", summary, len(rows), mine, theirs)
