"""A retrain killed with -9 at any point leaves no alias on its version once reaped, and no MLflow run
RUNNING: through the CLI mid-training (SQLite), and at every phase of a retrain on the real PostgreSQL —
a forked child (warm: it imports nothing, so each point costs only the retrain's own time) runs the
retrain and kills itself with SIGKILL at the chosen point."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from mlops.data.generate import generate_market
from mlops.db import session_scope
from mlops.db.models import AgentLock, ModelRun
from mlops.pipeline.deployments import CHALLENGER, CHAMPION, current_aliases, promote, retire_challenger
from mlops.pipeline.retrain import retrain
from mlops.settings import Settings
from mlops.stores import init_stores
from tests.conftest import fresh_postgres_url, make_settings
from tests.factories import market_store

pytestmark = pytest.mark.slow
AGENT = "market_insight"


def test_kill_minus_nine_mid_training_moves_no_alias_and_is_reaped(tmp_path: Path) -> None:
    from tracking import registry
    from tracking.client import get_client

    settings = make_settings(tmp_path)
    init_stores(settings)
    generate_market(settings, symbol="SYNTH", n_bars=1200)
    first = retrain(settings, actor="test", agent="market_insight")
    assert first.deployment_status == "promoted"

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKIPPY_", "MLFLOW_"))}
    # Make training long enough to be killed mid-way: many epochs, no early stopping.
    env |= {"SKIPPY_HOME": str(tmp_path), "SKIPPY_EARLY_STOPPING_PATIENCE": "1000000"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlops.cli",
            "ai",
            "retrain",
            "--agent",
            "market_insight",
            "--param",
            "epochs=10000",
            "--param",
            "learning_rate=0.0001",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    running = None
    while time.monotonic() < deadline:
        with session_scope(settings.app_db_url) as session:
            running = (
                session.query(ModelRun)
                .filter(ModelRun.status == "running", ModelRun.mlflow_run_id.is_not(None))
                .first()
            )
        if running is not None:
            break
        assert proc.poll() is None, "the retrain ended before it could be killed"
        time.sleep(0.2)
    assert running is not None, "the retrain never reached training"
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    # Nothing moved; the lock and the running row are left behind by the dead process.
    assert registry.alias_version(settings, "market_insight", registry.CHAMPION) == 1
    assert registry.alias_version(settings, "market_insight", registry.CHALLENGER) is None
    with session_scope(settings.app_db_url) as session:
        assert session.get(AgentLock, "market_insight") is not None

    status = init_stores(settings)  # what every next start does
    assert status.reaped_runs == [running.id]
    with session_scope(settings.app_db_url) as session:
        row = session.get_one(ModelRun, running.id)
        assert row.status == "failed" and "died" in (row.error or "")
        assert session.get(AgentLock, "market_insight") is None
    assert get_client(settings).get_run(running.mlflow_run_id).info.status == "FAILED"

    # And the agent can be retrained again: it trains, registers and is judged (the same recipe on the same
    # bars is not better than the champion, so the gate keeps v1).
    again = retrain(settings, actor="test", agent="market_insight")
    assert again.status == "rejected" and again.model_version is not None and "beats_champion_sharpe" in again.reason


# --- kill -9 at every phase of a retrain, on PostgreSQL -----------------------------------------------

# The champion's recipe, and a candidate's: different, so that a lenient gate (alpha 1) passes it.
CHAMPION_RECIPE: dict[str, Any] = {"hidden_units": 0}
CANDIDATE_RECIPE: dict[str, Any] = {"hidden_units": 4}


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _kill_after(owner: Any, name: str, when: Callable[..., bool] = lambda *a, **k: True) -> None:
    real = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        if when(*args, **kwargs):
            _die()
        return result

    setattr(owner, name, wrapper)


def _kill_before(owner: Any, name: str) -> None:
    setattr(owner, name, lambda *args, **kwargs: _die())


def _install_kill(point: str) -> None:
    """Make this process kill itself with SIGKILL at `point` of the retrain (the real function runs first
    for an "after" point, so its effect — an MLflow run, a version, an alias — is there to clean up)."""
    import mlops.pipeline.deployments as deployments
    import mlops.pipeline.retrain as pipeline
    import tracking.registry as registry
    import tracking.runs as runs

    def alias_is(alias: str) -> Callable[..., bool]:
        return lambda *args, **kwargs: kwargs.get("alias", args[2] if len(args) > 2 else None) == alias

    points: dict[str, Callable[[], None]] = {
        "data": lambda: _kill_before(pipeline, "record_quality"),
        "mlflow_run_created": lambda: _kill_after(runs, "start_run"),  # before the app DB records its id
        "training": lambda: _kill_before(pipeline, "train_agent"),
        "registered": lambda: _kill_after(registry, "register_version"),  # before the app DB records
        "recorded": lambda: _kill_after(pipeline, "record_training"),  # before any alias moves
        "challenger_set": lambda: _kill_after(registry, "set_alias", alias_is(CHALLENGER)),  # row not committed
        "challenger_recorded": lambda: _kill_after(deployments, "move_alias", alias_is(CHALLENGER)),
        "champion_set": lambda: _kill_after(registry, "set_alias", alias_is(CHAMPION)),  # row not committed
        "champion_recorded": lambda: _kill_after(deployments, "move_alias", alias_is(CHAMPION)),
        "deployed": lambda: _kill_before(pipeline, "record_outcome"),  # every alias moved, outcome not written
    }
    points[point]()


KILL_POINTS = (
    "data",
    "mlflow_run_created",
    "training",
    "registered",
    "recorded",
    "challenger_set",
    "challenger_recorded",
    "champion_set",
    "champion_recorded",
    "deployed",
)


def _retrain_killed_at(settings: Settings, point: str) -> int:
    """Fork a child that retrains the candidate recipe and dies at `point`; returns how it ended (the
    signal that killed it, or minus its exit code: -3 when the point was never reached)."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            from mlops.db.session import reset_after_fork
            from tracking.client import reset_after_fork as reset_tracking_after_fork

            reset_after_fork()
            reset_tracking_after_fork()
            _install_kill(point)
            retrain(settings, actor="test", agent=AGENT, hyperparameters=CANDIDATE_RECIPE)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else -os.WEXITSTATUS(status)


