"""Grid configs in the seed's format: a JSON object mapping parameter names to lists of values,
e.g. {"learning_rate": [0.001, 0.01, 0.1], "batch_size": [16, 32, 64]}. What the names mean, and
which values are valid, is the caller's business (the sweep service checks them against the agent's
hyperparameters); this module reads grids and enumerates their points."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from mlops.errors import InvalidRequestError

Grid = dict[str, list[Any]]


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


def grid_size(grid: Grid) -> int:
    size = 1
    for values in grid.values():
        size *= len(values)
    return size


def grid_points(grid: Grid) -> list[dict[str, Any]]:
    """Every combination, in a stable order (the first name varies slowest)."""
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(grid[n] for n in names))]
