"""The retrain → validate → deploy → rollback pipeline end to end, on a real MLflow store and
registry (SQLite under a temporary SKIPPY_HOME) with synthetic and real market data."""

from __future__ import annotations

from pathlib import Path

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
from mlops.pipeline.deployments import list_deployments, previous_champion, promote, rollback
from mlops.pipeline.queries import feature_importance, get_run, list_models, list_runs
from mlops.pipeline.retrain import retrain
from mlops.settings import Settings
from mlops.stores import init_stores
from tests.conftest import make_settings, real_csv

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    s = make_settings(tmp_path_factory.mktemp("skippy"), gate_require_edge=True)
    init_stores(s)
    generate_market(s, symbol="SYNTH", n_bars=1500, seed=3)  # a market whose first models have an edge
    return s


def champion(settings: Settings, agent: str = "market_insight") -> int | None:
    from tracking import registry

    return registry.alias_version(settings, agent, registry.CHAMPION)


def client(settings: Settings):  # type: ignore[no-untyped-def]
    from tracking.client import get_client

    return get_client(settings)


def test_first_retrain_is_logged_registered_and_deployed(settings: Settings) -> None:
    import mlflow

    result = retrain(settings, agent="market_insight", requested_by="alice")
    assert (result.status, result.deployment_status, result.model_version) == ("succeeded", "promoted", 1)
    assert "passed against naive baselines (no champion yet)" in result.reason
    assert champion(settings) == 1

    # MLflow: the run, its params, metrics, curves and artifacts, in the agent's experiment.
    run = client(settings).get_run(result.mlflow_run_id)
    assert client(settings).get_experiment(run.info.experiment_id).name == "market_insight"
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
    assert run.data.tags["mlflow.user"] == "alice"

    # The registered model loads by alias and predicts probabilities from feature columns.
    model = mlflow.pyfunc.load_model("models:/market_insight@champion")
    assert model.metadata.signature.inputs.input_names() == list(FEATURE_NAMES)
    features = compute_features(load_bars(settings.app_db_url, "SYNTH")).tail(50)
    p = np.asarray(model.predict(features))
    assert p.shape == (50,) and ((p > 0) & (p < 1)).all()
    assert model.metadata.saved_input_example_info is not None

    # App DB mirrors.
    with session_scope(settings.app_db_url) as session:
        row = session.get_one(ModelRun, result.model_run_id)
        assert (row.status, row.model_version, row.trigger, row.requested_by) == ("succeeded", 1, "manual", "alice")
        assert row.validation is not None and row.validation["passed"] and row.validation["comparison"] == "none"
        assert row.validation["verdict"] == result.reason
        assert row.validation["metrics"]["gate_p_value"] == pytest.approx(run.data.metrics["gate_p_value"])
        assert row.metrics["test_sharpe_ratio"] == pytest.approx(run.data.metrics["test_sharpe_ratio"])
        assert len(session.scalars(select(FeatureImportance).where(FeatureImportance.model_version == 1)).all()) == 13
        windows = {r.window for r in session.scalars(select(ModelPerformanceHistory))}
        assert windows == {"validation", "test"}
        quality = session.scalars(select(TrainingDataQuality)).one()
        assert quality.passed and quality.n_train >= 100
        actions = [d.action for d in session.scalars(select(ModelDeployment).order_by(ModelDeployment.id))]
        assert actions == ["challenger", "promote"]


def test_second_retrain_is_validated_against_the_first(settings: Settings) -> None:
    result = retrain(settings, agent="market_insight")
    assert result.model_version == 2
    assert result.champion_version == 1 and "champion v1 (champion scored)" in result.reason
    # Same data, same seed: the candidate IS the champion, so it is not better, and is not deployed.
    assert (result.status, result.deployment_status) == ("rejected", "rejected") and champion(settings) == 1
    gate = result.validation["metrics"]
    assert gate["gate_sharpe_diff"] == 0 and gate["gate_p_value"] > 0.5
    assert gate["gate_return_correlation"] == pytest.approx(1)
    assert "beats_champion_sharpe FAILED" in result.reason
    assert get_run(settings, result.model_run_id).validation == result.validation  # the API and CLI read this
    promote(settings, agent="market_insight", version=2, actor="bob", reason="set up rollback", force=True)


def test_rollback_restores_the_previous_champion_in_one_step(settings: Settings) -> None:
    record = rollback(settings, agent="market_insight", actor="bob")
    assert (record.from_version, record.to_version, record.action) == (2, 1, "rollback")
    assert champion(settings) == 1
    assert list_deployments(settings, "market_insight")[0].action == "rollback"
    promote(settings, agent="market_insight", version=2, actor="bob", reason="back to v2", force=True)
    assert champion(settings) == 2
    assert rollback(settings, agent="market_insight", actor="bob", to_version=1).to_version == 1
    with pytest.raises(ConflictError, match="already the champion"):
        promote(settings, agent="market_insight", version=1, actor="bob")
    with pytest.raises(NotFoundError, match="market_insight has no model version 99"):
        promote(settings, agent="market_insight", version=99, actor="bob")
    with pytest.raises(NotFoundError, match="no model version 42"):
        rollback(settings, agent="market_insight", actor="bob", to_version=42)
    assert champion(settings) == 1


