"""Staged rollout: a validated candidate waits as `challenger` while it and the champion are paper-traded
on bars neither has seen (after the challenger's held-out window), then the same paired test as the
promotion gate decides — once, on a sample sized in advance.

How many paper bars: the number that gives the one-sided paired Sharpe test (level `gate_alpha`) power 0.5
to see an annualised Sharpe difference of `staged_min_effect`, at the return correlation the gate measured
between the two on the challenger's held-out window (mlops.stats.bars_for_power): e.g. 137 daily bars for a
difference of 1.0 at correlation 0.9, 546 for 0.5. If that exceeds `staged_max_paper_bars`, the test is
made at the maximum. One look at a fixed sample keeps the false-promotion rate at the gate's: testing again
every day until the challenger happened to lead would not."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from mlops.agents.metrics import net_returns
from mlops.agents.specs import get_spec
from mlops.agents.training import build_dataset, score
from mlops.data.store import load_bars
from mlops.db import session_scope
from mlops.db.models import ModelPerformanceHistory, ModelRun
from mlops.errors import NotFoundError
from mlops.pipeline.champion import champion_out_of_sample, scored
from mlops.pipeline.deployments import promote, retire_challenger
from mlops.pipeline.scoring import version_probabilities, version_recipe
from mlops.pipeline.validation import GateInputs, decide
from mlops.settings import Settings
from mlops.stats import bars_for_power


@dataclass(frozen=True)
class ChallengerEvaluation:
    agent_type: str
    challenger: int
    champion: int | None
    decision: str  # promoted | retired | waiting
    reason: str
    paper_bars: int
    required_bars: int = 0
    challenger_metrics: dict[str, float] = field(default_factory=dict)
    champion_metrics: dict[str, float] = field(default_factory=dict)
    gate: dict[str, Any] = field(default_factory=dict)


def _trained_on(settings: Settings, agent: str, version: int) -> tuple[str, pd.Timestamp, float]:
    """The symbol a version was trained on, the end of its held-out test window, and the return
    correlation with the champion that its gate measured (0 when unknown: the conservative choice)."""
    with session_scope(settings.app_db_url) as session:
        run = session.scalars(
            select(ModelRun).where(ModelRun.agent_type == agent, ModelRun.model_version == version)
        ).first()
        end = session.scalar(
            select(ModelPerformanceHistory.window_end).where(
                ModelPerformanceHistory.agent_type == agent,
                ModelPerformanceHistory.model_version == version,
                ModelPerformanceHistory.window == "test",
            )
        )
        symbol = run.symbol if run else None
        gate = (run.validation or {}).get("metrics", {}) if run else {}
    if symbol is None or end is None:
        raise NotFoundError(f"{agent} v{version} has no training record in the app database")
    stamp = pd.Timestamp(end)
    stamp = stamp.tz_localize("UTC") if stamp.tz is None else stamp
    return symbol, stamp, float(gate.get("gate_return_correlation", 0.0))


def evaluate_challenger(settings: Settings, *, agent: str, actor: str = "paper-trading") -> ChallengerEvaluation:
    """Paper-trade the challenger against the champion and decide (audited as "challenger evaluate"; a
    promotion or retirement it makes writes its own row too)."""
    from mlops.audit import audited

    with audited(settings, actor=actor, action="challenger evaluate", parameters={"agent": agent}) as audit:
        evaluation = _evaluate(settings, agent=agent, actor=actor)
        audit.update(
            decision=evaluation.decision,
            challenger=evaluation.challenger,
            champion=evaluation.champion,
            paper_bars=evaluation.paper_bars,
        )
    return evaluation


def _evaluate(settings: Settings, *, agent: str, actor: str) -> ChallengerEvaluation:
    from tracking import registry

    spec = get_spec(agent)
    challenger = registry.alias_version(settings, agent, registry.CHALLENGER)
    if challenger is None:
        raise NotFoundError(f"{agent} has no challenger to evaluate")
    champion = registry.alias_version(settings, agent, registry.CHAMPION)
    if champion is None:
        promote(settings, agent=agent, version=challenger, actor=actor, reason="no champion: challenger promoted")
        return ChallengerEvaluation(agent, challenger, None, "promoted", "no champion: challenger promoted", 0)
    symbol, test_end, correlation = _trained_on(settings, agent, challenger)
    bars = load_bars(settings.app_db_url, symbol)
    mine_recipe = version_recipe(settings, spec, challenger)
    their_recipe = version_recipe(settings, spec, champion)
    # Labels as the challenger defines them, fills as the platform executes.
    data = build_dataset(bars, spec, mine_recipe.hyperparameters, fill=settings.execution_fill)
    paper = np.flatnonzero(data.features.index > test_end)
    required = min(
        bars_for_power(settings.staged_min_effect, data.periods_per_year, correlation, settings.gate_alpha),
        settings.staged_max_paper_bars,
    )
    if len(paper) < required:
        reason = (
            f"paper trading needs {required} new {symbol} bars after {test_end:%Y-%m-%d %H:%M} "
            f"(power 0.5 for a Sharpe difference of {settings.staged_min_effect:g} at correlation {correlation:.2f}); "
            f"{len(paper)} so far"
        )
        return ChallengerEvaluation(agent, challenger, champion, "waiting", reason, len(paper), required)
    rows = paper[:required]  # one look at the sample sized in advance
    cost = settings.cost_bps_for(symbol)
    p_mine = version_probabilities(settings, spec, challenger, data.features.iloc[rows])
    mine = scored(spec, mine_recipe.hyperparameters, p_mine, data, rows, cost, mine_recipe.base_rate)
    # The champion too only on bars it never learned from (else its recipe refitted before them).
    theirs, comparison, note = champion_out_of_sample(
        settings, spec, champion, bars=bars, data=data, symbol=symbol, rows=rows
    )
    outputs = {challenger: mine, champion: theirs}
    decision = decide(
        GateInputs(
            agent=agent,
            y=data.y[rows],
            next_returns=data.next_returns[rows],
            market=net_returns(np.ones(len(rows)), data.next_returns[rows], cost),
            periods_per_year=data.periods_per_year,
            train_positive_share=mine_recipe.base_rate or float(np.mean(data.y[data.splits.train])),
            candidate=mine,
            champion=theirs,
            champion_version=champion,
            comparison="paper_trading",
            comparison_note=f", {comparison.replace('_', ' ')}{note}",
            risk_free_rate=settings.risk_free_rate,
        ),
        settings,
        edge=False,  # the paired test alone decides: both passed their edge checks when they were validated
    )
    metrics: dict[int, dict[str, float]] = {}
    start, end = data.features.index[rows[0]].to_pydatetime(), data.features.index[rows[-1]].to_pydatetime()
    with session_scope(settings.app_db_url) as session:
        for version, recipe in ((challenger, mine_recipe), (champion, their_recipe)):
            m = score(
                spec,
                recipe.hyperparameters,
                outputs[version].p,
                data.y[rows],
                data.next_returns[rows],
                data.periods_per_year,
                cost,
                base_rate=recipe.base_rate,
                risk_free_rate=settings.risk_free_rate,
            )
            metrics[version] = m
            session.add(
                ModelPerformanceHistory.from_metrics(
                    m,
                    agent_type=agent,
                    model_version=version,
                    window="paper",
                    window_start=start,
                    window_end=end,
                )
            )
    summary = f"paper trading on {len(rows)} {symbol} bars, challenger v{challenger} vs champion v{champion}: "
    reason = summary + decision.reason
    if decision.passed:
        promote(settings, agent=agent, version=challenger, actor=actor, reason=reason, metrics=decision.metrics)
        outcome = "promoted"
    else:
        retire_challenger(settings, agent=agent, version=challenger, actor=actor, reason=reason)
        outcome = "retired"
    return ChallengerEvaluation(
        agent,
        challenger,
        champion,
        outcome,
        reason,
        len(paper),
        required,
        metrics[challenger],
        metrics[champion],
        decision.record(),
    )
