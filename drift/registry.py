"""The drift statistics by name, with their default thresholds (DESIGN §8); an unknown name is
answered with the valid ones."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Statistic:
    name: str
    drift_type: str  # feature | prediction | performance
    warning: float
    critical: float
    description: str


STATISTICS: dict[str, Statistic] = {
    s.name: s
    for s in (
        Statistic("kl_divergence", "feature", 0.05, 0.1, "KL(reference ‖ current) on reference-decile bins"),
        Statistic("psi", "feature", 0.1, 0.25, "population stability index on the same bins (reported)"),
        Statistic("wasserstein", "prediction", 0.1, 0.15, "W1 between predicted probabilities / reference sd"),
        Statistic("sharpe_degradation", "performance", 0.02, 0.05, "(baseline − current Sharpe) / |baseline|"),
    )
}


def get_statistic(name: str) -> Statistic:
    try:
        return STATISTICS[name]
    except KeyError:
        raise KeyError(f"unknown drift statistic {name!r}; known: {', '.join(STATISTICS)}") from None


def classify(value: float | None, warning: float, critical: float) -> str:
    """ok / warning / critical for a value above its thresholds; no value (too little data) is `insufficient`."""
    if value is None or value != value:  # None or NaN: nothing to judge
        return "insufficient"
    if value > critical:
        return "critical"
    if value > warning:
        return "warning"
    return "ok"


SEVERITY = {"ok": 0, "insufficient": 1, "warning": 2, "critical": 3}


def worst(statuses: list[str]) -> str:
    return max(statuses, key=SEVERITY.__getitem__) if statuses else "ok"