def test_a_candidate_worse_than_the_champion_is_rejected_and_kept(settings: Settings) -> None:
    strict = replace_settings(settings, gate_alpha=1e-9)  # a p-value no bootstrap can reach
    before = champion(settings)
    result = retrain(strict, agent="market_insight", hyperparameters={"hidden_units": 0})
    assert (result.status, result.deployment_status) == ("rejected", "rejected")
    assert "rejected against champion v1" in result.reason and "beats_champion_sharpe FAILED" in result.reason
    assert champion(settings) == before
    from tracking import registry

    version = registry.get_version(settings, "market_insight", result.model_version)  # type: ignore[arg-type]
    assert version is not None and version.tags["validation"] == "rejected"
    assert get_run(settings, result.model_run_id).error == result.reason


def test_too_few_samples_is_rejected_by_the_quality_gate(settings: Settings) -> None:
    generate_market(settings, symbol="TINY", n_bars=180, seed=5)
    before = champion(settings)
    result = retrain(settings, agent="market_insight", symbol="TINY")
    assert result.status == "rejected" and result.model_version is None
    assert "data quality gate failed" in result.reason and "at least 100 are required" in result.reason
    assert champion(settings) == before
    with session_scope(settings.app_db_url) as session:
        quality = session.scalars(select(TrainingDataQuality).where(TrainingDataQuality.symbol == "TINY")).one()
        assert not quality.passed and quality.n_train < 100


def test_a_diverging_learning_rate_fails_the_run_and_touches_nothing(settings: Settings) -> None:
    before = champion(settings)
    result = retrain(settings, agent="market_insight", hyperparameters={"learning_rate": 50.0, "hidden_units": 16})
    assert result.status == "failed" and "diverged" in result.reason and "learning_rate=50.0" in result.reason
    assert champion(settings) == before
    assert client(settings).get_run(result.mlflow_run_id).info.status == "FAILED"


def test_bad_requests_are_refused_before_anything_starts(settings: Settings) -> None:
    runs_before = len(list_runs(settings, limit=1000))
    with pytest.raises(UnknownAgentError, match="known agents: market_insight, risk_assessor"):
        retrain(settings, agent="alpha")
    with pytest.raises(InvalidRequestError, match="batch_size"):
        retrain(settings, agent="market_insight", hyperparameters={"batch_size": 0})
    with pytest.raises(NotFoundError, match="no bars for symbol 'NOPE'"):
        retrain(settings, agent="market_insight", symbol="NOPE")
    assert len(list_runs(settings, limit=1000)) == runs_before


def test_staged_rollout_leaves_a_challenger_until_promoted(settings: Settings) -> None:
    staged = replace_settings(settings, promotion_mode="staged")
    result = retrain(staged, agent="risk_assessor")
    assert result.deployment_status == "challenger"
    from tracking import registry

    assert registry.alias_version(settings, "risk_assessor", registry.CHALLENGER) == result.model_version
    assert champion(settings, "risk_assessor") is None
    promote(settings, agent="risk_assessor", version=result.model_version, actor="carol")  # type: ignore[arg-type]
    assert champion(settings, "risk_assessor") == result.model_version
    assert registry.alias_version(settings, "risk_assessor", registry.CHALLENGER) is None


def test_models_and_runs_listings(settings: Settings) -> None:
    models = {m.agent_type: m for m in list_models(settings)}
    assert models["market_insight"].champion == champion(settings)
    assert models["market_insight"].model_uri == "models:/market_insight@champion"
    champ = next(v for v in models["market_insight"].versions if v.version == models["market_insight"].champion)
    assert "champion" in champ.aliases and "test_sharpe_ratio" in champ.metrics
    statuses = {r.status for r in list_runs(settings, agent="market_insight", limit=100)}
    assert statuses == {"succeeded", "rejected", "failed"}
    assert all(r.status == "rejected" for r in list_runs(settings, status="rejected"))


def test_real_daily_csv_retrain_validate_and_rollback(settings: Settings) -> None:
    """As a user with their own data: import GOOG daily bars, retrain both agents, retrain again."""
    result = import_bars_file(settings.app_db_url, real_csv("GOOG.csv"), "GOOG")
    assert result.inserted == 2148
    for agent in ("market_insight", "risk_assessor"):
        first = retrain(settings, agent=agent, symbol="GOOG")
        assert first.status in ("succeeded", "rejected"), first.reason
        assert first.metrics["sharpe_ratio"] == pytest.approx(first.metrics["sharpe_ratio"])  # finite
        second = retrain(settings, agent=agent, symbol="GOOG")
        assert second.status in ("succeeded", "rejected") and second.reason
        if champion(settings, agent) is not None:
            assert "champion v" in second.reason
    before = champion(settings)
    if previous_champion(settings, "market_insight") is None:  # this test alone: nothing to roll back to
        with pytest.raises(NotFoundError, match="no previous champion to roll back to"):
            rollback(settings, agent="market_insight", actor="dave")
    else:  # after the module's other tests the previous champion may be a forced, rejected version
        record = rollback(settings, agent="market_insight", actor="dave", force=True)
        assert record.from_version == before and champion(settings) == record.to_version


