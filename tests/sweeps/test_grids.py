"""Grid configs: read from files, enumerated (sweeps.grid), and validated against the agent's
hyperparameters before anything starts (the service's grids module)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops.errors import InvalidRequestError
from mlops.pipeline.sweeps.grids import (
    DEFAULT_GRIDS,
    OBJECTIVES,
    check_grid,
    objective_direction,
    parse_grid_text,
    validate_grid,
)
from sweeps.grid import grid_points, grid_size, load_grid

SPEC_GRID = {
    "learning_rate": [0.001, 0.01, 0.1],
    "batch_size": [16, 32, 64],
    "risk_threshold": [0.05, 0.1, 0.15],
    "epochs": [50, 100, 200],
}


def test_the_spec_grid_has_81_distinct_points() -> None:
    grid = validate_grid("market_insight", SPEC_GRID, 1000)
    points = grid_points(grid)
    assert grid_size(grid) == 81 and len({tuple(p.items()) for p in points}) == 81
    assert points[0] == {"learning_rate": 0.001, "batch_size": 16, "risk_threshold": 0.05, "epochs": 50}
    assert isinstance(points[0]["batch_size"], int)


@pytest.mark.parametrize("agent", sorted(DEFAULT_GRIDS))
def test_default_grids_are_valid(agent: str) -> None:
    assert grid_size(validate_grid(agent, DEFAULT_GRIDS[agent], 1000)) >= 9


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"momentum": [0.9]}, "unknown hyperparameter 'momentum' (known: learning_rate, batch_size"),
        ({"learning_rate": []}, "learning_rate: expected a non-empty list of values, got []"),
        ({"learning_rate": 0.1}, "expected a non-empty list"),
        ({"batch_size": [16.5]}, "batch_size: 16.5 is not an integer"),
        ({"batch_size": ["32"]}, "batch_size: '32' is not an integer"),
        ({"l2": [True]}, "l2: True is not a number"),
        ({"learning_rate": [-0.1]}, "learning_rate: -0.1 is out of range"),
        ({"risk_threshold": [0.7]}, "risk_threshold: 0.7 is out of range"),
        ({"batch_size": [10**400]}, "is out of range"),
        ({"l2": [float("inf")]}, "l2: inf is not a finite number"),
        ({}, "non-empty object"),
        ([1, 2], "non-empty object"),
    ],
)
def test_bad_grids_are_refused_naming_the_problem(grid: object, message: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        validate_grid("market_insight", grid, 1000)
    assert message in str(info.value)


def test_every_problem_is_reported_and_size_is_capped() -> None:
    with pytest.raises(InvalidRequestError) as info:
        validate_grid("market_insight", {"momentum": [1], "batch_size": [0]}, 1000)
    assert "momentum" in str(info.value) and "batch_size: 0 is out of range" in str(info.value)
    with pytest.raises(InvalidRequestError, match="has 81 points, more than the maximum of 50"):
        validate_grid("market_insight", SPEC_GRID, 50)
    assert validate_grid("market_insight", {"batch_size": [32, 32.0, 64]}, 10) == {"batch_size": [32, 64]}


def test_config_files(tmp_path: Path) -> None:
    path = tmp_path / "grid.json"
    path.write_text(json.dumps(SPEC_GRID))
    assert load_grid(path) == SPEC_GRID
    path.write_text("{not json")
    with pytest.raises(InvalidRequestError, match="is not valid JSON"):
        load_grid(path)
    with pytest.raises(InvalidRequestError, match="does not exist"):
        load_grid(tmp_path / "missing.json")


def test_objectives_have_a_natural_direction_that_can_be_overridden() -> None:
    assert objective_direction("sharpe_ratio", None) == "maximize"
    assert objective_direction("val_loss", None) == "minimize"
    assert objective_direction("val_loss", "maximize") == "maximize"
    assert set(OBJECTIVES.values()) == {"maximize", "minimize"}
    with pytest.raises(InvalidRequestError, match="unknown objective 'profit'; choose one of: sharpe_ratio"):
        objective_direction("profit", None)
    with pytest.raises(InvalidRequestError, match="direction must be maximize or minimize, got 'up'"):
        objective_direction("accuracy", "up")


def test_points_vary_the_first_name_slowest() -> None:
    assert grid_points({"a": [1, 2], "b": [3, 4]}) == [
        {"a": 1, "b": 3},
        {"a": 1, "b": 4},
        {"a": 2, "b": 3},
        {"a": 2, "b": 4},
    ]
    assert grid_size({"a": [1, 2], "b": [3, 4, 5]}) == 6


def test_a_grid_typed_as_text_is_checked_without_raising() -> None:
    """The dashboard's grid editor: comma-separated text per hyperparameter, every problem returned."""
    grid, problems = parse_grid_text({"learning_rate": "0.001, 1e-2", "hidden_units": "8,16", "l2": "", "epochs": None})
    assert grid == {"learning_rate": [0.001, 0.01], "hidden_units": [8, 16]} and problems == []
    checked = check_grid("market_insight", grid, 10)
    assert checked.ok and checked.points == 4 and checked.grid == grid
    grid, problems = parse_grid_text({"learning_rate": "0.01, fast", "l2": "0.1,,0.2"})
    assert problems == ["learning_rate: 'fast' is not a number", "l2: an empty value between commas"]
    checked = check_grid("market_insight", {"hidden_units": [8.5], "l2": [-1.0]}, 10)
    assert not checked.ok and checked.points == 0
    assert (
        "hidden_units: 8.5 is not an integer" in checked.problems[0]
        and "l2: -1.0 is out of range" in checked.problems[0]
    )
    too_big = check_grid("market_insight", SPEC_GRID, 50)
    assert too_big.points == 81 and "more than the maximum of 50" in too_big.problems[0]
    assert check_grid("market_insight", {}, 10).problems == (
        "parameter grid must be a non-empty object of name → list of values",
    )
