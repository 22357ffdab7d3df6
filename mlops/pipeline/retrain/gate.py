"""The promotion gate (mlops/pipeline/validation.py) on the candidate's held-out window, against the
champion scored out of sample (mlops/pipeline/champion.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from mlops.agents.metrics import net_returns
from mlops.agents.specs import AgentSpec
from mlops.agents.training import Dataset, TrainedAgent
from mlops.errors import ChampionUnavailableError
from mlops.pipeline.champion import champion_out_of_sample, scored
from mlops.pipeline.validation import GateInputs, ValidationDecision, decide
from mlops.settings import Settings


def validate_against_champion(
    settings: Settings, spec: AgentSpec, trained: TrainedAgent, data: Dataset, *, bars: pd.DataFrame, symbol: str
) -> ValidationDecision:
    """Score the candidate and decide; the champion is read from the registry."""
    from tracking import registry

    rows = data.splits.test
    cost = settings.cost_bps_for(symbol)
    p = trained.predict(data.features.to_numpy()[rows])
    candidate = scored(spec, trained.hyperparameters, p, data, rows, cost, data.base_rate)
    inputs = GateInputs(
        agent=spec.name,
        y=data.y[rows],
        next_returns=data.next_returns[rows],
        market=net_returns(np.ones(len(rows)), data.next_returns[rows], cost),
        periods_per_year=data.periods_per_year,
        train_positive_share=data.base_rate if data.base_rate is not None else 0.5,
        candidate=candidate,
        risk_free_rate=settings.risk_free_rate,
    )
    champion = registry.alias_version(settings, spec.name, registry.CHAMPION)
    if champion is None:
        return decide(inputs, settings)
    try:
        theirs, comparison, note = champion_out_of_sample(
            settings, spec, champion, bars=bars, data=data, symbol=symbol, candidate=trained.hyperparameters
        )
    except Exception as exc:
        # A champion that cannot be scored is neither replaced blindly nor a verdict on the candidate (the
        # cause may be passing: a store restarting): the run fails, nothing is registered, retry later.
        raise ChampionUnavailableError(f"could not score champion v{champion} to compare with: {exc}") from exc
    return decide(
        replace(inputs, champion=theirs, champion_version=champion, comparison=comparison, comparison_note=note),
        settings,
    )
