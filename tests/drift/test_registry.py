"""The registry of drift statistics: what a check iterates, each entry's rule read from Settings (and
from nowhere else), and each entry's measurement against the drift/ functions it stands for."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from drift.baseline import compute_baseline
from drift.feature_test import FeatureRule, feature_verdicts, summary_details
from drift.prediction_test import prediction_verdict
from drift.registry import FEATURE_DRIFT, PERFORMANCE_DRIFT, PREDICTION_DRIFT, STATISTICS, Window
from drift.sharpe import SharpeMoments, performance_status, sharpe_degradation
from drift.status import Rule
from mlops.settings import Settings
from tests.conftest import make_settings

NAMES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("registry"))


@pytest.fixture(scope="module")
def baseline() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return compute_baseline(
        rng.normal(size=(1200, len(NAMES))),
        NAMES,
        rng.beta(2, 8, 1200),
        baseline_sharpe=1.2,
        periods_per_year=252,
        baseline_returns=rng.normal(0.0008, 0.01, 400),
        windows=(200,),
        draws=500,
        prediction_draws=300,
    )


def window(seed: int, *, shift: float = 0.0, returns_mean: float = 0.0008, n: int = 200) -> Window:
    rng = np.random.default_rng(seed)
    features = {name: rng.normal(shift, 1.0 + shift, n) for name in NAMES}
    return Window(features, rng.beta(2, 8, n), rng.normal(returns_mean, 0.01, n))


def test_a_check_runs_feature_prediction_and_performance_drift_in_that_order() -> None:
    assert [(s.name, s.drift_type) for s in STATISTICS.values()] == [
        ("kl_divergence", "feature"),
        ("wasserstein", "prediction"),
        ("sharpe_degradation", "performance"),
    ]
    assert list(STATISTICS.values()) == [FEATURE_DRIFT, PREDICTION_DRIFT, PERFORMANCE_DRIFT]


@pytest.mark.parametrize("name", list(STATISTICS))
def test_every_field_of_a_rule_is_read_from_its_own_settings_field(settings: Settings, name: str) -> None:
    statistic = STATISTICS[name]
    assert set(statistic.settings_fields) == {f.name for f in dataclasses.fields(statistic.rule_type)}
    assert set(statistic.settings_fields.values()) <= set(Settings.model_fields)
    assert statistic.rule(settings) == statistic.rule_type(
        **{field: getattr(settings, source) for field, source in statistic.settings_fields.items()}
    )
    # Distinct values in every field: each lands where it belongs, so no value is taken from elsewhere.
    distinct = {source: 0.001 * (i + 1) for i, source in enumerate(statistic.settings_fields.values())}
    rule = statistic.rule(settings.model_copy(update=distinct))
    assert {field: getattr(rule, field) for field in statistic.settings_fields} == {
        field: distinct[source] for field, source in statistic.settings_fields.items()
    }


def test_the_rules_are_the_design_defaults_configured_in_settings(settings: Settings) -> None:
    assert FEATURE_DRIFT.rule(settings) == FeatureRule(0.05, 0.1, 0.05, 0.005, 1e-6)
    assert PREDICTION_DRIFT.rule(settings) == Rule(0.1, 0.15, 0.05, 0.005)
    assert PERFORMANCE_DRIFT.rule(settings) == Rule(0.02, 0.05, 0.2, settings.drift_significance)


def test_feature_drift_is_one_row_per_feature_and_a_summary_of_the_deciding_one(
    settings: Settings, baseline: dict[str, Any]
) -> None:
    rule = FEATURE_DRIFT.rule(settings)
    current = window(1, shift=1.0)
    rows = FEATURE_DRIFT.measure(baseline, current, rule)
    verdicts = feature_verdicts(baseline, current.features, rule)
    assert [r.feature for r in rows] == [*NAMES, None]
    assert [(r.value, r.status, r.details) for r in rows[:-1]] == [(v.kl, v.status, v.details()) for v in verdicts]
    summary = rows[-1]
    assert summary.details == summary_details(verdicts) and summary.status == "critical"
    assert summary.value == next(r.value for r in rows if r.feature == summary.details["deciding_feature"])


def test_feature_drift_measures_the_window_s_features_and_names_one_the_baseline_lacks(
    settings: Settings, baseline: dict[str, Any]
) -> None:
    rule = FEATURE_DRIFT.rule(settings)
    current = window(2)
    two = Window({n: current.features[n] for n in ("b", "a")}, current.predictions, current.returns)
    assert [r.feature for r in FEATURE_DRIFT.measure(baseline, two, rule)] == ["b", "a", None]
    extra = Window(dict(current.features) | {"z": current.features["a"]}, current.predictions, current.returns)
    with pytest.raises(ValueError, match=r"the baseline has no reference for features \['z'\]"):
        FEATURE_DRIFT.measure(baseline, extra, rule)


def test_prediction_drift_is_the_prediction_verdict(settings: Settings, baseline: dict[str, Any]) -> None:
    rule = PREDICTION_DRIFT.rule(settings)
    current = window(3)
    (row,) = PREDICTION_DRIFT.measure(baseline, current, rule)
    verdict = prediction_verdict(baseline, current.predictions, rule)
    assert (row.feature, row.value, row.status, row.details) == (None, verdict.value, verdict.status, verdict.details())
    assert row.details["tested"] and 0 < row.details["p_value"] <= 1


def test_performance_drift_is_the_two_sample_sharpe_test_with_settings_thresholds(
    settings: Settings, baseline: dict[str, Any]
) -> None:
    rule = PERFORMANCE_DRIFT.rule(settings)
    worse = window(4, returns_mean=-0.002, n=400)
    (row,) = PERFORMANCE_DRIFT.measure(baseline, worse, rule)
    expected = sharpe_degradation(
        worse.returns, 1.2, 252, settings.drift_significance, SharpeMoments(**baseline["baseline_returns"])
    )
    assert row.value == expected.degradation and row.details == expected.details()
    assert (
        row.status
        == "critical"
        == performance_status(
            expected, warning=0.02, critical=0.05, warning_p=0.2, critical_p=settings.drift_significance
        )
    )
    assert "two-sample" in row.details["test"] and row.details["n"] == 400 and math.isfinite(row.details["z"])
    # The same window under a configured floor it does not pass: the status follows Settings.
    lenient = PERFORMANCE_DRIFT.rule(settings.model_copy(update={"drift_sharpe_critical": 50.0}))
    assert PERFORMANCE_DRIFT.measure(baseline, worse, lenient)[0].status == "warning"


def test_a_configured_threshold_changes_the_feature_status(settings: Settings, baseline: dict[str, Any]) -> None:
    shifted = window(5, shift=1.0)
    strict = FEATURE_DRIFT.measure(baseline, shifted, FEATURE_DRIFT.rule(settings))[-1]
    loose_settings = settings.model_copy(update={"drift_kl_warning": 1e3, "drift_kl_critical": 1e4})
    loose = FEATURE_DRIFT.measure(baseline, shifted, FEATURE_DRIFT.rule(loose_settings))[-1]
    assert (strict.status, loose.status) == ("critical", "ok")


def test_no_default_threshold_lives_outside_settings() -> None:
    """The rules take every value from Settings: constructing one without them is an error."""
    with pytest.raises(TypeError):
        Rule()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        FeatureRule(0.05, 0.1, 0.05, 0.005)  # type: ignore[call-arg]


def test_statistics_are_pure() -> None:
    """drift/ imports no service, CLI, API, job or MLflow code (DESIGN: pure numpy/scipy)."""
    import ast

    root = Path(__file__).resolve().parents[2] / "drift"
    forbidden = ("mlops.pipeline", "mlops.agents", "mlops.jobs", "mlops.cli", "app", "mlflow", "tracking", "sweeps")
    found = []
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            found += [f"{path.name}: {n}" for n in names if any(n == f or n.startswith(f + ".") for f in forbidden)]
    assert found == []
