"""The retrain → validate → deploy → rollback pipeline end to end, on a real MLflow store and
registry (SQLite under a temporary SKIPPY_HOME) with synthetic and real market data.

No test depends on another having run: each gets its state from a fixture.
- `history` (one per session): market_insight retrained twice on the same market — v1 passed the gate
  and is champion, v2 (the same model again) was rejected —, once with a learning rate that diverges,
  and once on a market too short for the quality gate. Tests sharing it may add runs and versions but
  never move an alias, and look at their own rows.
- `fresh`: new stores with a market of the test's own, for the tests that move aliases;
  `deployed`: a fresh store in `history`'s first state (v1 champion, v2 rejected).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from mlops.data.features import FEATURE_NAMES, compute_features
from mlops.data.generate import generate_market
from mlops.data.store import import_bars_file, load_bars
from mlops.db import session_scope
from mlops.db.models import (
    FeatureImportance,
    ModelDeployment,
    ModelPerformanceHistory,
    ModelRun,
    TrainingDataQuality,
)
from mlops.errors import ConflictError, InvalidRequestError, NotFoundError, UnknownAgentError
from mlops.pipeline.deployments import list_deployments, promote, rollback
from mlops.pipeline.queries import feature_importance, get_run, list_models, list_runs
from mlops.pipeline.retrain import RetrainResult, retrain
from mlops.settings import Settings
from tests.conftest import real_csv
from tests.factories import market_store, store

pytestmark = pytest.mark.slow

MI = "market_insight"
# The drift baseline's null distributions, drawn at every retrain, take seconds and are not what the tests
# on `fresh` stores are about: those stores draw none. `history` keeps the defaults, as a user's store.
NO_DRIFT_NULL: dict[str, Any] = {"drift_null_draws": 0, "drift_null_prediction_draws": 0}


@dataclass(frozen=True)
class History:
    settings: Settings
    first: RetrainResult  # v1: passed the gate against the naive baselines, champion
    second: RetrainResult  # v2: the same model again, rejected against v1
    diverged: RetrainResult  # learning rate 50: failed, no version
    tiny: RetrainResult  # on TINY, 180 bars: rejected by the data quality gate, no version


def retrain_twice(settings: Settings) -> tuple[RetrainResult, RetrainResult]:
    first = retrain(settings, actor="cli:alice", agent=MI)
    second = retrain(settings, actor="cli:alice", agent=MI)
    assert (first.model_version, first.deployment_status) == (1, "promoted"), first.reason
    assert (second.model_version, second.deployment_status) == (2, "rejected"), second.reason
    return first, second


@pytest.fixture(scope="session")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    settings = market_store(tmp_path_factory.mktemp("history"), gate_require_edge=True)
    first, second = retrain_twice(settings)
    diverged = retrain(
        settings, actor="cli:alice", agent=MI, hyperparameters={"learning_rate": 50.0, "hidden_units": 16}
    )
    generate_market(settings, symbol="TINY", n_bars=180, seed=5)
    tiny = retrain(settings, actor="cli:alice", agent=MI, symbol="TINY")
    return History(settings, first, second, diverged, tiny)


@pytest.fixture
def fresh(tmp_path: Path, empty_mlflow_store: Path) -> Callable[..., Settings]:
    """Makes new stores holding a synthetic market (`factories.market_store` options), the gate as in production."""

    def make(**market: Any) -> Settings:
        home = tmp_path / f"home{len(list(tmp_path.iterdir()))}"
        return market_store(home, mlflow_store=empty_mlflow_store, gate_require_edge=True, **NO_DRIFT_NULL, **market)

    return make


@pytest.fixture
def deployed(fresh: Callable[..., Settings]) -> Settings:
    """A store where v1 is market_insight's champion and v2 a version the gate rejected."""
    settings = fresh()
    retrain_twice(settings)
    return settings


def champion(settings: Settings, agent: str = MI) -> int | None:
    from tracking import registry

    return registry.alias_version(settings, agent, registry.CHAMPION)


