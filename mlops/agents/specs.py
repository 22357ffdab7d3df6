"""The two agents: what each predicts, how its labels are made and how probabilities become
positions. Everything agent-specific lives here; training and the pipeline are shared."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlops.agents.labels import tail_labels
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

    def labels(self, forward: np.ndarray, sigma: np.ndarray, hp: Hyperparameters) -> tuple[np.ndarray, float]:
        """Binary labels for every row, from the forward return each position would earn and the
        per-bar volatility known at that row, and the label's cut: 0 for market_insight (up or not),
        k = −Φ⁻¹(τ) for risk_assessor (a tail is a loss below −k·σ̂ₜ·√horizon, see `labels.py`)."""
        if self.name == "market_insight":
            return (forward > 0).astype(float), 0.0
        return tail_labels(forward, sigma, self.horizon, hp.risk_threshold)

    def base_rate(self, hp: Hyperparameters, observed: float | None) -> float:
        """The positive-label rate the agent's rules use: the training window's observed rate when
        known (it travels with the model as the `base_rate` run param), else the target τ."""
        if observed is not None and 0 < observed < 1:
            return float(observed)
        return 0.5 if self.name == "market_insight" else hp.risk_threshold

    def decision_threshold(self, hp: Hyperparameters, base_rate: float | None = None) -> float:
        """Probability above which the classifier says 'positive' (for accuracy/precision/recall):
        0.5 for market_insight's up/down, the training tail rate for risk_assessor (a tail is predicted
        when it is likelier than usual)."""
        return 0.5 if self.name == "market_insight" else self.base_rate(hp, base_rate)

    def positions(self, p: np.ndarray, hp: Hyperparameters, base_rate: float | None = None) -> np.ndarray:
        """Market exposure implied by probabilities `p`, in [-1, 1]. `base_rate` is the training
        window's tail rate (risk_assessor; τ when not given)."""
        if self.name == "market_insight":
            return np.where(p > 0.5 + hp.risk_threshold, 1.0, np.where(p < 0.5 - hp.risk_threshold, -1.0, 0.0))
        # risk_assessor: fully long while the tail probability is at or below the training tail rate b,
        # cut linearly to flat as it rises to 2b.
        b = self.base_rate(hp, base_rate)
        return np.asarray(np.clip(1.0 - (p - b) / b, 0.0, 1.0))

    @staticmethod
    def base_rate_from_params(params: dict[str, str]) -> float | None:
        """The training base rate a model version was logged with (MLflow param `base_rate`), if any."""
        try:
            value = float(params["base_rate"])
        except (KeyError, ValueError):
            return None
        return value if 0 < value < 1 else None


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
