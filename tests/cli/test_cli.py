"""The `skippy` command as scripts and people use it: --json everywhere, clear errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlops.cli import app
from tests.conftest import real_csv

pytestmark = pytest.mark.slow


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def skippy(home: Path, *args: str) -> Outcome:
    """Run the CLI in this process (as `skippy ARGS` would run) with SKIPPY_HOME pointing at `home`."""
    from mlops.settings import get_settings

    get_settings.cache_clear()
    env: dict[str, str | None] = {
        "SKIPPY_HOME": str(home),
        "COLUMNS": "200",
        "MLFLOW_TRACKING_URI": None,
        "DATABASE_URL": None,
    }
    try:
        result = CliRunner().invoke(app, list(args), env=env)
    finally:
        get_settings.cache_clear()
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Outcome(result.exit_code, result.stdout, result.stderr)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli-home")


def test_help_does_not_import_mlflow_or_the_services() -> None:
    code = (
        "import sys; from mlops.cli import app; "
        "heavy = [m for m in ('mlflow', 'sqlalchemy', 'pandas', 'numpy') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    result = subprocess.run([sys.executable, "-m", "mlops.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "data" in result.stdout and "up" in result.stdout


def test_data_import_generate_status_as_json(home: Path) -> None:
    imported = skippy(home, "data", "import", str(real_csv()), "--symbol", "GOOG", "--json")
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["inserted"] == 2148
    again = json.loads(skippy(home, "data", "import", str(real_csv()), "--symbol", "GOOG", "--json").stdout)
    assert again["inserted"] == 0 and again["unchanged"] == 2148
    generated = skippy(home, "data", "generate", "--bars", "600", "--json")
    assert json.loads(generated.stdout)["inserted"] == 600
    refused = skippy(home, "data", "generate", "--bars", "10")
    assert refused.returncode == 3 and "--append" in refused.stderr
    appended = json.loads(
        skippy(home, "data", "generate", "--bars", "50", "--append", "--regime", "volatile", "--json").stdout
    )
    assert appended["inserted"] == 50
    status = {s["symbol"]: s for s in json.loads(skippy(home, "data", "status", "--json").stdout)}
    assert status["SYNTH"]["bars"] == 650 and status["GOOG"]["bars"] == 2148
    assert "synthetic:volatile" in status["SYNTH"]["sources"]


def test_bad_files_and_agents_get_one_clear_line(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("Date,Open,High,Low,Close,Volume\n2024-01-02,1,0.5,0.9,1,10\n2024-01-02,1,2,0.5,1,10\n")
    result = skippy(home, "data", "import", str(bad), "--symbol", "BAD")
    assert result.returncode == 2
    assert "line 2: High 0.5 is below Low 0.9" in result.stderr
    assert "duplicate timestamp" in result.stderr and "Traceback" not in result.stderr
    missing = skippy(home, "data", "import", str(tmp_path / "none.csv"), "--symbol", "X")
    assert missing.returncode == 2 and "file does not exist" in missing.stderr
    unknown = skippy(home, "ai", "retrain", "--agent", "alpha")
    assert unknown.returncode == 2 and "unknown agent 'alpha'" in unknown.stderr
    bad_param = skippy(home, "ai", "retrain", "--agent", "market_insight", "--param", "learning_rate=fast")
    assert bad_param.returncode == 2 and "is not a number" in bad_param.stderr


def test_retrain_models_runs_rollback_from_the_cli(home: Path) -> None:
    first = skippy(home, "ai", "retrain", "--agent", "market_insight", "--symbol", "GOOG", "--json")
    assert first.returncode in (0, 4), first.stderr
    payload = json.loads(first.stdout)
    assert payload["agent_type"] == "market_insight" and payload["model_version"] == 1
    second = json.loads(skippy(home, "ai", "retrain", "--agent", "market_insight", "--symbol", "GOOG", "--json").stdout)
    assert second["model_version"] == 2
    runs = json.loads(skippy(home, "ai", "runs", "--agent", "market_insight", "--json").stdout)
    assert [r["model_version"] for r in runs[:2]] == [2, 1]
    models = json.loads(skippy(home, "ai", "models", "--json").stdout)
    assert {m["agent_type"] for m in models} == {"market_insight", "risk_assessor"}
    table = skippy(home, "ai", "models", "--agent", "market_insight")
    assert table.returncode == 0 and "market_insight" in table.stdout
    if payload["deployment_status"] == "promoted" and second["deployment_status"] == "promoted":
        rolled = json.loads(skippy(home, "ai", "rollback", "--agent", "market_insight", "--json").stdout)
        assert (rolled["from_version"], rolled["to_version"]) == (2, 1)
    promoted = skippy(home, "ai", "promote", "--agent", "market_insight", "--version", "2", "--force", "--json")
    assert promoted.returncode == 0, promoted.stderr
    again = skippy(home, "ai", "promote", "--agent", "market_insight", "--version", "2", "--force")
    assert again.returncode == 3 and "already the champion" in again.stderr
    deployments = json.loads(skippy(home, "ai", "deployments", "--json").stdout)
    assert deployments[0]["to_version"] == 2 and deployments[0]["action"] == "promote"
    # One actor format for everything done from the CLI: the run, the deployment and the audit row agree.
    actor = runs[0]["requested_by"]
    assert actor.startswith("cli:") and deployments[0]["actor"] == actor


def test_sweep_commands_and_the_feature_flag(home: Path, tmp_path: Path) -> None:
    skippy(home, "data", "generate", "--symbol", "SWEEP", "--bars", "900")
    config = tmp_path / "grid.json"
    config.write_text(json.dumps({"learning_rate": [0.005, 0.05], "hidden_units": [0, 4]}))
    ran = skippy(
        home,
        "ai",
        "sweep",
        "--agent",
        "market_insight",
        "--symbol",
        "SWEEP",
        "--config",
        str(config),
        "--workers",
        "2",
        "--name",
        "cli",
        "--json",
    )
    assert ran.returncode == 0, ran.stderr
    payload = json.loads(ran.stdout)
    sweep_id = payload["sweep_id"]
    assert payload["sweep"]["status"] == "completed" and len(payload["trials"]) == 4
    results = json.loads(skippy(home, "ai", "sweep-results", "--sweep-id", str(sweep_id), "--json").stdout)
    values = [t["objective_value"] for t in results["trials"]]
    assert values == sorted(values, reverse=True)
    listed = json.loads(skippy(home, "ai", "sweeps", "--json").stdout)
    assert listed[0]["id"] == sweep_id and listed[0]["n_complete"] == 4
    table = skippy(home, "ai", "sweeps")
    assert "optuna-dashboard" in table.stdout and "--storage-class JournalFileBackend" in table.stdout

    off = skippy(home, "flags", "set", "mlops_hyperparameter_sweeps", "off")
    assert off.returncode == 0
    refused = skippy(home, "ai", "sweep", "--agent", "market_insight", "--config", str(config))
    assert refused.returncode == 3 and "refused: feature flag mlops_hyperparameter_sweeps is off" in refused.stderr
    as_json = skippy(home, "ai", "sweep", "--agent", "market_insight", "--config", str(config), "--json")
    error = json.loads(as_json.stdout)  # a script reading stdout gets the reason, not nothing
    assert as_json.returncode == 3 and error["error"] == "feature_disabled" and "turns it on" in error["message"]
    flags = {f["name"]: f for f in json.loads(skippy(home, "flags", "list", "--json").stdout)}
    assert flags["mlops_hyperparameter_sweeps"] == {
        **flags["mlops_hyperparameter_sweeps"],
        "enabled": False,
        "source": "database",
    }
    skippy(home, "flags", "set", "mlops_hyperparameter_sweeps", "on")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"learning_rate": [], "momentum": [0.9]}))
    invalid = skippy(home, "ai", "sweep", "--agent", "market_insight", "--config", str(bad))
    assert invalid.returncode == 2 and "unknown hyperparameter 'momentum'" in invalid.stderr


def test_api_keys_and_the_audit_trail_from_the_cli(home: Path) -> None:
    created = skippy(home, "auth", "create-key", "--name", "desk", "--role", "operator", "--json")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)["key"]
    assert key.startswith("sk_")
    listed = json.loads(skippy(home, "auth", "keys", "--json").stdout)
    assert [(k["name"], k["role"]) for k in listed if k["name"] == "desk"] == [("desk", "operator")]
    assert key not in skippy(home, "auth", "keys").stdout
    duplicate = skippy(home, "auth", "create-key", "--name", "desk", "--role", "viewer")
    assert duplicate.returncode == 3 and "already exists" in duplicate.stderr
    bad_role = skippy(home, "auth", "create-key", "--name", "x", "--role", "root")
    assert bad_role.returncode == 2 and "unknown role 'root'" in bad_role.stderr
    assert skippy(home, "auth", "revoke", "desk").returncode == 0
    assert json.loads(skippy(home, "auth", "keys", "--json").stdout) == [k for k in listed if k["name"] != "desk"]
    assert skippy(home, "auth", "revoke", "nobody").returncode == 2
    trail = json.loads(skippy(home, "auth", "audit", "--json").stdout)
    actions = [r["action"] for r in trail]
    assert actions[:3] == ["key revoke", "key revoke", "key create"]  # written by the services
    assert trail[2]["result"]["error_type"] == "InvalidRequestError" and trail[0]["actor"].startswith("cli:")
    assert trail[0]["result"]["error"].startswith("no API key named 'nobody'")
    assert all(key not in json.dumps(r) for r in trail)
    assert skippy(home, "auth", "model-key").stdout.strip().endswith("=")


def test_up_without_serving_trains_what_is_missing_and_makes_an_admin_key(tmp_path: Path) -> None:
    first = skippy(tmp_path, "up", "--no-serve", "--json")
    assert first.returncode == 0, first.stderr
    payload = json.loads(first.stdout)
    assert {r["agent_type"] for r in payload["retrains"]} == {"market_insight", "risk_assessor"}
    key_file = Path(payload["admin_key_file"])
    assert key_file.read_text().strip() == payload["admin_key"] and oct(key_file.stat().st_mode)[-3:] == "600"
    second = json.loads(skippy(tmp_path, "up", "--no-serve", "--json").stdout)
    assert second["retrains"] == [] and second["admin_key"] is None  # deployed agents and the key are kept
    assert payload["urls"]["api"] == "http://127.0.0.1:5000" and payload["urls"]["mlflow_ui"] == "http://127.0.0.1:5001"


def test_a_port_in_use_is_named_with_the_setting_that_moves_it(home: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused = skippy(home, "serve", "--port", str(port))
        assert refused.returncode == 3
        assert f"port {port} on 127.0.0.1 is in use" in refused.stderr and "SKIPPY_API_PORT" in refused.stderr
        up = skippy(home, "up", "--port", str(port), "--json")  # refused before any training
        assert up.returncode == 3 and json.loads(up.stdout)["error"] == "conflict"
