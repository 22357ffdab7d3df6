"""`skippy up`: everything a new user needs in one command."""

from __future__ import annotations

import os
import subprocess
import sys

import typer

from mlops.cli.common import current_user, ready_settings
from mlops.cli.output import console, print_json, styled, table, user_errors
from mlops.settings import AGENTS


def mlflow_ui_command(tracking_uri: str, artifact_root: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        tracking_uri,
        "--default-artifact-root",
        artifact_root,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


def run_up(*, ui: bool, port: int, retrain_agents: bool, as_json: bool) -> None:
    from mlops.data.generate import generate_market
    from mlops.data.store import count_bars
    from mlops.pipeline.queries import list_models
    from mlops.pipeline.retrain import retrain

    with user_errors():
        settings = ready_settings()
        symbol = settings.symbol
        seeded = None
        if count_bars(settings.app_db_url, symbol) == 0:
            with console.status(f"generating the synthetic market {symbol} ..."):
                seeded = generate_market(settings, symbol=symbol)
            if not as_json:
                console.print(f"loaded {seeded.inserted} synthetic bars for {symbol}")
        results = []
        if retrain_agents:
            for agent in AGENTS:
                with console.status(f"retraining {agent} ..."):
                    results.append(retrain(settings, agent=agent, trigger="manual", requested_by=current_user()))
        models = list_models(settings)
    ui_command = mlflow_ui_command(settings.tracking_uri, settings.artifact_root.as_uri(), port)
    if as_json:
        print_json(
            {
                "seeded": seeded,
                "retrains": results,
                "models": models,
                "mlflow_ui": f"http://127.0.0.1:{port}",
                "mlflow_ui_command": " ".join(ui_command[1:]),
            }
        )
    else:
        if results:
            table(
                "Retrains",
                ["agent", "run", "status", "deployment", "version", "test accuracy", "test sharpe", "buy&hold sharpe"],
                [
                    [
                        r.agent_type,
                        str(r.model_run_id),
                        styled(r.status),
                        styled(r.deployment_status),
                        str(r.model_version),
                        r.metrics.get("accuracy"),
                        r.metrics.get("sharpe_ratio"),
                        r.metrics.get("buy_hold_sharpe_ratio"),
                    ]
                    for r in results
                ],
            )
            for r in results:
                console.print(f"  {r.agent_type}: {r.reason}", highlight=False)
        table(
            "Deployed models",
            ["agent", "champion", "challenger", "model URI"],
            [
                [
                    m.agent_type,
                    f"v{m.champion}" if m.champion else "-",
                    f"v{m.challenger}" if m.challenger else "-",
                    m.model_uri or "-",
                ]
                for m in models
            ],
        )
        console.print(f"MLflow tracking URI: {settings.tracking_uri}", highlight=False)
        console.print(
            "load a model: MLFLOW_TRACKING_URI=<that URI>, then "
            "mlflow.pyfunc.load_model('models:/market_insight@champion')",
            highlight=False,
        )
        console.print(
            f"MLflow UI: http://127.0.0.1:{port}  (by hand: {' '.join(['mlflow', *ui_command[3:]])})", highlight=False
        )
    if any(r.status == "failed" for r in results):
        raise typer.Exit(1)
    if ui:
        console.print("serving the MLflow UI; Ctrl-C stops it")
        env = os.environ | {"MLFLOW_TRACKING_URI": settings.tracking_uri}
        proc = subprocess.Popen(ui_command, env=env)
        try:
            proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            proc.wait(timeout=20)