def challenger(settings: Settings, agent: str = MI) -> int | None:
    from tracking import registry

    return registry.alias_version(settings, agent, registry.CHALLENGER)


def client(settings: Settings) -> Any:
    from tracking.client import get_client

    return get_client(settings)


def with_(settings: Settings, **changes: object) -> Settings:
    return settings.model_copy(update=changes)


def test_first_retrain_is_logged_registered_and_deployed(history: History) -> None:
    import mlflow

    settings, result = history.settings, history.first
    assert (result.status, result.deployment_status, result.model_version) == ("succeeded", "promoted", 1)
    assert "passed against naive baselines (no champion yet)" in result.reason
    assert champion(settings) == 1 and challenger(settings) is None

    # MLflow: the run, its params, metrics, curves and artifacts, in the agent's experiment.
    run = client(settings).get_run(result.mlflow_run_id)
    assert client(settings).get_experiment(run.info.experiment_id).name == MI
    assert run.info.status == "FINISHED"
    assert {
        "accuracy",
        "precision",
        "recall",
        "sharpe_ratio",
        "val_loss",
        "test_sharpe_ratio",
        "max_drawdown",
        "turnover",
        "buy_hold_sharpe_ratio",
        # The gate's numbers (against always-long for a first model: recorded, not a test).
        "gate_sharpe_diff",
        "gate_sharpe_diff_ci_low",
        "gate_sharpe_diff_ci_high",
        "gate_p_value",
        "gate_hit_rate",
    } <= set(run.data.metrics)
    assert run.data.tags["skippy.gate_comparison"] == "none"
    assert {"learning_rate", "batch_size", "epochs", "risk_threshold", "l2", "hidden_units"} <= set(run.data.params)
    curve = client(settings).get_metric_history(result.mlflow_run_id, "train_loss")
    assert len(curve) == int(run.data.metrics["epochs_run"]) and [m.step for m in curve] == list(range(len(curve)))
    artifacts = {a.path for a in client(settings).list_artifacts(result.mlflow_run_id)}
    assert {
        "equity_curve.png",
        "feature_importance.json",
        "data_quality.json",
        "confusion_matrix.json",
        "validation.json",
    } <= artifacts
    assert run.data.tags["mlflow.user"] == "cli:alice"

    # The registered model loads by alias and predicts probabilities from feature columns.
    model = mlflow.pyfunc.load_model(f"models:/{MI}@champion")
    assert model.metadata.signature.inputs.input_names() == list(FEATURE_NAMES)
    features = compute_features(load_bars(settings.app_db_url, "SYNTH")).tail(50)
    p = np.asarray(model.predict(features))
    assert p.shape == (50,) and ((p > 0) & (p < 1)).all()
    assert model.metadata.saved_input_example_info is not None

    # App DB mirrors: this run's rows.
    run_id = result.model_run_id
    with session_scope(settings.app_db_url) as session:
        row = session.get_one(ModelRun, run_id)
        assert (row.status, row.model_version, row.trigger, row.requested_by) == ("succeeded", 1, "manual", "cli:alice")
        assert row.validation is not None and row.validation["passed"] and row.validation["comparison"] == "none"
        assert row.validation["verdict"] == result.reason
        assert row.validation["metrics"]["gate_p_value"] == pytest.approx(run.data.metrics["gate_p_value"])
        assert row.metrics["test_sharpe_ratio"] == pytest.approx(run.data.metrics["test_sharpe_ratio"])
        importance = session.scalars(select(FeatureImportance).where(FeatureImportance.model_run_id == run_id))
        assert sorted(r.feature for r in importance) == sorted(FEATURE_NAMES)
        windows = session.scalars(select(ModelPerformanceHistory).where(ModelPerformanceHistory.model_run_id == run_id))
        assert {w.window for w in windows} == {"validation", "test"}
        quality = session.scalars(select(TrainingDataQuality).where(TrainingDataQuality.model_run_id == run_id)).one()
        assert quality.passed and quality.n_train >= 100
        moves = session.scalars(
            select(ModelDeployment).where(ModelDeployment.agent_type == MI).order_by(ModelDeployment.id)
        ).all()
        assert [(m.alias, m.action, m.to_version) for m in moves if m.to_version == 1] == [
            ("challenger", "challenger", 1),
            ("champion", "promote", 1),
            ("challenger", "clear", 1),
        ]


