"""`mlflow run` entry points log into the same store the rest of Skippy uses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_settings

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def test_mlflow_run_retrain_entry_point(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKIPPY_", "MLFLOW_", "DATABASE_URL"))}
    env |= {
        "SKIPPY_HOME": str(tmp_path),
        "MLFLOW_TRACKING_URI": settings.tracking_uri,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    }

    def mlflow_run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mlflow", "run", str(ROOT), "--env-manager", "local", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
        )

    generated = mlflow_run("-e", "generate", "-P", "bars=1200")
    assert generated.returncode == 0, generated.stderr[-2000:]
    ran = mlflow_run("-e", "retrain", "-P", "agent=market_insight", "--experiment-name", "market_insight")
    assert ran.returncode == 0, ran.stderr[-2000:]

    from tracking import registry
    from tracking.client import get_client

    client = get_client(settings)
    experiment = client.get_experiment_by_name("market_insight")
    runs = client.search_runs([experiment.experiment_id])
    # One run: the retrain logged into the run `mlflow run` created, with its metrics and model.
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlflow.project.entryPoint"] == "retrain"
    assert {"accuracy", "sharpe_ratio", "val_loss"} <= set(run.data.metrics)
    assert registry.alias_version(settings, "market_insight", registry.CHAMPION) == 1

    grid = tmp_path / "grid.json"
    grid.write_text('{"learning_rate": [0.005, 0.05], "hidden_units": [0, 4]}')
    swept = mlflow_run(
        "-e", "sweep", "-P", "agent=market_insight", "-P", f"config={grid}", "--experiment-name", "market_insight"
    )
    assert swept.returncode == 0, swept.stderr[-2000:]
    parents = client.search_runs([experiment.experiment_id], filter_string="tags.`mlflow.project.entryPoint` = 'sweep'")
    assert len(parents) == 1 and parents[0].data.tags["skippy.sweep_id"]
    children = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parents[0].info.run_id}'"
    )
    assert len(children) == 4
