"""The champion watch on a trained store: a deliberately bad champion (the trained champion with its signal
inverted) is promoted, the synthetic market goes on, and the watch rolls it back — champion alias restored, a
`rollback` row saying why, its looks, its audit rows and its critical alert; a good new champion is kept,
no look is ever made twice, a rollback does not start a new probation, and a previous version validation
rejected is never restored. On SQLite and on the real PostgreSQL."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from mlops.agents.network import forward
from mlops.db import session_scope
from mlops.db.models import Alert, AuditLog, ChampionLook, DriftBaseline, ModelRun
from mlops.pipeline.deployments import CHAMPION, current_aliases, list_deployments, promote
from mlops.pipeline.retrain import retrain
from mlops.pipeline.watch import agents_on_probation, p_text, watch_champion
from mlops.pipeline.watch_rule import planned_looks
from mlops.settings import Settings
from tests.conftest import fresh_postgres_url
from tests.factories import market_store, model_run

pytestmark = pytest.mark.slow
AGENT = "market_insight"
# A probation's first looks on this market can miss even an inverted champion (bench/rollback.py: 70 % power in
# the default 250 bars); the test gives the watch a probation long enough to see it, and the bars for it.
PROBATION_BARS = 600
NEW_BARS = 620


def inverted_forward(params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The trained network's probability turned upside down: every call of the champion reversed."""
    return 1.0 - forward(params, x)


def register_copy(
    settings: Settings,
    version: int,
    *,
    predict: Any = forward,
    tags: dict[str, str] | None = None,
    **run: Any,
) -> int:
    """Register the weights of `version` again as a new version whose prediction function is `predict` (by
    name, through tracking's generic ArrayModel), with the same recipe (MLflow params), drift baseline and
    training record (`run` overrides columns of its model_runs row, e.g. symbol or data_end)."""
    from tracking import registry
    from tracking.pyfunc import save_weights
    from tracking.runs import log_batch, log_pyfunc_model, run_params, start_run

    info = registry.get_version(settings, AGENT, version)
    assert info is not None and info.run_id
    wrapper = registry.load_version(settings, AGENT, version).unwrap_python_model()
    source = _run_row(settings, version)
    mlflow_run = start_run(settings, source["mlflow_experiment_id"], f"copy-of-v{version}", {"skippy.test": "copy"})
    log_batch(settings, mlflow_run, params=run_params(settings, info.run_id))
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = save_weights(Path(tmp), wrapper.params, wrapper.mean, wrapper.std, dict(wrapper.meta))
        example = _example(settings)
        model_uri = log_pyfunc_model(
            settings,
            mlflow_run,
            predict=predict,
            artifacts=artifacts,
            input_example=example,
            output_example=predict(wrapper.params, (example.to_numpy() - wrapper.mean) / wrapper.std),
            model_name="model",
        )
    new = registry.register_version(
        settings, AGENT, model_uri, mlflow_run, tags={"validation": "passed"} | (tags or {})
    )
    with session_scope(settings.app_db_url) as session:
        record = {
            "agent_type": AGENT,
            "model_version": new,
            "mlflow_run_id": mlflow_run,
            "symbol": source["symbol"],
            "data_end": source["data_end"],
            "hyperparameters": source["hyperparameters"],
        }
        model_run(session, **(record | run))
        baseline = session.scalars(
            select(DriftBaseline).where(DriftBaseline.agent_type == AGENT, DriftBaseline.model_version == version)
        ).one()
        session.add(
            DriftBaseline(
                agent_type=AGENT,
                model_version=new,
                symbol=run.get("symbol", baseline.symbol),
                payload=dict(baseline.payload),
                reference_start=baseline.reference_start,
                reference_end=baseline.reference_end,
            )
        )
    return new


def _run_row(settings: Settings, version: int) -> dict[str, Any]:
    with session_scope(settings.app_db_url) as session:
        row = session.scalars(
            select(ModelRun).where(ModelRun.agent_type == AGENT, ModelRun.model_version == version)
        ).one()
        return {
            "mlflow_experiment_id": row.mlflow_experiment_id,
            "symbol": row.symbol,
            "data_end": row.data_end,
            "hyperparameters": row.hyperparameters,
        }