def test_second_retrain_is_validated_against_the_first(history: History) -> None:
    result = history.second
    assert result.model_version == 2
    assert result.champion_version == 1 and "champion v1 (champion scored)" in result.reason
    # Same data, same seed: the candidate IS the champion, so it is not better, and is not deployed.
    assert (result.status, result.deployment_status) == ("rejected", "rejected") and champion(history.settings) == 1
    gate = result.validation["metrics"]
    assert gate["gate_sharpe_diff"] == 0 and gate["gate_p_value"] > 0.5
    assert gate["gate_return_correlation"] == pytest.approx(1)
    assert "beats_champion_sharpe FAILED" in result.reason
    assert get_run(history.settings, result.model_run_id).validation == result.validation  # the API and CLI read this


def test_a_candidate_worse_than_the_champion_is_rejected_and_kept(history: History) -> None:
    settings = history.settings
    strict = with_(settings, gate_alpha=1e-9, **NO_DRIFT_NULL)  # a p-value no bootstrap can reach
    result = retrain(strict, actor="cli:alice", agent=MI, symbol="SYNTH", hyperparameters={"hidden_units": 0})
    assert (result.status, result.deployment_status) == ("rejected", "rejected")
    assert "rejected against champion v1" in result.reason and "beats_champion_sharpe FAILED" in result.reason
    assert champion(settings) == 1
    from tracking import registry

    assert result.model_version is not None
    version = registry.get_version(settings, MI, result.model_version)
    assert version is not None and version.tags["validation"] == "rejected"
    assert get_run(settings, result.model_run_id).error == result.reason


def test_a_diverging_learning_rate_fails_the_run_and_touches_nothing(history: History) -> None:
    result = history.diverged
    assert result.status == "failed" and "diverged" in result.reason and "learning_rate=50.0" in result.reason
    assert result.model_version is None and champion(history.settings) == 1
    assert client(history.settings).get_run(result.mlflow_run_id).info.status == "FAILED"
    assert get_run(history.settings, result.model_run_id).status == "failed"


def test_too_few_samples_is_rejected_by_the_quality_gate(history: History) -> None:
    result = history.tiny
    assert result.status == "rejected" and result.model_version is None
    assert "data quality gate failed" in result.reason and "at least 100 are required" in result.reason
    assert champion(history.settings) == 1
    with session_scope(history.settings.app_db_url) as session:
        quality = session.scalars(
            select(TrainingDataQuality).where(TrainingDataQuality.model_run_id == result.model_run_id)
        ).one()
        assert (quality.symbol, quality.passed) == ("TINY", False) and quality.n_train < 100
    assert get_run(history.settings, result.model_run_id).error == result.reason


def test_bad_requests_are_refused_before_anything_starts(history: History) -> None:
    settings = history.settings
    runs_before = len(list_runs(settings, limit=1000))
    with pytest.raises(UnknownAgentError, match="known agents: market_insight, risk_assessor"):
        retrain(settings, actor="cli:alice", agent="alpha")
    with pytest.raises(InvalidRequestError, match="batch_size"):
        retrain(settings, actor="cli:alice", agent=MI, hyperparameters={"batch_size": 0})
    with pytest.raises(NotFoundError, match=r"no bars for symbol 'NOPE' \(symbols with bars: SYNTH, TINY\)"):
        retrain(settings, actor="cli:alice", agent=MI, symbol="NOPE")
    assert len(list_runs(settings, limit=1000)) == runs_before


