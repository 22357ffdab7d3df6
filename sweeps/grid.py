"""Grid configs in the seed's format: a JSON object mapping hyperparameter names to lists of values,
e.g. {"learning_rate": [0.001, 0.01, 0.1], "batch_size": [16, 32, 64]}. Validated before anything runs."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

from mlops.agents.specs import HYPERPARAMETER_NAMES, Hyperparameters, get_spec
from mlops.errors import InvalidRequestError

Grid = dict[str, list[Any]]
INTEGER_PARAMETERS = {"batch_size", "epochs", "hidden_units"}

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


def load_grid(path: Path) -> Grid:
    if not path.exists():
        raise InvalidRequestError(f"grid config {path} does not exist")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InvalidRequestError(f"grid config {path} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidRequestError(f"grid config {path} must be a JSON object of name → list of values")
    return raw


def validate_grid(agent: str, grid: Any, max_points: int) -> Grid:
    """Check names, types and values against the agent's hyperparameters; returns a clean grid with
    duplicates removed (value order kept). Every problem is reported at once."""
    spec = get_spec(agent)
    if not isinstance(grid, dict) or not grid:
        raise InvalidRequestError("parameter grid must be a non-empty object of name → list of values")
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
            wrong_type = isinstance(value, bool) or not isinstance(value, int | float)
            if not wrong_type and not math.isfinite(value if isinstance(value, float) else 0.0):
                problems.append(f"{name}: {value!r} is not a finite number")
                continue
            if not wrong_type and isinstance(value, int) and abs(value) > 2**53:
                problems.append(f"{name}: {value} is out of range")
                continue
            if not wrong_type and name in INTEGER_PARAMETERS and not float(value).is_integer():
                wrong_type = True
            if wrong_type:
                kind = "an integer" if name in INTEGER_PARAMETERS else "a number"
                problems.append(f"{name}: {value!r} is not {kind}")
                continue
            value = int(value) if name in INTEGER_PARAMETERS else float(value)
            try:
                Hyperparameters(**(spec.defaults.model_dump() | {name: value}))
            except ValueError as exc:
                message = exc.errors()[0]["msg"] if hasattr(exc, "errors") else str(exc)
                problems.append(f"{name}: {value!r} is out of range ({message})")
                continue
            if value not in kept:
                kept.append(value)
        if kept:
            clean[name] = kept
    if problems:
        raise InvalidRequestError("invalid parameter grid: " + "; ".join(problems))
    size = grid_size(clean)
    if size > max_points:
        raise InvalidRequestError(
            f"parameter grid has {size} points, more than the maximum of {max_points} (SKIPPY_SWEEP_MAX_POINTS)"
        )
    return clean


def grid_size(grid: Grid) -> int:
    size = 1
    for values in grid.values():
        size *= len(values)
    return size


def grid_points(grid: Grid) -> list[dict[str, Any]]:
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(grid[n] for n in names))]