def _example(settings: Settings) -> Any:
    from mlops.data.features import FEATURE_NAMES, compute_features
    from mlops.data.store import load_bars

    return compute_features(load_bars(settings.app_db_url, "SYNTH")).dropna()[list(FEATURE_NAMES)].tail(5)


def make_champion(settings: Settings, version: int) -> None:
    """`version` becomes champion by a person's forced promotion (whatever the previous test left)."""
    from tracking import registry

    if registry.alias_version(settings, AGENT, CHAMPION) != version:
        promote(settings, agent=AGENT, version=version, actor="cli:setup", reason="set up", force=True)


def champion(settings: Settings) -> int | None:
    from tracking import registry

    with session_scope(settings.app_db_url) as session:
        recorded = current_aliases(session, AGENT)[CHAMPION]
    assert recorded == registry.alias_version(settings, AGENT, CHAMPION)
    return recorded


def looks_of(settings: Settings, version: int) -> list[tuple[int, int, str]]:
    with session_scope(settings.app_db_url) as session:
        rows = session.scalars(
            select(ChampionLook)
            .where(ChampionLook.agent_type == AGENT, ChampionLook.champion_version == version)
            .order_by(ChampionLook.look)
        ).all()
        return [(r.look, r.n_bars, r.decision) for r in rows]


def audit_of(settings: Settings, action: str) -> list[AuditLog]:
    with session_scope(settings.app_db_url) as session:
        rows = session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)).all()
        session.expunge_all()
        return list(rows)


def alerts_of(settings: Settings, kind: str) -> list[Alert]:
    with session_scope(settings.app_db_url) as session:
        rows = session.scalars(select(Alert).where(Alert.kind == kind).order_by(Alert.id)).all()
        session.expunge_all()
        return list(rows)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, empty_mlflow_store: Path
) -> Iterator[dict[str, Any]]:
    """v1 trained on 1,500 synthetic bars and promoted; copies of its weights registered as v2.. (inverted or
    not); then the market goes on for NEW_BARS bars that none of them saw."""
    from mlops.data.generate import generate_market

    overrides: dict[str, object] = {}
    if request.param == "postgres":
        overrides["database_url"] = fresh_postgres_url(request.getfixturevalue("postgres_server"))
    home = tmp_path_factory.mktemp(f"watch-{request.param}")
    settings = market_store(home, mlflow_store=empty_mlflow_store, auto_rollback_max_bars=PROBATION_BARS, **overrides)
    first = retrain(settings, agent=AGENT, actor="test")
    assert (first.model_version, first.deployment_status) == (1, "promoted"), first.reason
    versions = {
        "inverted": register_copy(settings, 1, predict=inverted_forward),
        "good": register_copy(settings, 1),
        "waiting": register_copy(settings, 1),
        "rejected": register_copy(settings, 1, tags={"validation": "rejected", "validation_reason": "test"}),
        "inverted_again": register_copy(settings, 1, predict=inverted_forward),
    }
    generate_market(settings, symbol="SYNTH", n_bars=NEW_BARS, seed=3, append=True)
    yield {"settings": settings, **versions}


