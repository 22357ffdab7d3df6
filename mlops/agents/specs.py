"""The two agents: what each predicts, how its labels are made and how probabilities become
positions. Everything agent-specific lives here; training and the pipeline are shared."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlops.errors import InvalidRequestError, UnknownAgentError
from mlops.settings import AGENTS


class Hyperparameters(BaseModel):
    """The tunable knobs shared by both agents (meaning of risk_threshold differs, see specs)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    learning_rate: float = Field(gt=0, le=100)
    batch_size: int = Field(ge=1, le=100_000)
    epochs: int = Field(ge=1, le=10_000)
    risk_threshold: float = Field(gt=0, lt=0.5)
    l2: float = Field(ge=0, le=100)
    hidden_units: int = Field(ge=0, le=1024)


HYPERPARAMETER_NAMES: tuple[str, ...] = tuple(Hyperparameters.model_fields)
HP_FIELDS = frozenset(HYPERPARAMETER_NAMES)


@dataclass(frozen=True)
class AgentSpec:
    name: str
    description: str
    horizon: int
    defaults: Hyperparameters

    def hyperparameters(self, overrides: dict[str, Any] | None = None) -> Hyperparameters:
        """Defaults with `overrides` applied; unknown names and bad values raise a clear error."""
        values = self.defaults.model_dump() | dict(overrides or {})
        try:
            return Hyperparameters(**values)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise InvalidRequestError(f"invalid hyperparameters for {self.name}: {problems}") from None

    def hyperparameters_from_params(self, params: dict[str, str]) -> Hyperparameters:
        """Hyperparameters of a model version from its MLflow run params (strings); others ignored."""
        known = {k: float(v) if any(c in v for c in ".eE") else int(v) for k, v in params.items() if k in HP_FIELDS}
        return self.hyperparameters(known)

    def labels(self, forward: np.ndarray, train: np.ndarray, hp: Hyperparameters) -> tuple[np.ndarray, float]:
        """Binary labels for every row and the threshold used on the forward return."""
        if self.name == "market_insight":
            return (forward > 0).astype(float), 0.0
        # risk_assessor: the worst `risk_threshold` tail of the *training* window's forward returns.
        cut = float(np.quantile(forward[train], hp.risk_threshold))
        return (forward <= cut).astype(float), cut

    def decision_threshold(self, hp: Hyperparameters) -> float:
        """Probability above which the classifier says 'positive' (for accuracy/precision/recall)."""
        return 0.5 if self.name == "market_insight" else hp.risk_threshold

    def positions(self, p: np.ndarray, hp: Hyperparameters) -> np.ndarray:
        """Market exposure implied by probabilities `p`, in [-1, 1]."""
        if self.name == "market_insight":
            return np.where(p > 0.5 + hp.risk_threshold, 1.0, np.where(p < 0.5 - hp.risk_threshold, -1.0, 0.0))
        # risk_assessor: fully long while the tail probability is at or below its base rate τ,
        # cut linearly to flat as it rises to 2τ.
        tau = hp.risk_threshold
        return np.asarray(np.clip(1.0 - (p - tau) / tau, 0.0, 1.0))


SPECS: dict[str, AgentSpec] = {
    "market_insight": AgentSpec(
        name="market_insight",
        description="direction of the next bar → long / flat / short",
        horizon=1,
        defaults=Hyperparameters(
            learning_rate=0.01, batch_size=64, epochs=60, risk_threshold=0.02, l2=0.001, hidden_units=8
        ),
    ),
    "risk_assessor": AgentSpec(
        name="risk_assessor",
        description="probability of a tail loss over the next 5 bars → exposure",
        horizon=5,
        defaults=Hyperparameters(
            learning_rate=0.01, batch_size=64, epochs=60, risk_threshold=0.1, l2=0.001, hidden_units=8
        ),
    ),
}
assert tuple(SPECS) == AGENTS


def get_spec(agent: str) -> AgentSpec:
    try:
        return SPECS[agent]
    except KeyError:
        raise UnknownAgentError(agent, AGENTS) from None