def replace_settings(settings: Settings, **changes: object) -> Settings:
    return settings.model_copy(update=changes)


def test_settings_copy_keeps_stores(settings: Settings, tmp_path: Path) -> None:
    copy = replace_settings(settings, gate_alpha=0.5)
    assert copy.app_db_url == settings.app_db_url and copy.tracking_uri == settings.tracking_uri
    assert copy.gate_alpha == 0.5 and settings.gate_alpha == 0.05


def test_staged_challenger_is_paper_traded_before_promotion(settings: Settings) -> None:
    from mlops.pipeline.staged import evaluate_challenger
    from tracking import registry

    # A gate that lets any different candidate through: this test is about what happens after it.
    lenient = replace_settings(settings, gate_alpha=1.0)
    # Paper trading itself runs the real test (α 0.05), capped at 40 bars to keep the test small.
    staged = replace_settings(settings, promotion_mode="staged", staged_max_paper_bars=40)
    generate_market(staged, symbol="PAPER", n_bars=2000, seed=13)  # a market whose models have an edge
    first = retrain(lenient, agent="market_insight", symbol="PAPER", hyperparameters={"hidden_units": 0})
    assert first.deployment_status == "promoted", first.reason
    candidate = retrain(
        replace_settings(lenient, promotion_mode="staged"),
        agent="market_insight",
        symbol="PAPER",
        hyperparameters={"hidden_units": 4},
    )
    assert candidate.deployment_status == "challenger", candidate.reason
    champ = champion(staged)
    waiting = evaluate_challenger(staged, agent="market_insight")
    assert waiting.decision == "waiting" and "needs 40 new PAPER bars" in waiting.reason
    assert waiting.required_bars == 40  # power 0.5 needs more than the configured maximum: test at the maximum
    generate_market(staged, symbol="PAPER", n_bars=80, append=True)
    result = evaluate_challenger(staged, agent="market_insight")
    assert result.paper_bars >= 40 and result.decision in ("promoted", "retired")
    assert f"challenger v{candidate.model_version} vs champion v{champ}" in result.reason
    assert result.gate["comparison"] == "paper_trading" and "gate_p_value" in result.gate["metrics"]
    assert result.gate["metrics"]["gate_n_bars"] == 40  # one look, at the sample sized in advance
    # Either way the challenger alias is gone: promoted to champion, or retired.
    assert registry.alias_version(staged, "market_insight", registry.CHALLENGER) is None
    if result.decision == "promoted":
        assert champion(staged) == candidate.model_version
    else:
        assert champion(staged) == champ
        assert list_deployments(staged, "market_insight")[0].action == "retire"
    with session_scope(settings.app_db_url) as session:
        paper = session.scalars(select(ModelPerformanceHistory).where(ModelPerformanceHistory.window == "paper")).all()
        assert {p.model_version for p in paper} == {candidate.model_version, champ}


def test_a_rejected_version_is_only_promoted_with_force(settings: Settings) -> None:
    from tracking import registry

    rejected = next(r for r in list_runs(settings, agent="market_insight", status="rejected") if r.model_version)
    assert rejected.model_version is not None
    with pytest.raises(InvalidRequestError, match=r"was rejected by validation .* promote it anyway with --force"):
        promote(settings, agent="market_insight", version=rejected.model_version, actor="eve")
    before = registry.alias_version(settings, "market_insight", registry.CHAMPION)
    record = promote(settings, agent="market_insight", version=rejected.model_version, actor="eve", force=True)
    assert record.from_version == before and champion(settings) == rejected.model_version
    rollback(settings, agent="market_insight", actor="eve")
    assert champion(settings) == before
    # Rolling back again would land on the rejected version: refused unless forced, as a promotion is.
    with pytest.raises(InvalidRequestError, match=r"would deploy v\d+, which validation rejected .* --force"):
        rollback(settings, agent="market_insight", actor="eve")
    assert champion(settings) == before
    assert rollback(settings, agent="market_insight", actor="eve", force=True).to_version == rejected.model_version
    promote(settings, agent="market_insight", version=before, actor="eve")  # type: ignore[arg-type]

    # Feature importance by default is the champion's (what is trading), not the newest version's.
    def default_importance() -> set[int]:
        return {r.model_version for r in feature_importance(settings, agent="market_insight")}

    newest = max(r.model_version for r in feature_importance(settings, agent="market_insight", all_versions=True))
    assert default_importance() == {before} and rejected.model_version < newest
    promote(settings, agent="market_insight", version=rejected.model_version, actor="eve", force=True)
    assert default_importance() == {rejected.model_version}
    rollback(settings, agent="market_insight", actor="eve", to_version=before)
    models = {m.agent_type: m for m in list_models(settings)}
    assert {v.symbol for v in models["market_insight"].versions} <= {"SYNTH", "GOOG", "TINY", "PAPER"}
