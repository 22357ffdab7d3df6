"""The data quality gate (`mlops.pipeline.quality.check_quality`): each rule fails a training set on its
own, with a problem that names it; bar artefacts with a legitimate cause are warnings, not failures; the
gate passes on the synthetic market and on real GOOG daily and EURUSD hourly bars. No stores."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from mlops.agents.specs import SPECS
from mlops.agents.training import Dataset, build_dataset
from mlops.pipeline.quality import QualityReport, check_quality
from mlops.settings import Settings
from tests.conftest import bars_frame, make_settings, real_csv
from tests.factories import training_set


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("quality"))


@pytest.fixture(scope="module")
def clean() -> Dataset:
    return training_set("market_insight")


def failed_alone(report: QualityReport, *fragments: str) -> None:
    """The gate failed, and every problem it names is the rule under test (each contains a fragment)."""
    assert not report.passed and report.problems
    for problem in report.problems:
        assert any(f in problem for f in fragments), report.problems


def test_a_clean_training_set_passes_with_its_numbers_recorded(settings: Settings, clean: Dataset) -> None:
    report = check_quality(clean, settings)
    assert report.passed and report.problems == [] and report.warnings == []
    assert report.checks["sizes"] == clean.splits.sizes() and report.checks["bars"] == 1500
    assert (report.checks["non_finite_rows"], report.checks["duplicate_timestamps"]) == (0, 0)
    assert report.checks["min_training_samples"] == settings.min_training_samples
    assert report.positive_share == pytest.approx(float(np.mean(clean.y[clean.splits.train])))
    assert set(report.checks["positive_share"]) == {"train", "validation", "test"}


def test_too_few_training_samples_fail(settings: Settings) -> None:
    report = check_quality(training_set(n_bars=180, seed=5), settings)
    failed_alone(report, "training samples")
    assert report.problems == [
        f"only {report.checks['sizes']['train']} training samples (from 180 bars); at least 100 are required"
    ]


def test_the_minimum_number_of_training_samples_is_a_setting(settings: Settings, clean: Dataset) -> None:
    strict = settings.model_copy(update={"min_training_samples": 5000})
    failed_alone(check_quality(clean, strict), "at least 5000 are required")


def test_validation_and_test_splits_too_small_to_judge_a_model_fail(settings: Settings) -> None:
    lenient = settings.model_copy(update={"min_training_samples": 10})
    report = check_quality(training_set(n_bars=110, seed=5), lenient)
    failed_alone(report, "validation/test splits too small")
    assert report.checks["sizes"]["validation"] < 10


def test_non_finite_feature_values_after_the_warm_up_fail(settings: Settings) -> None:
    bars = bars_frame(1500)
    bars.loc[bars.index[700], "close"] = np.nan  # one missing close in the middle of the series
    spec = SPECS["market_insight"]
    report = check_quality(build_dataset(bars, spec, spec.defaults), settings)
    failed_alone(report, "feature rows contain NaN or inf after the warm-up")
    assert report.checks["non_finite_rows"] > 0
    assert report.problems == [f"{report.checks['non_finite_rows']} feature rows contain NaN or inf after the warm-up"]


def test_a_class_too_rare_in_a_split_fails(settings: Settings) -> None:
    # risk_assessor with a 0.5 % tail: far fewer positives than the 3 % each class needs.
    report = check_quality(training_set("risk_assessor", risk_threshold=0.005), settings)
    failed_alone(report, "positive labels: both classes must be at least 3% of it")
    assert any(p.startswith("train split has") for p in report.problems)
    assert report.checks["positive_share"]["train"] < settings.min_class_share


def test_duplicate_timestamps_fail(settings: Settings, clean: Dataset) -> None:
    report = check_quality(dataclasses.replace(clean, n_duplicate_ts=2), settings)
    failed_alone(report, "duplicate timestamps")
    assert report.problems == ["2 duplicate timestamps in the bars"]
    assert report.checks["duplicate_timestamps"] == 2


def test_bars_with_a_duplicate_timestamp_reach_the_gate_and_fail_it(settings: Settings) -> None:
    bars = bars_frame(1500)
    bars = pd.concat([bars, bars.iloc[[700]]]).sort_index()
    spec = SPECS["market_insight"]
    report = check_quality(build_dataset(bars, spec, spec.defaults), settings)
    failed_alone(report, "duplicate timestamps")


def test_every_failing_rule_is_reported_not_just_the_first(settings: Settings, clean: Dataset) -> None:
    broken = dataclasses.replace(clean, n_duplicate_ts=1, n_non_finite=4)
    strict = settings.model_copy(update={"min_training_samples": 5000})
    problems = " | ".join(check_quality(broken, strict).problems)
    for rule in ("training samples", "NaN or inf", "duplicate timestamps"):
        assert rule in problems


# --- warnings: artefacts with a legitimate cause ---------------------------------------------------------


def _real(name: str) -> pd.DataFrame:
    bars = pd.read_csv(real_csv(name), index_col=0, parse_dates=True)
    bars.columns = [c.lower() for c in bars.columns]
    bars.index = pd.DatetimeIndex(bars.index).tz_localize("UTC")
    return bars


@pytest.mark.parametrize("agent", sorted(SPECS))
@pytest.mark.parametrize("source", ["synthetic", "GOOG.csv", "EURUSD.csv"])
def test_the_gate_passes_on_synthetic_and_real_data(settings: Settings, source: str, agent: str) -> None:
    bars = bars_frame(2500) if source == "synthetic" else _real(source)
    spec = SPECS[agent]
    report = check_quality(build_dataset(bars, spec, spec.defaults), settings)
    assert report.passed, report.problems
    assert report.warnings == []
    assert {"calendar", "zero_volume_bars", "open_equals_previous_close_share"} <= set(report.checks)


def test_zero_volume_stale_opens_and_missing_bars_are_flagged_not_failed(settings: Settings) -> None:
    bars = bars_frame(1500)
    bars.loc[bars.index[::50], "volume"] = 0.0
    bars["open"] = bars["close"].shift(1).fillna(bars["open"])
    bars["high"] = bars[["high", "open"]].max(axis=1)
    bars["low"] = bars[["low", "open"]].min(axis=1)
    bars = bars.drop(bars.index[400:500])  # 100 weekdays without bars: 6.7 % of the calendar
    spec = SPECS["market_insight"]
    report = check_quality(build_dataset(bars, spec, spec.defaults), settings)
    assert report.passed
    assert report.checks["zero_volume_bars"] == 28
    assert report.checks["open_equals_previous_close_share"] == pytest.approx(1.0, abs=0.002)  # bar after the hole
    assert report.checks["calendar"]["missing_bars"] == 100
    assert report.checks["warnings"] == report.warnings and len(report.warnings) == 3
    text = " | ".join(report.warnings)
    assert "28 bars have zero volume" in text
    assert "gap carries no information" in text
    assert "100 bars (6.7%) of the series' own trading calendar are missing" in text


def test_the_missing_bars_warning_share_is_a_setting(settings: Settings) -> None:
    full = bars_frame(1500)
    bars = full.drop(full.index[400:430])  # 30 missing weekdays: 2 % of the calendar
    spec = SPECS["market_insight"]
    data = build_dataset(bars, spec, spec.defaults)
    assert check_quality(data, settings).warnings == []
    touchy = settings.model_copy(update={"missing_bars_warning_share": 0.01})
    assert [w for w in check_quality(data, touchy).warnings if "trading calendar are missing" in w]
