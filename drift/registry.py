"""The drift statistics a check runs (DESIGN §8), by name, in the order a check reports them.

Each entry knows what it is (its name as stored in `drift_metrics.statistic`, its kind, a description),
how to measure the current window against the stored baseline (rows with value, status and details:
feature drift one per feature and a summary, the others one summary), and which Settings fields its
rule is read from. The thresholds themselves live only in Settings (`drift_*`): nothing here repeats a
value, so a configured threshold is the one every check, bench and test uses.

    for statistic in STATISTICS.values():
        rule = statistic.rule(settings)
        rows = statistic.measure(baseline, window, rule)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

from drift.feature_test import FeatureRule, feature_verdicts, summary_details
from drift.prediction_test import prediction_verdict
from drift.sharpe import SharpeMoments, performance_status, sharpe_degradation
from drift.status import Rule, worst

if TYPE_CHECKING:
    from mlops.settings import Settings

R = TypeVar("R", bound=Rule)


@dataclass(frozen=True)
class Window:
    """The current window as the statistics see it."""

    features: Mapping[str, np.ndarray]  # each feature's values over the window (the check's features, in order)
    predictions: np.ndarray  # the champion's predicted probabilities on the window's bars
    returns: np.ndarray  # per-bar excess returns of its positions, on the bars whose return is realised


@dataclass(frozen=True)
class Measurement:
    """One row of a statistic's result: per feature, or the statistic's summary (`feature` None)."""

    feature: str | None
    value: float | None
    status: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Statistic(Generic[R]):
    name: str
    drift_type: str  # feature | prediction | performance
    description: str
    rule_type: type[R]
    settings_fields: Mapping[str, str]  # each field of the rule → the Settings field it is read from
    measure: Callable[[Mapping[str, Any], Window, R], list[Measurement]]

    def rule(self, settings: Settings) -> R:
        """This statistic's rule with the thresholds configured in `settings`."""
        return self.rule_type(**{name: getattr(settings, source) for name, source in self.settings_fields.items()})


def measure_features(baseline: Mapping[str, Any], window: Window, rule: FeatureRule) -> list[Measurement]:
    """KL per feature of the window, each tested against its stored null (BH across features); the summary
    carries the numbers and status of the feature that decides it (drift.feature_test.deciding_feature)."""
    names = list(window.features)
    missing = [n for n in names if n not in baseline["features"]]
    if missing:
        raise ValueError(f"the baseline has no reference for features {missing}: retrain the model")
    reference = dict(baseline) | {"features": {n: baseline["features"][n] for n in names}}
    verdicts = feature_verdicts(reference, window.features, rule)
    rows = [Measurement(v.feature, v.kl, v.status, v.details()) for v in verdicts]
    summary = summary_details(verdicts)
    rows.append(Measurement(None, summary["deciding_kl"], worst([v.status for v in verdicts]), summary))
    return rows


def measure_prediction(baseline: Mapping[str, Any], window: Window, rule: Rule) -> list[Measurement]:
    """W1 between the reference and current predicted probabilities / the reference's sd, with its p-value."""
    verdict = prediction_verdict(baseline, window.predictions, rule)
    return [Measurement(None, verdict.value, verdict.status, verdict.details())]


def measure_performance(baseline: Mapping[str, Any], window: Window, rule: Rule) -> list[Measurement]:
    """Relative degradation of the annualised Sharpe against the held-out one, with the two-sample test
    (the one-sample PSR for baselines stored without the held-out moments)."""
    moments = baseline.get("baseline_returns")
    result = sharpe_degradation(
        window.returns,
        float(baseline["baseline_sharpe"]),
        float(baseline["periods_per_year"]),
        rule.critical_p,
        SharpeMoments(**moments) if moments else None,
    )
    status = performance_status(
        result, warning=rule.warning, critical=rule.critical, warning_p=rule.warning_p, critical_p=rule.critical_p
    )
    return [Measurement(None, result.degradation, status, result.details())]


FEATURE_DRIFT = Statistic(
    "kl_divergence",
    "feature",
    "KL(reference ‖ current) per feature on reference-decile bins, tested against its bootstrap null",
    FeatureRule,
    {
        "warning": "drift_kl_warning",
        "critical": "drift_kl_critical",
        "warning_p": "drift_feature_warning_p",
        "critical_p": "drift_feature_critical_p",
        "floor": "drift_floor",
    },
    measure_features,
)
PREDICTION_DRIFT = Statistic(
    "wasserstein",
    "prediction",
    "W1 between predicted probabilities / reference sd, tested against its bootstrap null",
    Rule,
    {
        "warning": "drift_wasserstein_warning",
        "critical": "drift_wasserstein_critical",
        "warning_p": "drift_prediction_warning_p",
        "critical_p": "drift_prediction_critical_p",
    },
    measure_prediction,
)
PERFORMANCE_DRIFT = Statistic(
    "sharpe_degradation",
    "performance",
    "(baseline − current Sharpe) / |baseline|, tested by the two-sample Sharpe test",
    Rule,
    {
        "warning": "drift_sharpe_warning",
        "critical": "drift_sharpe_critical",
        "warning_p": "drift_sharpe_warning_p",
        "critical_p": "drift_significance",
    },
    measure_performance,
)

STATISTICS: dict[str, Statistic[Any]] = {s.name: s for s in (FEATURE_DRIFT, PREDICTION_DRIFT, PERFORMANCE_DRIFT)}
