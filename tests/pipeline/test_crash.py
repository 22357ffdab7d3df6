"""A retrain killed with -9 half-way leaves no alias moved and is marked failed on the next start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops.data.generate import generate_market
from mlops.db import session_scope
from mlops.db.models import AgentLock, ModelRun
from mlops.pipeline.retrain import retrain
from mlops.stores import init_stores
from tests.conftest import make_settings

pytestmark = pytest.mark.slow


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