def test_a_deliberately_bad_champion_is_promoted_then_rolled_back(store: dict[str, Any]) -> None:
    settings, bad = store["settings"], store["inverted"]
    make_champion(settings, 1)
    promote(settings, agent=AGENT, version=bad, actor="cli:alice", reason="deliberately bad: signal inverted")
    assert agents_on_probation(settings) == [AGENT]

    verdict = watch_champion(settings, agent=AGENT, actor="scheduler")

    assert (verdict.decision, verdict.champion, verdict.previous) == ("rollback", bad, 1), verdict.reason
    assert verdict.p_value is not None and verdict.look is not None and verdict.difference is not None
    look = planned_looks(settings.auto_rollback_max_bars, settings.auto_rollback_alpha)[verdict.look - 1]
    assert verdict.p_value < look.alpha and verdict.difference < 0
    assert champion(settings) == 1
    newest = list_deployments(settings, AGENT, limit=1)[0]
    assert (newest.alias, newest.action, newest.from_version, newest.to_version, newest.actor) == (
        CHAMPION,
        "rollback",
        bad,
        1,
        "scheduler",
    )
    for words in (
        "auto-rollback",
        "paired block bootstrap",
        f"p {p_text(verdict.p_value)}",
        f"{look.n_bars} SYNTH bars",
    ):
        assert words in newest.reason
    made = looks_of(settings, bad)
    assert made[-1] == (verdict.look, look.n_bars, "rollback")
    assert all(decision == "keep" for _, _, decision in made[:-1])
    (audit,) = audit_of(settings, "champion watch")[-1:]
    assert (audit.actor, audit.result["decision"], audit.result["champion"]) == ("scheduler", "rollback", bad)
    assert audit_of(settings, "rollback")[-1].result["to_version"] == 1
    alerts = alerts_of(settings, "auto_rollback")
    assert alerts and (alerts[-1].severity, alerts[-1].agent_type) == ("critical", AGENT)
    assert f"v{bad} rolled back to v1" in alerts[-1].message and alerts[-1].details["rolled_back"] is True

    # The restored champion is not "new": the watch does not put it on probation against the bad one.
    again = watch_champion(settings, agent=AGENT, actor="scheduler")
    assert (again.decision, again.champion) == ("not_on_probation", 1), again.reason
    assert "rollback" in again.reason and AGENT not in agents_on_probation(settings)
    assert looks_of(settings, bad) == made and looks_of(settings, 1) == []

    # A person promotes it again: its looks are spent, their call stands.
    promote(settings, agent=AGENT, version=bad, actor="cli:alice", reason="I insist", force=True)
    insisted = watch_champion(settings, agent=AGENT, actor="scheduler")
    assert (insisted.decision, champion(settings)) == ("not_on_probation", bad), insisted.reason
    assert looks_of(settings, bad) == made


def test_a_good_new_champion_is_kept_and_no_look_is_made_twice(store: dict[str, Any]) -> None:
    settings, good = store["settings"], store["good"]
    make_champion(settings, 1)
    promote(settings, agent=AGENT, version=good, actor="cli:bob", reason="same weights, a new version")

    verdict = watch_champion(settings, agent=AGENT, actor="scheduler")

    looks = planned_looks(settings.auto_rollback_max_bars, settings.auto_rollback_alpha)
    assert (verdict.decision, verdict.champion, champion(settings)) == ("keep", good, good), verdict.reason
    assert looks_of(settings, good) == [(look.number, look.n_bars, "keep") for look in looks]
    assert [m["look"] for m in verdict.looks] == [look.number for look in looks]
    assert "probation over" in verdict.reason and AGENT not in agents_on_probation(settings)

    again = watch_champion(settings, agent=AGENT, actor="scheduler")
    assert (again.decision, again.looks) == ("not_on_probation", []), again.reason
    assert "passed its probation" in again.reason
    assert looks_of(settings, good) == [(look.number, look.n_bars, "keep") for look in looks]


def test_a_champion_waits_for_its_bars_and_is_on_probation_meanwhile(store: dict[str, Any]) -> None:
    settings, waiting = store["settings"], store["waiting"]
    long = settings.model_copy(update={"auto_rollback_max_bars": 3000})
    first_look = planned_looks(3000, settings.auto_rollback_alpha)[0]
    make_champion(settings, 1)
    promote(settings, agent=AGENT, version=waiting, actor="cli:carol", reason="waits")
    assert agents_on_probation(long) == [AGENT]

    verdict = watch_champion(long, agent=AGENT, actor="scheduler")

    assert (verdict.decision, verdict.required_bars) == ("waiting", first_look.n_bars), verdict.reason
    assert verdict.n_bars < first_look.n_bars and f"have {verdict.n_bars}" in verdict.reason
    assert looks_of(settings, waiting) == [] and agents_on_probation(long) == [AGENT]
    assert champion(settings) == waiting


