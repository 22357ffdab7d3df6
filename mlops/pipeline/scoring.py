"""Score a registered model version on rows of a dataset, the way the candidate itself is scored."""

from __future__ import annotations

import numpy as np

from mlops.agents.specs import AgentSpec
from mlops.agents.training import Dataset, score
from mlops.settings import Settings


def score_version(
    settings: Settings, spec: AgentSpec, version: int, data: Dataset, rows: np.ndarray
) -> dict[str, float]:
    """Every metric of `version` (with its own hyperparameters for positions) on `rows` of `data`."""
    from tracking import registry
    from tracking.runs import run_params

    info = registry.get_version(settings, spec.name, version)
    hp = spec.hyperparameters_from_params(run_params(settings, info.run_id) if info and info.run_id else {})
    model = registry.load_version(settings, spec.name, version)
    p = np.asarray(model.predict(data.features.iloc[rows]), dtype=float)
    return score(
        spec, hp, p, data.y[rows], data.next_returns[rows], data.periods_per_year, settings.transaction_cost_bps
    )