def _aliases(settings: Settings) -> dict[str, int | None]:
    """Where the aliases point, asserting that the registry and the app DB's history agree."""
    from tracking import registry

    in_registry = {alias: registry.alias_version(settings, AGENT, alias) for alias in (CHAMPION, CHALLENGER)}
    with session_scope(settings.app_db_url) as session:
        assert current_aliases(session, AGENT) == in_registry
    return in_registry


@pytest.fixture(scope="module")
def crash_store(tmp_path_factory: pytest.TempPathFactory, postgres_server: str) -> Iterator[Settings]:
    """App DB and MLflow store on the real PostgreSQL; v1 (CHAMPION_RECIPE) champion. The candidate recipe
    passes the gate against it (checked once here: the data, training and gate are seeded, so every
    candidate of the tests below passes the same way and reaches the deployment phase)."""
    settings = market_store(
        tmp_path_factory.mktemp("crash"),
        n_bars=900,
        database_url=fresh_postgres_url(postgres_server),
        gate_alpha=1.0,
        drift_null_draws=0,
        drift_null_prediction_draws=0,
    )
    first = retrain(settings, actor="test", agent=AGENT, hyperparameters=CHAMPION_RECIPE)
    assert (first.model_version, first.deployment_status) == (1, "promoted"), first.reason
    candidate = retrain(settings, actor="test", agent=AGENT, hyperparameters=CANDIDATE_RECIPE)
    assert candidate.deployment_status == "promoted", candidate.reason
    yield settings


