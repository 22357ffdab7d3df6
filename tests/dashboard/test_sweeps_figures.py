"""What the Sweeps page draws and says, without a browser: an axis per kind of hyperparameter, and the
winner's deflated significance in words."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dashboard.pages.sweeps_figures import dimension, parallel_coordinates, significance
from mlops.db.sweeps import SelectionReport, SweepRecord, TrialRecord


def _sweep(**overrides: Any) -> SweepRecord:
    values: dict[str, Any] = {
        "id": 7,
        "name": "lr",
        "agent_type": "market_insight",
        "symbol": "SYNTH",
        "parameter_grid": {"learning_rate": [0.001, 0.01, 0.1], "optimizer": ["adam", "sgd"]},
        "status": "completed",
        "study_name": "s",
        "parent_run_id": "p",
        "objective_metric": "val_loss",
        "direction": "minimize",
        "n_trials": 6,
        "n_complete": 3,
        "n_failed": 1,
        "best_trial_number": 2,
        "best_value": 0.4,
        "best_params": {"learning_rate": 0.01, "optimizer": "sgd"},
        "requested_by": "test",
        "error": None,
        "created_at": datetime.now(UTC),
        "finished_at": datetime.now(UTC),
    }
    return SweepRecord(**(values | overrides))


def _trial(number: int, value: float | None, **params: Any) -> TrialRecord:
    status = "complete" if value is not None else "failed"
    return TrialRecord(sweep_id=7, trial_number=number, params=params, status=status, objective_value=value)


def test_each_kind_of_hyperparameter_gets_a_readable_axis() -> None:
    log = dimension("learning_rate", [0.001, 0.01, 0.1], [0.01, 0.1])
    assert log["label"] == "learning_rate (log)" and log["values"] == [-2.0, -1.0]
    assert log["tickvals"] == [-3.0, -2.0, -1.0] and log["ticktext"] == ["0.001", "0.01", "0.1"]

    linear = dimension("risk_threshold", [0.15, 0.05, 0.1], [0.05])
    assert linear["values"] == [0.05] and linear["tickvals"] == [0.05, 0.1, 0.15] and linear["range"] == [0.05, 0.15]

    with_zero = dimension("l2", [0.0, 0.001, 0.01], [0.01, 0.0])  # no log of 0: one even step per grid value
    assert with_zero["values"] == [2, 0] and with_zero["ticktext"] == ["0", "0.001", "0.01"]

    words = dimension("optimizer", ["adam", "sgd"], ["sgd", "sgd", "adam"])
    assert words["values"] == [1, 1, 0] and words["ticktext"] == ["adam", "sgd"]

    mixed = dimension("layers", [[16], [16, 16], None], [[16, 16], None, 1])  # lists, null, a value off the grid
    assert mixed["values"] == [1, 2, 3] and mixed["ticktext"] == ["[16]", "[16, 16]", "none", "1"]

    single = dimension("epochs", [20], [20, 20])
    assert single["range"] == [19, 21] and single["tickvals"] == [20]


def test_the_figure_has_one_axis_per_grid_parameter_and_the_objective_brightest_at_the_best() -> None:
    sweep = _sweep()
    trials = [
        _trial(2, 0.4, learning_rate=0.01, optimizer="sgd"),
        _trial(0, 0.9, learning_rate=0.1, optimizer="adam"),
        _trial(1, 0.5, learning_rate=0.001, optimizer="adam"),
        _trial(3, None, learning_rate=0.1, optimizer="sgd"),  # failed: no line
    ]
    [trace] = parallel_coordinates(sweep, trials).data
    assert [d.label for d in trace.dimensions] == ["learning_rate (log)", "optimizer", "val_loss"]
    assert list(trace.dimensions[2]["values"]) == [0.4, 0.9, 0.5]
    assert list(trace.line.color) == [0.4, 0.9, 0.5] and trace.line.reversescale  # minimised: low is bright
    empty = parallel_coordinates(sweep, trials[3:])
    assert not empty.data and "No trial has completed yet" in empty.layout.annotations[0].text


def test_the_winners_significance_in_words() -> None:
    report = SelectionReport(
        verdict="the best trial's Sharpe 2.82 beats 0.53 ...",
        n_trials=4,
        best_sharpe=2.817,
        dsr=0.983,
        p_value=0.017,
        significant=True,
        notes=["assumed normal"],
    )
    headline, details = significance(_sweep(selection=report))
    assert headline == "Best Sharpe 2.82, deflated p 0.017 over 4 trials (DSR 0.983): significant at α 0.05."
    assert details == "the best trial's Sharpe 2.82 beats 0.53 ...; assumed normal"
    lucky = report.model_copy(update={"p_value": 0.3, "dsr": 0.7, "significant": False})
    headline, _ = significance(_sweep(selection=lucky))
    assert "deflated p 0.300 over 4 trials" in headline and "not significant at α 0.05" in headline
    tiny = report.model_copy(update={"p_value": 0.0001})
    assert "deflated p < 0.001" in significance(_sweep(selection=tiny))[0]
    none = SelectionReport(verdict="no DSR: 1 complete trial(s); selection bias needs at least 2", n_trials=1)
    assert significance(_sweep(selection=none))[0].startswith("No deflated significance: 1 complete trial(s)")
    assert significance(_sweep(status="running"))[0] == "Deflated significance: judged when the sweep finishes."