def test_models_and_runs_listings(history: History) -> None:
    settings = history.settings
    models = {m.agent_type: m for m in list_models(settings)}
    mine = models[MI]
    assert (mine.champion, mine.model_uri) == (1, "models:/market_insight@champion")
    versions = {v.version: v for v in mine.versions}
    assert {1, 2} <= set(versions)
    assert "champion" in versions[1].aliases and "test_sharpe_ratio" in versions[1].metrics
    assert not versions[2].aliases and {v.symbol for v in mine.versions} == {"SYNTH"}
    runs = {r.id: r for r in list_runs(settings, agent=MI, limit=100)}
    fixture_runs = (history.first, history.second, history.diverged, history.tiny)
    assert [runs[r.model_run_id].status for r in fixture_runs] == ["succeeded", "rejected", "failed", "rejected"]
    rejected = list_runs(settings, status="rejected")
    assert {history.second.model_run_id, history.tiny.model_run_id} <= {r.id for r in rejected}
    assert {r.status for r in rejected} == {"rejected"}
    assert list_runs(settings, agent="risk_assessor") == []


def test_rollback_restores_the_previous_champion_in_one_step(deployed: Settings) -> None:
    settings = deployed
    promote(settings, agent=MI, version=2, actor="cli:bob", reason="set up rollback", force=True)
    record = rollback(settings, agent=MI, actor="cli:bob")
    assert (record.from_version, record.to_version, record.action) == (2, 1, "rollback")
    assert champion(settings) == 1
    assert list_deployments(settings, MI)[0].action == "rollback"
    promote(settings, agent=MI, version=2, actor="cli:bob", reason="back to v2", force=True)
    assert champion(settings) == 2
    assert rollback(settings, agent=MI, actor="cli:bob", to_version=1).to_version == 1
    with pytest.raises(ConflictError, match="already the champion"):
        promote(settings, agent=MI, version=1, actor="cli:bob")
    with pytest.raises(NotFoundError, match="market_insight has no model version 99"):
        promote(settings, agent=MI, version=99, actor="cli:bob")
    with pytest.raises(NotFoundError, match="no model version 42"):
        rollback(settings, agent=MI, actor="cli:bob", to_version=42)
    assert champion(settings) == 1


def test_a_rejected_version_is_only_promoted_with_force(deployed: Settings) -> None:
    settings = deployed
    with pytest.raises(InvalidRequestError, match=r"was rejected by validation .* promote it anyway with --force"):
        promote(settings, agent=MI, version=2, actor="cli:eve")
    assert champion(settings) == 1
    record = promote(settings, agent=MI, version=2, actor="cli:eve", force=True)
    assert (record.from_version, record.to_version) == (1, 2) and champion(settings) == 2
    rollback(settings, agent=MI, actor="cli:eve")
    assert champion(settings) == 1
    # Rolling back again would land on the rejected version: refused unless forced, as a promotion is.
    with pytest.raises(InvalidRequestError, match=r"would deploy v2, which validation rejected .* --force"):
        rollback(settings, agent=MI, actor="cli:eve")
    assert champion(settings) == 1
    assert rollback(settings, agent=MI, actor="cli:eve", force=True).to_version == 2
    assert champion(settings) == 2


def test_feature_importance_defaults_to_the_champion_not_the_newest_version(history: History) -> None:
    settings = history.settings
    versions = {r.model_version for r in feature_importance(settings, agent=MI, all_versions=True)}
    assert {1, 2} <= versions
    assert {r.model_version for r in feature_importance(settings, agent=MI)} == {1}  # what trades, not the newest
    ranked = feature_importance(settings, agent=MI, version=2)
    assert {r.model_version for r in ranked} == {2} and sorted(r.feature for r in ranked) == sorted(FEATURE_NAMES)


def test_staged_rollout_leaves_a_challenger_until_promoted(fresh: Callable[..., Settings]) -> None:
    settings = fresh()
    result = retrain(with_(settings, promotion_mode="staged"), actor="cli:carol", agent="risk_assessor")
    assert result.deployment_status == "challenger", result.reason
    assert result.model_version is not None
    assert challenger(settings, "risk_assessor") == result.model_version
    assert champion(settings, "risk_assessor") is None
    promote(settings, agent="risk_assessor", version=result.model_version, actor="cli:carol")
    assert champion(settings, "risk_assessor") == result.model_version
    assert challenger(settings, "risk_assessor") is None