def _champion_is_v1(settings: Settings) -> None:
    aliases = _aliases(settings)
    if aliases[CHALLENGER] is not None:
        retire_challenger(settings, agent=AGENT, version=aliases[CHALLENGER], actor="test", reason="set up")
    if aliases[CHAMPION] != 1:
        promote(settings, agent=AGENT, version=1, actor="test", reason="set up")
    assert _aliases(settings) == {CHAMPION: 1, CHALLENGER: None}


@pytest.mark.postgres
@pytest.mark.parametrize("point", KILL_POINTS)
def test_kill_minus_nine_at_each_phase_leaves_no_alias_on_the_failed_run_and_no_run_running(
    crash_store: Settings, point: str
) -> None:
    from tracking.client import get_client

    settings = crash_store
    _champion_is_v1(settings)
    with session_scope(settings.app_db_url) as session:
        last_run = session.scalar(select(func.max(ModelRun.id))) or 0
    assert _retrain_killed_at(settings, point) == signal.SIGKILL, f"the retrain never reached {point}"
    with session_scope(settings.app_db_url) as session:
        run = session.scalars(select(ModelRun).where(ModelRun.id > last_run)).one()
        assert run.status == "running"  # as the dead process left it
        session.expunge(run)
    moved_by_then = {
        "challenger_set": CHALLENGER,
        "challenger_recorded": CHALLENGER,
        "champion_set": CHAMPION,
        "champion_recorded": CHAMPION,
        "deployed": CHAMPION,
    }
    if point in moved_by_then:  # the kill came after an alias moved onto the run's version
        from tracking import registry

        assert run.model_version is not None
        assert registry.alias_version(settings, AGENT, moved_by_then[point]) == run.model_version

    init_stores(settings)  # what every next start does: the reaper runs

    assert _aliases(settings) == {CHAMPION: 1, CHALLENGER: None}  # nothing on the failed run's version
    with session_scope(settings.app_db_url) as session:
        row = session.get_one(ModelRun, run.id)
        assert row.status == "failed" and "died" in (row.error or ""), row.error
        assert session.get(AgentLock, AGENT) is None
        assert ("aliases put back" in (row.error or "")) == (point in moved_by_then), row.error
        assert ("no alias was moved" in (row.error or "")) == (point not in moved_by_then), row.error
        experiment_id = row.mlflow_experiment_id
    if experiment_id is not None:  # the MLflow run, recorded or not, is not left RUNNING
        runs = get_client(settings).search_runs([experiment_id], f"tags.`skippy.model_run_id` = '{run.id}'")
        assert runs and {r.info.status for r in runs} == {"FAILED"}
    else:
        assert point == "data"


@pytest.mark.postgres
def test_a_retrain_whose_champion_move_fails_puts_its_challenger_back(
    crash_store: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not killed but failed between two alias moves (MLflow refused the second): the run itself puts
    back what it moved before it records its failure."""
    import tracking.registry as registry

    settings = crash_store
    _champion_is_v1(settings)
    real = registry.set_alias

    def refuse_champion(s: Settings, name: str, alias: str, version: int) -> None:
        if alias == CHAMPION and version != 1:
            raise RuntimeError("tracking server unavailable")
        real(s, name, alias, version)

    monkeypatch.setattr(registry, "set_alias", refuse_champion)
    result = retrain(settings, actor="test", agent=AGENT, hyperparameters=CANDIDATE_RECIPE)
    assert result.status == "failed" and "tracking server unavailable" in result.reason, result.reason
    assert result.reason.endswith(f"; aliases put back: challenger v{result.model_version} → none"), result.reason
    assert _aliases(settings) == {CHAMPION: 1, CHALLENGER: None}
    with session_scope(settings.app_db_url) as session:
        row = session.get_one(ModelRun, result.model_run_id)
        assert row.status == "failed"
        assert f"aliases put back: challenger v{result.model_version} → none" in (row.error or ""), row.error
        assert session.get(AgentLock, AGENT) is None
