"""A registered model version as the gate and paper trading score it: its recipe and its probabilities."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlops.agents.specs import AgentSpec, Hyperparameters
from mlops.settings import Settings


@dataclass(frozen=True)
class VersionRecipe:
    """What turns a version's probabilities into positions: its hyperparameters and the training base
    rate it was logged with (risk_assessor's exposure rule; None for versions logged before it existed)."""

    hyperparameters: Hyperparameters
    base_rate: float | None


def version_recipe(settings: Settings, spec: AgentSpec, version: int) -> VersionRecipe:
    """The recipe of `version`, from its MLflow run's params."""
    from tracking import registry
    from tracking.runs import run_params

    info = registry.get_version(settings, spec.name, version)
    params = run_params(settings, info.run_id) if info and info.run_id else {}
    return VersionRecipe(spec.hyperparameters_from_params(params), spec.base_rate_from_params(params))


def version_probabilities(settings: Settings, spec: AgentSpec, version: int, features: pd.DataFrame) -> np.ndarray:
    """Predicted probabilities of the registered `version` on raw feature rows."""
    from tracking import registry

    model = registry.load_version(settings, spec.name, version)
    return np.asarray(model.predict(features), dtype=float)