def test_staged_challenger_is_paper_traded_before_promotion(fresh: Callable[..., Settings]) -> None:
    from mlops.pipeline.staged import evaluate_challenger

    settings = fresh(symbol="PAPER", n_bars=2000, seed=13)  # a market whose models have an edge
    # A gate that lets any different candidate through: this test is about what happens after it.
    lenient = with_(settings, gate_alpha=1.0)
    # Paper trading itself runs the real test (α 0.05), capped at 40 bars to keep the test small.
    staged = with_(settings, promotion_mode="staged", staged_max_paper_bars=40)
    first = retrain(lenient, actor="cli:carol", agent=MI, symbol="PAPER", hyperparameters={"hidden_units": 0})
    assert first.deployment_status == "promoted", first.reason
    candidate = retrain(
        with_(lenient, promotion_mode="staged"),
        actor="cli:carol",
        agent=MI,
        symbol="PAPER",
        hyperparameters={"hidden_units": 4},
    )
    assert candidate.deployment_status == "challenger", candidate.reason
    champ = first.model_version
    assert champion(staged) == champ
    waiting = evaluate_challenger(staged, agent=MI)
    assert waiting.decision == "waiting" and "needs 40 new PAPER bars" in waiting.reason
    assert waiting.required_bars == 40  # power 0.5 needs more than the configured maximum: test at the maximum
    generate_market(staged, symbol="PAPER", n_bars=80, append=True)
    result = evaluate_challenger(staged, agent=MI)
    assert result.paper_bars >= 40
    assert f"challenger v{candidate.model_version} vs champion v{champ}" in result.reason
    assert result.gate["comparison"] == "paper_trading" and "gate_p_value" in result.gate["metrics"]
    assert result.gate["metrics"]["gate_n_bars"] == 40  # one look, at the sample sized in advance
    # 40 bars are too few to show this challenger better (it leads, p > 0.05): retired, champion kept.
    assert result.decision == "retired", result.reason
    assert "beats_champion_sharpe FAILED" in result.reason
    assert challenger(staged) is None and champion(staged) == champ
    assert list_deployments(staged, MI)[0].action == "retire"
    with session_scope(settings.app_db_url) as session:
        paper = session.scalars(select(ModelPerformanceHistory).where(ModelPerformanceHistory.window == "paper")).all()
        assert {p.model_version for p in paper} == {candidate.model_version, champ}


def test_real_daily_csv_retrain_validate_and_rollback(tmp_path: Path, empty_mlflow_store: Path) -> None:
    """As a user with their own data: import GOOG daily bars, retrain both agents, retrain again."""
    settings = store(tmp_path, mlflow_store=empty_mlflow_store, gate_require_edge=True, **NO_DRIFT_NULL)
    assert import_bars_file(settings.app_db_url, real_csv("GOOG.csv"), "GOOG").inserted == 2148
    for agent in ("market_insight", "risk_assessor"):
        first = retrain(settings, actor="cli:dave", agent=agent)  # GOOG, the only symbol there is
        outcome = (first.status, first.deployment_status, first.model_version)
        assert outcome == ("succeeded", "promoted", 1), first.reason
        assert first.reason.startswith("passed against naive baselines")
        assert math.isfinite(first.metrics["sharpe_ratio"]) and get_run(settings, first.model_run_id).symbol == "GOOG"
        # The same recipe on the same bars again: no better than the champion, so not deployed.
        second = retrain(settings, actor="cli:dave", agent=agent, symbol="GOOG")
        assert (second.status, second.model_version) == ("rejected", 2), second.reason
        assert second.reason.startswith("rejected against champion v1 (champion scored)")
        assert champion(settings, agent) == 1
    with pytest.raises(NotFoundError, match=r"no previous champion to roll back to \(champion is v1\)"):
        rollback(settings, agent=MI, actor="cli:dave")
