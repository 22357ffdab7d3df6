"""What a sweep of an agent may search: its hyperparameters (names, types, ranges), the default grid
per agent, and the validation metrics a sweep may optimise with their natural direction."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from mlops.agents.specs import HYPERPARAMETER_NAMES, Hyperparameters, get_spec
from mlops.errors import InvalidRequestError
from sweeps.grid import Grid, grid_size

INTEGER_PARAMETERS = {"batch_size", "epochs", "hidden_units"}

# `epochs` is left out on purpose: early stopping ends training long before any sensible epoch cap,
# so sweeping it repeats the same fit.
DEFAULT_GRIDS: dict[str, Grid] = {
    "market_insight": {
        "learning_rate": [0.001, 0.01, 0.05],
        "hidden_units": [0, 8, 16],
        "l2": [0.0, 0.001, 0.01],
    },
    "risk_assessor": {
        "learning_rate": [0.001, 0.01, 0.05],
        "hidden_units": [0, 8, 16],
        "risk_threshold": [0.05, 0.1, 0.15],
    },
}

OBJECTIVES: dict[str, str] = {
    "sharpe_ratio": "maximize",
    "accuracy": "maximize",
    "precision": "maximize",
    "recall": "maximize",
    "f1": "maximize",
    "total_return": "maximize",
    "val_loss": "minimize",
    "log_loss": "minimize",
    "max_drawdown": "minimize",
    "turnover": "minimize",
}


def objective_direction(objective: str, direction: str | None) -> str:
    """The direction to optimise `objective` in: the one asked for, else the metric's natural one."""
    if objective not in OBJECTIVES:
        raise InvalidRequestError(f"unknown objective {objective!r}; choose one of: {', '.join(OBJECTIVES)}")
    direction = direction or OBJECTIVES[objective]
    if direction not in ("maximize", "minimize"):
        raise InvalidRequestError(f"direction must be maximize or minimize, got {direction!r}")
    return direction


@dataclass(frozen=True)
class GridCheck:
    """What a sweep would make of a grid, without raising: the clean grid and its number of points, or
    every reason it would be refused (the dashboard's grid editor shows them before anything is sent)."""

    grid: Grid
    points: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def validate_grid(agent: str, grid: Any, max_points: int) -> Grid:
    """Check names, types and values against the agent's hyperparameters; returns a clean grid with
    duplicates removed (value order kept). Every problem is reported at once."""
    checked = check_grid(agent, grid, max_points)
    if checked.problems:
        raise InvalidRequestError("; ".join(checked.problems))
    return checked.grid


def check_grid(agent: str, grid: Any, max_points: int) -> GridCheck:
    """`validate_grid`'s checks, returned instead of raised (UnknownAgentError still raises: the caller
    chose the agent, not the user typing the grid)."""
    spec = get_spec(agent)
    if not isinstance(grid, dict) or not grid:
        return GridCheck({}, 0, ("parameter grid must be a non-empty object of name → list of values",))
    problems: list[str] = []
    clean: Grid = {}
    for name, values in grid.items():
        if name not in HYPERPARAMETER_NAMES:
            problems.append(f"unknown hyperparameter {name!r} (known: {', '.join(HYPERPARAMETER_NAMES)})")
            continue
        if not isinstance(values, list) or not values:
            problems.append(f"{name}: expected a non-empty list of values, got {values!r}")
            continue
        kept: list[Any] = []
        for value in values:
            problem, clean_value = _check_value(name, value, spec.defaults.model_dump())
            if problem:
                problems.append(problem)
            elif clean_value not in kept:
                kept.append(clean_value)
        if kept:
            clean[name] = kept
    if problems:
        return GridCheck(clean, 0, ("invalid parameter grid: " + "; ".join(problems),))
    size = grid_size(clean)
    if size > max_points:
        too_big = f"parameter grid has {size} points, more than the maximum of {max_points} (SKIPPY_SWEEP_MAX_POINTS)"
        return GridCheck(clean, size, (too_big,))
    return GridCheck(clean, size, ())


def parse_grid_text(texts: Mapping[str, str | None]) -> tuple[dict[str, list[Any]], list[str]]:
    """A grid typed as text — per hyperparameter, comma-separated numbers (the dashboard's grid editor) —
    as the lists `check_grid` takes, and the tokens that are not numbers. Empty text leaves the
    hyperparameter out of the sweep (the agent's default is used)."""
    grid: dict[str, list[Any]] = {}
    problems: list[str] = []
    for name, text in texts.items():
        tokens = [t.strip() for t in (text or "").split(",")]
        if not any(tokens):
            continue
        values: list[Any] = []
        for token in tokens:
            if not token:
                problems.append(f"{name}: an empty value between commas")
                continue
            try:
                values.append(int(token))
            except ValueError:
                try:
                    values.append(float(token))
                except ValueError:
                    problems.append(f"{name}: {token!r} is not a number")
        grid[name] = values
    return grid, problems


def _check_value(name: str, value: Any, defaults: dict[str, Any]) -> tuple[str | None, Any]:
    """(problem, None) or (None, the value as the hyperparameter's type)."""
    wrong_type = isinstance(value, bool) or not isinstance(value, int | float)
    if not wrong_type and not math.isfinite(value if isinstance(value, float) else 0.0):
        return f"{name}: {value!r} is not a finite number", None
    if not wrong_type and isinstance(value, int) and abs(value) > 2**53:
        return f"{name}: {value} is out of range", None
    if not wrong_type and name in INTEGER_PARAMETERS and not float(value).is_integer():
        wrong_type = True
    if wrong_type:
        kind = "an integer" if name in INTEGER_PARAMETERS else "a number"
        return f"{name}: {value!r} is not {kind}", None
    value = int(value) if name in INTEGER_PARAMETERS else float(value)
    try:
        Hyperparameters(**(defaults | {name: value}))
    except ValidationError as exc:
        return f"{name}: {value!r} is out of range ({exc.errors()[0]['msg']})", None
    return None, value