def test_a_rejected_previous_version_is_never_restored(store: dict[str, Any]) -> None:
    settings, rejected, bad = store["settings"], store["rejected"], store["inverted_again"]
    make_champion(settings, rejected)
    promote(settings, agent=AGENT, version=bad, actor="cli:dana", reason="bad over a rejected one")

    verdict = watch_champion(settings, agent=AGENT, actor="scheduler")

    assert (verdict.decision, champion(settings)) == ("keep", bad), verdict.reason
    assert "was rejected by validation" in verdict.reason and "a person must decide" in verdict.reason
    assert looks_of(settings, bad)[-1][2] == "keep"
    with session_scope(settings.app_db_url) as session:
        last = session.scalars(
            select(ChampionLook).where(ChampionLook.champion_version == bad).order_by(ChampionLook.look.desc())
        ).first()
        assert last is not None and "rollback_refused" in last.details
    assert any(f"v{bad} NOT rolled back" in a.message for a in alerts_of(settings, "auto_rollback"))


def test_no_champion_and_a_first_champion_are_not_on_probation(tmp_path: Path, empty_mlflow_store: Path) -> None:
    from tests.factories import store as empty_store

    settings = empty_store(tmp_path, mlflow_store=empty_mlflow_store)
    assert watch_champion(settings, agent=AGENT, actor="test").decision == "no_champion"
    assert agents_on_probation(settings) == []
    with session_scope(settings.app_db_url) as session:
        from tests.factories import deployment

        deployment(session, agent_type=AGENT, to_version=1)
    verdict = watch_champion(settings, agent=AGENT, actor="test")
    assert (verdict.decision, verdict.champion) == ("not_on_probation", 1)
    assert "nothing to roll back to" in verdict.reason


def test_a_rollback_look_whose_rollback_never_landed_is_made_again(tmp_path: Path, empty_mlflow_store: Path) -> None:
    """The watch records its look, then moves the alias: killed in between (SIGKILL, OOM), the look says
    `rollback` while the promotion it judged still stands. Counted as spent, the bad champion would never
    be watched again; it is made again instead."""
    from datetime import UTC, datetime, timedelta

    from mlops.db.models import ChampionLook
    from tests.factories import deployment
    from tests.factories import store as empty_store

    settings = empty_store(tmp_path, mlflow_store=empty_mlflow_store)
    promoted = datetime.now(UTC) - timedelta(hours=1)
    with session_scope(settings.app_db_url) as session:
        deployment(session, agent_type=AGENT, to_version=1, created_at=promoted - timedelta(days=1))
        deployment(session, agent_type=AGENT, from_version=1, to_version=2, created_at=promoted)
        session.add(
            ChampionLook(
                agent_type=AGENT, champion_version=2, previous_version=1, look=1, n_bars=84, alpha=0.004,
                p_value=0.0001, difference=-3.0, decision="rollback", created_at=promoted + timedelta(minutes=5),
            )
        )  # fmt: skip
    assert agents_on_probation(settings) == [AGENT]
    with session_scope(settings.app_db_url) as session:
        assert session.query(ChampionLook).count() == 0  # the look that never took effect is to be made again


def test_risk_assessor_looks_are_decided_by_brier_scores_as_at_the_gate(tmp_path: Path) -> None:
    """The same Sharpe returns either way; only the Brier scores differ: a look on tail probabilities that lost
    their skill is significant, one on probabilities as good as the previous ones is not."""
    from mlops.pipeline.watch_rule import look_test
    from tests.conftest import make_settings
    from tests.factories import market_moves, tail_labels, tail_probabilities

    settings = make_settings(tmp_path)
    (look,) = planned_looks(250, settings.auto_rollback_alpha)[-1:]
    y = tail_labels(1, n=look.n_bars)
    moves = market_moves(2, n=look.n_bars)
    skilled = tail_probabilities(y, 0.5, seed=3)
    worse = look_test(moves, moves, 252.0, settings, look, brier=(y, tail_probabilities(y, 0.0, seed=4), skilled))
    same = look_test(moves, moves, 252.0, settings, look, brier=(y, tail_probabilities(y, 0.5, seed=5), skilled))
    assert worse.statistic == same.statistic == "brier"
    assert worse.p_value < look.alpha < same.p_value
    assert worse.brier is not None and worse.brier.difference > 0 and worse.difference == 0.0
