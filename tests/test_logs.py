import json

from mlops.logs import configure_logging, get_logger


def test_logs_are_json_with_the_platform_fields(capsys) -> None:  # type: ignore[no-untyped-def]
    configure_logging("INFO", json=True)
    get_logger("t").info(
        "retrain finished",
        agent_type="market_insight",
        model_version=3,
        metrics={"sharpe_ratio": 1.2},
        deployment_status="promoted",
    )
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["message"] == "retrain finished"
    assert record["level"] == "info"
    assert record["timestamp"].endswith("Z")
    assert record["agent_type"] == "market_insight" and record["model_version"] == 3
    assert record["metrics"] == {"sharpe_ratio": 1.2} and record["deployment_status"] == "promoted"
